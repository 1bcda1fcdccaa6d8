"""Supervisor routes of the JSON API: listen, whisper and barge sessions.

``register(router, auth, service)`` adds them; reading needs any token, changing an admin one::

    POST   /api/supervisor/sessions        {"supervisor": "2001", "agent": "1001" | "call": id,
                                            "mode": "listen|whisper|barge"} -> 201, the session;
                                           the server calls the supervisor's phone and joins it
    PATCH  /api/supervisor/sessions/{id}   {"mode": "barge"}
    DELETE /api/supervisor/sessions/{id}   hangs up the supervisor; the call goes on
    GET    /api/supervisor/sessions        {"live": [...], "history": [...]} (?limit=N)
    GET    /api/supervisor/sessions/{id}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callcenter.supervisor.service import SupervisorError
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.supervisor.service import SupervisorService
    from callcenter.web.auth import Auth


def register(router: Router, auth: Auth, service: SupervisorService) -> None:
    """Add the supervisor routes to ``router``."""

    def body(req: HttpRequest) -> dict[str, Any]:
        data = req.json()
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        return data

    def text(data: dict[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise HttpError(422, f"{key} must be a string")
        return str(value)

    def create(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        data = body(req)
        supervisor, mode = text(data, "supervisor"), text(data, "mode") or "listen"
        if supervisor is None:
            raise HttpError(422, "supervisor is required")
        try:
            session = service.start_api(supervisor, mode, agent=text(data, "agent"),
                                          call_id=text(data, "call"))
        except SupervisorError as exc:
            raise HttpError(exc.status, str(exc)) from None
        return HttpResponse.json(session.to_dict(), 201)

    def change(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        mode = text(body(req), "mode")
        if mode is None:
            raise HttpError(422, "mode is required")
        try:
            session = service.set_mode(req.params["id"], mode)
        except SupervisorError as exc:
            raise HttpError(exc.status, str(exc)) from None
        return HttpResponse.json(session.to_dict())

    def delete(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        try:
            session = service.end(req.params["id"])
        except SupervisorError as exc:
            raise HttpError(exc.status, str(exc)) from None
        return HttpResponse.json(session.to_dict())

    def listing(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        try:
            limit = max(1, min(1000, int(req.arg("limit", "50") or 50)))
        except ValueError:
            raise HttpError(400, "limit must be a number") from None
        return HttpResponse.json({"live": service.list(), "history": service.log.recent(limit)})

    def one(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        found = service.get(req.params["id"])
        if found is None:
            raise HttpError(404, "no such session")
        return HttpResponse.json(found)

    router.add("POST", "/api/supervisor/sessions", create)
    router.add("GET", "/api/supervisor/sessions", listing)
    router.add("PATCH", "/api/supervisor/sessions/{id}", change)
    router.add("DELETE", "/api/supervisor/sessions/{id}", delete)
    router.add("GET", "/api/supervisor/sessions/{id}", one)
