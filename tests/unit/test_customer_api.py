"""The customer API contract: lookup by a number in any format and by text, create, patch,
merge with redirect, timeline pages, notes, GDPR export and erase, each change audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.calls.call import Call
from callcenter.events.bus import AgentOffer, AuditChanged
from callcenter.store import CallRecord
from tests.unit.test_queue_members_api import READ, Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "cc.db")
    yield s
    s.close()


def test_create_lookup_patch_and_errors(server: Server) -> None:
    status, anna = server("POST", "/api/customers", {
        "name": "Anna Nowak", "numbers": ["0048 22 123 45 67"], "emails": ["anna@example.com"],
        "crm_id": "CRM-1", "fields": {"tier": "vip", "language": "pl"}})
    assert status == 201, anna
    assert anna["numbers"] == ["+48221234567"] and anna["fields"]["tier"] == "vip"
    for number in ("+48221234567", "221234567", "0048221234567"):
        status, found = server("GET", f"/api/customers?number={number}", token=READ)
        assert status == 200 and [c["id"] for c in found] == [anna["id"]], number
    assert server("GET", "/api/customers?number=600111222")[1] == []
    assert [c["id"] for c in server("GET", "/api/customers?q=nowak")[1]] == [anna["id"]]
    assert [c["id"] for c in server("GET", "/api/customers?q=vip")[1]] == [anna["id"]]
    status, body = server("PATCH", f"/api/customers/{anna['id']}",
                          {"fields": {"tier": None, "plan": "gold"}, "name": "Anna N."})
    assert status == 200 and body["fields"] == {"language": "pl", "plan": "gold"}
    assert server("GET", f"/api/customers/{anna['id']}")[1]["name"] == "Anna N."
    assert server("POST", "/api/customers", {"numbers": ["22 123 45 67"]})[0] == 409
    for bad in ([], {"numbers": ["abc"]}, {"numbers": "221234567"}, {"age": 3},
                {"emails": ["nope"]}, {"fields": {"x": [1]}}):
        assert server("POST", "/api/customers", bad)[0] == 400, bad
    assert server("GET", "/api/customers")[0] == 400
    assert server("GET", "/api/customers?number=12ab")[0] == 400
    assert server("GET", "/api/customers/999")[0] == 404
    assert server("GET", "/api/customers/x")[0] == 404
    assert server("PATCH", f"/api/customers/{anna['id']}", {"name": "x"}, READ)[0] == 403
    assert server("POST", "/api/customers", {}, READ)[0] == 403
    audits = [(e.action, e.object) for e in server.events if isinstance(e, AuditChanged)]
    assert audits == [("customer.created", f"customer/{anna['id']}"),
                      ("customer.changed", f"customer/{anna['id']}")]


def test_merge_timeline_notes_export_and_erase(server: Server, tmp_path: Path) -> None:
    store, customers = server.app.store, server.app.customers
    recording = tmp_path / "rec.wav"
    recording.write_bytes(b"RIFF....WAVE")
    for id, caller, start in (("c1", "221234567", 100.0), ("c2", "600111222", 200.0)):
        store.start_call(CallRecord(id=id, sip_call_id=id, direction="inbound", caller=caller,
                                    called="0800123456", source="trunk:pstn", start=start,
                                    recording=str(recording) if id == "c2" else None))
        customers.recognise(id, caller, now=start)
    a, b = (customers.by_number(n)["id"] for n in ("221234567", "600111222"))  # type: ignore[index]
    assert server("POST", f"/api/customers/{a}/merge", {"from": a})[0] == 400
    assert server("POST", f"/api/customers/{a}/merge", {"from": 999})[0] == 404
    assert server("POST", f"/api/customers/{a}/merge", {"from": "x"})[0] == 400
    status, merged = server("POST", f"/api/customers/{a}/merge", {"from": b})
    assert status == 200 and merged["merged"] == [b] and len(merged["numbers"]) == 2
    assert server("GET", f"/api/customers/{b}")[1]["id"] == a  # the old id redirects
    status, note = server("POST", f"/api/customers/{b}/notes", {"text": "wants a refund",
                                                                 "call_id": "c2"})
    assert status == 201 and note["customer"] == a and note["author"] == "demo admin"
    assert server("POST", f"/api/customers/{a}/notes", {"text": " "})[0] == 400
    status, page = server("GET", f"/api/customers/{a}/timeline?limit=2", token=READ)
    assert status == 200
    assert [(i["kind"], i["call_id"]) for i in page["items"]] == [("note", "c2"), ("call", "c2")]
    status, page = server("GET", f"/api/customers/{a}/timeline?limit=2&offset=2")
    assert [i["call_id"] for i in page["items"]] == ["c1"]
    assert server("GET", f"/api/customers/{a}/timeline?limit=0")[0] == 400
    assert server("GET", f"/api/customers/{a}/export", token=READ)[0] == 403
    status, export = server("GET", f"/api/customers/{a}/export")
    assert status == 200 and export["customer"]["id"] == a and len(export["timeline"]) == 3
    assert export["files"] == [{"path": str(recording), "url": f"/api/customers/{a}/files/0"}]
    assert server.raw("GET", f"/api/customers/{a}/files/0") == (200, b"RIFF....WAVE")
    assert server.raw("GET", f"/api/customers/{a}/files/1")[0] == 404
    status, erased = server("DELETE", f"/api/customers/{a}")
    assert status == 200 and erased == {"erased": a, "calls": 2, "files": 1, "log_lines": 0}
    assert not recording.exists()
    assert server("GET", f"/api/customers/{a}")[0] == 404
    assert server("GET", "/api/customers?number=221234567")[1] == []
    assert {r.caller for r in store.recent_calls()} == {"erased"}
    assert [r["action"] for r in store.audit()] == [
        "customer.merged", "customer.note", "customer.exported", "customer.erased"]


def test_screen_pop_carries_the_card_and_names_the_caller(server: Server) -> None:
    store, customers = server.app.store, server.app.customers
    store.start_call(CallRecord(id="c1", sip_call_id="c1", direction="inbound",
                                caller="0048221234567", called="0800123456",
                                source="trunk:pstn", start=100.0))
    customers.recognise("c1", "0048221234567", now=100.0)
    customers.update(1, now=101.0, name="Anna Nowak", fields={"tier": "vip"})
    why = {"kind": "queue"}
    assert server.app._offer("c1", "1003", "support", "0048221234567", why) == (
        "Anna Nowak", "http://127.0.0.1:8080/desk/call/c1")  # the phone's display, Call-Info
    status, card = server("GET", "/api/calls/c1/offer", token=READ)  # the Call-Info's card
    assert status == 200 and card["customer"]["name"] == "Anna Nowak" and card["why"] == why
    # a callback's ring has no call of the caller yet: found by the number
    assert server.app._offer("", "1003", "support", "+48221234567", {}) == ("Anna Nowak", "")
    assert server.app._offer("", "1003", "support", "600111222", {}) == ("", "")
    offers = [e for e in server.events if isinstance(e, AgentOffer)]
    assert [(o.call_id, o.customer and o.customer["name"]) for o in offers] == [
        ("c1", "Anna Nowak"), ("", "Anna Nowak"), ("", None)]
    assert offers[0].customer is not None and offers[0].customer["fields"] == {"tier": "vip"}
    assert offers[0].why == why
    assert [i["call_id"] for i in offers[0].recent] == ["c1"]
    status, last = server("GET", "/api/agents/1003/offer", token=READ)
    assert status == 200 and last["caller"] == "600111222" and last["customer"] is None
    assert server("GET", "/api/agents/1001/offer", token=READ)[0] == 404
    # 1003 rings for another: c1's card is built from its records (its offer is forgotten)
    status, card = server("GET", "/api/calls/c1/offer", token=READ)
    assert status == 200 and card["customer"]["name"] == "Anna Nowak"
    assert card["why"] == {"kind": "call"} and card["parties"] == ["0048221234567", "0800123456"]
    assert server("GET", "/api/calls/nosuch/offer", token=READ)[0] == 404


def test_any_call_has_its_card_past_or_live(server: Server) -> None:
    """``/desk/call/ID``'s data: a call no agent was offered, long past, shows its customer
    and what they typed in the IVR; a live one too, from the B2BUA."""
    store, customers = server.app.store, server.app.customers
    store.start_call(CallRecord(id="old", sip_call_id="old", direction="inbound",
                                caller="221234567", called="0800123456", source="trunk:pstn",
                                start=100.0))
    customers.recognise("old", "221234567", now=100.0)
    store.add_call_event("old", 101.0, "ivr_collected", {"variable": "account",
                                                         "value": "123456"})
    store.finish_call("old", end=160.0, hangup_cause="normal", hangup_side="caller",
                      sip_status=200, digits="1", queue="support", agent="1003")
    for n in range(6):  # newer contacts push the old call off the latest five
        customers.add_note(1, text=f"note {n}", author="x", now=200.0 + n)
    status, card = server("GET", "/api/calls/old/offer", token=READ)
    assert status == 200, card
    assert (card["caller"], card["queue"], card["agent"], card["why"]) == (
        "221234567", "support", "1003", {"kind": "call"})
    assert card["customer"]["numbers"] == ["+48221234567"]
    assert set(card["parties"]) == {"221234567", "0800123456", "1003"}
    this = [i for i in card["recent"] if i["call_id"] == "old" and i["kind"] == "call"]
    assert this and this[0]["collected"] == {"account": "123456"}
    live = Call(caller="1002", called="+48601000001", source="user:1002", direction="outbound")
    live.queue, live.agent = "sales", "1002"
    server.app.b2bua.calls[live.id] = live
    try:
        status, card = server("GET", f"/api/calls/{live.id}/offer", token=READ)
    finally:
        del server.app.b2bua.calls[live.id]
    assert status == 200 and (card["caller"], card["queue"], card["customer"]) == (
        "+48601000001", "sales", None)
    assert set(card["parties"]) == {"1002", "+48601000001"}


def test_import_reports_bad_rows_by_line(server: Server) -> None:
    csv = b"name,number,tier\nAnna,221234567,vip\nBad,12ab,\n"
    assert server("POST", "/api/customers/import", csv, token=READ)[0] == 403
    assert server("POST", "/api/customers/import", b"\xff\xfe\x00")[0] == 400
    status, report = server("POST", "/api/customers/import", csv)
    assert status == 200 and (report["created"], report["rejected"]) == (
        1, [{"line": 3, "reason": "not a phone number: '12ab'"}])
    assert server("GET", "/api/customers?q=vip")[1][0]["name"] == "Anna"
    (audit,) = server.app.store.audit()
    assert (audit["action"], audit["object"], audit["detail"]) == (
        "customer.imported", "customers", {"rows": 2, "created": 1, "updated": 0})
