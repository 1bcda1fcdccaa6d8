"""The customer record: numbers in any format are one person, merge redirects, the timeline
joins calls, queue, IVR, callbacks, campaign attempts and notes, export and erase."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.dialer.campaigns import CampaignStore
from callcenter.dialer.numbers import try_normalize
from callcenter.store import CallRecord, Store
from callcenter.store.callbacks import CallbackStore
from callcenter.store.customers import CustomerConflict, CustomerError, CustomerStore
from callcenter.store.ivr import IvrStore
from ivr.engine import Customer

DAY = 86400.0


def e164(raw: str, country: str) -> str | None:
    return try_normalize(raw, country=country)[0]


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


@pytest.fixture
def customers(store: Store) -> CustomerStore:
    return CustomerStore(store.db, e164)


def call(store: Store, id: str, caller: str, start: float, **kw: object) -> None:
    store.start_call(CallRecord(id=id, sip_call_id=f"{id}@x", direction="inbound", caller=caller,
                                called="0800123456", source="trunk:pstn", start=start, **kw))


def test_every_format_of_a_number_is_one_customer(store: Store, customers: CustomerStore) -> None:
    for i, raw in enumerate(["0048 22 123 45 67", "+48221234567", "221234567", "48221234567"]):
        call(store, f"c{i}", raw, 1000.0 + i)
        assert customers.recognise(f"c{i}", raw, now=1000.0 + i) == (1, i == 0)
    assert customers.get(1)["numbers"] == ["+48221234567"]  # type: ignore[index]
    assert customers.by_number("22-123-45-67")["id"] == 1  # type: ignore[index]
    assert customers.recognise("c9", "anonymous", now=1.0) is None
    assert [i["call_id"] for i in customers.timeline(1)] == ["c3", "c2", "c1", "c0"]


def test_create_update_search_and_conflicts(customers: CustomerStore) -> None:
    id = customers.create(now=1.0, name="Anna Nowak", numbers=["+48221234567"],
                          emails=["Anna@Example.com"], crm_id="CRM-7", fields={"tier": "vip"})
    with pytest.raises(CustomerConflict):
        customers.create(now=2.0, numbers=["022 123 45 67"])
    with pytest.raises(CustomerError):
        customers.create(now=2.0, numbers=["12ab"])
    with pytest.raises(CustomerError):
        customers.update(id, now=2.0, fields={"x": [1]})
    customers.update(id, now=3.0, fields={"plan": "gold", "tier": None},
                     numbers=["+48221234567", "600 111 222"])
    got = customers.get(id)
    assert got is not None
    assert got["fields"] == {"plan": "gold"} and got["numbers"] == ["+48221234567", "+48600111222"]
    assert got["emails"] == ["anna@example.com"]
    for q in ("nowak", "EXAMPLE.com", "gold", "crm-7"):
        assert [c["id"] for c in customers.search(q)] == [id], q
    assert customers.search("100%") == []


def test_merge_joins_timelines_and_redirects(store: Store, customers: CustomerStore) -> None:
    call(store, "a1", "221234567", 100.0)
    call(store, "b1", "600111222", 200.0)
    a = customers.recognise("a1", "221234567", now=100.0)[0]  # type: ignore[index]
    b = customers.recognise("b1", "600111222", now=200.0)[0]  # type: ignore[index]
    customers.update(b, now=201.0, name="Jan", fields={"tier": "vip"}, emails=["j@x.pl"])
    customers.update(a, now=202.0, fields={"tier": "gold"})
    customers.add_note(b, text="prefers mornings", author="1001", now=300.0)
    customers.merge(a, b, now=400.0)
    merged = customers.get(b)
    assert merged is not None and merged["id"] == a and merged["merged"] == [b]
    assert merged["name"] == "Jan" and merged["fields"] == {"tier": "gold"}
    assert set(merged["numbers"]) == {"+48221234567", "+48600111222"}
    assert [i["kind"] for i in customers.timeline(a)] == ["note", "call", "call"]
    assert customers.by_number("600111222")["id"] == a  # type: ignore[index]
    assert customers.search("Jan")[0]["id"] == a
    with pytest.raises(CustomerError):
        customers.merge(a, b, now=500.0)  # b is a now


def test_timeline_items_newest_first_and_paged(store: Store, customers: CustomerStore) -> None:
    call(store, "c1", "221234567", 1000.0, answer=1001.0, digits="1123")
    store.update_call("c1", disposition="Solved")
    customers.recognise("c1", "221234567", now=1000.0)
    for ts, type, data in [(1001.0, "ivr_node", {"node": "main_menu"}),
                           (1002.0, "ivr_choice", {"node": "main_menu", "key": "1", "target": "x"}),
                           (1003.0, "ivr_collected", {"node": "acct", "variable": "account",
                                                      "value": "123"}),
                           (1010.0, "connected", {"agent": "1001"})]:
        store.add_call_event("c1", ts, type, data)
    store.log_queue(ts=1004.0, queue="support", call_id="c1", event="enter")
    store.log_queue(ts=1010.0, queue="support", call_id="c1", event="connect", agent="1001",
                    wait=6.0)
    store.log_queue(ts=1070.0, queue="support", call_id="c1", event="complete", agent="1001",
                    wait=6.0, talk=60.0)
    cb = CallbackStore(store.db)
    cb.book(queue="support", number="+48221234567", entered=2000.0, call_id="c1")
    campaigns = CampaignStore(store.db)
    campaigns.db.execute("INSERT INTO attempts (campaign, contact_id, number, state, started, "
                         "agent, disposition) VALUES ('sale', 1, '+48221234567', 'done', 3000.0, "
                         "'1002', 'sold')")
    customers.add_note(1, text="called about invoice", author="1001", now=4000.0, call_id="c1")
    items = customers.timeline(1)
    assert [(i["kind"], i["at"]) for i in items] == [
        ("note", 4000.0), ("campaign", 3000.0), ("callback", 2000.0), ("call", 1000.0)]
    c = items[-1]
    assert c["ivr_path"] == ["main_menu"] and c["collected"] == {"account": "123"}
    assert c["ivr_choices"] == [{"node": "main_menu", "key": "1"}] and c["agents"] == ["1001"]
    assert (c["queue"], c["queue_result"], c["wait"], c["agent"], c["talk"]) == (
        "support", "complete", 6.0, "1001", 60.0)
    assert c["disposition"] == "Solved"  # the agent's wrap-up code of an inbound call
    assert items[1]["disposition"] == "sold" and items[2]["status"] == "open"
    assert [i["kind"] for i in customers.timeline(1, limit=2, offset=1)] == ["campaign", "callback"]


def test_card_for_the_ivr(store: Store, customers: CustomerStore) -> None:
    call(store, "c1", "221234567", 1000.0)
    customers.recognise("c1", "221234567", now=1000.0)
    first = customers.card("c1", now=1000.0)
    assert first is not None and first["known"] is False and first["last_contact_days"] is None
    store.add_call_event("c1", 1005.0, "connected", {"agent": "1001"})
    store.log_queue(ts=1006.0, queue="support", call_id="c1", event="connect", agent="1002")
    call(store, "c2", "+48221234567", 1000.0 + 2.5 * DAY)
    customers.recognise("c2", "+48221234567", now=1000.0 + 2.5 * DAY)
    CallbackStore(store.db).book(queue="support", number="221234567", entered=1.0, call_id="c1")
    card = customers.card("c2", now=1000.0 + 2.5 * DAY)
    assert card is not None
    assert (card["known"], card["last_agent"], card["last_contact_days"],
            card["open_callbacks"]) == (True, "1002", 2, 1)
    assert customers.card("nope", now=0.0) is None


def test_export_and_erase_leave_no_trace(store: Store, customers: CustomerStore,
                                         tmp_path: Path) -> None:
    rec = tmp_path / "c1.wav"
    rec.write_bytes(b"RIFF")
    call(store, "c1", "0048221234567", 1000.0, recording=str(rec))
    customers.recognise("c1", "0048221234567", now=1000.0)
    store.add_call_event("c1", 1001.0, "ivr_callback", {"number": "0048221234567"})
    store.log_queue(ts=1002.0, queue="support", call_id="c1", event="enter",
                    detail="from 0048221234567")
    campaigns = CampaignStore(store.db)
    store.db.execute("INSERT INTO contacts (campaign, number, name, created, updated) "
                     "VALUES ('sale', '+48221234567', 'Anna', 1, 1)")
    store.db.execute("INSERT INTO attempts (campaign, contact_id, number, state, started) "
                     "VALUES ('sale', 1, '+48221234567', 'done', 2000.0)")
    store.db.conn.commit()
    exported = customers.export(1)
    assert exported is not None and exported["files"] == [str(rec)]
    assert exported["campaign_contacts"][0]["name"] == "Anna"
    assert exported["call_events"]["c1"][0]["data"] == {"number": "0048221234567"}
    assert customers.erase(1) == {"calls": 1, "files": 1}
    assert not rec.exists() and customers.get(1) is None
    dump = "\n".join(store.db.conn.iterdump())
    for form in ("221234567", "48221234567"):
        assert form not in dump
    assert campaigns.db.execute("SELECT name FROM contacts").fetchone()[0] == ""


def test_ivr_store_hands_the_card_to_the_ivr(store: Store, customers: CustomerStore,
                                             tmp_path: Path) -> None:
    ivr = IvrStore(store, tmp_path / "vm", customers)
    now = datetime.fromtimestamp(1000.0 + DAY / 2, UTC)
    assert asyncio.run(ivr.customer("c2", "anonymous", now)) == Customer()
    call(store, "c1", "221234567", 1000.0)
    customers.recognise("c1", "221234567", now=1000.0)
    store.add_call_event("c1", 1005.0, "connected", {"agent": "1002"})
    customers.update(1, now=1001.0, name="Anna", fields={"tier": "vip", "vat": 1})
    customers.recognise("c2", "+48 22 123 45 67", now=now.timestamp())
    assert asyncio.run(ivr.customer("c2", "+48 22 123 45 67", now)) == Customer(
        known=True, name="Anna", fields={"tier": "vip", "vat": "1"}, last_agent="1002",
        last_contact_days=0)


def test_a_caller_identifies_by_a_field(store: Store, customers: CustomerStore) -> None:
    anna = customers.create(now=1.0, name="Anna", numbers=["221234567"],
                            fields={"account": 123456})
    customers.create(now=1.0, name="Twin A", fields={"account": "777"})
    customers.create(now=1.0, name="Twin B", fields={"account": "777"})
    call(store, "anon", "anonymous", 10.0)
    assert customers.recognise("anon", "anonymous", now=10.0) is None
    assert customers.identify("anon", "account", "999", now=11.0) is None
    assert customers.identify("anon", "account", "777", now=11.0) is None  # ambiguous
    assert customers.identify("anon", "account", "123456", now=11.0) == anna
    assert customers.of_call("anon") == (anna, False)
    call(store, "new", "600111222", 20.0)  # a new number: a record of its own at first
    assert customers.recognise("new", "600111222", now=20.0) == (4, True)
    assert customers.identify("new", "account", "123456", now=21.0) == anna
    got = customers.get(4)
    assert got is not None and got["id"] == anna  # merged: the number joined Anna
    assert got["numbers"] == ["+48221234567", "+48600111222"]
    card = customers.card("new", now=21.0)
    assert card is not None and card["known"] is True
    assert [i["call_id"] for i in customers.timeline(anna)] == ["new", "anon"]


def test_import_creates_enriches_and_reports_bad_rows(customers: CustomerStore) -> None:
    anna = customers.create(now=1.0, name="Anna", numbers=["221234567"], crm_id="C-1")
    report = customers.import_csv(
        "name;numbers;email;crm_id;tier\n"
        "Anna Nowak;;anna@example.com;C-1;vip\n"          # by CRM id: enriched
        "Jan;600 111 222|0048 22 765 43 21;;;gold\n"      # new, two numbers
        ";22 123 45 67;;;basic\n"                          # by number: Anna again
        "Bad;12ab;;;\n"
        "Mail;601 222 333;not-an-address;;\n"
        "Clash;601222333|221234567;;;\n"                   # Anna's number on someone new
        ";;;;\n", now=2.0)
    assert (report["rows"], report["created"], report["updated"]) == (7, 1, 2)
    assert report["rejected"] == [
        {"line": 5, "reason": "not a phone number: '12ab'"},
        {"line": 6, "reason": "not an e-mail address: 'not-an-address'"},
        {"line": 7, "reason": "+48221234567 belongs to customer 1"},
        {"line": 8, "reason": "no name, number or crm_id"}]
    got = customers.get(anna)
    assert got is not None and (got["name"], got["fields"], got["emails"]) == (
        "Anna Nowak", {"tier": "basic"}, ["anna@example.com"])
    jan = customers.by_number("+48227654321")
    assert jan is not None and jan["numbers"] == ["+48600111222", "+48227654321"]
    assert customers.by_number("601222333") is None  # rejected rows leave nothing behind
