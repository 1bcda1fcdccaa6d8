"""What a restart restores of the agents: the last state and reason, the queues logged in to."""

from __future__ import annotations

from callcenter.store.db import Store


def test_agent_presence_is_the_last_state_and_the_last_row_per_queue() -> None:
    store = Store(":memory:")
    store.log_agent_state(ts=1.0, agent="1001", old="logged_out", new="available")
    store.log_agent_state(ts=2.0, agent="1001", old="available", new="paused", reason="lunch")
    store.log_agent_state(ts=3.0, agent="1002", old="available", new="logged_out")
    for ts, queue, event in ((1.0, "sales", "addmember"), (1.0, "support", "addmember"),
                             (2.0, "sales", "pause"), (4.0, "sales", "removemember")):
        store.log_queue(ts=ts, queue=queue, call_id="NONE", event=event, agent="1001")
    store.log_queue(ts=5.0, queue="sales", call_id="c1", event="connect", agent="1001")
    last, queues = store.agent_presence()
    assert last == {"1001": ("paused", "lunch"), "1002": ("logged_out", "")}
    assert queues == {"1001": {"sales": False, "support": True}}
