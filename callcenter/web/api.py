"""The JSON API under /api/ and Prometheus metrics at /metrics.

Every route but ``/api/health`` and ``/metrics`` needs ``Authorization: Bearer <token>``
with a token from ``http.tokens``; routes that change things need an ``admin`` token.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callcenter.report import stats
from callcenter.web import (
    acd_api,
    callback_api,
    campaign_api,
    dialplan_api,
    events_api,
    supervisor_api,
    trunk_api,
)
from callcenter.web.auth import Auth
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.callbacks import CallbackWorker
    from callcenter.calls.queues import QueueRunner
    from callcenter.config import Config
    from callcenter.dialer.runner import CampaignRunner
    from callcenter.events.service import Events
    from callcenter.media.engine import MediaEngine
    from callcenter.sip.registrar import Registrar
    from callcenter.sip.registration_client import RegistrationClient
    from callcenter.sip.stack import SipStack
    from callcenter.store.db import Store
    from callcenter.supervisor.service import SupervisorService
    from ivr.clock import ServerClock
    from ivr.watcher import DialplanWatcher


@dataclass
class Load:
    """How busy the process is, for ``/metrics``: app.py counts calls and samples the loop."""

    calls_started: int = 0
    loop_lag: float = 0.0  #: how late the loop last woke a 0.5 s sleeper
    loop_lag_max: float = 0.0
    starts: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=100_000))

    def call_started(self, now: float) -> None:
        self.calls_started += 1
        self.starts.append(now)

    def calls_per_second(self, now: float, window: float = 60.0) -> float:
        """New calls per second over the last ``window`` seconds."""
        since = now - window
        while self.starts and self.starts[0] < since:
            self.starts.popleft()
        return len(self.starts) / window


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
    callbacks: CallbackWorker
    #: our registrations at carriers, by trunk name
    trunk_registrations: dict[str, RegistrationClient] = field(default_factory=dict)


class Api:
    """Every route of the server, registered here: this module's own, then each route
    module's, each handed only what it uses."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.auth = Auth({t.token: t.role for t in server.cfg.http.tokens})
        self.started = time.time()
        self.router = r = Router()
        r.add("GET", "/api/health", self.health)
        r.add("GET", "/metrics", self.metrics)
        r.add("GET", "/api/calls", self.calls)
        r.add("GET", "/api/calls/{id}", self.call)
        r.add("GET", "/api/registrations", self.registrations)
        auth = self.auth
        events_api.register(r, auth, store=server.store, hub=server.events.stream,
                            sl_seconds={q.name: q.sl_seconds for q in server.cfg.queues},
                            local=lambda: stats.LocalTime.of(server.clock))
        acd_api.register(r, auth, server.queues)
        supervisor_api.register(r, auth, server.supervisor)
        campaign_api.register(r, auth, server.dialer)
        callback_api.register(r, auth, server.callbacks)
        dialplan_api.register(r, auth, server.watcher)
        trunk_api.register(r, auth, server.cfg.trunks, server.trunk_registrations, server.now)

    # --------------------------------------------------------------- routes
    def health(self, req: HttpRequest) -> HttpResponse:
        srv = self.server
        return HttpResponse.json({
            "status": "ok",
            "uptime": round(time.time() - self.started, 1),
            "calls_in_progress": len(srv.b2bua.calls),
            "registrations": len(srv.registrar.all_bindings()),
        })

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

    def metrics(self, req: HttpRequest) -> HttpResponse:
        srv = self.server
        media = srv.media.stats
        lines = [
            "# TYPE callcenter_calls_in_progress gauge",
            f"callcenter_calls_in_progress {len(srv.b2bua.calls)}",
            "# TYPE callcenter_registrations gauge",
            f"callcenter_registrations {len(srv.registrar.all_bindings())}",
            "# TYPE callcenter_sip_messages_received_total counter",
            f"callcenter_sip_messages_received_total {srv.stack.stats['received']}",
            "# TYPE callcenter_sip_parse_errors_total counter",
            f"callcenter_sip_parse_errors_total {srv.stack.stats['parse_errors']}",
            "# TYPE callcenter_calls_total counter",
            f"callcenter_calls_total {srv.load.calls_started}",
        ]
        lines += [
            "# HELP callcenter_calls_per_second new calls per second over the last minute",
            "# TYPE callcenter_calls_per_second gauge",
            f"callcenter_calls_per_second {srv.load.calls_per_second(srv.now()):.3f}",
            "# HELP callcenter_event_loop_lag_seconds how late the loop woke a 0.5 s sleeper",
            "# TYPE callcenter_event_loop_lag_seconds gauge",
            f"callcenter_event_loop_lag_seconds {srv.load.loop_lag:.4f}",
            "# TYPE callcenter_event_loop_lag_max_seconds gauge",
            f"callcenter_event_loop_lag_max_seconds {srv.load.loop_lag_max:.4f}",
        ]
        engine = srv.queues.engine
        if engine is not None:
            now = srv.now()
            rows = [engine.stats(q, now) for q in engine.queue_names]
            for metric, attr, kind in (
                ("queue_waiting", "waiting", "gauge"),
                ("queue_longest_wait_seconds", "longest_wait", "gauge"),
                ("queue_offered_total", "offered", "counter"),
                ("queue_answered_total", "answered", "counter"),
                ("queue_abandoned_total", "abandoned", "counter"),
                ("queue_service_level", "service_level", "gauge"),
            ):
                lines.append(f"# TYPE callcenter_{metric} {kind}")
                for st in rows:
                    value = getattr(st, attr)
                    if value is not None:
                        lines.append(f'callcenter_{metric}{{queue="{st.queue}"}} {value:g}')
        lines += _trunk_metrics(srv.trunk_registrations)
        for name in ("ticks", "late_ticks", "missed_ticks", "channels"):
            value = getattr(media, name, None)
            if value is not None:
                kind = "gauge" if name == "channels" else "counter"
                suffix = "" if kind == "gauge" else "_total"
                lines += [f"# TYPE callcenter_rtp_{name}{suffix} {kind}",
                          f"callcenter_rtp_{name}{suffix} {value}"]
        lines += ["# HELP callcenter_rtp_tick_lateness_max_seconds worst media clock tick so far",
                  "# TYPE callcenter_rtp_tick_lateness_max_seconds gauge",
                  f"callcenter_rtp_tick_lateness_max_seconds {media.max_lateness:.4f}"]
        return HttpResponse.text("\n".join(lines) + "\n", "text/plain; version=0.0.4")

    @staticmethod
    def _live_call(call: Any) -> dict[str, Any]:
        return {
            "id": call.id, "caller": call.caller, "called": call.called, "source": call.source,
            "line": call.line, "digits": call.digits,
            "legs": [{"party": leg.party, "direction": leg.direction, "state": leg.state.value,
                      "codec": leg.codec} for leg in call.legs],
        }


def _trunk_metrics(registrations: dict[str, RegistrationClient]) -> list[str]:
    """Per trunk: registered or not, REGISTERs sent, failed attempts, refused credentials."""
    if not registrations:
        return []
    lines = ["# TYPE callcenter_trunk_registered gauge"]
    lines += [f'callcenter_trunk_registered{{trunk="{name}"}} '
              f'{int(c.core.state.value == "registered")}' for name, c in registrations.items()]
    for key, metric in (("attempts", "register_attempts"), ("failures", "register_failures"),
                        ("auth_failures", "register_auth_failures")):
        lines.append(f"# TYPE callcenter_trunk_{metric}_total counter")
        lines += [f'callcenter_trunk_{metric}_total{{trunk="{name}"}} {c.counts[key]}'
                  for name, c in registrations.items()]
    return lines
