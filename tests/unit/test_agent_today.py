"""The agent's day (``GET /api/stats/agents``, the desk's "Today"): every call the agent
talked on, from the CDR, not only the queue's."""

from __future__ import annotations

import sqlite3
from datetime import date

from callcenter.events.bus import (
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
    LegEnded,
)
from callcenter.events.store_sink import StoreSink
from callcenter.report import stats
from callcenter.store.db import Store


def test_every_call_an_agent_talked_on_counts() -> None:
    store = Store(":memory:")
    sink = StoreSink(store)
    local = stats.LocalTime.zone("Europe/Warsaw")
    t0, t1 = local.day_range(date(2026, 11, 23), date(2026, 11, 23))
    at = t0 + 9 * 3600

    def call(id: str, start: float, caller: str, called: str, source: str, direction: str,
             answered: float | None, end: float, agent: str | None = None) -> None:
        sink(CallStarted(ts=start, call_id=id, caller=caller, called=called, source=source,
                         direction=direction))
        if answered is not None:
            sink(CallAnswered(ts=answered, call_id=id))
        sink(CallEnded(ts=end, call_id=id, cause="normal_clearing", side="caller",
                       agent=agent, queue="sales" if agent else None))

    # a queue call to 1001: 60 s talk, then the caller takes the survey until +100
    call("q", at, "+48221234567", "100", "trunk:pstn", "inbound", at, at + 100, agent="1001")
    store.log_queue(ts=at + 10, queue="sales", call_id="q", event="connect", agent="1001", wait=10)
    store.log_queue(ts=at + 70, queue="sales", call_id="q", event="complete", agent="1001",
                    talk=60.0)
    # a direct call from 1002 to 1001: 30 s for both
    call("d", at + 200, "1002", "1001", "user:1002", "internal", at + 205, at + 235)
    sink(CallAnswered(ts=at + 205, call_id="d", agent="1001"))
    # 1001 dials out: 40 s
    call("o", at + 300, "1001", "+48601000000", "user:1001", "outbound", at + 310, at + 350)
    # a preview call of a campaign answered by 1001's phone: 20 s
    call("p", at + 400, "+48220000000", "+48602000000", "campaign:spring", "outbound",
         at + 402, at + 425)
    sink(CallAnswered(ts=at + 405, call_id="p", agent="1001"))
    # 1002 transfers its queue call to 1001 after 15 s; 1001 talks 45 s
    call("t", at + 500, "+48223333333", "100", "trunk:pstn", "inbound", at + 500, at + 570,
         agent="1002")
    store.log_queue(ts=at + 510, queue="sales", call_id="t", event="connect", agent="1002",
                    wait=10)
    sink(CallTransferred(ts=at + 525, call_id="t", transferee="+48223333333",
                         target="user:1001", transferor="1002"))
    sink(CallAnswered(ts=at + 525, call_id="t", agent="1001"))
    # the IVR transfers a caller to 1003, who talks 20 s and hangs up; the caller goes on in
    # the IVR for 75 s: 1003's talk ends with its leg
    call("i", at + 700, "+48224444444", "0800", "trunk:pstn", "inbound", at + 700, at + 800)
    sink(CallAnswered(ts=at + 705, call_id="i", agent="1003"))
    sink(LegEnded(ts=at + 725, call_id="i", party="1003", direction="outbound", agent="1003"))
    sink(LegEnded(ts=at + 800, call_id="i", party="+48224444444", direction="inbound"))
    # 1001 logs in with a feature code: no call with anyone; yesterday's call: not today
    call("f", at + 600, "1001", "*41", "user:1001", "internal", at + 600, at + 603)
    call("y", t0 - 500, "1001", "1002", "user:1001", "internal", t0 - 490, t0 - 400)

    con: sqlite3.Connection = store.db.conn
    rows = {r["agent"]: r for r in stats.agent_summary(con, t0, t1)}
    a, b = rows["1001"], rows["1002"]
    assert (a["calls"], a["talk"], a["queue_calls"], a["queue_talk"]) == (5, 195.0, 1, 60.0)
    assert (b["calls"], b["talk"], b["queue_calls"], b["queue_talk"]) == (2, 45.0, 1, 15.0)
    assert (rows["1003"]["calls"], rows["1003"]["talk"]) == (1, 20.0)
    assert set(rows) == {"1001", "1002", "1003"}
