"""Event stream, CDR export, interval figures and the OpenAPI document.

    GET /api/events/stream?types=queue.,agent.     server-sent events (token: header or ?token=)
    GET /api/cdr.csv?from=YYYY-MM-DD&to=YYYY-MM-DD CDRs of those local days as CSV
    GET /api/stats/intervals?date=YYYY-MM-DD&minutes=15   calls and SL per interval
    GET /api/queue-log?from=YYYY-MM-DD&to=YYYY-MM-DD     Asterisk queue_log lines (text)
    GET /api/stats/agents?date=YYYY-MM-DD          per agent: calls, talk, wrap-up, pauses

A supervisor limited to some queues gets the events and CDRs of those queues only: an event
naming a queue when it is one of them, else naming an agent when it is one of theirs (other
events are not sent); CDRs whose ``queue`` is one of them.

Days, intervals and times are those of the server's clock and time zone (``timezone`` in the
config), as the ACD's "today" on the wallboard; never the operating system's zone.
    GET /api/openapi.json                           the OpenAPI 3.1 description (no token)

``register(router, auth, ...)`` adds them and the wallboard page.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from callcenter.report import queue_log, stats
from callcenter.store.records import CallRecord
from callcenter.web import wallboard
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router
from callcenter.web.openapi import spec

if TYPE_CHECKING:
    from callcenter.config.models import Queue
    from callcenter.events.service import StreamHub
    from callcenter.store.db import Store
    from callcenter.web.auth import Auth

HEARTBEAT = 15.0
MAX_CDR_DAYS = 366
CDR_COLUMNS = [
    "id", "start", "answer", "end", "duration", "billsec", "direction", "caller", "called",
    "source", "line", "hangup_cause", "hangup_side", "sip_status", "digits", "codec",
    "sip_call_id", "recording", "rtp_lost_pct", "rtp_jitter_ms",
    "hold_seconds", "agent", "queue", "disposition", "trunk", "trunk_call_id",
]


def token_from_query(req: HttpRequest) -> None:
    """EventSource and plain links cannot send headers: accept ``?token=`` instead."""
    token = req.arg("token")
    if token and "authorization" not in req.headers:
        req.headers["authorization"] = f"Bearer {token}"


def _day(req: HttpRequest, name: str, default: date | None = None) -> date:
    text = req.arg(name)
    if text is None:
        if default is None:
            raise HttpError(400, f"missing {name}=YYYY-MM-DD")
        return default
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise HttpError(400, f"{name} must be a date YYYY-MM-DD, got {text!r}") from None
    if not 1970 <= day.year <= 9998:  # local midnights outside this overflow the platform
        raise HttpError(400, f"{name} must be between 1970-01-01 and 9998-12-31")
    return day


def _days(req: HttpRequest, local: stats.LocalTime) -> tuple[date, date, float, float]:
    """``?from=`` and ``?to=`` (default: from): the days and their [start, end) times."""
    first = _day(req, "from")
    last = _day(req, "to", first)
    if last < first:
        raise HttpError(400, "to is before from")
    if (last - first).days >= MAX_CDR_DAYS:
        raise HttpError(400, f"at most {MAX_CDR_DAYS} days per export")
    return first, last, *local.day_range(first, last)


def _shown(event: dict[str, Any], within: tuple[frozenset[str], frozenset[str]]) -> bool:
    queues, agents = within
    queue, agent = event.get("queue"), event.get("agent")
    return queue in queues if queue else agent in agents


def register(router: Router, auth: Auth, *, store: Store, hub: StreamHub,
             sl_seconds: Mapping[str, float], local: Callable[[], stats.LocalTime],
             queues: Callable[[], Iterable[Queue]] = tuple) -> None:
    """Add the routes above to ``router``: CDRs from ``store``, live events from ``hub``,
    service levels counted against each queue's ``sl_seconds``, days and times in the
    server's clock and zone as ``local()`` gives them; ``queues()``: the running ones."""

    def stream(req: HttpRequest) -> HttpResponse:
        token_from_query(req)
        auth.require(req)
        prefixes = tuple(p for p in (req.arg("types") or "").split(",") if p)
        within = req.within
        queue = hub.open()

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 3000\n: connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), HEARTBEAT)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if prefixes and not event.type.startswith(prefixes):
                        continue
                    payload = event.to_dict()
                    if within is not None and not _shown(payload, within):
                        continue
                    data = json.dumps(payload, ensure_ascii=False, default=str)
                    yield f"event: {event.type}\ndata: {data}\n\n".encode()
            finally:
                hub.close(queue)

        return HttpResponse(200, content_type="text/event-stream; charset=utf-8",
                            headers={"X-Accel-Buffering": "no"}, stream=body())

    def cdr_csv(req: HttpRequest) -> HttpResponse:
        token_from_query(req)
        auth.require(req)
        here = local()
        first, last, t0, t1 = _days(req, here)
        where, args = "start >= ? AND start < ?", list[Any]([t0, t1])
        if req.within is not None:
            mine = sorted(req.within[0])
            where += f" AND queue IN ({', '.join('?' for _ in mine)})"
            args += mine
        rows = store.db["calls"].rows_where(where, args, order_by="start, id")
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(CDR_COLUMNS)
        for row in rows:
            rec = CallRecord.from_row(row).to_row()
            for key in ("start", "answer", "end"):
                rec[key] = "" if rec[key] is None else here.at(rec[key]).isoformat(
                    timespec="seconds")
            out.writerow(["" if rec.get(c) is None else rec.get(c) for c in CDR_COLUMNS])
        name = f"cdr_{first.isoformat()}_{last.isoformat()}.csv"
        return HttpResponse(200, buf.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                            {"Content-Disposition": f'attachment; filename="{name}"'})

    def intervals(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        here = local()
        day = _day(req, "date", here.today())
        try:
            minutes = int(req.arg("minutes", "15") or 15)
        except ValueError:
            raise HttpError(400, "minutes must be 15, 30 or 60") from None
        if minutes not in (15, 30, 60):
            raise HttpError(400, "minutes must be 15, 30 or 60")
        t0, t1 = here.day_range(day, day)
        sl = dict(sl_seconds)
        con: sqlite3.Connection = store.db.conn
        rows = stats.queue_intervals(con, t0, t1, local=here, minutes=minutes, sl_seconds=sl)
        queue = req.arg("queue")
        if queue:
            rows = [r for r in rows if r["queue"] == queue]
        totals = stats.interval_totals(rows)
        return HttpResponse.json({
            "date": day.isoformat(), "minutes": minutes, "queue": queue,
            "intervals": [
                {"start": t["interval"][11:], "offered": t["offered"], "answered": t["answered"],
                 "abandoned": t["abandoned"],
                 "service_level": None if t["service_level"] is None
                 else round(t["service_level"], 3)}
                for t in totals
            ],
        })

    def queue_log_text(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        _, _, t0, t1 = _days(req, local())
        return HttpResponse.text(queue_log.export(store.path, t0, t1, queues()))

    def agents(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        here = local()
        day = _day(req, "date", here.today())
        t0, t1 = here.day_range(day, day)
        con: sqlite3.Connection = store.db.conn
        rows = stats.agent_summary(con, t0, t1)
        return HttpResponse.json({"date": day.isoformat(), "agents": [
            {**r, "occupancy": None if r["occupancy"] is None else round(r["occupancy"], 3)}
            for r in rows]})

    def openapi(req: HttpRequest) -> HttpResponse:
        return HttpResponse.json(spec())

    router.add("GET", "/api/events/stream", stream)
    router.add("GET", "/api/cdr.csv", cdr_csv)
    router.add("GET", "/api/stats/intervals", intervals)
    router.add("GET", "/api/queue-log", queue_log_text)
    router.add("GET", "/api/stats/agents", agents)
    router.add("GET", "/api/openapi.json", openapi)
    wallboard.register(router)
