"""``POST /api/login {"user": "1001", "password": "..."}``: a user's own API token.

200 ``{"token", "role", "expires"}`` (unix time; the token lasts ``SESSION_SECONDS``) for a
user with its SIP password or its ``web_password`` (set by the API, kept as scrypt); 401 for a wrong password or an unknown user
(the same answer); after ``sip.auth.max_failures`` failures within ``failure_window`` seconds
the user is locked out for ``block_for`` seconds (429), as for SIP digest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callcenter.config.web_password import web_password_matches
from callcenter.sip.auth import FailureLimiter, password_matches
from callcenter.web import openapi
from callcenter.web.auth import Auth
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.config import Config


def register(router: Router, auth: Auth, config: Callable[[], Config]) -> None:
    limits = config().sip.auth
    limiter = FailureLimiter(max_failures=limits.max_failures, window=limits.failure_window,
                             block_for=limits.block_for)

    def login(req: HttpRequest) -> HttpResponse:
        body: Any = req.json()
        if not isinstance(body, dict) or not all(
                isinstance(body.get(k), str) for k in ("user", "password")):
            raise HttpError(400, 'expected {"user": "...", "password": "..."}')
        name, now = body["user"], auth.wall()
        if limiter.is_blocked(name, now):
            raise HttpError(429, "too many failed logins: try again later")
        cfg = config()
        user = cfg.user(name)
        given = body["password"]
        if user is None or not (
                password_matches(user.password, user=name, realm=cfg.sip.realm, given=given)
                or user.web_password is not None
                and web_password_matches(user.web_password, given)):
            limiter.record_failure(name, now)
            raise HttpError(401, "wrong user or password")
        limiter.record_success(name)
        token, session = auth.login(user.user, user.role)
        return HttpResponse.json({"token": token, "role": session.role,
                                  "expires": session.expires})

    router.add("POST", "/api/login", login)


def _err(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


openapi.add_paths({"/api/login": {"post": {
    "summary": "Log a user in with its SIP password or its web_password: a bearer token "
               "for its role",
    "security": [],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["user", "password"], "properties": {
            "user": {"type": "string"}, "password": {"type": "string"}}}}}},
    "responses": {
        "200": {"description": "logged in", "content": {"application/json": {"schema": {
            "type": "object", "required": ["token", "role", "expires"], "properties": {
                "token": {"type": "string"}, "role": {"enum": ["agent", "supervisor"]},
                "expires": {"type": "number"}}}}}},
        "400": _err("bad body"), "401": _err("wrong user or password"),
        "429": _err("locked out after too many failures")}}}})
