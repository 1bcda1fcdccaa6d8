"""One clock and one time zone for every figure: ``/api/stats/intervals``, ``/api/cdr.csv`` and
``callcenter report`` count days and intervals in the config's ``timezone`` (Europe/Warsaw by
default) on the server's clock, as the ACD's "today" on the wallboard does, whatever the host's
own zone (here America/Los_Angeles, nine hours behind)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from acd.today import today_since
from callcenter.config import DEFAULT_CONFIG_YAML, Config
from callcenter.report import stats
from callcenter.store.db import Store
from callcenter.store.records import CallRecord
from callcenter.web import events_api
from callcenter.web.http import HttpRequest, Router
from ivr.clock import ServerClock

REPO = Path(__file__).resolve().parents[2]
WARSAW = ZoneInfo("Europe/Warsaw")
HOST_TZ = "America/Los_Angeles"
#: Warsaw local times; the day asked for is 2026-11-23
CALLS = ["2026-11-22T23:50", "2026-11-23T00:20", "2026-11-23T23:50", "2026-11-24T00:10"]


def warsaw(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=WARSAW).timestamp()


@pytest.fixture
def far_host() -> Iterator[None]:
    """This process's own time zone is Los Angeles for the test."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = HOST_TZ
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def store_calls(path: Path, stamps: list[float]) -> Store:
    """One queued call (queue log ``enter``) and one CDR at each unix time."""
    store = Store(path)
    for i, ts in enumerate(stamps):
        store.log_queue(ts=ts, queue="sales", call_id=f"c{i}", event="enter", position=1)
        store.start_call(CallRecord(id=f"c{i}", sip_call_id=f"c{i}@test", direction="inbound",
                                    caller="48221234567", called="0800123456",
                                    source="trunk:pstn", start=ts))
    return store


def api_get(store: Store, clock: ServerClock, path: str, **query: str) -> Any:
    router = Router()
    auth = SimpleNamespace(require=lambda req, role="read": "")
    events_api.register(router, auth, store=store, hub=SimpleNamespace(),  # type: ignore[arg-type]
                        sl_seconds={q.name: q.sl_seconds for q in Config().queues},
                        local=lambda: stats.LocalTime.of(clock))
    handler, _ = router.find("GET", path)
    resp = handler(HttpRequest("GET", path, {k: [v] for k, v in query.items()}, {}, b""))
    assert resp.status == 200, resp.body
    return resp.body.decode()


def test_intervals_and_cdr_csv_use_the_servers_zone(far_host: None, tmp_path: Path) -> None:
    store = store_calls(tmp_path / "cc.db", [warsaw(t) for t in CALLS])
    clock = ServerClock(tz="Europe/Warsaw")
    body = json.loads(api_get(store, clock, "/api/stats/intervals", date="2026-11-23",
                              minutes="15"))
    assert [(i["start"], i["offered"]) for i in body["intervals"]] == [("00:15", 1),
                                                                         ("23:45", 1)]
    rows = list(csv.DictReader(io.StringIO(api_get(store, clock, "/api/cdr.csv",
                                                    **{"from": "2026-11-23"}))))
    assert [r["start"] for r in rows] == ["2026-11-23T00:20:00+01:00",
                                          "2026-11-23T23:50:00+01:00"]


def test_today_is_the_server_clocks_day_as_on_the_wallboard(
    far_host: None, tmp_path: Path
) -> None:
    """``serve --clock 2026-11-23T00:30``: "today" is that Warsaw day, whatever the date on the
    host; calls stored 10 min ago fall at 00:20 of it, 60 min ago on the day before."""
    clock = ServerClock(datetime(2026, 11, 23, 0, 30), "Europe/Warsaw")
    now = time.time()
    store = store_calls(tmp_path / "cc.db", [now - 3600, now - 600])
    body = json.loads(api_get(store, clock, "/api/stats/intervals", minutes="15"))
    assert body["date"] == "2026-11-23"
    assert [(i["start"], i["offered"]) for i in body["intervals"]] == [("00:15", 1)]
    since = time.time() - today_since(clock.now())  # the ACD's today (report/today.py)
    assert sum(i["offered"] for i in body["intervals"]) == sum(
        1 for ts in (now - 3600, now - 600) if ts >= since)


@pytest.mark.parametrize(("zone", "expected"), [
    (None, [("2026-11-23 00:15", "1"), ("2026-11-23 23:45", "1")]),  # the default: Warsaw
    ("Asia/Tokyo", [("2026-11-23 07:45", "1"), ("2026-11-23 08:15", "1")]),
])
def test_report_cli_uses_the_configured_zone(
    tmp_path: Path, zone: str | None, expected: list[tuple[str, str]]
) -> None:
    store_calls(tmp_path / "cc.db", [warsaw(t) for t in CALLS]).close()
    args = ["--from", "2026-11-23", "--interval", "15", "--format", "csv",
            "--db", str(tmp_path / "cc.db")]
    if zone is not None:
        config = tmp_path / "config.yaml"
        config.write_text(DEFAULT_CONFIG_YAML.replace(
            "timezone: Europe/Warsaw", f"timezone: {zone}").replace(
            "sounds: sounds", f"sounds: {REPO / 'sounds'}").replace(
            "dialplans: dialplans", f"dialplans: {REPO / 'dialplans'}"), "utf-8")
        args += ["--config", str(config)]
    out = subprocess.run([sys.executable, "-m", "callcenter", "report", *args],
                         env={**os.environ, "TZ": HOST_TZ}, cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r[:1] == ["Queues"]]
    assert [(r[2], r[3]) for r in rows] == expected, out
