"""Callback requests through the API: input checks (400s) and who announces a booking."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenter.calls.callbacks import CallbackWorker
from callcenter.events.bus import CallbackRequested
from callcenter.store.db import Store
from callcenter.store.ivr import IvrStore
from callcenter.web.callback_api import Booking, parse_at, parse_booking
from callcenter.web.http import HttpError
from ivr.engine import CallbackRequest

TZ = "Europe/Warsaw"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo(TZ))
WALL = NOW.timestamp()


def book(body: Any) -> Booking:
    return parse_booking(body, queues=["sales", "support"], users={"1001"}, local_now=NOW,
                         tz=TZ)


def refused(body: Any) -> str:
    with pytest.raises(HttpError) as err:
        book(body)
    assert err.value.status == 400
    return str(err.value)


def test_a_good_booking_is_read() -> None:
    assert book({"queue": "sales", "number": "22 123 45 67"}) == \
        Booking("sales", "+48221234567", None)
    assert book({"queue": "sales", "number": "1001", "at": WALL + 60}).number == "1001"
    local = book({"queue": "sales", "number": "+48221234567", "at": "2026-11-23T15:30"})
    assert local.at == WALL + 3.5 * 3600  # local time in the server's zone
    assert book({"queue": "support", "number": "+48221234567",
                 "at": "2026-11-23T15:30+00:00"}).at == WALL + 4.5 * 3600
    assert book({"queue": "sales", "number": "+48221234567", "at": "1800000000"}).at == 1.8e9


@pytest.mark.parametrize(("body", "why"), [
    ([], "expected"),
    ({"number": "+48221234567"}, "queue: unknown queue None"),
    ({"queue": "nope", "number": "+48221234567"}, "queue: unknown queue 'nope'"),
    ({"queue": "sales"}, "number: expected"),
    ({"queue": "sales", "number": True}, "number: expected"),
    ({"queue": "sales", "number": "12ab"}, "number: bad number '12ab'"),
    ({"queue": "sales", "number": "+48221234567", "at": "tomorrow"}, "at: bad time"),
    ({"queue": "sales", "number": "+48221234567", "at": ""}, "at: expected"),
    ({"queue": "sales", "number": "+48221234567", "at": [1]}, "at: expected"),
    ({"queue": "sales", "number": "+48221234567", "at": float("nan")}, "at: expected"),
    ({"queue": "sales", "number": "+48221234567", "at": False}, "at: expected"),
])
def test_bad_input_is_a_400_naming_the_field(body: Any, why: str) -> None:
    assert why in refused(body)


def test_parse_at_is_a_400() -> None:
    with pytest.raises(HttpError) as err:
        parse_at("soon", local_now=NOW, tz=TZ)
    assert err.value.status == 400 and "at: bad time 'soon'" in str(err.value)


def test_an_ivr_booking_is_announced(tmp_path: Path) -> None:
    """The IVR writes its request straight to the store: the worker still publishes it."""
    published: list[Any] = []
    ivr_store = IvrStore(Store(tmp_path / "cc.db"), tmp_path / "vm")
    services = SimpleNamespace(publish=published.append,
                               clock=SimpleNamespace(now=lambda: NOW))
    CallbackWorker(services, cfg=SimpleNamespace(), store=ivr_store.callbacks,  # type: ignore[arg-type]
                   queues=SimpleNamespace(), schedule=lambda name: None)  # type: ignore[arg-type]
    asyncio.run(ivr_store.create_callback(CallbackRequest(
        call_id="c1", caller="+48221234567", number="+48221234567", queue="sales",
        language="pl", requested_at=NOW)))
    assert [(type(e), e.queue, e.number, e.state) for e in published] == \
        [(CallbackRequested, "sales", "+48221234567", "open")]
