"""Rows of the store as typed records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Direction = Literal["inbound", "outbound", "internal"]
HangupSide = Literal["caller", "callee", "system"]

#: Values used in ``calls.hangup_cause`` (others may be added; keep them snake_case).
HANGUP_CAUSES = frozenset(
    {"normal_clearing", "no_answer", "busy", "cancelled", "timeout", "failed", "rejected"}
)


@dataclass(kw_only=True, slots=True)
class CallRecord:
    """One call detail record (a row of ``calls``); times are unix seconds."""

    id: str  #: our UUID for the call
    sip_call_id: str  #: Call-ID of the leg that created the call
    direction: Direction
    caller: str  #: calling number / user
    called: str  #: dialled number
    source: str  #: where it came from: "trunk:pstn", "user:1001"
    start: float
    line: str | None = None  #: dialplan line number that matched
    answer: float | None = None
    end: float | None = None
    duration: float | None = None  #: end - start
    billsec: float | None = None  #: end - answer (0 when never answered)
    hangup_cause: str | None = None  #: see HANGUP_CAUSES
    hangup_side: HangupSide | None = None
    sip_status: int | None = None  #: final SIP status of the call
    digits: str = ""  #: DTMF digits the caller pressed, in order
    codec: str | None = None
    recording: str | None = None  #: path of the recording, if any
    rtp_lost_pct: float | None = None  #: caller leg's RTP packets lost / expected, in %
    rtp_jitter_ms: float | None = None  #: caller leg's interarrival jitter at the end (RFC 3550)
    hold_seconds: float | None = None  #: time on hold (a party's re-INVITE sendonly/inactive)
    agent: str | None = None  #: the queue agent who took the call
    queue: str | None = None  #: the ACD queue the call was last queued in
    disposition: str | None = None  #: the agent's inbound disposition (its name)
    #: the trunk that carried the call (after a failover, the one that took it) and the
    #: Call-ID of the call's leg on it
    trunk: str | None = None
    trunk_call_id: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The record as a ``calls`` row."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CallRecord:
        """Build a record from a ``calls`` row (unknown columns are ignored)."""
        return cls(**{k: v for k, v in row.items() if k in CALL_FIELDS})


CALL_FIELDS = frozenset(f.name for f in fields(CallRecord))
