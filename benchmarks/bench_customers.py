"""Customer lookups with many customers in the database, in-process.

    python3 benchmarks/bench_customers.py [--customers 1000000] [--lookups 2000] [--db PATH]

Fills a fresh SQLite file (WAL, as the server opens it) with N customers, one number each
and a few free fields, and 3 calls linked to each of 1,000 of them; then times what a call
costs: recognising its caller ID (normalising a number written another way, finding the
record, linking the call), the IVR's card (``customer.*``), the agent's screen-pop timeline,
and the API's lookup by number. Each figure is the wall time of one operation, p50 / p99 over
``--lookups`` random customers; the one-time index on the field callers identify by
is timed apart.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from callcenter.dialer.numbers import try_normalize
from callcenter.store.customers import CustomerStore
from callcenter.store.db import Store


def _e164(raw: str, country: str) -> str | None:
    return try_normalize(raw, country=country)[0]


def _number(i: int) -> str:
    return f"+48{500000000 + i}"  # Polish mobiles 500 000 000 onwards: valid for phonenumbers


def fill(store: Store, n: int, with_calls: int) -> None:
    conn = store.db.conn
    with conn:
        conn.executemany(
            "INSERT INTO customers (id, name, fields, created, updated) VALUES (?, ?, ?, 0, 0)",
            ((i, f"Customer {i}", json.dumps({"tier": "gold" if i % 10 == 0 else "basic",
                                               "account": str(100000 + i)})) for i in range(1, n + 1)))
        conn.executemany("INSERT INTO customer_numbers VALUES (?, ?)",
                         ((_number(i), i) for i in range(1, n + 1)))
        calls = [(f"c{i}-{k}", i) for i in range(1, with_calls + 1) for k in range(3)]
        conn.executemany(
            "INSERT INTO calls (id, sip_call_id, direction, caller, called, source, start) "
            "VALUES (?, ?, 'inbound', 'x', '0800123456', 'trunk:pstn', ?)",
            ((c, c, 1000.0 + j) for j, (c, _) in enumerate(calls)))
        conn.executemany("INSERT INTO customer_calls VALUES (?, ?, '', 0)", calls)


def measure(name: str, lookups: int, op: Callable[[int], object]) -> None:
    times = []
    for k in range(lookups):
        start = time.perf_counter()
        op(k)
        times.append(time.perf_counter() - start)
    times.sort()
    p50, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
    print(f"{name:<34} p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    n = args.customers
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.db or Path(tmp) / "bench.db")
        began = time.perf_counter()
        fill(store, n, with_calls=min(n, 1000))
        print(f"{n} customers written in {time.perf_counter() - began:.1f} s")
        customers = CustomerStore(store.db, _e164)
        rng = random.Random(16)
        picks = [rng.randrange(1, n + 1) for _ in range(args.lookups)]
        linked = [rng.randrange(1, min(n, 1000) + 1) for _ in range(args.lookups)]
        measure("recognise a call (0048... form)", args.lookups, lambda k: customers.recognise(
            f"new{k}", "00" + _number(picks[k])[1:], now=2000.0 + k))
        measure("IVR card of that call", args.lookups,
                lambda k: customers.card(f"new{k}", 2000.0 + k))
        measure("API lookup by number (22... form)", args.lookups,
                lambda k: customers.by_number(_number(picks[k])[3:]))
        measure("screen-pop timeline (3 calls)", args.lookups,
                lambda k: customers.timeline(linked[k], limit=5))
        began = time.perf_counter()
        customers.index_field("account")  # what the server does at start for identify nodes
        print(f"index on the account field made in {time.perf_counter() - began:.1f} s")
        measure("identify by account field", args.lookups,
                lambda k: customers.identify(f"new{k}", "account", str(100000 + picks[k]),
                                             now=3000.0))
        store.close()


if __name__ == "__main__":
    main()
