"""The figures of the media engine and its channels: dataclasses of plain values, which a
media worker sends to the signalling process as they are (`protocol.Stats`, `protocol.Closed`).
Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from .rtp import ReceptionStats


@dataclass(slots=True)
class ChannelStats:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    relayed_out: int = 0
    """Packets sent that came from the bridged peer."""
    late_frames: int = 0
    """Frames sent on a tick that fired more than 10 ms late."""
    missed_frames: int = 0
    """Frames the clock could not send at all (ticks skipped after a stall)."""
    dropped_in: int = 0
    """Malformed packets and unexpected payload types."""
    foreign_in: int = 0
    """RTP (or RTCP) from another address while the latched peer is sending: dropped."""
    send_errors: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    dtmf_in: int = 0
    srtp_failed: int = 0
    """SRTP/SRTCP packets that failed authentication or the replay check: dropped."""
    srtp_plain: int = 0
    """Plain RTCP compounds (not SRTCP) on an SRTP channel: dropped, not failures."""
    decoded: int = 0
    """Audio packets decoded to linear PCM: received ones for a recording, an audio tap or
    in-band DTMF detection, sent ones for a stereo recording. A bridge relays without."""
    reception: ReceptionStats = field(default_factory=ReceptionStats, repr=False)
    """RFC 3550 statistics of the incoming stream (audio and RFC 4733 packets)."""

    @property
    def packets_lost(self) -> int:
        """Incoming packets lost so far (cumulative, all sources; negative with duplicates)."""
        return self.reception.total_lost

    @property
    def packets_expected(self) -> int:
        return self.reception.total_expected

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter of the incoming audio now, in milliseconds."""
        return self.reception.jitter_ms


@dataclass(slots=True)
class EngineStats:
    ticks: int = 0
    late_ticks: int = 0
    missed_ticks: int = 0
    max_lateness: float = 0.0
    channels: int = 0
    srtp_failed: int = 0
    """SRTP/SRTCP packets of all channels that failed authentication (dropped)."""
    srtp_plain: int = 0
    """Plain RTCP compounds all SRTP channels dropped (phones send some around SRTP)."""
    worker_restarts: int = 0
    """Media worker processes that died and were started again (with media.workers)."""
