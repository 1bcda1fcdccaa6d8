"""Screen-pop latency: from the ACD's decision to ring an agent to the customer card rendered
in that agent's desk page, p50/p99, with 50 agents, each with its desk open (issue 16).

A fresh server (`python -m callcenter serve`, JSON logs at info) with the configuration of
`bench_acd_latency.py` (N agents in queue `sales`, line 0800000001 straight into it) and an
admin token. Its agents child registers the N phones and answers every INVITE at once. One
headless Chromium, driven over the DevTools protocol, opens `/desk?agent=<id>&token=...` for
every agent, each page in a browser context of its own; before the page loads, a script is
added to it that stamps `performance.timeOrigin + performance.now()` (unix ms) the moment the
desk puts a call's id on its card (`document.body.dataset.call`, set when the card renders). Then SIPp
places `--rate` calls a second for `--duration` s into the line; each is answered, queued,
offered to an idle agent (the desk gets `agent.offer` on its event stream, fetches the card and
renders it) and hangs up after `--talk` s.

Measured, per card (the browser and the server are on the same machine: one CLOCK_REALTIME):

- `decision -> card`: the card's stamp minus the ACD's decision, the `agent_states` row that
  put that agent in `ringing` (the engine's time of the transition, written by the server),
  the last one before the card. It includes building the card (customer record, latest
  contacts), the event on the stream, the page's fetch of `/api/agents/{id}/offer` and render.
  With an idle agent the transition carries the time of the caller's queue `enter`.

Nothing is asserted; one JSON line (each card's time and latency in `<workdir>/cards.json`).

    PYTHONPATH=. python3 benchmarks/bench_screen_pop.py --agents 50 --rate 3 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from benchmarks import bench_acd_latency as acd
from benchmarks.benchlib import (
    BENCH,
    HOST,
    CpuSampler,
    Server,
    count,
    finish_sipp,
    machine,
    sipp_row,
    start_sipp,
)
from tests.helpers.browser import Page

TOKEN = "bench-desk-token"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows", "--renderer-process-limit=8"]
#: unix ms of each call id the card shows, in the order the page showed them
STAMP = """window.__pops = [];
new MutationObserver(() => {
  const call = document.body && document.body.dataset.call;
  if (call && !window.__pops.some((p) => p[0] === call))
    window.__pops.push([call, performance.timeOrigin + performance.now()]);
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-call"]});"""


def write_config(args: argparse.Namespace, workdir: Path) -> Path:
    path = acd.write_config(args, workdir)
    data = yaml.safe_load(path.read_text())
    data["http"]["tokens"] = [{"token": TOKEN, "role": "admin", "name": "bench"}]
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def open_desks(browser: Page, base: str, agents: list[str], timeout: float) -> dict[str, str]:
    """One target per agent's desk, stamped; agent -> DevTools session (bounded wait for each
    page's first load)."""
    sessions = {}
    for agent in agents:
        # a context of its own: its own socket pool (Chromium keeps at most 6 connections to
        # a host per pool, and each desk holds one open for its event stream)
        context = browser.send("Target.createBrowserContext")["browserContextId"]
        target = browser.send("Target.createTarget", url="about:blank",
                              browserContextId=context)["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"]
        browser.send("Page.enable", session)  # needed for the script; events until loaded
        browser.send("Page.addScriptToEvaluateOnNewDocument", session, source=STAMP)
        browser.send("Page.navigate", session, url=f"{base}/desk?agent={agent}&token={TOKEN}")
        sessions[agent] = session
    deadline = time.monotonic() + timeout
    for session in sessions.values():
        while time.monotonic() < deadline and not value(
                browser, session, "document.body?.dataset.loaded === '1'"):
            time.sleep(0.2)
        browser.send("Page.disable", session)  # no more page events on the pipe
    return sessions


def value(browser: Page, session: str, expression: str) -> Any:
    result = browser.send("Runtime.evaluate", session, expression=expression,
                          returnByValue=True)
    return result.get("result", {}).get("value")


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    server = Server(workdir, write_config(args, workdir), args.sip_port, args.http_port,
                    nice=args.nice)
    server.start()
    agent_out = workdir / "agents.json"
    users = [str(acd.AGENT_BASE + i) for i in range(args.agents)]
    phones = subprocess.Popen(
        [sys.executable, acd.__file__, "_agents", "--agents", str(args.agents),
         "--sip-port", str(args.sip_port), "--agent-rtp-port", str(args.agent_rtp_port),
         "--agent-seconds", str(args.duration + args.talk + 180), "--agent-out", str(agent_out)],
        stdout=subprocess.PIPE, stderr=open(workdir / "agents.stderr", "wb"),  # noqa: SIM115
        stdin=subprocess.DEVNULL)
    pops: dict[str, list[list[Any]]] = {}
    try:
        assert phones.stdout is not None
        if phones.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"agents did not register: see {workdir / 'agents.stderr'}")
        with Page("about:blank", workdir, FLAGS) as browser:
            base = f"http://{HOST}:{args.http_port}"
            sessions = open_desks(browser, base, users, 120)
            loaded = sum(bool(value(browser, s, "document.body?.dataset.loaded === '1'"))
                         for s in sessions.values())
            sampler = CpuSampler(server.pid).start()
            stat = workdir / "stat.csv"
            stat.unlink(missing_ok=True)
            sipp = start_sipp(args, acd.SCENARIO, acd.NUMBER, args.rate, args.talk,
                                  workdir, stat)
            finish_sipp(sipp, args.duration + args.talk + 60, workdir)
            sampler.stop()
            time.sleep(5)  # the last cards
            for agent, session in sessions.items():
                pops[agent] = value(browser, session, "window.__pops") or []
    finally:
        if phones.poll() is None:
            phones.send_signal(signal.SIGTERM)
        try:
            phones.wait(15)
        except subprocess.TimeoutExpired:
            phones.kill()
            phones.wait(5)
        server.stop()
    con = sqlite3.connect(f"file:{workdir / 'bench.db'}?mode=ro", uri=True, timeout=10)
    try:
        ringing: dict[str, list[float]] = defaultdict(list)
        for agent, ts in con.execute("SELECT agent, ts FROM agent_states WHERE new = 'ringing' "
                                     "ORDER BY ts"):
            ringing[agent].append(ts)
        entries = con.execute("SELECT count(*) FROM queue_log WHERE event = 'enter'").fetchone()[0]
    finally:
        con.close()
    samples = []  # (card's unix ms, ms since the decision, agent, call)
    for agent, cards in pops.items():
        for call, at_ms in cards:
            before = [t for t in ringing[agent] if t * 1000 <= at_ms]
            if before:
                samples.append((at_ms, at_ms - before[-1] * 1000, agent, call))
    (workdir / "cards.json").write_text(json.dumps(sorted(samples)))
    decision_ms = [x[1] for x in samples]
    row = sipp_row(workdir / "stat.csv")
    cpu = sampler.summary(args.talk + 2, args.duration)
    return {
        "agents": args.agents, "desks_loaded": loaded, "rate": args.rate,
        "duration": args.duration, "talk_s": args.talk,
        "placed": count(row, "OutgoingCall(C)"), "successful": count(row, "SuccessfulCall(C)"),
        "queue_entries": entries, "rings": sum(map(len, ringing.values())),
        "cards": sum(map(len, pops.values())),
        "decision_to_card_ms": acd.percentiles(decision_ms),
        "server_cpu_mean": round(cpu["mean"], 1),
        "system_busy_pct": round(sampler.system_summary(args.talk + 2, args.duration), 1),
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--rate", type=int, default=3, help="calls a second")
    p.add_argument("--duration", type=int, default=60, help="seconds of new calls")
    p.add_argument("--talk", type=float, default=4.0,
                   help="seconds from the caller's answer to its BYE (queue + talk)")
    p.add_argument("--config", default=str(BENCH / "bench-config.yaml"))
    p.add_argument("--sip-port", type=int, default=25360)
    p.add_argument("--http-port", type=int, default=25380)
    p.add_argument("--sipp-port", type=int, default=25362)
    p.add_argument("--media-port", type=int, default=25364)
    p.add_argument("--agent-rtp-port", type=int, default=25370)
    p.add_argument("--sipp", default=shutil.which("sipp") or "sipp")
    p.add_argument("--workdir", default="/tmp/callcenter-bench/screen-pop")
    p.add_argument("--nice", type=int, default=0, help="niceness of the server and SIPp")
    args = p.parse_args(argv)
    args.agents = max(1, min(args.agents, 200))
    args.rate = max(1, min(args.rate, 50))
    args.duration = max(1, min(args.duration, 600))
    print(json.dumps(machine()), flush=True)
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
