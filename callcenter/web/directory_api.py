"""Users and queues by API (admin): ``GET /api/users`` (the file's and the API's, no
passwords), ``POST /api/users {"user": "1005", "password": "...", "role": "agent", "name":
"..."}`` (201; 422 with the same checks as the file; 409 when the user exists), ``DELETE
/api/users/{user}`` (409 for a user of the file, 404 for one not stored), ``PATCH
/api/users/{user}`` (some of name, password, role, skills, web_password; of a file user only
a web_password the file does not give); ``POST /api/queues``
(a queue's settings as in config.yaml, no members), ``PATCH`` and ``DELETE
/api/queues/{name}``; ``GET/POST /api/pause-reasons``, ``DELETE /api/pause-reasons/{code}``
(reading the pause reasons: any user)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callcenter.calls.directory import DirectoryConflict, DirectoryInvalid
from callcenter.web import openapi
from callcenter.web.auth import Auth
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.directory import ApiDirectory


def register(router: Router, auth: Auth, users: ApiDirectory) -> None:
    def listing(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(users.listing())

    def adding(add: Callable[..., dict[str, Any]],
               key: str | None = None) -> Callable[[HttpRequest], HttpResponse]:
        """POST (``key`` None: 201) or PATCH of the object named by path parameter ``key``."""
        def handler(req: HttpRequest) -> HttpResponse:
            auth.require(req, "admin")
            args = [req.params[key]] if key else []
            try:
                return HttpResponse.json(add(*args, req.json(), who=auth.who(req)),
                                         200 if key else 201)
            except DirectoryInvalid as exc:
                return HttpResponse.json({"error": str(exc), "errors": exc.errors}, 422)
            except DirectoryConflict as exc:
                raise HttpError(409, str(exc)) from None
            except KeyError:
                raise HttpError(404, f"{args[0]!r} was not added by the API") from None
        return handler

    def reasons(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(users.pause_reasons())

    def removing(remove: Callable[..., None], key: str,
                 what: str) -> Callable[[HttpRequest], HttpResponse]:
        def handler(req: HttpRequest) -> HttpResponse:
            auth.require(req, "admin")
            name = req.params[key]
            try:
                remove(name, who=auth.who(req))
            except DirectoryConflict as exc:
                raise HttpError(409, str(exc)) from None
            except KeyError:
                raise HttpError(404, f"no {what} {name!r} added by the API") from None
            return HttpResponse.json({key: name, "removed": True})
        return handler

    router.add("GET", "/api/users", listing)
    router.add("POST", "/api/users", adding(users.add))
    router.add("DELETE", "/api/users/{user}", removing(users.remove, "user", "user"))
    router.add("PATCH", "/api/users/{user}", adding(users.change, "user"))
    router.add("POST", "/api/queues", adding(users.add_queue))
    router.add("PATCH", "/api/queues/{name}", adding(users.change_queue, "name"))
    router.add("DELETE", "/api/queues/{name}", removing(users.remove_queue, "name", "queue"))
    router.add("GET", "/api/pause-reasons", reasons)
    router.add("POST", "/api/pause-reasons", adding(users.add_pause_reason))
    router.add("DELETE", "/api/pause-reasons/{code}",
               removing(users.remove_pause_reason, "code", "pause reason"))


def _err(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


_SKILLS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0,
                                                      "maximum": 100}}
_USER = {"type": "object", "required": ["user", "role", "source"], "properties": {
    "user": {"type": "string"}, "role": {"enum": ["agent", "supervisor"]},
    "name": {"type": "string"}, "source": {"enum": ["file", "api"]}, "skills": _SKILLS,
    "web_password": {"type": "boolean", "description": "one is set"},
    "added_by": {"type": ["string", "null"]}, "added_at": {"type": ["number", "null"]}}}
_USER_BODY = {"password": {"type": "string", "description": "SIP (stored as its HA1)"},
              "role": {"enum": ["agent", "supervisor"]}, "name": {"type": "string"},
              "skills": _SKILLS, "web_password": {"type": ["string", "null"], "description":
                                                  "for the API login only (stored as scrypt)"}}
_UNAUTH, _READ_ONLY = _err("missing or unknown bearer token"), _err("the token may only read")
_REASON = {"type": "object", "required": ["code", "name", "source"], "properties": {
    "code": {"type": "string", "pattern": "^[0-9]{1,2}$"}, "name": {"type": "string"},
    "source": {"enum": ["file", "api"]}, "added_by": {"type": ["string", "null"]},
    "added_at": {"type": ["number", "null"]}}}


def _param(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def _patch(what: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {"summary": f"Change a {what} added by the API in place: stored, audited, live at "
                       "once (waiting callers keep their places)",
            "parameters": _param(what),
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "properties": body}}}},
            "responses": {"200": {"description": "changed", "content": {"application/json": {
                "schema": answer}}}, "400": _err("body is not JSON"),
                "404": _err(f"no such {what} added by the API"),
                "409": _err(f"a {what} of the config file (the file wins)"),
                "422": _err(f"not a valid {what} (the file's checks)"),
                "401": _UNAUTH, "403": _READ_ONLY}}
openapi.add_paths({
    "/api/users": {
        "get": {"summary": "SIP users: the config file's, then those added by the API",
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "array", "items": _USER}}}}, "401": _UNAUTH}},
        "post": {"summary": "Add a user: stored (digest HA1 only), audited, live at once",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["user", "password", "role"],
                                "properties": {"user": {"type": "string"}, **_USER_BODY}}}}},
                 "responses": {"201": {"description": "added", "content": {
                     "application/json": {"schema": _USER}}},
                     "400": _err("body is not JSON"),
                     "409": _err("the user exists"),
                     "422": _err("not a valid user (the file's checks)"),
                     "401": _UNAUTH, "403": _READ_ONLY}}},
    "/api/users/{user}": {"patch": _patch("user", _USER_BODY, _USER) | {
        "description": "A user of the config file: only `{\"web_password\": ...}`, when the "
                       "file gives it none (stored apart; 409 otherwise)."}, "delete": {
        "summary": "Remove a user added by the API: its call in progress goes on",
        "parameters": [{"name": "user", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "removed", "content": {"application/json": {
            "schema": {"type": "object"}}}},
            "404": _err("no such user added by the API"),
            "409": _err("a user of the config file (the file wins)"),
            "401": _UNAUTH, "403": _READ_ONLY}}},
    "/api/queues": {"post": {
        "summary": "Add a queue (settings as in config.yaml, no members): stored, audited, "
                   "taking calls at once",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "strategy": {"type": "string"}}}}}},
        "responses": {"201": {"description": "the stored settings", "content": {
            "application/json": {"schema": {"type": "object"}}}},
            "400": _err("body is not JSON"), "409": _err("the queue exists"),
            "422": _err("not a valid queue (the file's checks)"),
            "401": _UNAUTH, "403": _READ_ONLY}}},
    "/api/queues/{name}": {"patch": {**_patch("queue", {"strategy": {"type": "string"}}, {
        "type": "object"}), "parameters": _param("name")}, "delete": {
        "summary": "Remove a queue added by the API: the callers in it are still served",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "removed", "content": {"application/json": {
            "schema": {"type": "object"}}}},
            "404": _err("no such queue added by the API"),
            "409": _err("a queue of the config file, or another queue overflows to it"),
            "401": _UNAUTH, "403": _READ_ONLY}}},
    "/api/pause-reasons": {
        "get": {"summary": "Pause reasons: the config file's, then those added by the API",
                "responses": {"200": {"description": "OK", "content": {"application/json": {
                    "schema": {"type": "array", "items": _REASON}}}}, "401": _UNAUTH}},
        "post": {"summary": "Add a pause reason: stored, audited, usable at once",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["code", "name"], "properties": {
                         "code": {"type": "string"}, "name": {"type": "string"}}}}}},
                 "responses": {"201": {"description": "added", "content": {
                     "application/json": {"schema": _REASON}}},
                     "400": _err("body is not JSON"), "409": _err("the code or name is in use"),
                     "422": _err("not a valid pause reason"),
                     "401": _UNAUTH, "403": _READ_ONLY}}},
    "/api/pause-reasons/{code}": {"delete": {
        "summary": "Remove a pause reason added by the API",
        "parameters": _param("code"),
        "responses": {"200": {"description": "removed", "content": {"application/json": {
            "schema": {"type": "object"}}}},
            "404": _err("no such pause reason added by the API"),
            "409": _err("a pause reason of the config file (the file wins)"),
            "401": _UNAUTH, "403": _READ_ONLY}}},
})
