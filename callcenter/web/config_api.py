"""``POST /api/config/reload``: re-read config.yaml now (admin), as SIGHUP and
``callcenter reload`` do. 200 with what was applied and what needs a restart; 422 with the
file:line:col errors when the file is invalid (the running configuration stays)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callcenter.web import openapi
from callcenter.web.auth import Auth
from callcenter.web.http import HttpRequest, HttpResponse, Router

__all__ = ["register"]


def register(router: Router, auth: Auth, reload: Callable[[], dict[str, Any]]) -> None:
    def post(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        result = reload()
        return HttpResponse.json(result, 422 if result["status"] == "error" else 200)

    router.add("POST", "/api/config/reload", post)


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
}}})
