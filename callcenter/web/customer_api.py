"""Customer routes of the JSON API (reading needs any token, changing or exporting an admin one)::

    GET    /api/customers?number=...        the customer of a number, in any format
    GET    /api/customers?q=...             by name, e-mail, CRM id or a field value
    POST   /api/customers                   {"name", "numbers", "emails", "crm_id", "fields"}
    POST   /api/customers/import            CSV: created, updated, rejected rows (line, why)
    GET    /api/customers/{id}              a merged id answers with the record it became
    PATCH  /api/customers/{id}              lists replace, fields merge (null removes one)
    POST   /api/customers/{id}/merge        {"from": id}: its contacts join this timeline
    GET    /api/customers/{id}/timeline     every contact, newest first (?limit, ?offset)
    POST   /api/customers/{id}/notes        {"text": ..., "call_id": ...}
    GET    /api/customers/{id}/export       GDPR: everything as one JSON, links to the files
    GET    /api/customers/{id}/files/{n}    one of those files (a recording, a voicemail)
    DELETE /api/customers/{id}              GDPR erase
    GET    /api/agents/{id}/offer           the last call offered to the agent (the desk's card)
    GET    /api/calls/{id}/offer            the card of any call (live or past)

Every change, export and erase is audited (the ``audit`` table, an ``audit.changed`` event).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.events.bus import AuditChanged, Event
from callcenter.log import scrub
from callcenter.store.customers import ERASED, CustomerConflict, CustomerError
from callcenter.web import openapi
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.store.customers import CustomerStore
    from callcenter.web.auth import Auth

_EDITABLE = {"name": str, "crm_id": str, "numbers": list, "emails": list, "fields": dict}


def _body(req: HttpRequest) -> dict[str, Any]:
    """The record's editable parts of a POST/PATCH body (400 for anything else)."""
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object")
    for key, value in body.items():
        kind = _EDITABLE.get(key)
        if kind is None:
            raise HttpError(400, f"unknown key {key!r} (one of {', '.join(_EDITABLE)})")
        if not isinstance(value, kind):
            raise HttpError(400, f"{key}: expected {kind.__name__}")
    return body


def _int(value: str | None, name: str, default: int, least: int, most: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        raise HttpError(400, f"{name}: expected a whole number") from None
    if not least <= number <= most:
        raise HttpError(400, f"{name}: expected {least}..{most}")
    return number


@dataclass(frozen=True)
class CallFacts:
    """What a call's card is built from."""

    customer: str  #: the customer's number: who called, or whom we called
    queue: str
    agent: str  #: the queue agent who took it ("" while none has)
    parties: frozenset[str]  #: who is (was) on it: its legs', caller, called and agent


def register(router: Router, auth: Auth, customers: CustomerStore,
             publish: Callable[[Event], None], offers: Mapping[str, Mapping[str, Any]],
             calls: Callable[[str], CallFacts | None]) -> None:
    """Add the customer routes; ``offers``: the last ``agent.offer`` per agent; ``calls``:
    what a call's card is built from (a live or past call; None: no such call)."""

    def found(req: HttpRequest) -> dict[str, Any]:
        raw = req.params["id"]
        digits = raw.isascii() and raw.isdigit() and len(raw) < 19
        customer = customers.get(int(raw)) if digits else None
        if customer is None:
            raise HttpError(404, f"no customer {raw!r}")
        return customer

    def audit(req: HttpRequest, action: str, id: int | None, **detail: Any) -> None:
        publish(AuditChanged(ts=time.time(), who=auth.who(req), action=action,
                             object="customers" if id is None else f"customer/{id}",
                             detail=detail if id is None else {"customer": id, **detail}))

    def edit(change: Callable[[], Any]) -> Any:
        try:
            return change()
        except CustomerConflict as exc:
            raise HttpError(409, str(exc)) from None
        except CustomerError as exc:
            raise HttpError(400, str(exc)) from None

    def lookup(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        number, q = req.arg("number"), req.arg("q")
        if number is not None:
            if customers.e164(number) is None:
                raise HttpError(400, f"number: not a phone number: {number!r}")
            return HttpResponse.json([c] if (c := customers.by_number(number)) else [])
        if not q:
            raise HttpError(400, "expected ?number=... or ?q=...")
        return HttpResponse.json(customers.search(q, _int(req.arg("limit"), "limit", 50, 1, 500)))

    def create(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        body = _body(req)
        id = edit(lambda: customers.create(now=time.time(), **body))
        audit(req, "customer.created", id)
        return HttpResponse.json(customers.get(id), 201)

    def import_csv(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        try:
            text = req.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HttpError(400, "expected CSV in UTF-8") from None
        report = customers.import_csv(text, now=time.time())
        audit(req, "customer.imported", None,
              **{k: v for k, v in report.items() if k != "rejected"})
        return HttpResponse.json(report)

    def show(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(found(req))

    def patch(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        body = _body(req)
        edit(lambda: customers.update(id, now=time.time(), **body))
        audit(req, "customer.changed", id, keys=sorted(body))
        return HttpResponse.json(customers.get(id))

    def merge(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        body = req.json()
        source = body.get("from") if isinstance(body, dict) else None
        if not isinstance(source, int) or isinstance(source, bool):
            raise HttpError(400, 'expected {"from": <customer id>}')
        if customers.resolve(source) is None:
            raise HttpError(404, f"no customer {source}")
        edit(lambda: customers.merge(id, source, now=time.time()))
        audit(req, "customer.merged", id, merged=source)
        return HttpResponse.json(customers.get(id))

    def timeline(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        id = found(req)["id"]
        limit = _int(req.arg("limit"), "limit", 50, 1, 500)
        offset = _int(req.arg("offset"), "offset", 0, 0, 1_000_000)
        return HttpResponse.json({"customer": id, "limit": limit, "offset": offset,
                                  "items": customers.timeline(id, limit=limit, offset=offset)})

    def note(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        body = req.json()
        text = body.get("text") if isinstance(body, dict) else None
        call_id = body.get("call_id") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or not isinstance(call_id, str | None):
            raise HttpError(400, 'expected {"text": "...", "call_id": optional}')
        now, who = time.time(), auth.who(req)
        nid = customers.add_note(id, text=text.strip(), author=who, now=now, call_id=call_id)
        audit(req, "customer.note", id, note=nid)
        return HttpResponse.json({"id": nid, "customer": id, "at": now, "author": who,
                                  "text": text.strip(), "call_id": call_id}, 201)

    def export(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        data = customers.export(id)
        assert data is not None
        data["files"] = [{"path": path, "url": f"/api/customers/{id}/files/{n}"}
                         for n, path in enumerate(data["files"])]
        audit(req, "customer.exported", id)
        return HttpResponse.json(data)

    def file(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        files = customers.files(id)
        n = req.params["n"]
        path = Path(files[int(n)]) if n.isascii() and n.isdigit() and int(n) < len(files) else None
        if path is None or not path.is_file():
            raise HttpError(404, f"no file {n!r} of customer {id}")
        return HttpResponse(200, path.read_bytes(), "audio/wav")

    async def erase(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        id = found(req)["id"]
        forms = customers.number_forms(id)
        done = customers.erase(id)
        if done is not None:  # off the loop: a big log takes a while to read
            done["log_lines"] = await asyncio.to_thread(scrub, forms, ERASED)
        audit(req, "customer.erased", id, **(done or {}))
        return HttpResponse.json({"erased": id, **(done or {})})

    def offer(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        found = offers.get(req.params["id"])
        if found is None:
            raise HttpError(404, f"no call offered to {req.params['id']!r} yet")
        return HttpResponse.json(found)

    def call_offer(req: HttpRequest) -> HttpResponse:
        """Any call's card, built now from its customer and IVR data; ``why`` from its
        latest offer to an agent (``{"kind": "call"}`` when none is remembered)."""
        auth.require(req)
        id = req.params["id"]
        offered = [o for o in offers.values() if o["call_id"] == id]
        facts = calls(id)
        if facts is None and not offered:
            raise HttpError(404, f"no call {id!r}")
        last = dict(offered[-1]) if offered else {}
        number = facts.customer if facts else last["caller"]
        card, recent = customers.pop(id, time.time(), number=number)
        parties = sorted({*(facts.parties if facts else ()), *(o["agent"] for o in offered)})
        return HttpResponse.json({
            "call_id": id, "agent": (facts.agent if facts else "") or last.get("agent", ""),
            "queue": (facts.queue if facts else "") or last.get("queue", ""), "caller": number,
            "customer": card, "recent": recent, "why": last.get("why", {"kind": "call"}),
            "parties": parties})

    router.add("GET", "/api/agents/{id}/offer", offer)
    router.add("GET", "/api/calls/{id}/offer", call_offer)
    router.add("GET", "/api/customers", lookup)
    router.add("POST", "/api/customers", create)
    router.add("POST", "/api/customers/import", import_csv)
    router.add("GET", "/api/customers/{id}", show)
    router.add("PATCH", "/api/customers/{id}", patch)
    router.add("DELETE", "/api/customers/{id}", erase)
    router.add("POST", "/api/customers/{id}/merge", merge)
    router.add("GET", "/api/customers/{id}/timeline", timeline)
    router.add("POST", "/api/customers/{id}/notes", note)
    router.add("GET", "/api/customers/{id}/export", export)
    router.add("GET", "/api/customers/{id}/files/{n}", file)


def _described() -> None:
    err = openapi.error_response

    def ok(status: str, text: str, schema: dict[str, Any], admin: bool = False,
           **errors: str) -> dict[str, Any]:
        out = {status: {"description": text, "content": {"application/json": {"schema": schema}}},
               "401": err("missing or unknown bearer token"),
               **{code[1:]: err(why) for code, why in errors.items()}}
        return out | ({"403": err("the token may only read")} if admin else {})

    obj = {"type": "object"}
    text_list = {"type": "array", "items": {"type": "string"}}
    customer = {"type": "object", "required": ["id", "name", "numbers", "emails", "fields"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                               "crm_id": {"type": ["string", "null"]}, "numbers": text_list,
                               "emails": text_list, "fields": obj,
                               "merged": {"type": "array", "items": {"type": "integer"}},
                               "created": {"type": "number"}, "updated": {"type": "number"}}}
    editable = {"type": "object", "properties": {
        "name": {"type": "string"}, "crm_id": {"type": "string"},
        "numbers": {**text_list, "description": "any format; stored as E.164"},
        "emails": text_list, "fields": {**obj, "description": "free fields; null removes one"}}}
    item = {"type": "object", "required": ["channel", "kind", "at"], "properties": {
        "channel": {"enum": ["phone", "agent"]},
        "kind": {"enum": ["call", "outbound", "callback", "campaign", "note"]},
        "at": {"type": "number"}, "call_id": {"type": ["string", "null"]}}}
    id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"},
          "description": "the customer (a merged id answers for the record it became)"}
    page = [{"name": name, "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": least}, "description": text}
            for name, least, text in (("limit", 1, "items per page (50)"),
                                      ("offset", 0, "items to skip"))]

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    openapi.add_paths({
        "/api/customers": {
            "get": {"summary": "Find customers: by a number in any format, or by text",
                    "parameters": [
                        {"name": "number", "in": "query", "required": False,
                         "schema": {"type": "string"}, "description": "+48221234567, 0048...,"
                         " 22..."},
                        {"name": "q", "in": "query", "required": False,
                         "schema": {"type": "string"},
                         "description": "part of a name, e-mail, CRM id or field value"},
                        page[0]],
                    "responses": ok("200", "the customers found",
                                    {"type": "array", "items": customer},
                                    _400="neither number nor q, or a bad number")},
            "post": {"summary": "Create a customer (audited)", "requestBody": body(editable),
                     "responses": ok("201", "the customer", customer, True, _400="bad body",
                                     _409="a number belongs to another customer")}},
        "/api/customers/import": {"post": {
            "summary": "Create or enrich customers from CSV (name, numbers, emails, crm_id, "
                       "fields); bad rows reported with line and reason (audited)",
            "requestBody": {"required": True, "content": {"text/csv": {
                "schema": {"type": "string"}}}},
            "responses": ok("200", "the report", {
                "type": "object", "required": ["rows", "created", "updated", "rejected"],
                "properties": {"rejected": {"type": "array", "items": {
                    "type": "object", "required": ["line", "reason"]}}}},
                True, _400="not UTF-8")}},
        "/api/customers/{id}": {
            "parameters": [id],
            "get": {"summary": "A customer", "responses": ok(
                "200", "the customer", customer, _404="no such customer")},
            "patch": {"summary": "Change a customer (audited)", "requestBody": body(editable),
                      "responses": ok("200", "the customer", customer, True, _400="bad body",
                                      _404="no such customer",
                                      _409="a number belongs to another customer")},
            "delete": {"summary": "GDPR erase: the record, its numbers in CDRs, events, the "
                       "queue log, campaign rows and the server's log files (log_lines: the "
                       "lines changed), its recordings and voicemails (audited)",
                       "responses": ok("200", "what was erased", obj, True,
                                       _404="no such customer")}},
        "/api/customers/{id}/merge": {"post": {
            "summary": "Merge another customer into this one (audited); the other id redirects",
            "parameters": [id], "requestBody": body({"type": "object", "required": ["from"],
                                                     "properties": {"from": {"type": "integer"}}}),
            "responses": ok("200", "the merged customer", customer, True,
                            _400="bad body, or the same customer", _404="no such customer")}},
        "/api/customers/{id}/timeline": {"get": {
            "summary": "Every contact of the customer, newest first, paged",
            "parameters": [id, *page],
            "responses": ok("200", "a page of the timeline", {
                "type": "object", "required": ["customer", "items"], "properties": {
                    "customer": {"type": "integer"}, "limit": {"type": "integer"},
                    "offset": {"type": "integer"}, "items": {"type": "array", "items": item}}},
                _400="bad limit or offset", _404="no such customer")}},
        "/api/customers/{id}/notes": {"post": {
            "summary": "Add a note to the customer's timeline (audited)", "parameters": [id],
            "requestBody": body({"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string"}, "call_id": {"type": "string"}}}),
            "responses": ok("201", "the note", obj, True, _400="bad body",
                            _404="no such customer")}},
        "/api/customers/{id}/export": {"get": {
            "summary": "GDPR export: everything about the customer, links to the files "
                       "(audited)", "parameters": [id],
            "responses": ok("200", "the customer's data", {
                "type": "object", "required": ["customer", "timeline", "files"]}, True,
                _404="no such customer")}},
        **{path: {"get": {
            "summary": summary,
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}, "description": what}],
            "responses": ok("200", "the offer", {
                "type": "object", "required": ["call_id", "agent", "queue", "caller", "why"],
                "properties": {"customer": {"type": ["object", "null"]},
                               "recent": {"type": "array", "items": item},
                               "why": {"type": "object"},
                               "parties": {"type": "array", "items": {"type": "string"}}}},
                _404=missing)}}
           for path, summary, what, missing in (
               ("/api/agents/{id}/offer", "The last call offered to the agent: the "
                "agent.offer event (the card)", "the agent",
                "nothing offered to this agent since the start"),
               ("/api/calls/{id}/offer", "The card of a call, live or past, built from its "
                "customer and IVR data (the page of the phone's Call-Info); why: its last "
                "offer's, and parties: who is or was on it", "the call", "no such call"))},
        "/api/customers/{id}/files/{n}": {"get": {
            "summary": "A recording or voicemail of the customer (n from the export)",
            "parameters": [id, {"name": "n", "in": "path", "required": True,
                                "schema": {"type": "integer"}, "description": "the file"}],
            "responses": {"200": {"description": "the WAV file", "content": {"audio/wav": {}}},
                          "401": err("missing or unknown bearer token"),
                          "403": err("the token may only read"),
                          "404": err("no such customer or file")}}},
    })


_described()
