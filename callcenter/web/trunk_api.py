"""``GET /api/trunks``: each trunk's outbound target, its calls now (``channels``) and, when it
registers, its registration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from callcenter.web import openapi
from callcenter.web.http import HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.config import Trunk
    from callcenter.sip.registration_client import RegistrationClient
    from callcenter.web.auth import Auth


def register(
    router: Router, auth: Auth, trunks: list[Trunk], registrations: Mapping[str, RegistrationClient],
    now: Callable[[], float], channels: Callable[[str], int] = lambda name: 0,
) -> None:
    def show(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        at = now()
        out = []
        for t in trunks:
            client = registrations.get(t.name)
            out.append({"name": t.name, "host": t.host, "port": t.port, "transport": t.transport,
                        "auth": t.auth is not None, "inbound": t.inbound,
                        "channels": channels(t.name), "max_channels": t.max_channels,
                        "registration": client.state(at) if client is not None else None})
        return HttpResponse.json(out)

    router.add("GET", "/api/trunks", show)


_REGISTRATION: dict[str, Any] = {"type": ["object", "null"], "properties": {
    "state": {"enum": ["idle", "registering", "registered", "failed"]},
    "registrar": {"type": "string"}, "user": {"type": "string"}, "domain": {"type": "string"},
    "expires_in": {"type": ["integer", "null"]},
    "last_status": {"type": ["integer", "null"]}, "last_reason": {"type": ["string", "null"]},
    "failures": {"type": "integer"}, "next_attempt_in": {"type": ["number", "null"]},
    "attempts": {"type": "integer"}, "auth_failures": {"type": "integer"}}}

openapi.add_paths({"/api/trunks": {"get": {
    "summary": "Trunks: where outbound calls go, and the state of our registration at each",
    "tags": ["trunks"], "security": [{"bearer": []}],
    "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "host": {"type": "string"},
                "port": {"type": "integer"}, "transport": {"type": "string"},
                "auth": {"type": "boolean"}, "inbound": {"enum": ["ip", "register", "both"]},
                "channels": {"type": "integer"}, "max_channels": {"type": ["integer", "null"]},
                "registration": _REGISTRATION}}}}}},
        "401": {"description": "missing or unknown bearer token", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    },
}}})
