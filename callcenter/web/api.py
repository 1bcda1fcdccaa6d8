"""The JSON API under /api/ and Prometheus metrics at /metrics.

Every route but ``/api/health``, ``/api/login`` and ``/metrics`` needs ``Authorization:
Bearer <token>`` with a token from ``http.tokens`` (routes that change things need an
``admin`` one) or from a user's login, whose role ``roles.py`` checks on every route.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callcenter.report import stats
from callcenter.web import (
    acd_api,
    call_api,
    callback_api,
    campaign_api,
    config_api,
    customer_api,
    dialplan_api,
    directory_api,
    events_api,
    login_api,
    member_api,
    roles,
    supervisor_api,
    trunk_api,
)
from callcenter.web.auth import Auth, Principal
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router
from callcenter.web.metrics import CONTENT_TYPE, Load, Metrics, Sources

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.callbacks import CallbackWorker
    from callcenter.calls.directory import ApiDirectory
    from callcenter.calls.members import QueueMembers
    from callcenter.calls.queues import QueueRunner
    from callcenter.calls.transfer import Transfers
    from callcenter.config import Config
    from callcenter.dialer.runner import CampaignRunner
    from callcenter.events.service import Events
    from callcenter.media.engine import MediaEngine
    from callcenter.sip.registrar import Registrar
    from callcenter.sip.registration_client import RegistrationClient
    from callcenter.sip.stack import SipStack
    from callcenter.store.customers import CustomerStore
    from callcenter.store.db import Store
    from callcenter.supervisor.service import SupervisorService
    from ivr.clock import ServerClock
    from ivr.watcher import DialplanWatcher


@dataclass(frozen=True, kw_only=True)
class Server:
    """What the HTTP API reads and drives of the running server (handed in by app.py)."""

    cfg: Config
    now: Callable[[], float]
    clock: ServerClock
    load: Load
    stack: SipStack
    registrar: Registrar
    b2bua: B2BUA
    media: MediaEngine
    store: Store
    events: Events
    queues: QueueRunner
    supervisor: SupervisorService
    dialer: CampaignRunner
    watcher: DialplanWatcher
    transfers: Transfers
    callbacks: CallbackWorker
    members: QueueMembers
    customers: CustomerStore
    #: the last ``agent.offer`` per agent (the desk's card)
    offers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: our registrations at carriers, by trunk name
    trunk_registrations: dict[str, RegistrationClient] = field(default_factory=dict)
    drain: Callable[[], None]  #: stop taking calls; the process exits once they have ended
    draining: Callable[[], bool]
    users: ApiDirectory | None = None  #: users by API
    #: re-read config.yaml for ``who`` (``ReloadResult.to_json()``); None: this server cannot
    reload_config: Callable[[str], dict[str, Any]] | None = None


class Api:
    """Every route of the server, registered here: this module's own, then each route
    module's, each handed only what it uses."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.cfg = server.cfg
        self.auth = Auth({t.token: t.role for t in server.cfg.http.tokens},
                         {t.token: t.name for t in server.cfg.http.tokens})
        self.started = time.time()
        self.metrics = Metrics(Sources(
            now=server.now, load=server.load, stack=server.stack, registrar=server.registrar,
            b2bua=server.b2bua, media=server.media, queues=server.queues,
            trunk_registrations=server.trunk_registrations))
        server.events.bus.subscribe(self.metrics.on_event)
        self.router = r = Router(guard=roles.guard(self.auth, self))
        r.add("GET", "/api/health", self.health)
        r.add("GET", "/metrics", self.scrape)
        r.add("POST", "/api/drain", self.drain)
        r.add("GET", "/api/calls", self.calls)
        r.add("GET", "/api/calls/{id}", self.call)
        r.add("GET", "/api/registrations", self.registrations)
        auth = self.auth
        self.sl_seconds = {q.name: q.sl_seconds for q in server.cfg.queues}
        self.trunks = list(server.cfg.trunks)
        events_api.register(r, auth, store=server.store, hub=server.events.stream,
                            sl_seconds=self.sl_seconds,
                            local=lambda: stats.LocalTime.of(server.clock),
                            queues=lambda: self.cfg.queues)
        acd_api.register(r, auth, server.queues)
        member_api.register(r, auth, server.members)
        call_api.register(r, auth, server.b2bua, server.transfers)
        supervisor_api.register(r, auth, server.supervisor)
        campaign_api.register(r, auth, server.dialer)
        callback_api.register(r, auth, server.callbacks)
        dialplan_api.register(r, auth, server.watcher)
        customer_api.register(r, auth, server.customers, server.events.publish, server.offers,
                              self.call_facts)
        trunk_api.register(r, auth, self.trunks, server.trunk_registrations, server.now,
                           channels=server.b2bua.trunk_channels)
        if server.reload_config is not None:
            config_api.register(r, auth, server.reload_config, server.store.audit)
        login_api.register(r, auth, lambda: self.cfg)
        if server.users is not None:
            directory_api.register(r, auth, server.users)

    def reconfigure(self, cfg: Config) -> None:
        """A reloaded configuration: tokens, trunks and service-level targets; a user
        removed, or whose role or a password changed, is logged out."""
        old, self.cfg = self.cfg, cfg

        def keys(u: Any) -> Any:
            return None if u is None else (u.role, u.password, u.web_password)
        self.auth.logout_users(lambda user, role: (
            (u := cfg.user(user)) is not None and keys(u) == keys(old.user(user))
            and u.role == role))
        self.auth.tokens = {t.token: t.role for t in cfg.http.tokens}
        self.auth.names = {t.token: t.name for t in cfg.http.tokens}
        self.sl_seconds.clear()
        self.sl_seconds.update({q.name: q.sl_seconds for q in cfg.queues})
        self.trunks[:] = cfg.trunks

    # --------------------------------------------------------------- scopes (roles.Scope)
    def queues(self, p: Principal) -> set[str] | None:
        """A supervisor's queues (``supervisor.queues``; unlisted: all); an agent's own."""
        engine = self.server.queues.engine
        if p.role == "supervisor" and p.user is not None:
            listed = self.cfg.supervisor.queues.get(p.user)
            return None if listed is None else set(listed)
        if p.role == "agent" and engine is not None:
            return {q for q in engine.queue_names if p.user in engine.members(q)}
        return None if p.role in ("admin", "read") else set()

    def agents(self, p: Principal) -> set[str] | None:
        """An agent itself; a supervisor the members of its queues."""
        if p.role == "agent":
            return {p.user} if p.user else set()
        queues, engine = self.queues(p), self.server.queues.engine
        if queues is None or engine is None:
            return None if queues is None else set()
        return {a for q in queues if q in engine.queue_names for a in engine.members(q)}

    async def lookup(self, path: str) -> Any:
        """What the server's own GET of ``path`` answers (None unless 200)."""
        req = HttpRequest("GET", path, {}, {"authorization": f"Bearer {self.auth.internal}"},
                          b"")
        try:
            handler, req.params = self.router.find("GET", path)
            resp = await roles.call(handler, req)
        except HttpError:
            return None
        return json.loads(resp.body) if resp.status == 200 else None

    def call_facts(self, call_id: str) -> customer_api.CallFacts | None:
        """A live call as the B2BUA has it, else its CDR."""
        live, record = self.server.b2bua.calls.get(call_id), self.server.store.get_call(call_id)
        if live is not None:
            return customer_api.CallFacts(
                customer=live.customer, queue=live.queue or "", agent=live.agent or "",
                parties=frozenset({*(leg.party for leg in live.legs), live.caller, live.called,
                                   live.agent or ""} - {""}))
        if record is None:
            return None
        return customer_api.CallFacts(
            customer=record.called if record.direction == "outbound" else record.caller,
            queue=record.queue or "", agent=record.agent or "",
            parties=frozenset({record.caller, record.called, record.agent or ""} - {""}))

    def attempt_agent(self, campaign: str, attempt: int) -> str | None:
        row = self.server.dialer.store.attempt(attempt)
        return row["agent"] if row is not None and row["campaign"] == campaign else None

    def callback(self, id: str) -> dict[str, Any] | None:
        return self.server.callbacks.store.get(int(id)) if id.isdigit() else None

    # --------------------------------------------------------------- routes
    def health(self, req: HttpRequest) -> HttpResponse:
        srv = self.server
        draining = srv.draining()  # 503: an HTTP health check stops sending calls here
        return HttpResponse.json({
            "status": "draining" if draining else "ok",
            "uptime": round(time.time() - self.started, 1),
            "calls_in_progress": len(srv.b2bua.calls),
            "registrations": len(srv.registrar.all_bindings()),
        }, 503 if draining else 200)

    def drain(self, req: HttpRequest) -> HttpResponse:
        """``callcenter drain``: as SIGTERM, new calls get 503 and the server stops once the
        calls in progress end (or ``drain_timeout`` passes)."""
        self.auth.require(req, "admin")
        self.server.drain()
        return HttpResponse.json({"status": "draining", "calls_in_progress": len(
            self.server.b2bua.calls), "drain_timeout": self.server.cfg.drain_timeout}, 202)

    def calls(self, req: HttpRequest) -> HttpResponse:
        self.auth.require(req)
        live = [self._live_call(c) for c in self.server.b2bua.calls.values()]
        try:
            limit = max(1, min(1000, int(req.arg("limit", "50") or 50)))
        except ValueError:
            raise HttpError(400, "limit must be a number") from None
        history = [r.to_row() for r in self.server.store.recent_calls(limit)]
        return HttpResponse.json({"live": live, "history": history})

    def call(self, req: HttpRequest) -> HttpResponse:
        self.auth.require(req)
        record = self.server.store.get_call(req.params["id"])
        if record is None:
            raise HttpError(404, "no such call")
        return HttpResponse.json({
            **record.to_row(), "events": self.server.store.call_events(record.id),
        })

    def registrations(self, req: HttpRequest) -> HttpResponse:
        self.auth.require(req)
        now = self.server.now()
        return HttpResponse.json([
            {"user": b.user, "contact": b.contact, "source": f"{b.source[0]}:{b.source[1]}",
             "transport": b.transport, "expires_in": b.expires_in(now),
             "reachable": b.reachable, "user_agent": b.user_agent}
            for b in self.server.registrar.all_bindings()
        ])

    def scrape(self, req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, self.metrics.text(), CONTENT_TYPE)

    def _live_call(self, call: Any) -> dict[str, Any]:
        partner = self.server.b2bua.partner
        return {
            "id": call.id, "caller": call.caller, "called": call.called, "source": call.source,
            "line": call.line, "digits": call.digits,
            "consulted_by": self.server.transfers.consultants.get(call.id),
            "legs": [{"party": leg.party, "direction": leg.direction, "state": leg.state.value,
                      "codec": leg.codec, "bridged_to": getattr(partner(leg), "party", None)}
                     for leg in call.legs],
        }
