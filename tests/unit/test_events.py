"""The event bus, MQTT topic mapping and backlog, the report figures and the PNG encoder."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from datetime import date

import numpy as np

from callcenter.events.bus import (
    EVENT_TYPES,
    AgentStatus,
    CallbackEvent,
    CallbackResult,
    CallStarted,
    Dtmf,
    EventBus,
    QueueStatus,
    _event_classes,
)
from callcenter.events.mqtt import MqttSink, parse_url, topics_for
from callcenter.report import stats
from callcenter.report.png import bar_chart, encode_png
from callcenter.store.db import Store


def test_payload_has_schema_type_and_fields() -> None:
    e = CallStarted(call_id="c1", caller="48", called="0800", source="trunk:pstn",
                    direction="inbound", ts=5.0)
    assert e.to_dict() == {"schema": 1, "type": "call.started", "ts": 5.0, "call_id": "c1",
                           "caller": "48", "called": "0800", "source": "trunk:pstn",
                           "direction": "inbound", "line": None, "sip_call_id": "",
                           "codec": None}


def test_every_event_class_is_listed_once_by_its_type() -> None:
    named = [c for c in _event_classes() if c is not CallbackEvent]
    assert sorted(EVENT_TYPES) == sorted(c.type for c in named)  # each type names one class
    assert EVENT_TYPES["callback.result"] is CallbackResult and "callback" not in EVENT_TYPES


def test_bus_survives_a_failing_handler() -> None:
    bus, seen = EventBus(), []

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    unsubscribe = bus.subscribe(seen.append)
    bus.publish(Dtmf(call_id="c1", digit="1"))
    unsubscribe()
    bus.publish(Dtmf(call_id="c1", digit="2"))
    assert [e.digit for e in seen] == ["1"] and bus.handler_errors == 2


def test_topics_and_urls() -> None:
    assert topics_for(Dtmf(call_id="c1", digit="1")) == [
        ("callcenter/events", False), ("callcenter/calls/c1", False)]
    assert ("cc/queues/sales", True) in topics_for(QueueStatus(queue="sales"), "cc")
    assert ("callcenter/agents/1001", True) in topics_for(AgentStatus(agent="1001"))
    u = parse_url("mqtts://bob:s%40cret@broker.example")
    assert (u.host, u.port, u.tls, u.username, u.password) == (
        "broker.example", 8883, True, "bob", "s@cret")
    assert parse_url("mqtt://127.0.0.1").port == 1883


def test_backlog_drops_oldest_and_counts() -> None:
    sink = MqttSink("mqtt://127.0.0.1:1", backlog=3)
    for digit in "12345":
        sink.handle(Dtmf(call_id="c", digit=digit))  # two messages each
    assert len(sink.backlog) == 3 and sink.dropped == 7
    assert b'"digit": "5"' in sink.backlog[-1][1]


def test_report_figures_from_the_store() -> None:
    store = Store(":memory:")
    local = stats.LocalTime.zone("Europe/Warsaw")
    t0, _ = local.day_range(date(2026, 11, 23), date(2026, 11, 23))
    at = t0 + 10 * 3600
    for i, (wait, answered) in enumerate([(5.0, True), (30.0, True), (12.0, False)]):
        store.log_queue(ts=at + i, queue="sales", call_id=f"c{i}", event="enter", position=1)
        if answered:
            store.log_queue(ts=at + i + wait, queue="sales", call_id=f"c{i}", event="connect",
                            agent="1001", wait=wait)
            store.log_queue(ts=at + i + wait + 60, queue="sales", call_id=f"c{i}",
                            event="complete", agent="1001", talk=60.0)
        else:
            store.log_queue(ts=at + i + wait, queue="sales", call_id=f"c{i}", event="abandon",
                            wait=wait)
    store.log_agent_state(ts=at, agent="1001", old="logged_out", new="available")
    store.log_agent_state(ts=at + 5, agent="1001", old="available", new="on_call")
    store.log_agent_state(ts=at + 65, agent="1001", old="on_call", new="wrap_up")
    store.log_agent_state(ts=at + 75, agent="1001", old="wrap_up", new="paused", reason="12")
    store.log_agent_state(ts=at + 135, agent="1001", old="paused", new="logged_out")
    con: sqlite3.Connection = store.db.conn
    rows = stats.queue_intervals(con, t0, t0 + 86400, local=local, minutes=60,
                                 sl_seconds={"sales": 20})
    assert len(rows) == 1
    r = rows[0]
    assert (r["offered"], r["answered"], r["abandoned"]) == (3, 2, 1)
    assert r["service_level"] == 1 / 3 and r["asa"] == 17.5 and r["aht"] == 70.0
    (agent,) = stats.agent_summary(con, t0, t0 + 86400)
    assert (agent["calls"], agent["talk"], agent["wrap_up"]) == (2, 120.0, 10.0)
    assert (agent["queue_calls"], agent["queue_talk"]) == (2, 120.0)
    assert agent["pause_by_reason"] == {"12": 60.0}
    assert agent["occupancy"] == 70 / 75
    assert stats.dialer_results(con, t0, t0 + 86400) == []


def test_png_is_valid() -> None:
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[1, 2] = (255, 0, 0)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length = struct.unpack(">I", data[8:12])[0]
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h, length) == (3, 2, 13)
    idat = data.index(b"IDAT")
    raw = zlib.decompress(data[idat + 4:idat + 4 + struct.unpack(">I", data[idat - 4:idat])[0]])
    assert raw[-3:] == b"\xff\x00\x00" and len(raw) == 2 * (3 * 3 + 1)
    chart = bar_chart(["10:00", "10:15"], [("offered", [3, 5])], ("SL", [0.5, None]), title="T")
    assert chart.startswith(b"\x89PNG") and len(chart) > 1000
