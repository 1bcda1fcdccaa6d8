"""``callcenter queue-log``: the queue log in Asterisk's ``queue_log`` format.

    callcenter queue-log --from 2026-11-23 [--to 2026-11-29] [--config FILE] [--db PATH]
                         [--out FILE]

One line an event, ``epoch|callid|queue|agent|EVENT|data...`` (Asterisk's doc/queuelog.txt),
so tools written for Asterisk queues can read our calls:

    ENTERQUEUE|url|callerid              CONNECT|holdtime|bridged-uniqueid|ringtime
    COMPLETECALLER|holdtime|calltime|origposition   (COMPLETEAGENT when the agent hung up)
    TRANSFER|extension|context|holdtime|calltime|origposition
    ATTENDEDTRANSFER|BRIDGE|target|holdtime|calltime|origposition
    ABANDON / EXITWITHTIMEOUT / EXITEMPTY|position|origposition|waittime
    EXITWITHKEY|key|position|origposition|waittime  (the caller left a callback request)
    RINGNOANSWER|ringtime (ms)           ADDMEMBER / REMOVEMEMBER / PAUSE|reason / UNPAUSE

Agent events are the queue log's rows with call ``NONE``, one for each queue the agent was
logged in to; ring times are measured from the agent's last ``ringing`` state in the agent
state log. Times are whole seconds.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from callcenter.config.models import Queue
from callcenter.report.cli import _date, open_days, write_out
from callcenter.report.stats import LocalTime

_LEAVE = {"abandon": "ABANDON", "timeout": "EXITWITHTIMEOUT", "exit_empty": "EXITEMPTY"}


def _s(value: float | None) -> str:
    return str(round(value or 0))


def asterisk_lines(con: sqlite3.Connection, t0: float, t1: float,
                   callback_keys: Mapping[str, str]) -> Iterator[str]:
    """The queue log in ``[t0, t1)`` as Asterisk lines, in time order.

    ``callback_keys``: queue -> the key that leaves a callback request (EXITWITHKEY's key)."""
    con.row_factory = sqlite3.Row
    calls = con.execute(
        "SELECT q.*, c.caller FROM queue_log q LEFT JOIN calls c ON c.id = q.call_id "
        "WHERE q.ts >= ? AND q.ts < ? ORDER BY q.ts, q.id", (t0, t1)).fetchall()
    agents = con.execute("SELECT * FROM agent_states WHERE new = 'ringing' AND ts >= ? "
                         "AND ts < ? ORDER BY ts, id",
                         (t0 - 3600, t1)).fetchall()  # an hour before: rings that began then
    rows: list[tuple[float, int, Any]] = [(r["ts"], 0, r) for r in calls]
    rows += [(r["ts"], 1, r) for r in agents]
    rows.sort(key=lambda x: (x[0], x[1]))
    first_position: dict[tuple[str, str], int] = {}
    ringing: dict[str, float] = {}  # agent -> when it last started ringing
    for ts, kind, r in rows:
        if kind == 1:
            ringing[r["agent"]] = ts
            continue
        key = (r["call_id"], r["queue"])
        if r["event"] == "enter":
            first_position[key] = r["position"] or 0
        data = _call_data(r, first_position.get(key, r["position"] or 0),
                          ringing.get(r["agent"] or ""), callback_keys.get(r["queue"], ""))
        if data is not None:
            yield "|".join([str(int(ts)), r["call_id"], r["queue"], r["agent"] or "NONE", *data])


def _call_data(r: sqlite3.Row, orig: int, rang_at: float | None,
               key: str) -> list[str] | None:
    event, wait, talk, pos = r["event"], r["wait"], r["talk"], str(r["position"] or 0)
    ring = max(0.0, r["ts"] - rang_at) if rang_at is not None else 0.0
    if event == "enter":
        return ["ENTERQUEUE", "", r["caller"] or ""]
    if event == "connect":
        return ["CONNECT", _s(wait), "", _s(ring)]
    if event == "complete":
        done = "COMPLETEAGENT" if r["hung_up_by"] == "agent" else "COMPLETECALLER"
        return [done, _s(wait), _s(talk), str(orig)]
    if event == "transfer":
        return ["TRANSFER", r["detail"] or "", "", _s(wait), _s(talk), str(orig)]
    if event == "attendedtransfer":  # method BRIDGE, data: the party the caller now talks to
        return ["ATTENDEDTRANSFER", "BRIDGE", r["detail"] or "", _s(wait), _s(talk), str(orig)]
    if event in _LEAVE:
        return [_LEAVE[event], pos, str(orig), _s(wait)]
    if event == "callback":
        return ["EXITWITHKEY", key, pos, str(orig), _s(wait)]
    if event == "ringnoanswer":
        return ["RINGNOANSWER", str(round(ring * 1000))]
    if event in ("addmember", "removemember", "pause", "unpause"):
        return [event.upper(), r["detail"] if event == "pause" else ""]
    return None  # ours only (watchdog): Asterisk has no such event


def register(sub: Any) -> None:
    """Add the ``queue-log`` sub-command to an argparse sub-parsers object."""
    p = sub.add_parser(
        "queue-log", help="the queue log of a date range in Asterisk's queue_log format",
        description="Write the queue log (calls and agent changes) of the days given as "
        "Asterisk queue_log lines: epoch|callid|queue|agent|EVENT|data...")
    p.add_argument("--from", dest="date_from", type=_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=_date, metavar="DATE",
                   help="last day included (default: --from)")
    p.add_argument("--config", type=Path, metavar="FILE", help="configuration (database, "
                   "time zone, queue members); default: the built-in one")
    p.add_argument("--db", type=Path, metavar="PATH", help="database (overrides the config)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(run=run)


def export(db: Path | str, t0: float, t1: float, queues: Iterable[Queue]) -> str:
    """The text of ``queue_log`` in ``[t0, t1)`` from database ``db`` (opened read-only)
    whose queues are ``queues``: the CLI's and ``GET /api/queue-log``'s."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        keys = {q.name: q.callback_key or "" for q in queues}
        return "".join(line + "\n" for line in asterisk_lines(con, t0, t1, keys))
    finally:
        con.close()


def run(args: argparse.Namespace) -> int:
    opened = open_days(args, "queue-log")
    if isinstance(opened, int):
        return opened
    cfg, db, first, last = opened
    t0, t1 = LocalTime.zone(cfg.timezone).day_range(first, last)
    return write_out(args, export(db, t0, t1, cfg.queues))
