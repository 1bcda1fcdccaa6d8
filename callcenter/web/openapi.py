"""The OpenAPI 3.1 description of the HTTP API, written by hand next to the routes.

``spec()`` is served at ``GET /api/openapi.json``; ``tests/unit/test_openapi.py`` checks that
every ``/api`` route of the router is described here and answers only documented statuses.
"""

from __future__ import annotations

from typing import Any

#: path items other route modules contribute with :func:`add_paths`
_EXTRA: dict[str, dict[str, Any]] = {}


def add_paths(paths: dict[str, dict[str, Any]]) -> None:
    """Describe more routes (OpenAPI path items), e.g. from the module that adds them."""
    for path, item in paths.items():
        _EXTRA.setdefault(path, {}).update(item)

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


#: an error answer (the Error schema) for route modules' own descriptions
error_response = _err


def _op(summary: str, ok: dict[str, Any], *, secured: bool = True, admin: bool = False,
        params: list[dict[str, Any]] | None = None, errors: dict[str, str] | None = None,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status, text in (errors or {}).items():
        responses[status] = _err(text)
    if secured:
        responses["401"] = _err("missing or unknown bearer token")
    if admin:
        responses["403"] = _err("the token may only read")
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if not secured:
        op["security"] = []
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": body}}}
    return op


_HEALTH = _json({"type": "object", "properties": {
    "status": {"enum": ["ok", "draining"]}, "uptime": {"type": "number"},
    "calls_in_progress": {"type": "integer"},
    "registrations": {"type": "integer"}}, "required": ["status"]})


def _q(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def _p(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


_DATE = {"type": "string", "format": "date"}
_DAYS = [_q("from", _DATE, "first day", required=True), _q("to", _DATE, "last day (default: from)")]
_NUM = {"type": ["number", "null"]}
_QUEUE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "waiting": {"type": "integer"},
        "longest_wait": {"type": "number"}, "offered": {"type": "integer"},
        "answered": {"type": "integer"}, "abandoned": {"type": "integer"},
        "timed_out": {"type": "integer"}, "answered_within_sl": {"type": "integer"},
        "service_level": _NUM, "asa": _NUM, "aht": _NUM, "sl_seconds": {"type": "number"},
        "number": {"type": "integer", "description": "the queue's number in *41<n>, *42<n>"},
        "callbacks_pending": {"type": "integer",
                              "description": "callback requests not finished yet"},
        "agents": {"type": "array", "items": {"type": "string"}},
        "callers": {"type": "array", "description": "the callers waiting, in order", "items": {
            "type": "object", "properties": {
                "call_id": {"type": "string"}, "caller": {"type": "string"},
                "callback": {"type": "boolean"}}}},
    },
    "required": ["name", "waiting", "longest_wait", "offered", "answered", "abandoned",
                 "service_level"],
}
_AGENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "state": {"enum": ["logged_out", "available", "ringing", "on_call", "wrap_up",
                           "paused"]},
        "time_in_state": {"type": "number"}, "reason": {"type": "string"},
        "registered": {"type": "boolean"}, "reachable": {"type": "boolean"},
        "calls": {"type": "integer"}, "talk_time": {"type": "number"}, "occupancy": _NUM,
        "queues": {"type": "array", "items": {"type": "string"},
                   "description": "the queues the agent is logged in to"},
        "call": {"type": ["object", "null"],
                 "description": "the queue call ringing or answered at the agent", "properties": {
                     "call_id": {"type": "string"}, "caller": {"type": "string"},
                     "queue": {"type": "string"}, "answered": {"type": "boolean"}}},
        "in_use": {"type": "boolean"},
        "phone_call": {
            "type": ["object", "null"], "description": "the latest call on the agent's phone "
            "that no queue offer gave", "properties": {
                "call_id": {"type": "string"},
                "kind": {"enum": ["direct", "dial_out", "transfer", "preview", "callback"]},
                "outgoing": {"type": "boolean"}, "other": {"type": "string"},
                "answered": {"type": "boolean"}, "seconds": {"type": "number"}}},
    },
    "required": ["id", "state", "time_in_state"],
}
_CDR = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "sip_call_id": {"type": "string"},
        "direction": {"enum": ["inbound", "outbound", "internal"]},
        "caller": {"type": "string"}, "called": {"type": "string"},
        "source": {"type": "string"}, "line": {"type": ["string", "null"]},
        "start": {"type": "number"}, "answer": _NUM, "end": _NUM, "duration": _NUM,
        "billsec": _NUM, "hangup_cause": {"type": ["string", "null"]},
        "hangup_side": {"type": ["string", "null"]}, "sip_status": {"type": ["integer", "null"]},
        "digits": {"type": "string"}, "codec": {"type": ["string", "null"]},
        "hold_seconds": _NUM, "agent": {"type": ["string", "null"]},
        "queue": {"type": ["string", "null"]}, "disposition": {"type": ["string", "null"]},
        "trunk": {"type": ["string", "null"]},
        "trunk_call_id": {"type": ["string", "null"]},
    },
    "required": ["id", "caller", "called", "start"],
}


_SESSION = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "supervisor": {"type": "string"},
                   "agent": {"type": ["string", "null"]},
                   "mode": {"enum": ["listen", "whisper", "barge"]}},
}
_SESSION_ERRORS = {"400": "body is not a JSON object", "403": "not allowed for this user",
                   "404": "no such session, agent or call", "409": "conflicts with the state",
                   "422": "a field is missing or invalid"}


def _supervisor_paths() -> dict[str, Any]:
    """callcenter/web/supervisor_api.py."""
    sid = [_p("id", {"type": "string"}, "session id")]
    body = {"type": "object", "properties": {
        "supervisor": {"type": "string"}, "agent": {"type": "string"},
        "call": {"type": "string"}, "mode": {"enum": ["listen", "whisper", "barge"]}}}
    create = _op("Start a listen/whisper/barge session: the supervisor's phone is called",
                 _json(_SESSION), admin=True, body=body, errors=_SESSION_ERRORS)
    create["responses"]["201"] = create["responses"].pop("200")
    create["responses"]["201"]["description"] = "the session"
    return {
        "/api/supervisor/sessions": {
            "get": _op("Live sessions and the session log",
                       _json({"type": "object", "properties": {
                           "live": {"type": "array", "items": _SESSION},
                           "history": {"type": "array", "items": {"type": "object"}}}}),
                       params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                                  "how many log entries (default 50)")],
                       errors={"400": "limit is not a number",
                               "404": "supervisor sessions are not available"}),
            "post": create,
        },
        "/api/supervisor/sessions/{id}": {
            "get": _op("One session", _json(_SESSION), params=sid,
                       errors={"404": "no such session"}),
            "patch": _op("Change the mode", _json(_SESSION), admin=True, params=sid,
                         body={"type": "object", "properties": {
                             "mode": {"enum": ["listen", "whisper", "barge"]}}},
                         errors=_SESSION_ERRORS),
            "delete": _op("Hang up the supervisor; the call goes on", _json(_SESSION),
                          admin=True, params=sid, errors=_SESSION_ERRORS),
        },
    }


_CALLBACK = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "queue": {"type": "string"}, "number": {"type": "string"},
        "caller": {"type": "string"}, "call_id": {"type": "string"},
        "status": {"enum": ["open", "dialing", "done", "failed", "cancelled"]},
        "entered": _NUM, "next_at": _NUM,
        "at": {"type": ["string", "null"], "description": "next_at as local ISO 8601 time"},
        "attempts": {"type": ["integer", "null"]}, "outcome": {"type": ["string", "null"]},
        "agent": {"type": ["string", "null"], "description": "the agent who took it last"},
        "booked_by": {"type": ["string", "null"],
                      "description": "the agent whose login booked it (else empty)"},
    },
    "required": ["id", "queue", "number", "status"],
}
_AT = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
       "description": "ISO 8601 local time in the server's timezone (or with an offset), or "
                      "unix seconds; past or absent: at once"}


def _callback_paths() -> dict[str, Any]:
    """callcenter/web/callback_api.py."""
    cid = [_p("id", {"type": "integer"}, "the request's id")]
    change = {"404": "no such callback (or not the user's: a supervisor's queues, an agent's "
                     "bookings and the requests it took)",
              "409": "the callback is finished or being dialled"}
    book = _op("Book a callback: the queue's agent is rung at the time, then the number",
               _json(_CALLBACK), admin=True, errors={"400": "bad queue, number or time"},
               body={"type": "object", "required": ["queue", "number"], "properties": {
                   "queue": {"type": "string"}, "number": {"type": "string"}, "at": _AT}})
    book["responses"]["201"] = book["responses"].pop("200")
    book["responses"]["201"]["description"] = "the request"
    return {
        "/api/callbacks": {
            "get": _op("Callback requests, oldest first", _json({"type": "array",
                                                                  "items": _CALLBACK}),
                       params=[_q("queue", {"type": "string"}, "only this queue"),
                               _q("state", {"enum": ["open", "dialing", "done", "failed",
                                                      "cancelled"]}, "only this state")],
                       errors={"400": "unknown queue or state"}),
            "post": book,
        },
        "/api/callbacks/{id}": {
            "patch": _op("Move an open request to another time", _json(_CALLBACK), admin=True,
                         params=cid, body={"type": "object", "required": ["at"],
                                           "properties": {"at": _AT}},
                         errors={"400": "bad time", **change}),
            "delete": _op("Cancel a request", _json(_CALLBACK), admin=True, params=cid,
                          errors=change),
        },
    }


def spec() -> dict[str, Any]:
    """The OpenAPI document."""
    paths: dict[str, Any] = {
        "/api/health": {"get": {
            "summary": "Liveness: status, uptime, calls in progress, registrations",
            "security": [], "responses": {
                "200": _HEALTH, "503": {**_HEALTH, "description": "draining: no new calls"}}}},
        "/api/drain": {"post": {
            "summary": "Drain, as SIGTERM: new calls get 503, the server stops once the calls "
                       "in progress end or drain_timeout passes",
            "responses": {"202": _json({"type": "object", "properties": {
                "status": {"const": "draining"}, "calls_in_progress": {"type": "integer"},
                "drain_timeout": {"type": "number"}}}, "draining"),
                "401": _err("missing or unknown bearer token"),
                "403": _err("the token may only read")}}},
        "/api/openapi.json": {"get": _op("This document", _json({"type": "object"}),
                                         secured=False)},
        "/api/calls": {"get": _op(
            "Live calls (legs, states) and the latest CDRs",
            _json({"type": "object", "properties": {
                "live": {"type": "array", "items": {"type": "object"}},
                "history": {"type": "array", "items": _CDR}}, "required": ["live", "history"]}),
            params=[_q("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                       "how many CDRs (default 50)")],
            errors={"400": "limit is not a number"})},
        "/api/calls/{id}": {"get": _op(
            "One CDR with its event timeline (DTMF, IVR nodes, connections)",
            _json({"allOf": [_CDR, {"type": "object", "properties": {
                "events": {"type": "array", "items": {"type": "object"}}}}]}),
            params=[_p("id", {"type": "string"}, "the call's id (calls.id)")],
            errors={"404": "no such call"})},
        "/api/registrations": {"get": _op(
            "Registered contacts, expiry, reachability",
            _json({"type": "array", "items": {"type": "object", "properties": {
                "user": {"type": "string"}, "contact": {"type": "string"},
                "expires_in": {"type": "number"}, "reachable": {"type": "boolean"}}}}))},
        "/api/queues": {"get": _op(
            "Live queue figures since the server started",
            _json({"type": "array", "items": _QUEUE}), errors={"404": "the ACD is not running"})},
        "/api/agents": {"get": _op(
            "Every agent's state, time in state and figures",
            _json({"type": "array", "items": _AGENT}), errors={"404": "the ACD is not running"})},
        "/api/agents/{id}": {"get": _op(
            "One agent's state and figures (an agent reads itself)", _json(_AGENT),
            params=[_p("id", {"type": "string"}, "agent (user) id")],
            errors={"404": "no such agent (or not one of yours)"})},
        "/api/agents/{id}/{command}": {"post": _op(
            "Log an agent in or out (of one queue), pause (with a reason) or unpause; or code "
            "the agent's last inbound queue call (disposition: the call, queue, code and name)",
            _json(_AGENT, "the agent's new state"), admin=True,
            params=[_p("id", {"type": "string"}, "agent (user) id"),
                    _p("command", {"enum": ["login", "logout", "pause", "unpause",
                                            "disposition"]}, "what to do")],
            body={"type": "object", "properties": {
                "reason": {"type": "string", "description": "pause: a pause_reasons name or code"},
                "queue": {"type": "string", "description": "login/logout: that queue only"},
                "code": {"type": "string", "description": "disposition: the queue's code"},
                "call": {"type": "string", "description": "disposition: that call (default: "
                         "the agent's last queue call of the hour)"}}},
            errors={"400": "bad body, unknown queue, pause reason or disposition code",
                    "404": "no such agent or command (disposition: no such recent call)",
                    "409": "not allowed in the agent's state"})},
        "/api/events/stream": {"get": _op(
            "Live events as server-sent events (event: <type>, data: JSON with schema 1); "
            "a supervisor limited to some queues gets only those naming them or their agents",
            {"description": "an endless text/event-stream",
             "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            params=[_q("types", {"type": "string"},
                       "comma-separated type prefixes, e.g. queue.,agent."),
                    _q("token", {"type": "string"},
                       "the bearer token, for clients that cannot send headers")])},
        "/api/cdr.csv": {"get": _op(
            "CDRs of the days from..to (inclusive, config timezone) as CSV (a supervisor "
            "limited to some queues: the calls of those queues)",
            {"description": "CSV with a header row",
             "content": {"text/csv": {"schema": {"type": "string"}}}},
            params=[*_DAYS, _q("token", {"type": "string"}, "the bearer token, for plain links")],
            errors={"400": "missing or bad dates"})},
        "/api/queue-log": {"get": _op(
            "The queue log of the days from..to in Asterisk's queue_log format "
            "(epoch|callid|queue|agent|EVENT|data..., as `callcenter queue-log`)",
            {"description": "one line an event",
             "content": {"text/plain": {"schema": {"type": "string"}}}},
            params=_DAYS, errors={"400": "missing or bad dates"})},
        "/api/stats/agents": {"get": _op(
            "Per agent, one day (config timezone): calls and talk (every call the agent "
            "talked on; queue_calls, queue_talk: a queue's), wrap-up, pause by reason, "
            "logged-in time, occupancy (an agent gets itself)",
            _json({"type": "object", "properties": {
                "date": _DATE, "agents": {"type": "array", "items": {"type": "object",
                                                                     "properties": {
                    "agent": {"type": "string"}, "calls": {"type": "integer"},
                    "talk": {"type": "number"}, "queue_calls": {"type": "integer"},
                    "queue_talk": {"type": "number"}, "wrap_up": {"type": "number"},
                    "paused": {"type": "number"}, "pause_by_reason": {"type": "object"},
                    "logged_in": {"type": "number"}, "occupancy": _NUM}}}}}),
            params=[_q("date", _DATE, "the day (default: today)")],
            errors={"400": "bad date"})},
        "/api/stats/intervals": {"get": _op(
            "Calls offered/answered/abandoned and service level per interval of a day (config timezone)",
            _json({"type": "object", "properties": {
                "date": _DATE, "minutes": {"type": "integer"},
                "intervals": {"type": "array", "items": {"type": "object", "properties": {
                    "start": {"type": "string"}, "offered": {"type": "integer"},
                    "answered": {"type": "integer"}, "abandoned": {"type": "integer"},
                    "service_level": _NUM}}}}}),
            params=[_q("date", _DATE, "the day (default: today)"),
                    _q("minutes", {"enum": [15, 30, 60]}, "interval length (default 15)"),
                    _q("queue", {"type": "string"}, "only this queue")],
            errors={"400": "bad date or minutes"})},
    }
    paths.update(_supervisor_paths())
    paths.update(_callback_paths())
    for path, item in _EXTRA.items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {"title": "callcenter API", "version": "1",
                 "description": "Bearer tokens come from http.tokens in config.yaml (a read "
                 "token may GET, an admin token may also change things) or from POST "
                 "/api/login (a user's role: agent or supervisor; a route the role may not "
                 "use answers 403, an object out of its scope 404)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
        "paths": paths,
    }
