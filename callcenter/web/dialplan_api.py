"""Dialplan validation and reload over HTTP (the same checks as ``callcenter check``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callcenter.web import openapi
from callcenter.web.http import HttpRequest, HttpResponse, Router
from ivr.dialplan import DialplanError, load_dialplans

if TYPE_CHECKING:
    from callcenter.web.auth import Auth
    from ivr.watcher import DialplanWatcher


def register(router: Router, auth: Auth, watcher: DialplanWatcher) -> None:
    def summary() -> dict[str, Any]:
        plan = watcher.current
        return {"lines": [line.number for line in plan.lines], "errors": watcher.errors}

    def show(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(summary())

    def validate(req: HttpRequest) -> HttpResponse:
        """Check the files on disk now, without activating them."""
        auth.require(req)
        try:
            plan = load_dialplans(watcher.directory, watcher.sounds, trunks=watcher.trunks)
        except DialplanError as exc:
            return HttpResponse.json({"valid": False, "errors": exc.errors})
        return HttpResponse.json({"valid": True, "errors": [],
                                  "lines": [line.number for line in plan.lines]})

    def reload(req: HttpRequest) -> HttpResponse:
        """Reload now (the server also does so within a second of a change on its own)."""
        auth.require(req, "admin")
        result = watcher.poll()
        if isinstance(result, DialplanError):
            return HttpResponse.json({"reloaded": False, **summary()}, 422)
        return HttpResponse.json({"reloaded": result is not None, **summary()})

    router.add("GET", "/api/dialplans", show)
    router.add("POST", "/api/dialplans/validate", validate)
    router.add("POST", "/api/dialplans/reload", reload)


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = schema or {"type": "object", "properties": {"error": {"type": "string"}}}
    return {"description": description, "content": {"application/json": {"schema": body}}}


_STATE = {"type": "object", "properties": {
    "lines": {"type": "array", "items": {"type": "string"}},
    "errors": {"type": "array", "items": {"type": "string"}},
}}
_AUTH = {"401": _resp("missing or unknown bearer token")}

openapi.add_paths({
    "/api/dialplans": {"get": {
        "summary": "The active dialplan's lines and the errors of the last failed reload",
        "tags": ["dialplans"], "security": [{"bearer": []}],
        "responses": {"200": _resp("OK", _STATE), **_AUTH},
    }},
    "/api/dialplans/validate": {"post": {
        "summary": "Validate the dialplan files on disk (file:line:col errors); activates nothing",
        "tags": ["dialplans"], "security": [{"bearer": []}],
        "responses": {"200": _resp("OK", {"type": "object", "properties": {
            "valid": {"type": "boolean"}, "errors": {"type": "array", "items": {"type": "string"}},
            "lines": {"type": "array", "items": {"type": "string"}}}}), **_AUTH},
    }},
    "/api/dialplans/reload": {"post": {
        "summary": "Reload changed dialplan files now; a file that does not validate is never "
                   "activated (422 with the errors, the previous version stays)",
        "tags": ["dialplans"], "security": [{"bearer": []}],
        "responses": {"200": _resp("OK", _STATE), "422": _resp("not valid", _STATE), **_AUTH,
                      "403": _resp("the token may only read")},
    }},
})
