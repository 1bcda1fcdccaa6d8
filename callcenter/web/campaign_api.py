"""Dialer routes of the JSON API: campaign progress, start/pause, dispositions.

``register(router, auth, dialer)`` adds them; reading needs any token, changing an admin one::

    GET  /api/campaigns                       state, contacts by state, dials, answered,
                                              abandoned, abandon_rate_24h/30d, calls in flight
    POST /api/campaigns/{name}/start|pause
    POST /api/campaigns/{name}/dispositions   {"attempt": 12, "code": "1"} (or "disposition":
                                              "sale"; "number" instead of "attempt" = its last;
                                              optional "callback_at" and "callback_to")
    GET  /api/campaigns/{name}/contacts       every contact with its state, fields, callback
    GET  /api/campaigns/{name}/attempts       attempts, newest first (?contact=ID, ?limit=N)
    POST /api/campaigns/{name}/preview        {"agent": "1001"}: reserve the agent's next contact
    POST /api/campaigns/{name}/preview/{id}/dial|skip   call it (agent's phone first) or release
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from callcenter.dialer.numbers import try_normalize
from callcenter.dialer.preview import PreviewError
from callcenter.web import openapi
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.dialer.runner import CampaignRunner
    from callcenter.web.auth import Auth


def register(router: Router, auth: Auth, dialer: CampaignRunner) -> None:
    """Add the campaign routes."""

    def runner(name: str | None = None) -> CampaignRunner:
        if name is not None and name not in dialer.live:
            raise HttpError(404, f"no campaign {name!r}")
        return dialer

    def campaigns(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(runner().summary())

    def control(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name, verb = req.params["name"], req.params["verb"]
        if verb not in ("start", "pause"):
            raise HttpError(404, f"unknown command {verb!r} (start or pause)")
        dialer = runner(name)
        dialer.set_running(name, verb == "start")
        return HttpResponse.json(next(c for c in dialer.summary() if c["name"] == name))

    def contacts(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        name = req.params["name"]
        rows = runner(name).store.contacts(name)
        for row in rows:
            row["fields"] = json.loads(row["fields"])
            row["retries"] = json.loads(row["retries"])
        return HttpResponse.json(rows)

    def dispositions(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name = req.params["name"]
        dialer = runner(name)
        body: Any = req.json() if req.body else {}
        if not isinstance(body, dict):
            raise HttpError(400, "expected a JSON object")
        code = str(body.get("code") or body.get("disposition") or "")
        attempt = body.get("attempt")
        if attempt is None and body.get("number"):
            number, why = try_normalize(str(body["number"]))
            if number is None:
                raise HttpError(400, f"bad number: {why}")
            row = dialer.store.conn.execute(
                "SELECT max(id) FROM attempts WHERE campaign = ? AND number = ?",
                (name, number)).fetchone()
            attempt = row[0] if row else None
        if not isinstance(attempt, int) or not code:
            raise HttpError(400, 'expected {"attempt": ID or "number": N, "code": "1"}')
        try:
            contact = dialer.dispose(name, attempt, code, callback_at=body.get("callback_at"),
                                     callback_to=body.get("callback_to"))
        except KeyError:
            raise HttpError(404, f"no attempt {attempt} in campaign {name!r}") from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        contact["fields"] = json.loads(contact["fields"])
        contact["retries"] = json.loads(contact["retries"])
        return HttpResponse.json(contact)

    def attempts(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        name = req.params["name"]
        try:
            limit = int(req.arg("limit", "100") or 100)
            contact = req.arg("contact")
            contact_id = None if contact is None else int(contact)
        except ValueError:
            raise HttpError(400, "limit and contact are integers") from None
        return HttpResponse.json(runner(name).store.recent_attempts(name, contact_id, limit))

    def preview(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name = req.params["name"]
        desk = runner(name).preview
        body: Any = req.json() if req.body else {}
        if not isinstance(body, dict):
            raise HttpError(400, "expected a JSON object")
        agent = body.get("agent")
        if agent is not None and not isinstance(agent, str | int):
            raise HttpError(400, 'expected {"agent": "1001"}')
        agent = None if agent is None else str(agent)
        try:
            if "contact" not in req.params:
                if agent is None:
                    raise HttpError(400, 'expected {"agent": "1001"}')
                return HttpResponse.json(desk.reserve(name, agent))
            try:
                contact = int(req.params["contact"])
            except ValueError:
                raise HttpError(404, "no such contact") from None
            if req.params["action"] == "dial":
                return HttpResponse.json(desk.dial(name, contact, agent))
            if req.params["action"] == "skip":
                return HttpResponse.json(desk.skip(name, contact, agent))
            raise HttpError(404, f"unknown command {req.params['action']!r} (dial or skip)")
        except PreviewError as exc:
            raise HttpError(exc.status, str(exc)) from None

    router.add("GET", "/api/campaigns", campaigns)
    router.add("GET", "/api/campaigns/{name}/contacts", contacts)
    router.add("GET", "/api/campaigns/{name}/attempts", attempts)
    router.add("POST", "/api/campaigns/{name}/dispositions", dispositions)
    router.add("POST", "/api/campaigns/{name}/preview", preview)
    router.add("POST", "/api/campaigns/{name}/preview/{contact}/{action}", preview)
    router.add("POST", "/api/campaigns/{name}/{verb}", control)


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], errors: dict[str, str], *, admin: bool = False,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    responses = {"200": _resp("OK", ok), "401": _resp("missing or unknown bearer token"),
                 **{k: _resp(v) for k, v in errors.items()}}
    if admin:
        responses["403"] = _resp("the token may only read")
    op: dict[str, Any] = {"summary": summary, "tags": ["dialer"], "responses": responses,
                          "security": [{"bearer": []}]}
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return op


_OBJ: dict[str, Any] = {"type": "object"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_PATHS: dict[str, dict[str, Any]] = {
    "/api/campaigns": {"get": _op(
        "Campaigns: state, contacts by state, dials, answered, abandoned, abandon rate "
        "24 h / 30 days, calls in flight with the contact's fields",
        {"type": "array", "items": _OBJ}, {"404": "the dialer is not running"})},
    "/api/campaigns/{name}/contacts": {"parameters": [_NAME], "get": _op(
        "Every contact of the campaign with its state, disposition, fields and callback "
        "(owner: the agent it is kept for, callback_at, next_at)",
        {"type": "array", "items": _OBJ}, {"404": "no such campaign"})},
    "/api/campaigns/{name}/attempts": {"parameters": [
        _NAME, {"name": "contact", "in": "query", "schema": {"type": "integer"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}}],
        "get": _op("Attempts of the campaign, newest first: outcome, agent, SIP status, AMD, "
                   "recording path", {"type": "array", "items": _OBJ},
                   {"400": "bad query", "404": "no such campaign"})},
    "/api/campaigns/{name}/dispositions": {"parameters": [_NAME], "post": _op(
        "Set the disposition of an attempt (or of the number's last attempt); a non-final one "
        "may schedule a callback at a time (callback_at) for the same agent, anyone or a given "
        "agent (callback_to); returns the contact",
        _OBJ, {"400": "bad request, unknown disposition or bad callback",
               "404": "no such campaign or attempt"}, admin=True,
        body={"type": "object", "properties": {
            "attempt": {"type": "integer"}, "number": {"type": "string"},
            "code": {"type": "string"}, "disposition": {"type": "string"},
            "callback_at": {"oneOf": [{"type": "string", "format": "date-time"},
                                      {"type": "number"}],
                            "description": "ISO 8601 local time in the campaign's time zone "
                                           "(or with an offset), or unix seconds"},
            "callback_to": {"type": "string",
                            "description": "same (the agent who took the call), anyone, or "
                                           "an agent id"}}})},
    "/api/campaigns/{name}/preview": {"parameters": [_NAME], "post": _op(
        "Preview mode: reserve the agent's next eligible contact (window, DNC, retry time) for "
        "preview_seconds; the agent's current one if it has one. Returns the contact with its "
        "fields, state preview and reserved_seconds", _OBJ,
        {"400": "no agent given", "404": "no such campaign or no contact to preview now",
         "409": "not a preview campaign, paused, or the contact is taken"}, admin=True,
        body={"type": "object", "required": ["agent"],
              "properties": {"agent": {"type": "string"}}})},
    "/api/campaigns/{name}/preview/{contact}/{action}": {"parameters": [
        _NAME, {"name": "contact", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "action", "in": "path", "required": True,
         "schema": {"type": "string", "enum": ["dial", "skip"]}}], "post": _op(
        "dial: write the attempt, ring the agent's phone, then dial the contact and bridge them "
        "(returns the reservation with its attempt id); skip: release the contact", _OBJ,
        {"404": "no such campaign, or the contact is not reserved (its time is over)",
         "409": "reserved for another agent, already dialling, or the agent is not registered",
         "503": "dial: the server is draining (it places no new calls)"},
        admin=True, body={"type": "object", "properties": {"agent": {"type": "string"}}})},
    "/api/campaigns/{name}/{verb}": {"parameters": [
        _NAME, {"name": "verb", "in": "path", "required": True,
                "schema": {"type": "string", "enum": ["start", "pause"]}}], "post": _op(
        "Start or pause the campaign (pausing lets calls in progress finish)", _OBJ,
        {"404": "no such campaign or command"}, admin=True)},
}

def describe() -> None:
    """Add these routes to the OpenAPI document (``openapi.add_paths``)."""
    openapi.add_paths(_PATHS)


describe()
