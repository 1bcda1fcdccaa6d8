"""Agent-scheduled callbacks (issue 5): the pure rules, the store, the ACD's in-use flag, and
the recording column."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from acd import actions as act
from callcenter.calls.queues import QueueRunner
from callcenter.config import Campaign, CampaignRetry, Config, Queue, User
from callcenter.dialer.callbacks import (
    Callback,
    CallbackError,
    callback_time,
    owner_lapsed,
    pick_callbacks,
    plan_callback,
    resolve_owner,
)
from callcenter.dialer.campaigns import CampaignStore, retry_policy

WARSAW = ZoneInfo("Europe/Warsaw")
LOCAL_NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=WARSAW)  # the server's clock
WALL = 1_000_000.0  # unix time at LOCAL_NOW (a shifted clock: not LOCAL_NOW's own epoch)
AGENTS = {"1001", "1002"}
CAMPAIGN = Campaign(
    name="t", queue="sales",
    retries={"busy": CampaignRetry(max=1, delay=60), "no-answer": CampaignRetry(max=0),
             "machine": CampaignRetry(max=0), "abandoned": CampaignRetry(max=0),
             "failed": CampaignRetry(max=1, delay=300)},
)
POLICY = retry_policy(CAMPAIGN)


def at(value: object) -> float:
    return callback_time(value, wall=WALL, local_now=LOCAL_NOW, tz="Europe/Warsaw")


def test_callback_time_forms() -> None:
    assert at(1234.5) == 1234.5 and at(99) == 99.0 and at("1700000000") == 1_700_000_000.0
    assert at("2026-11-23T15:30") == WALL + 5.5 * 3600  # local time in the campaign's zone
    assert at("2026-11-23T15:30:00+01:00") == WALL + 5.5 * 3600
    assert at("2026-11-23T14:30Z") == WALL + 5.5 * 3600  # 15:30 in Warsaw (CET)
    assert at("2026-11-23T09:00") == WALL - 3600  # in the past: due at once
    for bad in ("tomorrow", "", True, None, [1]):
        with pytest.raises(CallbackError):
            at(bad)


def test_resolve_owner() -> None:
    assert resolve_owner("same", took="1001", agents=AGENTS) == "1001"
    assert resolve_owner("anyone", took="1001", agents=AGENTS) is None
    assert resolve_owner(None, took="1001", agents=AGENTS) is None
    assert resolve_owner("1002", took="1001", agents=AGENTS) == "1002"
    assert resolve_owner(1002, took=None, agents=AGENTS) == "1002"
    with pytest.raises(CallbackError, match="no agent"):
        resolve_owner("same", took=None, agents=AGENTS)
    with pytest.raises(CallbackError, match="unknown agent"):
        resolve_owner("9999", took="1001", agents=AGENTS)


def plan(callback_at: object = None, callback_to: object = None, *, default_to: str = "anyone",
         final: bool = False, took: str | None = "1001") -> Callback | None:
    return plan_callback(callback_at, callback_to, default_to=default_to, retry=3600,
                         final=final, took=took, agents=AGENTS, wall=WALL, local_now=LOCAL_NOW,
                         tz="Europe/Warsaw")


def test_plan_callback() -> None:
    assert plan() is None  # the disposition's plain retry
    assert plan("2026-11-23T12:00") == Callback(WALL + 7200, None)
    assert plan("2026-11-23T12:00", "same") == Callback(WALL + 7200, "1001")
    assert plan(None, "1002") == Callback(WALL + 3600, "1002")  # retry delay, for 1002
    assert plan(default_to="same") == Callback(WALL + 3600, "1001")  # e.g. *53
    assert plan(None, "anyone", default_to="same") is None
    assert plan(final=True) is None
    with pytest.raises(CallbackError, match="final"):
        plan(WALL + 60, final=True)


def test_pick_callbacks_one_per_free_owner_and_grace() -> None:
    due = [{"id": 1, "owner": "1001", "next_at": 100.0},
           {"id": 2, "owner": "1001", "next_at": 110.0},
           {"id": 3, "owner": "1002", "next_at": 120.0},
           {"id": 4, "owner": "1003", "next_at": 50.0}]
    pick = pick_callbacks(due, {"1001", "1004"}, now=200.0, grace=100.0)
    assert [(c["id"], a) for c, a in pick.dial] == [(1, "1001")]
    assert [c["id"] for c in pick.release] == [4]  # 1003 waited 150 s > 100
    late = pick_callbacks(due, set(), now=260.0, grace=100.0)
    assert [c["id"] for c in late.release] == [1, 2, 3, 4] and late.dial == []
    assert owner_lapsed(100.0, 200.0, 100.0) and not owner_lapsed(100.0, 199.9, 100.0)


@pytest.fixture
def store() -> CampaignStore:
    s = CampaignStore(sqlite_utils.Database(memory=True))
    s.upsert_contacts("t", [{"number": "+48221234567"}, {"number": "+48221234568"}])
    return s


def answered(store: CampaignStore, contact: dict, agent: str, now: float) -> int:
    attempt = store.begin_attempt(contact, now)
    store.finish_attempt(attempt, "answered", POLICY, now + 30, agent=agent)
    return attempt


def test_owned_callback_is_not_pooled_until_released(store: CampaignStore) -> None:
    first, second = store.contacts("t")
    attempt = answered(store, first, "1001", 1000.0)
    c = store.dispose(attempt, "3", "callback", final=False, dnc=False, retry=3600,
                      callback=Callback(2000.0, "1001"), now=1100.0)
    assert (c["state"], c["next_at"], c["owner"], c["callback_at"]) == \
        ("retry_at", 2000.0, "1001", 2000.0)
    assert [x["id"] for x in store.due("t", 5000.0, 10)] == [second["id"]]
    assert store.owned_due("t", 1999.0) == []
    assert [x["id"] for x in store.owned_due("t", 2000.0)] == [first["id"]]
    assert [(x["owner"], x["callback_at"]) for x in store.callbacks("t")] == [("1001", 2000.0)]
    assert store.release_owner(first["id"], 5600.0)
    assert not store.release_owner(first["id"], 5600.0)  # no owner any more
    assert store.owned_due("t", 9999.0) == []
    assert [x["id"] for x in store.due("t", 5600.0, 10)] == [first["id"], second["id"]]


def test_callback_owner_kept_on_retry_cleared_when_done(store: CampaignStore) -> None:
    first = store.contacts("t")[0]
    attempt = answered(store, first, "1001", 1000.0)
    store.dispose(attempt, "3", "callback", final=False, dnc=False, retry=3600,
                  callback=Callback(2000.0, "1001"), now=1100.0)
    busy = store.begin_attempt(store.contact(first["id"]), 2001.0)
    store.finish_attempt(busy, "busy", POLICY, 2010.0, agent="1001")
    c = store.contact(first["id"])
    assert (c["state"], c["next_at"], c["owner"]) == ("retry_at", 2070.0, "1001")
    again = store.begin_attempt(c, 2070.0)
    store.finish_attempt(again, "answered", POLICY, 2100.0, agent="1001",
                         recording="/rec/x.wav")
    c = store.contact(first["id"])
    assert (c["state"], c["owner"], c["callback_at"]) == ("done", None, None)
    assert store.attempt(again)["recording"] == "/rec/x.wav"
    assert [a["id"] for a in store.recent_attempts("t", first["id"])] == [again, busy, attempt]
    # a final disposition afterwards leaves no owner either
    store.dispose(again, "1", "sale", final=True, dnc=False, retry=0, now=2200.0)
    assert store.contact(first["id"])["owner"] is None


def test_plain_disposition_clears_an_old_callback(store: CampaignStore) -> None:
    first = store.contacts("t")[0]
    attempt = answered(store, first, "1001", 1000.0)
    store.dispose(attempt, "3", "callback", final=False, dnc=False, retry=3600,
                  callback=Callback(2000.0, "1001"), now=1100.0)
    c = store.dispose(attempt, "3", "callback", final=False, dnc=False, retry=3600, now=1200.0)
    assert (c["next_at"], c["owner"], c["callback_at"]) == (4800.0, None, None)


def test_migration_adds_owner_callback_and_recording(tmp_path: object) -> None:
    path = f"{tmp_path}/old.db"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, number TEXT NOT "
        "NULL, name TEXT NOT NULL DEFAULT '', timezone TEXT, fields TEXT NOT NULL DEFAULT '{}',"
        " state TEXT NOT NULL DEFAULT 'new', next_at REAL, attempts INTEGER NOT NULL DEFAULT 0,"
        " retries TEXT NOT NULL DEFAULT '{}', disposition TEXT, created REAL NOT NULL, updated "
        "REAL NOT NULL, UNIQUE (campaign, number));"
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, contact_id "
        "INTEGER NOT NULL, number TEXT NOT NULL, state TEXT NOT NULL, started REAL NOT NULL, "
        "answered REAL, ended REAL, outcome TEXT, sip_status INTEGER, sip_call_id TEXT, "
        "call_id TEXT, agent TEXT, disposition TEXT, amd TEXT, amd_confidence REAL);"
        "INSERT INTO contacts (campaign, number, created, updated) VALUES ('t', '+481', 0, 0);")
    con.commit()
    con.close()
    s = CampaignStore.open(path)
    assert s.contacts("t")[0]["owner"] is None
    assert [c["number"] for c in s.due("t", 0.0, 10)] == ["+481"]
    cols = {r[1] for r in s.conn.execute("PRAGMA table_info(attempts)")}
    assert {"message_left", "recording"} <= cols


# ------------------------------------------------------------------ the ACD's in-use flag


class _NoPhones:
    def contacts(self, *args: object, **kw: object) -> list[object]:
        return []


def test_device_in_use_keeps_queue_calls_away() -> None:
    """A preview / callback call marks the agent's phone in use: the ACD rings the other
    agent; counted, so the flag clears only when the last such call ends."""
    cfg = Config(users=[User(user=u, password="x", role="agent") for u in ("1001", "1002")],
                 queues=[Queue(name="sales", members=["1001", "1002"])])

    async def run() -> list[act.RingAgent]:
        runner = QueueRunner(cfg=cfg, b2bua=None, registrar=_NoPhones(),  # type: ignore[arg-type]
                             prompts=None, now=lambda: 100.0)  # type: ignore[arg-type]
        runner.engine = runner._build()
        for agent in ("1001", "1002"):
            runner._since[agent] = 0.0
        rings: list[act.RingAgent] = []
        runner.listeners.append(lambda a: rings.append(a) if isinstance(a, act.RingAgent)
                                else None)
        runner._carry_out = lambda a: None  # type: ignore[method-assign] # no phones here
        runner.device_in_use("1001", True)
        runner.device_in_use("1001", True)
        runner.device_in_use("1001", False)
        assert runner.in_use("1001") and not runner.in_use("1002")
        assert [a["in_use"] for a in runner.agent_stats()] == [True, False]
        runner.device_in_use("nobody", True)  # not an agent: ignored
        from acd import events as ev
        for agent in ("1001", "1002"):
            runner._feed(ev.AgentRegistered(agent))
        runner._feed(ev.CallArrived(call="c1", queue="sales"))
        runner.device_in_use("1001", False)
        assert not runner.in_use("1001")
        if runner._timer is not None:
            runner._timer.cancel()
        return rings

    rings = asyncio.run(run())
    assert [(r.agent, r.call) for r in rings] == [("1002", "c1")]
