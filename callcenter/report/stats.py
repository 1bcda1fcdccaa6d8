"""Report figures read from the SQLite store: queue intervals, agents, IVR exits, dialer.

Every function takes a ``sqlite3.Connection`` and a time range ``[t0, t1)`` in unix seconds and
tolerates missing tables (an empty result): the queue log, the agent state log and the dialer
tables come from other parts of the server and may not exist in an older database.

Definitions (the same as the live ACD figures):

- offered: calls that entered the queue; answered: connected to an agent;
- SL%: answered within the queue's ``sl_seconds`` over calls with an outcome (answered,
  abandoned, timed out, left empty);
- ASA: mean wait of answered calls; AHT: mean talk of completed calls plus the mean wrap-up
  that agents spent in the same interval (when the agent state log has any).
"""

from __future__ import annotations

import json
import sqlite3
import time as systime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ivr.clock import ServerClock

_RESOLVED = ("connect", "abandon", "timeout", "exit_empty")


@dataclass(frozen=True, slots=True)
class LocalTime:
    """How the stored unix times read on the server's clock: in its time zone (the config's
    ``timezone``, never the operating system's), running ``shift`` seconds ahead of the system
    clock (``serve --clock``; 0 otherwise). Days, intervals and printed times all come from it,
    so they agree with the ACD's "today"."""

    tz: tzinfo
    shift: float = 0.0

    @classmethod
    def of(cls, clock: ServerClock) -> LocalTime:
        return cls(clock.tz, clock.now().timestamp() - systime.time() if clock.fixed else 0.0)

    @classmethod
    def zone(cls, name: str) -> LocalTime:
        return cls(ZoneInfo(name))

    def at(self, ts: float) -> datetime:
        """The aware local time of a stored unix time."""
        return datetime.fromtimestamp(ts + self.shift, self.tz)

    def today(self) -> date:
        return self.at(systime.time()).date()

    def day_range(self, first: date, last: date) -> tuple[float, float]:
        """Stored unix times from local midnight of ``first`` to local midnight after ``last``."""
        t0 = datetime.combine(first, time(), self.tz).timestamp()
        t1 = datetime.combine(last + timedelta(days=1), time(), self.tz).timestamp()
        return t0 - self.shift, t1 - self.shift


def has_table(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}


def _slot(ts: float, t0: float, minutes: int) -> float:
    size = minutes * 60
    return t0 + ((ts - t0) // size) * size


def queue_intervals(
    con: sqlite3.Connection, t0: float, t1: float, *, local: LocalTime, minutes: int = 60,
    sl_seconds: dict[str, float] | None = None, default_sl: float = 20.0,
) -> list[dict[str, Any]]:
    """One row per queue and interval with any activity, in time order; intervals count from
    ``t0`` (a local midnight) and are labelled in ``local`` time."""
    if not has_table(con, "queue_log"):
        return []
    sl_seconds = sl_seconds or {}
    acc: dict[tuple[str, float], dict[str, Any]] = {}

    def row(queue: str, ts: float) -> dict[str, Any]:
        key = (queue, _slot(ts, t0, minutes))
        if key not in acc:
            acc[key] = {"queue": queue, "interval": local.at(key[1]).strftime("%Y-%m-%d %H:%M"),
                        "start": key[1],
                        "offered": 0, "answered": 0, "abandoned": 0, "timed_out": 0,
                        "resolved": 0, "in_sl": 0, "wait_sum": 0.0, "talk_sum": 0.0,
                        "completed": 0}
        return acc[key]

    rows = con.execute(
        "SELECT ts, queue, event, wait, talk FROM queue_log WHERE ts >= ? AND ts < ? "
        "ORDER BY ts, id", (t0, t1),
    )
    for ts, queue, event, wait, talk in rows:
        r = row(queue, ts)
        if event == "enter":
            r["offered"] += 1
        if event in _RESOLVED:
            r["resolved"] += 1
        if event == "connect":
            r["answered"] += 1
            r["wait_sum"] += wait or 0.0
            if (wait or 0.0) <= sl_seconds.get(queue, default_sl):
                r["in_sl"] += 1
        elif event == "abandon":
            r["abandoned"] += 1
        elif event == "timeout":
            r["timed_out"] += 1
        elif event in ("complete", "transfer", "attendedtransfer"):
            r["completed"] += 1
            r["talk_sum"] += talk or 0.0
    wrap = _wrap_by_slot(con, t0, t1, minutes)
    out = []
    for (_queue, slot), r in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        r["service_level"] = r["in_sl"] / r["resolved"] if r["resolved"] else None
        r["asa"] = r["wait_sum"] / r["answered"] if r["answered"] else None
        mean_wrap = wrap.get(slot)
        r["aht"] = (r["talk_sum"] / r["completed"] + (mean_wrap or 0.0)
                    if r["completed"] else None)
        out.append(r)
    return out


def interval_totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``queue_intervals`` rows summed over queues, per interval (for a chart)."""
    acc: dict[float, dict[str, Any]] = {}
    for r in rows:
        t = acc.setdefault(r["start"], {"interval": r["interval"], "start": r["start"],
                                        "offered": 0, "answered": 0, "abandoned": 0,
                                        "resolved": 0, "in_sl": 0})
        for key in ("offered", "answered", "abandoned", "resolved", "in_sl"):
            t[key] += r[key]
    out = []
    for start in sorted(acc):
        t = acc[start]
        t["service_level"] = t["in_sl"] / t["resolved"] if t["resolved"] else None
        out.append(t)
    return out


def _states(con: sqlite3.Connection, t0: float, t1: float) -> dict[str, list[tuple[float, float, str, str]]]:
    """Per agent: (start, end, state, reason) periods clipped to [t0, t1)."""
    if not has_table(con, "agent_states"):
        return {}
    changes: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for agent, ts, new, reason in con.execute(
        "SELECT agent, ts, new, reason FROM agent_states a WHERE ts < ? AND (ts >= ? OR id = "
        "(SELECT max(id) FROM agent_states b WHERE b.agent = a.agent AND b.ts < ?)) "
        "ORDER BY ts, id", (t1, t0, t0),
    ):
        changes[agent].append((ts, new, reason or ""))
    now = systime.time()
    out: dict[str, list[tuple[float, float, str, str]]] = {}
    for agent, seq in changes.items():
        periods = []
        for i, (ts, state, reason) in enumerate(seq):
            end = seq[i + 1][0] if i + 1 < len(seq) else min(t1, now)
            start, end = max(ts, t0), min(end, t1)
            if end > start:
                periods.append((start, end, state, reason))
        out[agent] = periods
    return out


def _wrap_by_slot(con: sqlite3.Connection, t0: float, t1: float, minutes: int) -> dict[float, float]:
    sums: dict[float, list[float]] = defaultdict(list)
    for periods in _states(con, t0, t1).values():
        for start, end, state, _ in periods:
            if state == "wrap_up":
                sums[_slot(start, t0, minutes)].append(end - start)
    return {slot: sum(v) / len(v) for slot, v in sums.items()}


def _talks(con: sqlite3.Connection, t0: float, t1: float) -> dict[str, dict[str, tuple[float, bool]]]:
    """Per agent and call the agent talked on from ``[t0, t1)``: (talk seconds, from a queue).

    A call is the agent's when a queue connected it (``queue_log`` connect, ``calls.agent``),
    the agent's phone answered it (a direct, transferred, preview or campaign call: the
    ``connected`` event) or the agent placed it and it was answered (``calls.source``
    ``user:<agent>``: a dial-out or a call to another user). The talk runs from that moment to
    the agent's end of it: the queue's complete or transfer, the agent's own transfer, its
    phone's leg ending (``left``: the caller may go on, e.g. back in the IVR), else the call's
    end."""
    starts: dict[tuple[str, str], tuple[float, bool]] = {}

    def add(agent: str | None, call: str, ts: float | None, queue: bool, *,
            fallback: bool = False) -> None:
        if agent and ts is not None and t0 <= ts < t1 and not (fallback and (agent, call) in starts):
            old = starts.get((agent, call))
            starts[(agent, call)] = (min(ts, old[0]) if old else ts, queue or bool(old and old[1]))

    ends: dict[str, float] = {}
    if has_table(con, "queue_log"):
        for agent, call, ts in con.execute(
                "SELECT agent, call_id, ts FROM queue_log WHERE event = 'connect' AND ts >= ? "
                "AND ts < ?", (t0, t1)):
            add(agent, call, ts, True)
    answered = con.execute(  # feature codes (*41, *5...) are no calls with anyone
        "SELECT id, agent, answer, source FROM calls WHERE start >= ? AND start < ? AND "
        "answer >= ? AND answer < ? AND called NOT LIKE '*%'",  # by start: indexed
        (t0 - 86400, t1, t0, t1)).fetchall() if has_table(con, "calls") else None
    for call, _, answer, source in answered or ():
        if source.startswith("user:"):
            add(source[5:], call, answer, False)
    stops: dict[tuple[str, str], list[float]] = defaultdict(list)
    if has_table(con, "call_events") and answered is not None:  # calls of up to a day before
        for call, ts, type_, who in con.execute(
                "SELECT call_id, ts, type, coalesce(json_extract(data, '$.agent'), "
                "json_extract(data, '$.transferor')) FROM call_events WHERE call_id IN "
                "(SELECT id FROM calls WHERE start >= ? AND start < ?) AND ts >= ? "  # indexed
                "AND type IN ('connected', 'transferred', 'left')", (t0 - 86400, t1, t0)):
            if type_ == "connected":
                add(who, call, ts, False)
            elif who:
                stops[(who, call)].append(ts)
    if has_table(con, "queue_log"):
        for agent, call, ts in con.execute(
                "SELECT agent, call_id, ts FROM queue_log WHERE ts >= ? AND event IN "
                "('complete', 'transfer', 'attendedtransfer')", (t0,)):
            stops[(agent, call)].append(ts)
    for call, agent, answer, _ in answered or ():  # a queue agent's call no event above gave
        add(agent, call, answer, False, fallback=True)
    ids = sorted({call for _, call in starts}) if answered is not None else []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        ends |= dict(con.execute(f'SELECT id, "end" FROM calls WHERE "end" IS NOT NULL AND id '
                                 f'IN ({",".join("?" * len(chunk))})', chunk).fetchall())
    now = systime.time()
    out: dict[str, dict[str, tuple[float, bool]]] = defaultdict(dict)
    for (agent, call), (start, queue) in starts.items():
        end = min([ends.get(call, now), *(ts for ts in stops.get((agent, call), ()) if ts >= start)])
        out[agent][call] = (max(0.0, end - start), queue)
    return out


def agent_summary(con: sqlite3.Connection, t0: float, t1: float) -> list[dict[str, Any]]:
    """Per agent: calls talked on and their talk (all of them; ``queue_*``: those a queue
    gave), wrap-up, pause by reason, logged-in time and occupancy (the ACD's state log)."""
    talks = _talks(con, t0, t1)
    out = []
    states = _states(con, t0, t1)
    for agent in sorted(set(states) | set(talks)):
        time_in: dict[str, float] = defaultdict(float)
        pauses: dict[str, float] = defaultdict(float)
        for start, end, state, reason in states.get(agent, []):
            time_in[state] += end - start
            if state == "paused":
                pauses[reason or "-"] += end - start
        talk, wrap = time_in["on_call"], time_in["wrap_up"]
        ready = talk + wrap + time_in["available"] + time_in["ringing"]
        logged_in = sum(v for k, v in time_in.items() if k != "logged_out")
        mine = talks.get(agent, {})
        queued = [t for t, q in mine.values() if q]
        out.append({
            "agent": agent, "calls": len(mine), "talk": round(sum(t for t, _ in mine.values()), 1),
            "queue_calls": len(queued), "queue_talk": round(sum(queued), 1),
            "wrap_up": round(wrap, 1), "paused": round(sum(pauses.values()), 1),
            "pause_by_reason": {k: round(v, 1) for k, v in sorted(pauses.items())},
            "logged_in": round(logged_in, 1),
            "occupancy": (talk + wrap) / ready if ready else None,
        })
    return out


def ivr_exits(con: sqlite3.Connection, t0: float, t1: float) -> list[dict[str, Any]]:
    """Where callers left the IVR: the ``ivr_end`` node and reason (else the last node)."""
    if not has_table(con, "call_events"):
        return []
    last: dict[str, tuple[str, str]] = {}
    for call_id, type_, data in con.execute(
        "SELECT call_id, type, data FROM call_events WHERE ts >= ? AND ts < ? "
        "AND type IN ('ivr_node', 'ivr_end') ORDER BY ts, id", (t0, t1),
    ):
        try:
            d = json.loads(data or "{}")
        except ValueError:
            d = {}
        if type_ == "ivr_end":
            last[call_id] = (str(d.get("node") or "-"), str(d.get("reason") or "-"))
        elif call_id not in last or last[call_id][1] == "":
            last[call_id] = (str(d.get("node") or "-"), "")
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for node, reason in last.values():
        counts[(node, reason or "in progress")] += 1
    total = sum(counts.values())
    return [{"node": node, "reason": reason, "calls": n, "share": n / total}
            for (node, reason), n in sorted(counts.items(), key=lambda kv: -kv[1])]


_DIALER_TABLES = ("attempts", "dialer_attempts", "call_attempts", "campaign_attempts")
_RESULT_COLUMNS = ("outcome", "result", "disposition", "status")  # attempts.outcome first
_TIME_COLUMNS = ("ts", "start", "started", "time", "created")


def dialer_results(con: sqlite3.Connection, t0: float, t1: float) -> list[dict[str, Any]]:
    """Outbound attempts per campaign and result, when the dialer's table exists."""
    for table in _DIALER_TABLES:
        if not has_table(con, table):
            continue
        cols = _columns(con, table)
        result = next((c for c in _RESULT_COLUMNS if c in cols), None)
        when = next((c for c in _TIME_COLUMNS if c in cols), None)
        if result is None:
            continue
        campaign = "campaign" if "campaign" in cols else ("campaign_id" if "campaign_id" in cols
                                                          else "'-'")
        where, args = (f'WHERE "{when}" >= ? AND "{when}" < ?', (t0, t1)) if when else ("", ())
        rows = con.execute(
            f'SELECT {campaign}, "{result}", count(*) FROM "{table}" {where} '
            f"GROUP BY 1, 2 ORDER BY 1, 3 DESC", args,
        )
        return [{"campaign": str(c), "result": str(r), "attempts": n} for c, r, n in rows]
    return []
