"""Campaign store and CSV importer: the contact/attempt state machine, recovery, DNC."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
import sqlite_utils

from callcenter.config import Campaign, CampaignRetry
from callcenter.dialer.campaigns import (
    CampaignStore,
    after_outcome,
    calling_window,
    retry_policy,
)
from callcenter.dialer.compliance import REDIAL_BLOCK_SECONDS
from callcenter.dialer.importer import ImportReport, import_csv, parse_contacts

CAMPAIGN = Campaign(
    name="t", queue="sales",
    retries={"busy": CampaignRetry(max=1, delay=60), "no-answer": CampaignRetry(max=0),
             "machine": CampaignRetry(max=0), "abandoned": CampaignRetry(max=1, delay=10),
             "failed": CampaignRetry(max=1, delay=300)},
)
POLICY = retry_policy(CAMPAIGN)


@pytest.fixture
def store() -> CampaignStore:
    s = CampaignStore(sqlite_utils.Database(memory=True))
    s.upsert_contacts("t", [{"number": "+48221234567", "name": "Jan", "fields": {"a": "1"}}])
    return s


def contact(store: CampaignStore) -> dict:
    return store.contacts("t")[0]


def test_after_outcome_rules() -> None:
    assert after_outcome("answered", {}, POLICY, 0).state == "done"
    busy = after_outcome("busy", {}, POLICY, 100)
    assert (busy.state, busy.next_at, busy.retries) == ("retry_at", 160, {"busy": 1})
    again = after_outcome("busy", busy.retries, POLICY, 200)
    assert (again.state, again.disposition) == ("done", "busy")
    assert after_outcome("no-answer", {}, POLICY, 0).disposition == "no-answer"
    # abandoned: never back before 72 hours, whatever the configured delay
    ab = after_outcome("abandoned", {}, POLICY, 0)
    assert ab.state == "retry_at" and ab.next_at == REDIAL_BLOCK_SECONDS
    # interrupted uses the failed rule, later, not at once
    cut = after_outcome("interrupted", {}, POLICY, 1000)
    assert (cut.state, cut.next_at, cut.retries) == ("retry_at", 1300, {"failed": 1})


def test_attempt_lifecycle(store: CampaignStore) -> None:
    c = contact(store)
    assert c["state"] == "new"
    assert store.due("t", 0, 10)[0]["id"] == c["id"]
    a = store.begin_attempt(c, 50)
    assert contact(store)["state"] == "dialing"
    assert store.due("t", 50, 10) == []  # a contact being dialled is never picked again
    with pytest.raises(ValueError):
        store.begin_attempt(c, 51)  # no second dial while the first is open
    store.set_call_ids(a, "first@host", "call1", "pstn")
    store.set_call_ids(a, "abc@host", "call1", "second")  # failed over: the carrier's
    move = store.finish_attempt(a, "busy", POLICY, 100, sip_status=486)
    c = contact(store)
    assert (c["state"], c["next_at"], c["attempts"]) == ("retry_at", 160, 1)
    assert store.due("t", 159, 10) == [] and len(store.due("t", 160, 10)) == 1
    row = store.attempt(a)
    assert row is not None
    assert (row["state"], row["outcome"], row["sip_status"], row["sip_call_id"],
            row["trunk"]) == ("done", "busy", 486, "abc@host", "second")
    assert move.state == "retry_at"
    b = store.begin_attempt(store.due("t", 160, 10)[0], 160)
    store.finish_attempt(b, "busy", POLICY, 170)
    assert (contact(store)["state"], contact(store)["disposition"]) == ("done", "busy")
    assert store.progress("t")["outcomes"]["busy"] == 2


def test_recover_interrupted(store: CampaignStore) -> None:
    a = store.begin_attempt(contact(store), 10)
    assert store.recover(CAMPAIGN, 1000) == [a]
    row = store.attempt(a)
    assert row is not None and (row["state"], row["outcome"]) == ("done", "interrupted")
    c = contact(store)
    assert (c["state"], c["next_at"]) == ("retry_at", 1300)  # never redialled at once
    assert store.recover(CAMPAIGN, 2000) == []


def test_dispositions_and_dnc(store: CampaignStore) -> None:
    a = store.begin_attempt(contact(store), 10)
    store.update_attempt(a, agent="1001")
    store.finish_attempt(a, "answered", POLICY, 20)
    assert store.last_attempt_of_agent("1001", 0)["id"] == a  # type: ignore[index]
    c = store.dispose(a, "3", "callback", final=False, dnc=False, retry=600, now=30)
    assert (c["state"], c["next_at"], c["disposition"]) == ("retry_at", 630, "callback")
    c = store.dispose(a, "9", "do-not-call", final=True, dnc=True, retry=0, now=40)
    assert c["state"] == "dnc"
    assert store.is_dnc("+48221234567", "t") and not store.is_dnc("+48221234567", "other")
    store.add_dnc("+48600100200")
    assert store.is_dnc("+48600100200", "any")
    assert store.attempt(a)["disposition"] == "do-not-call"  # type: ignore[index]


def test_person_answers_feed_the_ledger(store: CampaignStore) -> None:
    a = store.begin_attempt(contact(store), 10)
    store.finish_attempt(a, "abandoned", POLICY, 20, answered=15)
    assert store.person_answers("t", 0) == [(15.0, True, "+48221234567")]


def test_calling_window_from_config() -> None:
    c = Campaign(name="w", queue="q", hours={"mon-fri": "09:00-12:00, 13:00-20:00",
                                             "sat": "10:00-14:00"},
                 holidays=[dt.date(2026, 12, 24)])
    w = calling_window(c)
    warsaw = dt.timezone(dt.timedelta(hours=1))
    at = lambda d, h, m=0: dt.datetime(2026, 11, d, h, m, tzinfo=warsaw)  # noqa: E731
    assert w.may_call("Europe/Warsaw", at(23, 10))  # Monday
    assert not w.may_call("Europe/Warsaw", at(23, 12, 30))
    assert not w.may_call("Europe/Warsaw", at(23, 8, 59))
    assert w.may_call("Europe/Warsaw", at(28, 11))  # Saturday
    assert not w.may_call("Europe/Warsaw", at(29, 11))  # Sunday
    assert not w.may_call("America/Los_Angeles", at(23, 10))  # 01:00 there
    xmas = dt.datetime(2026, 12, 24, 10, tzinfo=warsaw)
    assert not w.may_call("Europe/Warsaw", xmas)


def test_parse_contacts_normalises_merges_and_rejects() -> None:
    text = ("Phone,Name,Plan,TZ\n"
            "22 123 45 67,Jan,gold,\n"
            "+48 22 123-45-67,,silver,\n"  # duplicate of row 1: merged, first value wins
            "0048600100200,Ewa,,Europe/Berlin\n"
            "abc,Bad,,\n"
            "600100,Short,,\n"
            "500600700,Zoned,,Mars/Olympus\n")
    report = ImportReport()
    contacts = list(parse_contacts(text, report))
    assert [c["number"] for c in contacts] == ["+48221234567", "+48600100200"]
    assert contacts[0]["fields"] == {"Plan": "gold"} and contacts[0]["name"] == "Jan"
    assert contacts[1]["timezone"] == "Europe/Berlin"
    assert report.rows == 6 and report.duplicates == 1
    assert [(line, why.split(":")[0]) for line, _, why in report.rejected] == [
        (5, "invalid number"), (6, "invalid number"), (7, "unknown time zone 'Mars/Olympus'")]


def test_parse_contacts_foreign_numbers_checked_by_their_plan() -> None:
    text = "number\n+1 212 555 1234\n+44 20 7946 0018\n+1 212 155 1234\n+44 20 7946 001\n"
    report = ImportReport()
    assert [c["number"] for c in parse_contacts(text, report)] == ["+12125551234",
                                                                     "+442079460018"]
    assert [(line, why) for line, _, why in report.rejected] == [
        (4, "invalid number: not a valid US number"),
        (5, "invalid number: a GB number has 10 digits after +44, got 9")]


def test_parse_contacts_semicolons_and_no_number_column() -> None:
    report = ImportReport()
    got = list(parse_contacts("telefon;firma\n600100200;ACME\n", report))
    assert got[0]["fields"] == {"firma": "ACME"}
    with pytest.raises(ValueError, match="no number column"):
        list(parse_contacts("name;city\nJan;Kraków\n", ImportReport()))


def test_import_csv_merges_with_existing(tmp_path: Path, store: CampaignStore) -> None:
    path = tmp_path / "l.csv"
    path.write_text("\ufeffnumber,name,city\n221234567,,Kraków\n600100200,Ewa,\n",
                    encoding="utf-8")
    progress = io.StringIO()
    report = import_csv(store, "t", path, progress=progress)
    assert (report.added, report.merged) == (1, 1)
    assert "2/2 contacts" in progress.getvalue()
    jan = next(c for c in store.contacts("t") if c["number"] == "+48221234567")
    assert jan["name"] == "Jan" and json.loads(jan["fields"]) == {"a": "1", "city": "Kraków"}
    assert "0 merged into existing" not in report.text()
