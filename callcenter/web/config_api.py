"""``POST /api/config/reload``: re-read config.yaml now (admin), as SIGHUP and
``callcenter reload`` do. 200 with what was applied and what needs a restart; 422 with the
file:line:col errors when the file is invalid (the running configuration stays).
``GET /api/audit?since=&limit=``: who changed what, when (reloads, members...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callcenter.web import openapi
from callcenter.web.auth import Auth
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router


def register(router: Router, auth: Auth, reload: Callable[[str], dict[str, Any]],
             audit: Callable[..., list[dict[str, Any]]]) -> None:
    """``reload(who)``: the reload's JSON; ``audit(limit, since=)``: the audit rows."""
    def post(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        result = reload(auth.who(req))
        return HttpResponse.json(result, 422 if result["status"] == "error" else 200)

    def trail(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        try:
            limit = max(1, min(10000, int(req.arg("limit", "1000") or 1000)))
            since = req.arg("since")
            return HttpResponse.json(audit(limit, since=None if since is None else float(since)))
        except ValueError:
            raise HttpError(400, "limit and since are numbers") from None

    router.add("POST", "/api/config/reload", post)
    router.add("GET", "/api/audit", trail)


def _err(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


_RESULT = {"type": "object", "required": ["status", "errors", "changed", "restart_required"],
           "properties": {
               "status": {"enum": ["applied", "unchanged", "error"]},
               "errors": {"type": "array", "items": {"type": "string"}},
               "changed": {"type": "array", "items": {"type": "string"}},
               "restart_required": {"type": "array", "items": {"type": "string"}}}}
openapi.add_paths({"/api/config/reload": {"post": {
    "summary": "Re-read config.yaml: validated whole, applied as a diff (calls go on)",
    "responses": {
        "200": {"description": "applied (or unchanged); restart_required lists changed keys "
                               "only a restart applies",
                "content": {"application/json": {"schema": _RESULT}}},
        "422": {"description": "the file is invalid: errors as file:line:col, nothing applied",
                "content": {"application/json": {"schema": _RESULT}}},
        "401": _err("missing or unknown bearer token"), "403": _err("the token may only read")},
}}, "/api/audit": {"get": {
    "summary": "The audit trail: who changed what, when (config reloads, queue members...)",
    "parameters": [
        {"name": "since", "in": "query", "schema": {"type": "number"},
         "description": "from this unix time on"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                     "maximum": 10000},
         "description": "at most this many rows, oldest first (default 1000)"}],
    "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "array", "items": {"type": "object", "required": [
                "ts", "who", "action", "object", "detail"], "properties": {
                "ts": {"type": "number"}, "who": {"type": "string"},
                "action": {"type": "string"}, "object": {"type": "string"},
                "detail": {"type": "object"}}}}}}},
        "400": _err("limit or since is not a number"),
        "401": _err("missing or unknown bearer token")}}}})
