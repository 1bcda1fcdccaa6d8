"""The JSON API under /api/ and Prometheus metrics at /metrics.

Every route but ``/api/health`` and ``/metrics`` needs ``Authorization: Bearer <token>``
with a token from ``http.tokens``; routes that change things need an ``admin`` token.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from callcenter.web import events_api
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.app import Application


class Api:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.tokens = {t.token: t.role for t in app.cfg.http.tokens}
        self.started = time.time()
        self.router = Router()
        r = self.router
        r.add("GET", "/api/health", self.health)
        r.add("GET", "/metrics", self.metrics)
        r.add("GET", "/api/calls", self.calls)
        r.add("GET", "/api/calls/{id}", self.call)
        r.add("GET", "/api/registrations", self.registrations)
        events_api.register(r, self)  # stream, CDR CSV, intervals, OpenAPI, wallboard

    # ------------------------------------------------------------------ auth
    def require(self, req: HttpRequest, role: str = "read") -> str:
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "missing bearer token (Authorization: Bearer <token>)")
        for known, known_role in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                if role == "admin" and known_role != "admin":
                    raise HttpError(403, "this token may only read")
                return known_role
        raise HttpError(401, "unknown token")

    # --------------------------------------------------------------- routes
    def health(self, req: HttpRequest) -> HttpResponse:
        app = self.app
        return HttpResponse.json({
            "status": "ok",
            "uptime": round(time.time() - self.started, 1),
            "calls_in_progress": len(app.b2bua.calls),
            "registrations": len(app.registrar.all_bindings()),
        })

    def calls(self, req: HttpRequest) -> HttpResponse:
        self.require(req)
        live = [self._live_call(c) for c in self.app.b2bua.calls.values()]
        try:
            limit = max(1, min(1000, int(req.arg("limit", "50") or 50)))
        except ValueError:
            raise HttpError(400, "limit must be a number") from None
        history = [r.to_row() for r in self.app.store.recent_calls(limit)]
        return HttpResponse.json({"live": live, "history": history})

    def call(self, req: HttpRequest) -> HttpResponse:
        self.require(req)
        record = self.app.store.get_call(req.params["id"])
        if record is None:
            raise HttpError(404, "no such call")
        return HttpResponse.json({
            **record.to_row(), "events": self.app.store.call_events(record.id),
        })

    def registrations(self, req: HttpRequest) -> HttpResponse:
        self.require(req)
        now = self.app.now()
        return HttpResponse.json([
            {"user": b.user, "contact": b.contact, "source": f"{b.source[0]}:{b.source[1]}",
             "transport": b.transport, "expires_in": b.expires_in(now),
             "reachable": b.reachable, "user_agent": b.user_agent}
            for b in self.app.registrar.all_bindings()
        ])

    def metrics(self, req: HttpRequest) -> HttpResponse:
        app = self.app
        media = app.media.stats
        lines = [
            "# TYPE callcenter_calls_in_progress gauge",
            f"callcenter_calls_in_progress {len(app.b2bua.calls)}",
            "# TYPE callcenter_registrations gauge",
            f"callcenter_registrations {len(app.registrar.all_bindings())}",
            "# TYPE callcenter_sip_messages_received_total counter",
            f"callcenter_sip_messages_received_total {app.stack.stats['received']}",
            "# TYPE callcenter_sip_parse_errors_total counter",
            f"callcenter_sip_parse_errors_total {app.stack.stats['parse_errors']}",
            "# TYPE callcenter_calls_total counter",
            f"callcenter_calls_total {app.calls_started}",
        ]
        lines += [
            "# HELP callcenter_calls_per_second new calls per second over the last minute",
            "# TYPE callcenter_calls_per_second gauge",
            f"callcenter_calls_per_second {app.calls_per_second():.3f}",
            "# HELP callcenter_event_loop_lag_seconds how late the loop woke a 0.5 s sleeper",
            "# TYPE callcenter_event_loop_lag_seconds gauge",
            f"callcenter_event_loop_lag_seconds {app.loop_lag:.4f}",
            "# TYPE callcenter_event_loop_lag_max_seconds gauge",
            f"callcenter_event_loop_lag_max_seconds {app.loop_lag_max:.4f}",
        ]
        engine = getattr(getattr(app, "queues", None), "engine", None)
        if engine is not None:
            now = app.now()
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
