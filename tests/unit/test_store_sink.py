"""The SQLite store as a bus subscriber: events in, rows out; every sink sees the same events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from acd import actions as act
from acd.states import AgentState
from callcenter.config import EventsConfig, MqttConfig
from callcenter.events.bus import (
    AcdWatchdog,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallRecording,
    CallStarted,
    Dtmf,
    Event,
    IvrStep,
    QueueConnected,
    QueueEntered,
    QueueLeft,
    RegistrationChanged,
    SupervisorStep,
)
from callcenter.events.service import Events
from callcenter.events.store_sink import StoreSink
from callcenter.store.db import Store


def _started(call_id: str = "c1", ts: float = 100.0) -> CallStarted:
    return CallStarted(ts=ts, call_id=call_id, caller="48221234567", called="0800123456",
                       source="trunk:pstn", direction="inbound", line="0800123456",
                       sip_call_id="abc@host", codec="PCMA")


def _rows(store: Store, sql: str) -> list[dict[str, Any]]:
    cursor = store.db.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_a_call_from_start_to_end() -> None:
    store = Store(":memory:")
    sink = StoreSink(store)
    sink(_started())
    record = store.get_call("c1")
    assert record is not None and record.end is None  # the row exists from the start
    assert (record.start, record.sip_call_id, record.codec, record.line) == (
        100.0, "abc@host", "PCMA", "0800123456")
    for event in (
        CallAnswered(ts=101.0, call_id="c1"),
        Dtmf(ts=102.0, call_id="c1", digit="1", digits="1"),
        IvrStep(ts=103.0, call_id="c1", step="ivr_choice", data={"node": "main", "key": "1"}),
        Dtmf(ts=104.0, call_id="c1", digit="#", digits="1#"),
        CallAnswered(ts=110.0, call_id="c1", agent="1001"),
        CallRecording(ts=110.5, call_id="c1", path="/rec/c1.wav"),
        SupervisorStep(ts=111.0, call_id="c1", step="supervisor_joined", session="s1",
                       supervisor="2001", agent="1001", mode="listen"),
        CallEnded(ts=130.0, call_id="c1", cause="normal_clearing", side="caller",
                  digits="1#", sip_status=200, duration=30.0),
    ):
        sink(event)
    record = store.get_call("c1")
    assert record is not None
    assert (record.answer, record.end, record.duration, record.billsec) == (101.0, 130.0, 30.0,
                                                                             29.0)
    assert (record.hangup_cause, record.hangup_side, record.sip_status) == (
        "normal_clearing", "caller", 200)
    assert (record.digits, record.recording) == ("1#", "/rec/c1.wav")
    assert (record.trunk, record.trunk_call_id) == (None, None)
    sink(_started("c2"))
    sink(CallEnded(ts=131.0, call_id="c2", cause="normal_clearing", side="caller",
                   trunk="second", trunk_call_id="def@host", sip_call_id="def@host"))
    failed_over = store.get_call("c2")
    assert failed_over is not None
    assert (failed_over.trunk, failed_over.trunk_call_id, failed_over.sip_call_id) == (
        "second", "def@host", "def@host")
    assert store.call_events("c1") == [
        {"ts": 102.0, "type": "dtmf", "data": {"digit": "1"}},
        {"ts": 103.0, "type": "ivr_choice", "data": {"node": "main", "key": "1"}},
        {"ts": 104.0, "type": "dtmf", "data": {"digit": "#"}},
        {"ts": 110.0, "type": "connected", "data": {"agent": "1001"}},
        {"ts": 111.0, "type": "supervisor_joined",
         "data": {"session": "s1", "supervisor": "2001", "agent": "1001", "mode": "listen"}},
    ]


def test_an_unanswered_call_bills_nothing_and_a_recording_without_cdr_is_ignored() -> None:
    store = Store(":memory:")
    sink = StoreSink(store)
    sink(_started())
    sink(CallEnded(ts=105.0, call_id="c1", cause="cancelled", side="caller"))
    record = store.get_call("c1")
    assert record is not None and (record.billsec, record.sip_status) == (0.0, None)
    sink(CallRecording(call_id="nope", path="/x.wav"))  # no row, no error (as before)
    with pytest.raises(KeyError):
        sink(CallAnswered(call_id="nope"))  # the bus logs it; the publisher never sees it


def test_a_call_closed_after_its_end_keeps_its_end_in_the_cdr() -> None:
    """With media workers the record closes once the final RTP figures came, a moment after
    the last leg ended: the event's ts is the closing, the CDR's end stays ``end``."""
    store = Store(":memory:")
    sink = StoreSink(store)
    sink(_started())
    sink(CallEnded(ts=107.5, end=105.0, call_id="c1", cause="normal_clearing", side="caller"))
    record = store.get_call("c1")
    assert record is not None and record.end == 105.0


def test_queue_log_agent_states_and_registrations() -> None:
    store = Store(":memory:")
    sink = StoreSink(store)
    sink(QueueEntered(ts=1.0, call_id="c1", queue="sales", position=2))
    sink(QueueConnected(ts=6.0, call_id="c1", queue="sales", agent="1001", wait=5.0))
    sink(QueueLeft(ts=66.0, call_id="c1", queue="sales", reason="transfer", agent="1001",
                   wait=5.0, talk=60.0, detail="2002"))
    sink(AcdWatchdog(ts=70.0, call_id="c2", queue="", agent="1002", what="ringing",
                     stuck_for=61.25))
    sink(AgentStateChanged(ts=75.0, agent="1001", old="wrap_up", new="paused", reason="12"))
    sink(RegistrationChanged(ts=80.0, user="1001", contact="sip:1001@10.0.0.1", registered=True,
                             source="udp:10.0.0.1:5060", expires=300, user_agent="baresip"))
    sink(RegistrationChanged(ts=90.0, user="1001", contact="sip:1001@10.0.0.1",
                             registered=False, source="udp:10.0.0.1:5060"))
    sink(RegistrationChanged(user="1001", contact="sip:1001@10.0.0.1", registered=False,
                             expired=True))  # the registrar's timer: not a REGISTER
    log = store.queue_log()
    assert [(r["event"], r["agent"], r["position"], r["wait"], r["talk"], r["detail"])
            for r in log] == [
        ("enter", None, 2, None, None, ""), ("connect", "1001", None, 5.0, None, ""),
        ("transfer", "1001", None, 5.0, 60.0, "2002"),
        ("watchdog", "1002", None, None, None, "ringing 61.2s"),
    ]
    assert [(r["ts"], r["old"], r["new"], r["reason"]) for r in store.agent_states()] == [
        (75.0, "wrap_up", "paused", "12")]
    assert [(r["ts"], r["expires"], r["user_agent"]) for r in store.registrations()] == [
        (90.0, 0, None), (80.0, 300, "baresip")]


class _Runner:
    """What :meth:`Events.attach_acd` uses of a QueueRunner."""

    engine = object()

    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def wall_time(self, t: float) -> float:
        return 1000.0 + t

    def call_id_of(self, engine_call: str) -> str:
        return engine_call.partition("/")[0]

    def queue_of(self, engine_call: str) -> str:
        return "sales"

    def queue_stats(self, queue: str | None = None) -> list[dict[str, Any]]:
        return [{"name": "sales", "waiting": 0}]

    def agent_stats(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        return [{"id": "1001", "state": "available"}]


def test_acd_actions_reach_the_store_as_the_direct_writes_did() -> None:
    """Every queue log verb through the bus gives the row ``Store.log_queue`` gave directly."""
    entries = [
        act.QueueLogEntry(1.0, "sales", "c1/1", act.QueueEvent.ENTER, position=1),
        act.QueueLogEntry(2.0, "sales", "c1/1", act.QueueEvent.RING_NO_ANSWER, agent="1002",
                          detail="no_answer"),
        act.QueueLogEntry(3.0, "sales", "c1/1", act.QueueEvent.CONNECT, agent="1001",
                          wait=2.00049),
        act.QueueLogEntry(9.0, "sales", "c1/1", act.QueueEvent.COMPLETE, agent="1001",
                          wait=2.0, talk=6.1234, hung_up_by="agent"),
        *[act.QueueLogEntry(10.0 + i, "sales", f"c{i + 2}/1", verb, position=3, wait=4.5,
                            detail="overflow:support" if verb.value == "timeout" else "")
          for i, verb in enumerate([act.QueueEvent.ABANDON, act.QueueEvent.TIMEOUT,
                                    act.QueueEvent.EXIT_EMPTY, act.QueueEvent.CALLBACK])],
        act.QueueLogEntry(20.0, "sales", "c9/1", act.QueueEvent.TRANSFER, agent="1001",
                          wait=1.0, talk=2.0, detail="2002"),
    ]
    direct = Store(":memory:")
    runner = _Runner()
    for e in entries:
        direct.log_queue(ts=runner.wall_time(e.time), queue=e.queue, call_id=runner.call_id_of(e.call),
                         event=e.event.value, agent=e.agent, position=e.position, wait=e.wait,
                         talk=e.talk, hung_up_by=e.hung_up_by, detail=e.detail)
    direct.log_queue(ts=1030.0, queue="sales", call_id="c1", event="watchdog", agent="1001",
                     detail="on_call 7201.0s")
    direct.log_agent_state(ts=1031.0, agent="1001", old="on_call", new="available",
                           reason="watchdog")

    store = Store(":memory:")
    events = Events(store=store)
    events.attach_acd(runner)  # type: ignore[arg-type]
    (listener,) = runner.listeners
    for e in entries:
        listener(e)
    listener(act.WatchdogFired(30.0, "1001", "c1/1", "on_call", 7201.0))
    listener(act.AgentStateChanged(31.0, "1001", AgentState.ON_CALL, AgentState.AVAILABLE,
                                   "watchdog"))
    listener(act.RingAgent("1001", "c1/1", "sales", 15.0))  # not a row

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "id"} for r in rows]

    assert strip(store.queue_log()) == strip(direct.queue_log())
    assert strip(store.agent_states()) == strip(direct.agent_states())


def _mqtt_events(events: Events) -> list[dict[str, Any]]:
    assert events.mqtt is not None
    return [json.loads(payload) for topic, payload, _ in events.mqtt.backlog
            if topic == "callcenter/events"]


def test_store_mqtt_and_web_see_the_same_events_store_first() -> None:
    store = Store(":memory:")
    cfg = EventsConfig(mqtt=MqttConfig(url="mqtt://127.0.0.1:1"))  # never started: backlog
    events = Events(cfg, store=store)
    client: asyncio.Queue[Event] = events.stream.open()
    seen_rows: list[int] = []

    def later_subscriber(event: Event) -> None:  # the row is there before anyone else hears
        seen_rows.append(len(store.db.execute("SELECT 1 FROM calls").fetchall()))

    events.subscribe(later_subscriber)
    published: list[Event] = [
        _started(),
        CallAnswered(ts=101.0, call_id="c1"),
        IvrStep(ts=102.0, call_id="c1", step="ivr_node", data={"node": "welcome"}),
        Dtmf(ts=103.0, call_id="c1", digit="1", digits="1"),
        QueueEntered(ts=104.0, call_id="c1", queue="sales", position=1),
        AgentStateChanged(ts=105.0, agent="1001", old="available", new="ringing"),
        QueueConnected(ts=106.0, call_id="c1", queue="sales", agent="1001", wait=2.0),
        CallAnswered(ts=106.0, call_id="c1", agent="1001"),
        SupervisorStep(ts=107.0, call_id="c1", step="supervisor_joined", session="s1",
                       supervisor="2001", agent="1001", mode="whisper"),
        QueueLeft(ts=120.0, call_id="c1", queue="sales", reason="complete", agent="1001",
                  wait=2.0, talk=14.0, hung_up_by="caller"),
        RegistrationChanged(ts=121.0, user="1001", contact="sip:1001@h", registered=True,
                            source="udp:h:5060", expires=60),
        CallEnded(ts=122.0, call_id="c1", cause="normal_clearing", side="caller", digits="1",
                  sip_status=200, duration=22.0),
    ]
    for event in published:
        events.publish(event)

    web = [client.get_nowait().to_dict() for _ in range(client.qsize())]
    mqtt = _mqtt_events(events)
    assert web == mqtt == [e.to_dict() for e in published]
    assert seen_rows[0] == 1
    # and the store wrote what those same events say
    (cdr,) = _rows(store, "SELECT * FROM calls")
    assert (cdr["start"], cdr["answer"], cdr["end"], cdr["digits"]) == (100.0, 101.0, 122.0, "1")
    types = [e["type"] for e in store.call_events("c1")]
    assert types == ["ivr_node", "dtmf", "connected", "supervisor_joined"]
    assert [r["event"] for r in store.queue_log(call_id="c1")] == ["enter", "connect",
                                                                  "complete"]
    assert [r["new"] for r in store.agent_states()] == ["ringing"]
    assert len(store.registrations()) == 1
