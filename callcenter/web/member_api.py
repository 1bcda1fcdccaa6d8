"""Queue member routes of the JSON API (reading needs any token, changing an admin one)::

    GET    /api/queues/{name}                   its settings and members
    POST   /api/queues/{name}/members           {"agent": "1001", "penalty": 0, "tier": 1}
    PATCH  /api/queues/{name}/members/{agent}   {"penalty": 2} (and/or "tier"), in place
    DELETE /api/queues/{name}/members/{agent}

Members added here are dynamic: stored in the database, loaded again at start after the config
file's. The file wins for what it defines: its members cannot be added or removed here (409).
Each change is audited (the ``audit`` table and an ``audit.changed`` event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callcenter.calls.members import MemberConflict
from callcenter.web import openapi
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.members import QueueMembers
    from callcenter.web.auth import Auth


def _int(body: dict[str, Any], key: str, default: int, least: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise HttpError(400, f"{key}: expected a whole number >= {least}")
    return value


def register(router: Router, auth: Auth, members: QueueMembers) -> None:
    """Add the member routes to ``router``."""

    def view(name: str) -> dict[str, Any]:
        q = members.cfg.queue(name)
        if q is None or members.queues.engine is None:
            raise HttpError(404, f"no queue {name!r}")
        return {"name": name, "settings": q.model_dump(mode="json", exclude={"members"}),
                "members": members.listing(name)}

    def show(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        return HttpResponse.json(view(req.params["name"]))

    def add(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name = req.params["name"]
        view(name)  # 404 first
        body = req.json()
        agent = body.get("agent") if isinstance(body, dict) else None
        if isinstance(agent, int) and not isinstance(agent, bool):
            agent = str(agent)
        if not isinstance(body, dict) or not isinstance(agent, str) or not agent:
            raise HttpError(400, 'expected {"agent": "1001", "penalty": 0, "tier": 1}')
        penalty, tier = _int(body, "penalty", 0, 0), _int(body, "tier", 1, 1)
        try:
            members.add(name, agent, penalty=penalty, tier=tier, who=auth.who(req))
        except KeyError:
            raise HttpError(404, f"no agent {agent!r}") from None
        except MemberConflict as exc:
            raise HttpError(409, str(exc)) from None
        return HttpResponse.json(next(m for m in members.listing(name) if m["agent"] == agent),
                                 201)

    def change(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name, agent = req.params["name"], req.params["agent"]
        view(name)
        body = req.json()
        if not isinstance(body, dict) or not body or not body.keys() <= {"penalty", "tier"}:
            raise HttpError(400, 'expected {"penalty": 0} and/or {"tier": 1}')
        try:
            members.change(name, agent, who=auth.who(req),
                           penalty=_int(body, "penalty", 0, 0) if "penalty" in body else None,
                           tier=_int(body, "tier", 1, 1) if "tier" in body else None)
        except KeyError:
            raise HttpError(404, f"{agent!r} is not a dynamic member of {name}") from None
        except MemberConflict as exc:
            raise HttpError(409, str(exc)) from None
        return HttpResponse.json(next(m for m in members.listing(name) if m["agent"] == agent))

    def remove(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        name, agent = req.params["name"], req.params["agent"]
        view(name)
        try:
            members.remove(name, agent, who=auth.who(req))
        except KeyError:
            raise HttpError(404, f"{agent!r} is not a member of {name}") from None
        except MemberConflict as exc:
            raise HttpError(409, str(exc)) from None
        return HttpResponse.json(view(name))

    router.add("GET", "/api/queues/{name}", show)
    router.add("POST", "/api/queues/{name}/members", add)
    router.add("PATCH", "/api/queues/{name}/members/{agent}", change)
    router.add("DELETE", "/api/queues/{name}/members/{agent}", remove)


def _described() -> None:
    def err(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}

    def ok(status: str, text: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {status: {"description": text, "content": {"application/json": {
            "schema": schema}}}, "401": err("missing or unknown bearer token")}

    member = {"type": "object", "required": ["agent", "penalty", "tier", "source"],
              "properties": {"agent": {"type": "string"}, "penalty": {"type": "integer"},
                             "tier": {"type": "integer"}, "source": {"enum": ["file", "api"]},
                             "added_by": {"type": ["string", "null"]},
                             "added_at": {"type": ["number", "null"]}}}
    queue = {"type": "object", "required": ["name", "settings", "members"],
             "properties": {"name": {"type": "string"}, "settings": {"type": "object"},
                            "members": {"type": "array", "items": member}}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "the queue"}
    agent = {"name": "agent", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "the agent (user) id"}
    conflict = err("already a member, or a member from the config file (the file wins)")
    openapi.add_paths({
        "/api/queues/{name}": {"get": {
            "summary": "A queue's settings and members (from the file, then added by API)",
            "parameters": [name],
            "responses": {**ok("200", "the queue", queue), "404": err("no such queue")}}},
        "/api/queues/{name}/members": {"post": {
            "summary": "Add a dynamic member: stored, kept over restarts, audited",
            "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["agent"], "properties": {
                    "agent": {"type": "string"}, "penalty": {"type": "integer", "minimum": 0},
                    "tier": {"type": "integer", "minimum": 1}}}}}},
            "responses": {**ok("201", "the member", member), "400": err("bad body"),
                          "403": err("the token may only read"),
                          "404": err("no such queue or agent"), "409": conflict}}},
        "/api/queues/{name}/members/{agent}": {"patch": {
            "summary": "Change a dynamic member's penalty or tier in place (stored, audited; "
                       "callers waiting keep their places)",
            "parameters": [name, agent],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "penalty": {"type": "integer", "minimum": 0},
                    "tier": {"type": "integer", "minimum": 1}}}}}},
            "responses": {**ok("200", "the member", member), "400": err("bad body"),
                          "403": err("the token may only read"),
                          "404": err("no such queue, or not a dynamic member"),
                          "409": conflict}}, "delete": {
            "summary": "Remove a dynamic member: its call in progress goes on, no new ones",
            "parameters": [name, agent],
            "responses": {**ok("200", "the queue", queue), "403": err("the token may only read"),
                          "404": err("no such queue, or the agent is not a member"),
                          "409": conflict}}},
    })


_described()
