"""Callback routes of the JSON API: list, book, move and cancel callback requests.

``register(router, auth, worker)`` adds them; reading needs any token, changing an admin one
or a user's login where ``roles.py`` lets it (a supervisor its queues', an agent its own)::

    GET    /api/callbacks           requests, oldest first (?queue=sales, ?state=open)
    POST   /api/callbacks           {"queue": "sales", "number": "+48221234567",
                                     "at": "2026-11-23T15:30"} -> 201, the request
    PATCH  /api/callbacks/{id}      {"at": ...}: a new time for an open request
    DELETE /api/callbacks/{id}      cancel it

``at`` is ISO 8601 local time in the server's ``timezone`` (an explicit offset wins) or unix
seconds, read as the dialer's ``callback_at``; no ``at`` (or a past one) means at once. A
booked request's place in its queue is its time. A number is a configured user, or a phone
number (normalized to E.164).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acd.callbacks import State
from callcenter.dialer.callbacks import CallbackError as TimeError
from callcenter.dialer.callbacks import callback_time
from callcenter.dialer.numbers import try_normalize
from callcenter.web.http import HttpError, HttpRequest, HttpResponse, Router

if TYPE_CHECKING:
    from callcenter.calls.callbacks import CallbackWorker
    from callcenter.web.auth import Auth


@dataclass(frozen=True, slots=True)
class Booking:
    queue: str
    number: str
    at: float | None  #: unix time on the server's clock; None: at once


def parse_at(value: Any, *, local_now: dt.datetime, tz: str) -> float:
    """``at`` as unix time on the server's clock (``local_now``); a bad one is an HTTP 400."""
    try:
        return callback_time(value, wall=local_now.timestamp(), local_now=local_now, tz=tz,
                             field="at")
    except TimeError as exc:
        raise HttpError(400, str(exc)) from None


def parse_booking(body: Any, *, queues: Collection[str], users: Collection[str],
                  local_now: dt.datetime, tz: str) -> Booking:
    """A POST body checked: a known queue, a user or a phone number, a time (400 if not)."""
    if not isinstance(body, dict):
        raise HttpError(400, 'expected {"queue": "sales", "number": "+48...", "at": ...}')
    queue, number = body.get("queue"), body.get("number")
    if not isinstance(queue, str) or queue not in queues:
        raise HttpError(400, f"queue: unknown queue {queue!r} (one of {', '.join(queues)})")
    if not isinstance(number, str | int) or isinstance(number, bool):
        raise HttpError(400, "number: expected a phone number or a user")
    number = str(number).strip()
    if number not in users:
        e164, why = try_normalize(number)
        if e164 is None:
            raise HttpError(400, f"number: bad number {number!r}: {why}")
        number = e164
    at = body.get("at")
    return Booking(queue, number, None if at is None else parse_at(
        at, local_now=local_now, tz=tz))


def register(router: Router, auth: Auth, worker: CallbackWorker) -> None:
    """Add the callback routes."""
    cfg, clock = worker.cfg, worker.services.clock

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        at = row["next_at"]
        local = None if at is None else dt.datetime.fromtimestamp(at, clock.now().tzinfo)
        return {**row, "at": None if local is None else local.isoformat(timespec="seconds")}

    def changed(req: HttpRequest, change: Any) -> HttpResponse:
        """404 for an unknown id, 409 for a request finished or being dialled."""
        try:
            id = int(req.params["id"])
        except ValueError:
            id = 0
        if worker.store.get(id) is None:
            raise HttpError(404, f"no callback {req.params['id']!r}")
        try:
            return HttpResponse.json(shown(change(id)))
        except KeyError:
            raise HttpError(404, f"no callback {id}") from None
        except ValueError as exc:  # CallbackError: finished, or being dialled
            raise HttpError(409, str(exc)) from None

    def listing(req: HttpRequest) -> HttpResponse:
        auth.require(req)
        queue, state = req.arg("queue"), req.arg("state")
        if queue is not None and cfg.queue(queue) is None:
            raise HttpError(400, f"queue: unknown queue {queue!r}")
        if state is not None and state not in set(State):
            raise HttpError(400, f"state: one of {', '.join(State)}")
        return HttpResponse.json([shown(r) for r in worker.store.find(queue=queue, status=state)])

    def book(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        local = clock.now()
        wall = local.timestamp()
        b = parse_booking(req.json(), queues=[q.name for q in cfg.queues],
                          users={u.user for u in cfg.users}, local_now=local, tz=cfg.timezone)
        id = worker.book(b.queue, b.number, wall if b.at is None else max(wall, b.at), at=b.at,
                         booked_by=auth.principal(req).user or "")
        row = worker.store.get(id)
        assert row is not None
        return HttpResponse.json(shown(row), 201)

    def move(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        body = req.json()

        def to(id: int) -> dict[str, Any]:
            if not isinstance(body, dict) or "at" not in body:
                raise HttpError(400, 'expected {"at": "2026-11-23T15:30" or unix seconds}')
            at = parse_at(body["at"], local_now=clock.now(), tz=cfg.timezone)
            return worker.reschedule(id, at)

        return changed(req, to)

    def cancel(req: HttpRequest) -> HttpResponse:
        auth.require(req, "admin")
        return changed(req, worker.cancel)

    router.add("GET", "/api/callbacks", listing)
    router.add("POST", "/api/callbacks", book)
    router.add("PATCH", "/api/callbacks/{id}", move)
    router.add("DELETE", "/api/callbacks/{id}", cancel)
