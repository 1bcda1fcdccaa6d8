"""Issue 7: the wallboard in headless Chromium shows what the API says, with calls waiting.

Three SIPp callers dial 0800000001 (straight into queue ``sales``) while no sales agent is
registered, so they wait; phone 1003 registers (a sales and support member). Chromium
(Debian's, headless) loads ``/wallboard?token=...``; the rendered DOM is read back and every
queue figure and agent state is compared with ``/api/queues`` and ``/api/agents``; two
callbacks booked for tomorrow through ``POST /api/callbacks`` show as pending on ``support``. A
screenshot goes to ``tests/artifacts/<test>/wallboard.png``.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.conftest import require_binary
from tests.helpers import ports
from tests.helpers.api import http as api
from tests.helpers.phones import register
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until

LINE_SALES = "0800000001"
CALLERS = 3
PHONE = "1003"
TOKEN = "demo-wallboard-token"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=Translate,OptimizationHints,MediaRouter", "--hide-scrollbars",
]


def _get(port: int, path: str) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


class _Board(HTMLParser):
    """data-field texts inside each data-queue / data-agent element."""

    def __init__(self) -> None:
        super().__init__()
        self.queues: dict[str, dict[str, str]] = {}
        self.agents: dict[str, dict[str, str]] = {}
        self._stack: list[tuple[str, dict[str, str] | None, str | None]] = []
        self._owner: dict[str, str] | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        owner = self._owner
        if "data-queue" in a:
            owner = self.queues.setdefault(a["data-queue"], {})
        elif "data-agent" in a:
            owner = self.agents.setdefault(a["data-agent"], {"_state": a.get("data-state", "")})
        self._stack.append((tag, self._owner, self._field))
        self._owner = owner
        if "data-field" in a and owner is not None:
            self._field = a["data-field"]
            owner[self._field] = ""

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            t, self._owner, self._field = self._stack.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._owner is not None and self._field is not None:
            self._owner[self._field] += data


def _seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


def _chromium(url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = workdir / f"profile{len(list(workdir.glob('profile*')))}"
    return subprocess.run(
        [require_binary("chromium"), *FLAGS, f"--user-data-dir={profile}",
         "--window-size=1920,1080", "--virtual-time-budget=6000", *extra, url],
        capture_output=True, text=True, timeout=90, cwd=workdir,
    )


def test_wallboard_shows_the_api_figures(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("chromium")
    overrides = {"queues": [
        {"name": "sales", "members": ["1001", "1002"], "announce_every": None, "max_wait": 600},
        {"name": "support", "members": [PHONE, "1004"]},
    ]}
    with ServerProcess(artifacts, overrides=overrides) as srv:
        # the live stream the page listens to (EventSource passes the token as ?token=)
        stream = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)
        stream.request("GET", f"/api/events/stream?types=registration,queue.&token={TOKEN}")
        live = stream.getresponse()
        assert live.status == 200
        assert live.getheader("Content-Type", "").startswith("text/event-stream")
        block = ports.allocate(8)
        register(srv, PHONE, block, artifacts / "register")
        lines = [live.fp.readline().decode().strip() for _ in range(6)]
        assert "event: registration" in lines, lines
        data = json.loads(next(x for x in lines if x.startswith("data: "))[6:])
        assert (data["schema"], data["user"], data["registered"]) == (1, PHONE, True)
        stream.close()
        for number in ("+48221234567", "+48221234568"):
            status, _ = api(srv, "POST", "/api/callbacks", {
                "queue": "support", "number": number, "at": time.time() + 86400})
            assert status == 201
        with Sipp("uac_queue_call.xml", workdir=artifacts / "callers", ports=ports.allocate(8),
                  remote_port=srv.sip_port, service=LINE_SALES, calls=CALLERS, timeout=120,
                  extra=["-r", "10", "-l", str(CALLERS)], trace_msg=False):
            assert wait_until(
                lambda: next(q for q in _get(srv.http_port, "/api/queues")
                             if q["name"] == "sales")["waiting"] == CALLERS, 20), srv.log_tail()
            # live=poll: an open event stream would keep Chromium's virtual time from running
            url = f"http://127.0.0.1:{srv.http_port}/wallboard?token={TOKEN}&live=poll"
            dom = _chromium(url, artifacts, "--dump-dom")
            queues = {q["name"]: q for q in _get(srv.http_port, "/api/queues")}
            agents = {a["id"]: a for a in _get(srv.http_port, "/api/agents")}
            (artifacts / "wallboard.html").write_text(dom.stdout, encoding="utf-8")
            shot = _chromium(url, artifacts, f"--screenshot={artifacts / 'wallboard.png'}")
        assert (artifacts / "wallboard.png").stat().st_size > 10_000, shot.stderr[-2000:]

    board = _Board()
    board.feed(dom.stdout)
    assert 'data-loaded="1"' in dom.stdout, dom.stderr[-3000:]
    assert set(board.queues) == set(queues), board.queues
    for name, q in queues.items():
        shown = board.queues[name]
        assert int(shown["waiting"]) == q["waiting"], (name, shown, q)
        assert int(shown["answered"]) == q["answered"]
        assert int(shown["abandoned"]) == q["abandoned"]
        assert int(shown["callbacks_pending"]) == q["callbacks_pending"]
        sl = q["service_level"]
        assert shown["service_level"] == ("–" if sl is None else f"{round(sl * 100)}%")
        # the page counts the wait on between its fetches: within a few seconds of the API
        assert abs(_seconds(shown["longest_wait"]) - q["longest_wait"]) <= 8, (shown, q)
    assert board.queues["sales"]["waiting"] == str(CALLERS)
    assert int(_seconds(board.queues["sales"]["longest_wait"])) >= 1
    assert (board.queues["support"]["callbacks_pending"],
            board.queues["sales"]["callbacks_pending"]) == ("2", "0")
    assert set(board.agents) == set(agents)
    for agent_id, a in agents.items():
        shown = board.agents[agent_id]
        assert shown["_state"] == a["state"], (agent_id, shown, a)
        assert abs(_seconds(shown["time_in_state"]) - a["time_in_state"]) <= 8
    assert board.agents[PHONE]["_state"] == "available"
    assert "<svg" in dom.stdout or "No calls yet today" in dom.stdout
