"""SQLite store: CDR round trip, events, registrations, WAL, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.store import CallRecord, Store
from callcenter.store.db import MIGRATIONS


def record(call_id: str = "c1", start: float = 1000.0) -> CallRecord:
    return CallRecord(
        id=call_id,
        sip_call_id=f"{call_id}@192.0.2.1",
        direction="inbound",
        caller="48600111222",
        called="0800123456",
        source="trunk:pstn",
        start=start,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "var" / "callcenter.db")
    yield s
    s.close()


def test_creates_parent_dir_wal_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "var" / "cc.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"calls", "call_events", "registrations", "schema_migrations"} <= tables


def test_cdr_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    s = Store(path)
    s.start_call(record())
    s.update_call("c1", answer=1002.5, digits="12", codec="PCMU", line="0800123456")
    s.finish_call(
        "c1", end=1030.0, hangup_cause="normal_clearing", hangup_side="caller", sip_status=200
    )
    s.close()
    # Another process (any SQLite tool) sees the committed row.
    row = (
        sqlite3.connect(path)
        .execute(
            'SELECT caller, "end", duration, billsec, hangup_cause FROM calls WHERE id = ?', ("c1",)
        )
        .fetchone()
    )
    assert row == ("48600111222", 1030.0, 30.0, 27.5, "normal_clearing")
    again = Store(path)
    got = again.get_call("c1")
    assert got is not None
    assert (got.answer, got.digits, got.codec, got.sip_status) == (1002.5, "12", "PCMU", 200)
    assert got.hangup_side == "caller" and got.line == "0800123456"
    again.close()


def test_record_is_visible_from_call_start(store: Store) -> None:
    store.start_call(record())
    got = store.get_call("c1")
    assert got == record()  # nothing lost if we crash now
    assert got is not None and got.end is None


def test_unanswered_call_has_zero_billsec(store: Store) -> None:
    store.start_call(record())
    store.finish_call(
        "c1", end=1010.0, hangup_cause="no_answer", hangup_side="system", sip_status=480
    )
    got = store.get_call("c1")
    assert got is not None and (got.duration, got.billsec, got.sip_status) == (10.0, 0.0, 480)


def test_finish_call_is_one_update_computed_by_sqlite(store: Store) -> None:
    """duration/billsec come from the stored start/answer in the UPDATE itself: no SELECT."""
    store.start_call(record("c1", start=1000.0))
    store.update_call("c1", answer=1001.25)
    store.start_call(record("c2", start=2000.0))
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    store.finish_call(
        "c1",
        end=1010.5004,
        hangup_cause="normal_clearing",
        hangup_side="callee",
        sip_status=200,
        digits="19",
    )
    store.finish_call(  # an answer given at the end wins over the stored one
        "c2", end=2030.0, hangup_cause="normal_clearing", hangup_side="caller", answer=2020.0
    )
    store.db.conn.set_trace_callback(None)
    queries = [q for q in statements if q.split()[0].upper() not in ("BEGIN", "COMMIT")]
    assert len(queries) == 2 and all(q.startswith("UPDATE calls") for q in queries)
    c1, c2 = store.get_call("c1"), store.get_call("c2")
    assert c1 is not None and c2 is not None
    assert (c1.end, c1.duration, c1.billsec) == (1010.5004, 10.5, 9.25)
    assert (c1.hangup_side, c1.sip_status, c1.digits, c1.answer) == ("callee", 200, "19", 1001.25)
    assert (c2.answer, c2.duration, c2.billsec, c2.sip_status) == (2020.0, 30.0, 10.0, None)


def test_finish_call_clock_step_and_errors(store: Store) -> None:
    store.start_call(record("c1", start=1000.0))
    store.update_call("c1", answer=1005.0)
    # The wall clock stepped back: never a negative duration or billsec.
    store.finish_call("c1", end=999.0, hangup_cause="failed", hangup_side="system")
    got = store.get_call("c1")
    assert got is not None and (got.duration, got.billsec) == (0.0, 0.0)
    with pytest.raises(KeyError):
        store.finish_call("nope", end=1.0, hangup_cause="failed", hangup_side="system")
    with pytest.raises(TypeError, match="billsec"):
        store.finish_call("c1", end=1.0, hangup_cause="x", hangup_side="system", billsec=3.0)
    with pytest.raises(TypeError, match="bogus"):
        store.finish_call("c1", end=1.0, hangup_cause="x", hangup_side="system", bogus=1)
    again = store.get_call("c1")
    assert again is not None and again.end == 999.0 and again.hangup_cause == "failed"


def test_start_call_stores_every_field_and_rejects_duplicates(store: Store) -> None:
    full = CallRecord(
        id="c9",
        sip_call_id="x@y",
        direction="internal",
        caller="1001",
        called="1002",
        source="user:1001",
        start=5.5,
        line="1002",
        answer=6.0,
        end=9.0,
        duration=3.5,
        billsec=3.0,
        hangup_cause="normal_clearing",
        hangup_side="caller",
        sip_status=200,
        digits="*",
        codec="PCMA",
        recording="/tmp/r.wav",
    )
    store.start_call(full)
    assert store.get_call("c9") == full
    with pytest.raises(sqlite3.IntegrityError):
        store.start_call(full)


def test_update_rejects_unknown_calls_and_fields(store: Store) -> None:
    store.start_call(record())
    with pytest.raises(KeyError):
        store.update_call("nope", answer=1.0)
    with pytest.raises(TypeError, match="bogus"):
        store.update_call("c1", bogus=1)
    with pytest.raises(TypeError, match="id"):
        store.update_call("c1", id="other")


def test_recent_calls_newest_first(store: Store) -> None:
    for i in range(5):
        store.start_call(record(f"c{i}", start=1000.0 + i))
    assert [c.id for c in store.recent_calls(3)] == ["c4", "c3", "c2"]
    assert store.get_call("missing") is None


def test_call_events_keep_order_and_json(store: Store) -> None:
    store.start_call(record())
    store.add_call_event("c1", 1000.1, "ivr.prompt", {"prompt": "welcome", "lang": "pl"})
    store.add_call_event("c1", 1000.1, "dtmf", {"digit": "1", "via": "rfc4733"})
    store.add_call_event("c1", 1003.0, "hangup", {"cause": "normal_clearing", "ł": "ó"})
    store.add_call_event("other", 999.0, "x", {})
    events = store.call_events("c1")
    assert [e["type"] for e in events] == ["ivr.prompt", "dtmf", "hangup"]
    assert events[1]["data"] == {"digit": "1", "via": "rfc4733"}
    assert events[2]["data"]["ł"] == "ó"


def test_registration_log(store: Store) -> None:
    store.log_registration(
        ts=1.0,
        user="1001",
        contact="<sip:1001@192.0.2.5:5062>",
        source="udp:192.0.2.5:5062",
        expires=600,
        user_agent="baresip",
    )
    store.log_registration(
        ts=2.0,
        user="1001",
        contact="<sip:1001@192.0.2.5:5062>",
        source="udp:192.0.2.5:5062",
        expires=0,
    )
    store.log_registration(
        ts=3.0, user="1002", contact="*", source="tcp:192.0.2.6:40000", expires=0
    )
    rows = store.registrations("1001")
    assert [(r["ts"], r["expires"]) for r in rows] == [(2.0, 0), (1.0, 600)]
    assert rows[1]["user_agent"] == "baresip"
    assert len(store.registrations()) == 3


def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    first = Store(path)
    assert first.schema_version == len(MIGRATIONS)
    first.start_call(record())
    first.close()
    second = Store(path)  # reopening does not re-create or wipe anything
    assert second.schema_version == len(MIGRATIONS)
    assert second.get_call("c1") is not None
    rows = second.db.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert rows[0] == len(MIGRATIONS)
    second.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        Store(path)


def test_in_memory_store() -> None:
    s = Store(":memory:")
    s.start_call(record())
    assert s.recent_calls(1)[0].id == "c1"


def test_rtp_quality_columns_added_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    old = sqlite3.connect(path)  # a database of the previous schema, with one finished call
    old.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
    )
    for version, sql in enumerate(MIGRATIONS[:2], 1):
        old.executescript(sql)
        old.execute("INSERT INTO schema_migrations VALUES (?, 0)", (version,))
    old.execute(
        "INSERT INTO calls (id, sip_call_id, direction, caller, called, source, start) "
        "VALUES ('old', 'x', 'inbound', '1', '2', 'trunk:pstn', 1.0)"
    )
    old.commit()
    old.close()
    s = Store(path)
    got = s.get_call("old")
    assert got is not None and (got.rtp_lost_pct, got.rtp_jitter_ms) == (None, None)
    s.start_call(record())
    s.finish_call("c1", end=1030.0, hangup_cause="normal_clearing", hangup_side="caller",
                  rtp_lost_pct=1.25, rtp_jitter_ms=3.5)
    got = s.get_call("c1")
    assert got is not None and (got.rtp_lost_pct, got.rtp_jitter_ms) == (1.25, 3.5)
    s.close()


def test_checkpoints_run_off_the_loop_thread(tmp_path: Path) -> None:
    """The loop's connection never checkpoints (no fsync on the loop); the store's own thread
    copies the WAL into the database."""
    store = Store(tmp_path / "cc.db")
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert store.checkpointer is not None and store.checkpointer.is_alive()
        for i in range(50):
            store.start_call(CallRecord(id=f"c{i}", sip_call_id=f"s{i}", direction="inbound",
                                        caller="1", called="2", source="trunk:pstn", start=1.0))
        conn = sqlite3.connect(tmp_path / "cc.db")
        try:
            assert store.checkpointer.checkpoint(conn) > 0  # frames copied by another thread
        finally:
            conn.close()
    finally:
        store.close()
    assert not store.checkpointer.is_alive()


def test_batched_call_records_are_committed_and_never_lost(tmp_path: Path) -> None:
    """With ``commit_within`` a CDR's updates and events wait for one commit (at most the
    delay later); the insert is committed at once; a failed transaction of other code on the
    connection rolls back only itself; close commits what is left."""
    path = tmp_path / "cc.db"

    def seen(sql: str) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()

    async def run() -> None:
        store = Store(path)
        store.commit_within(0.05)
        store.start_call(record())
        assert seen("SELECT count(*) FROM calls") == 1  # a crash now keeps the call
        store.add_call_event("c1", 1.0, "ivr_node", {"node": "menu"})
        store.update_call("c1", answer=1002.0)
        with pytest.raises(sqlite3.IntegrityError), store.db.conn:
            store.db.conn.execute("INSERT INTO calls (id) VALUES ('c1')")  # duplicate: rollback
        for _ in range(200):  # bounded wait for the batch's commit
            if seen("SELECT count(*) FROM call_events") == 1:
                break
            await asyncio.sleep(0.05)
        assert seen("SELECT count(*) FROM call_events WHERE type = 'ivr_node'") == 1
        assert seen("SELECT answer FROM calls") == 1002
        store.finish_call("c1", end=1030.0, hangup_cause="normal_clearing", hangup_side="caller")
        store.close()

    asyncio.run(run())
    assert seen('SELECT "end" FROM calls') == 1030
