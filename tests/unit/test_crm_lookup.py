"""The CRM lookup against a CRM on loopback: its fields join the record, answers are cached,
a CRM answering 500, 404 or garbage, or hanging, changes nothing and is counted by outcome."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from callcenter.calls.crm import Crm
from callcenter.config.models import CrmLookup
from callcenter.dialer.numbers import try_normalize
from callcenter.events.bus import CrmLooked, Event
from callcenter.store.customers import CustomerStore
from callcenter.store.db import Store


class Fake(BaseHTTPRequestHandler):
    asked: list[str] = []
    release = threading.Event()

    def do_GET(self) -> None:
        Fake.asked.append(self.path)
        if "hang" in self.path:
            Fake.release.wait(10)  # far longer than the lookup's timeout
        status, body = {"/c/%2B48221234567": (200, {"tier": "vip", "plan": "gold", "x": [1]}),
                        "/c/%2B48600111222": (500, {}), "/c/%2B48600111333": (404, {}),
                        "/c/%2B48600111444": (200, ["not", "an", "object"])}.get(
            self.path, (200, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def crm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Fake.asked.clear()
    Fake.release.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    Fake.release.set()
    server.shutdown()


def test_fields_join_cached_and_failures_cost_nothing(crm_url: str) -> None:
    store = Store(":memory:")
    customers = CustomerStore(store.db, lambda raw, c: try_normalize(raw, country=c)[0])
    events: list[Event] = []
    crm = Crm(CrmLookup(url=crm_url + "/c/{number}", timeout_ms=300, cache_s=60),
              customers, events.append)
    numbers = ["+48221234567", "+48221234567", "+48600111222", "+48600111333",
               "+48600111444", "+48600111555"]
    hanging = CrmLookup(url=crm_url + "/hang/{number}", timeout_ms=300)

    async def run() -> None:
        for i, number in enumerate(numbers):
            found = customers.recognise(f"c{i}", number, now=1.0)
            assert found is not None
            crm.lookup(f"c{i}", found[0], number)
            await crm.wait(f"c{i}")
        slow = Crm(hanging, customers, events.append)
        slow.lookup("c9", 1, "+48221234567")
        await slow.wait("c9")  # gives up by itself after timeout_ms
        await crm.wait("unknown call")  # nothing pending: returns at once

    asyncio.run(run())
    assert [(e.call_id, e.outcome) for e in events if isinstance(e, CrmLooked)] == [
        ("c0", "ok"), ("c1", "cached"), ("c2", "error"), ("c3", "not_found"), ("c4", "error"),
        ("c5", "ok"), ("c9", "timeout")]
    assert Fake.asked.count("/c/%2B48221234567") == 1  # the second call used the cache
    anna = customers.by_number("+48221234567")
    assert anna is not None and anna["fields"] == {"tier": "vip", "plan": "gold"}
    for number in numbers[2:]:
        other = customers.by_number(number)
        assert other is not None and other["fields"] == {}
