"""Roles and scopes of the API: which role may use which route, on what.

``admin`` (config tokens) may do everything; ``read`` (config tokens: wallboards) may use
every ``GET`` but a customer's GDPR export and its files (admin only: personal data in bulk);
a logged-in ``agent`` sees and drives itself (its state, its log-in and pause, its queues'
figures, the pause reasons, the callback requests it booked or took); a ``supervisor`` the
queues ``supervisor.queues`` gives it (all when unlisted) and their agents: figures, agent
control, listen/whisper/barge sessions, interval reports, the event stream and the CDR
export (cut to them), their callback requests. Anything out of a user's scope answers 404
(nothing leaks that it exists); a route its role may not use at all answers 403, as does any
route not in :data:`POLICY` (a new route is closed to users until it is classified here).

The router wraps every handler with :func:`guard` as it is added; the handler's own
``auth.require`` then accepts the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from callcenter.web.auth import Auth, Principal
from callcenter.web.http import Handler, HttpError, HttpRequest, HttpResponse

#: routes that need no token
PUBLIC = {("GET", "/api/health"), ("GET", "/metrics"), ("GET", "/api/openapi.json"),
          ("POST", "/api/login"), ("GET", "/wallboard"), ("GET", "/wallboard/{name}"),
          ("GET", "/desk"), ("GET", "/desk/{name}"), ("GET", "/desk/call/{id}"),
          ("GET", "/desk/supervisor")}
#: routes that take the token as ``?token=`` too (EventSource, plain links)
QUERY_TOKEN = {("GET", "/api/events/stream"), ("GET", "/api/cdr.csv")}


class Scope(Protocol):
    """What a user may see: None = everything."""

    def queues(self, p: Principal) -> Collection[str] | None: ...

    def agents(self, p: Principal) -> Collection[str] | None: ...

    async def lookup(self, path: str) -> Any:
        """The JSON a ``GET`` of ``path`` answers (None: not found)."""

    def attempt_agent(self, campaign: str, attempt: int) -> str | None:
        """The agent who took a campaign's call attempt (None: no such attempt)."""

    def callback(self, id: str) -> dict[str, Any] | None:
        """A callback request's row (None: no such request)."""


Filter = Callable[[Any], Any]


@dataclass(frozen=True)
class Rule:
    """How a user's role may use a route: ``check`` raises (403/404) or returns a filter
    for the JSON answer (None: the answer as it is)."""

    check: Callable[[Principal, HttpRequest, Scope], Filter | Awaitable[None] | None]


def _out_of_scope(what: str) -> HttpError:
    return HttpError(404, f"no such {what}")


def path_agent(param: str = "id") -> Rule:
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        agents = scope.agents(p)
        if agents is not None and req.params.get(param) not in agents:
            raise _out_of_scope("agent")
    return Rule(check)


def path_queue(param: str = "name") -> Rule:
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        queues = scope.queues(p)
        if queues is not None and req.params.get(param) not in queues:
            raise _out_of_scope("queue")
    return Rule(check)


def query_queue(name: str = "queue") -> Rule:
    """The query names one of the user's queues (or the user sees every queue)."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        queues = scope.queues(p)
        if queues is not None and req.arg(name) not in queues:
            raise HttpError(403, f"name one of your queues in ?{name}=")
    return Rule(check)


def listed(kind: str, key: str, *lists: str) -> Rule:
    """Keep the items of the answer (a list, or the named lists of an object) whose ``key``
    is an agent or queue (``kind``) of the user's."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> Filter | None:
        allowed = scope.agents(p) if kind == "agent" else scope.queues(p)
        if allowed is None:
            return None
        keep = set(allowed)

        def only(items: list[Any]) -> list[Any]:
            return [x for x in items if isinstance(x, dict) and x.get(key) in keep]

        def apply(data: Any) -> Any:
            if isinstance(data, list):
                return only(data)
            return {k: only(v) if k in lists else v for k, v in data.items()}
        return apply
    return Rule(check)


def target(path: str, *keys: str, kind: str = "agent") -> Rule:
    """The object at ``path`` (``{id}`` from the request) belongs to one of the user's
    agents (or queues): one of its ``keys`` names it."""
    async def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        allowed = scope.agents(p) if kind == "agent" else scope.queues(p)
        if allowed is None:
            return
        found = await scope.lookup(path.format(**req.params))
        if not isinstance(found, dict) or not any(found.get(k) in allowed for k in keys):
            raise _out_of_scope(path.split("/")[-2].rstrip("s"))
    return Rule(check)


def own_customer() -> Rule:
    """A customer the agent talked to: a contact of the customer's latest timeline page
    names the agent (as the call's agent, one of its agents, or the attempt's)."""
    async def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        found = await scope.lookup(f"/api/customers/{req.params['id']}/timeline")
        items = found.get("items", []) if isinstance(found, dict) else []
        if not any(p.user == i.get("agent") or p.user in (i.get("agents") or [])
                   for i in items if isinstance(i, dict)):
            raise _out_of_scope("customer")
    return Rule(check)


def _on(p: Principal, live: dict[str, Any]) -> bool:
    """The user is a party of the live call, bridged to one of its legs (a queue's caller
    is bridged to the agent's leg of another call) or consulting for its caller."""
    return live.get("consulted_by") == p.user or any(
        p.user in (leg.get("party"), leg.get("bridged_to")) for leg in live["legs"])


def own_calls() -> Rule:
    """An agent's calls: live ones it is on, past ones it placed or received."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> Filter:
        def apply(data: dict[str, Any]) -> dict[str, Any]:
            return {"live": [c for c in data["live"] if _on(p, c)],
                    "history": [c for c in data["history"] if p.user in (
                        c["caller"], c["called"], c.get("agent"))]}
        return apply
    return Rule(check)


def call_card() -> Rule:
    """A call's card: an agent's own calls (it is or was on it, or was offered it); a
    supervisor's when the call's queue or one of its parties is theirs."""
    async def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        found = await scope.lookup(f"/api/calls/{req.params['id']}/offer")
        if not isinstance(found, dict):
            raise _out_of_scope("call")
        parties = set(found.get("parties") or ())
        queues, agents = scope.queues(p), scope.agents(p)
        if p.role == "agent":
            mine = p.user in parties
        else:
            mine = queues is None or found.get("queue") in queues or agents is None \
                or bool(parties & set(agents))
        if not mine:
            raise _out_of_scope("call")
    return Rule(check)


def body_agent() -> Rule:
    """The body's ``agent`` is the user itself (an agent's preview calls)."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        body = req.json() if req.body else {}
        if not isinstance(body, dict) or str(body.get("agent", "")) != p.user:
            raise HttpError(403, 'an agent works for itself: {"agent": "<your id>"}')
    return Rule(check)


def own_attempt() -> Rule:
    """A disposition of an attempt the agent took (given by its id)."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        body = req.json() if req.body else {}
        attempt = body.get("attempt") if isinstance(body, dict) else None
        if not isinstance(attempt, int):
            raise HttpError(403, 'an agent names its own attempt: {"attempt": ID, "code": ..}')
        if scope.attempt_agent(req.params["name"], attempt) != p.user:
            raise _out_of_scope("attempt")
    return Rule(check)


def anyone() -> Rule:
    """Every user of the role (settings that name nobody, e.g. the pause reasons)."""
    return Rule(lambda p, req, scope: None)


def body_queue() -> Rule:
    """The body's ``queue`` is one of the user's (an agent booking a callback)."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        body = req.json() if req.body else {}
        queues = scope.queues(p)
        if queues is not None and (not isinstance(body, dict) or body.get("queue") not in queues):
            raise HttpError(403, 'name one of your queues: {"queue": ...}')
    return Rule(check)


def live_party() -> Rule:
    """A live call the agent is on (its transfers and conferences)."""
    async def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        calls = await scope.lookup("/api/calls")
        live = calls.get("live", []) if isinstance(calls, dict) else []
        if not any(c.get("id") == req.params["id"] and _on(p, c) for c in live):
            raise _out_of_scope("live call")
    return Rule(check)


def _agents_callback(p: Principal, row: dict[str, Any]) -> bool:
    """The agent booked the callback request, or took it last (a retry is still its)."""
    return p.user in (row.get("booked_by"), row.get("agent"))


def own_callbacks() -> Rule:
    """The callback requests an agent booked or took."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> Filter:
        return lambda rows: [r for r in rows if _agents_callback(p, r)]
    return Rule(check)


def callback_request() -> Rule:
    """A callback request to move or cancel: an agent's own (:func:`own_callbacks`), one of
    a supervisor's queues."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        row, queues = scope.callback(req.params["id"]), scope.queues(p)
        if row is None or not (_agents_callback(p, row) if p.role == "agent"
                               else queues is None or row["queue"] in queues):
            raise _out_of_scope("callback")
    return Rule(check)


def own_campaigns() -> Rule:
    """The campaigns of the agent's queues, with only its own calls and callbacks."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> Filter:
        queues = scope.queues(p) or ()

        def apply(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**c, "calls": [x for x in c["calls"] if x.get("agent") == p.user],
                     "callbacks": [x for x in c["callbacks"] if x.get("owner") == p.user]}
                    for c in data if c.get("queue") in queues]
        return apply
    return Rule(check)


#: the fields of an event that name the users it concerns
EVENT_USERS = ("agent", "party", "transferor", "transferee", "target")


def own_events() -> Rule:
    """The live events that name the agent (its state, its pops, its calls' legs and
    transfers), but no supervisor's (an agent is not told who listens): a filter of each
    event of the stream."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> Filter:
        return lambda event: event if not str(event.get("type")).startswith("supervisor.") and (
            p.user in [event.get(k) for k in EVENT_USERS] + list(event.get("agents") or [])
        ) else None
    return Rule(check)


async def _events_only(stream: AsyncIterator[bytes], only: Filter) -> AsyncIterator[bytes]:
    """A server-sent event stream without the events ``only`` drops (answers None for)."""
    try:
        async for chunk in stream:
            head, sep, data = chunk.partition(b"\ndata: ")
            if not (head.startswith(b"event:") and sep and only(json.loads(data)) is None):
                yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()  # the hub's queue is closed by the stream itself


def session_body() -> Rule:
    """A supervisor starts sessions as itself, on agents of its queues only."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        body = req.json()
        if not isinstance(body, dict) or body.get("supervisor") != p.user:
            raise HttpError(403, "a supervisor starts sessions as itself")
        agents = scope.agents(p)
        if agents is not None and body.get("agent") not in agents:
            raise _out_of_scope("agent")
    return Rule(check)


def scoped() -> Rule:
    """The handler cuts its answer itself (a stream, a CSV) to the user's queues and
    their agents (``HttpRequest.within``)."""
    def check(p: Principal, req: HttpRequest, scope: Scope) -> None:
        queues = scope.queues(p)
        if queues is not None:
            req.within = (frozenset(queues), frozenset(scope.agents(p) or ()))
    return Rule(check)


#: (method, route pattern) -> role -> rule; a role not named may not use the route
POLICY: dict[tuple[str, str], dict[str, Rule]] = {
    ("GET", "/api/agents"): {"agent": listed("agent", "id"), "supervisor": listed("agent", "id")},
    ("GET", "/api/agents/{id}"): {"agent": path_agent(), "supervisor": path_agent()},
    ("POST", "/api/agents/{id}/{command}"): {"agent": path_agent(), "supervisor": path_agent()},
    ("GET", "/api/queues"): {"agent": listed("queue", "name"),
                             "supervisor": listed("queue", "name")},
    ("GET", "/api/queues/{name}"): {"agent": path_queue(), "supervisor": path_queue()},
    ("GET", "/api/supervisor/sessions"): {
        "supervisor": listed("agent", "agent", "live", "history")},
    ("POST", "/api/supervisor/sessions"): {"supervisor": session_body()},
    **{(method, "/api/supervisor/sessions/{id}"): {
        "supervisor": target("/api/supervisor/sessions/{id}", "agent")}
       for method in ("GET", "PATCH", "DELETE")},
    ("GET", "/api/stats/intervals"): {"supervisor": query_queue()},
    ("GET", "/api/events/stream"): {"supervisor": scoped(), "agent": own_events()},
    ("GET", "/api/cdr.csv"): {"supervisor": scoped()},
    ("GET", "/api/pause-reasons"): {"agent": anyone(), "supervisor": anyone()},
    ("GET", "/api/calls"): {"agent": own_calls()},
    ("GET", "/api/calls/{id}"): {"agent": target("/api/calls/{id}", "caller", "called",
                                                 "agent")},
    ("GET", "/api/agents/{id}/offer"): {"agent": path_agent(), "supervisor": path_agent()},
    ("GET", "/api/calls/{id}/offer"): {"agent": call_card(), "supervisor": call_card()},
    **{(method, path): {"agent": own_customer()} for method, path in (
        ("GET", "/api/customers/{id}"), ("GET", "/api/customers/{id}/timeline"),
        ("POST", "/api/customers/{id}/notes"))},
    ("GET", "/api/callbacks"): {"agent": own_callbacks(),
                                "supervisor": listed("queue", "queue")},
    ("POST", "/api/callbacks"): {"agent": body_queue()},
    **{(method, "/api/callbacks/{id}"): {"agent": callback_request(),
                                         "supervisor": callback_request()}
       for method in ("PATCH", "DELETE")},
    ("POST", "/api/calls/{id}/transfer"): {"agent": live_party()},
    ("GET", "/api/stats/agents"): {"agent": listed("agent", "agent", "agents"),
                                   "supervisor": listed("agent", "agent", "agents")},
    ("GET", "/api/campaigns"): {"agent": own_campaigns()},
    ("POST", "/api/campaigns/{name}/dispositions"): {"agent": own_attempt()},
    ("POST", "/api/campaigns/{name}/preview"): {"agent": body_agent()},
    ("POST", "/api/campaigns/{name}/preview/{contact}/{action}"): {"agent": body_agent()},
}


def guard(auth: Auth, scope: Scope) -> Callable[[str, str, Handler], Handler]:
    """What the router wraps each handler with (``Router(guard=...)``)."""
    def wrap(method: str, pattern: str, handler: Handler) -> Handler:
        if (method, pattern) in PUBLIC:
            return handler
        rules = POLICY.get((method, pattern), {})

        async def guarded(req: HttpRequest) -> HttpResponse:
            token = req.arg("token") if (method, pattern) in QUERY_TOKEN else None
            if token and "authorization" not in req.headers:
                req.headers["authorization"] = f"Bearer {token}"
            p = auth.principal(req)
            if p.role in ("admin", "read"):  # the handler checks read vs admin
                return await call(handler, req)
            rule = rules.get(p.role)
            if rule is None:
                raise HttpError(403, f"not allowed for role {p.role}")
            checked = rule.check(p, req, scope)
            only: Filter | None = None
            if isinstance(checked, Awaitable):
                await checked
            else:
                only = checked
            auth.grant(req)
            try:
                resp = await call(handler, req)
            finally:
                auth.release(req)
            if only is not None and resp.status == 200 and resp.stream is not None:
                resp.stream = _events_only(resp.stream, only)
            elif only is not None and resp.status == 200:
                resp = HttpResponse.json(only(json.loads(resp.body)), resp.status)
            return resp
        return guarded
    return wrap


async def call(handler: Handler, req: HttpRequest) -> HttpResponse:
    result = handler(req)
    if isinstance(result, Awaitable):
        result = await result
    assert isinstance(result, HttpResponse)
    return result
