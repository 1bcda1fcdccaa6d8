"""A supervisor listens, whispers and barges on a call the agent placed itself (issue 16).

Not a queue call and not one the agent took: agent 1001 (baresip, 1000 Hz) dials user 1002
(or, in the last test, an outside number through the trunk)
(baresip, 440 Hz) directly, so the agent's leg is the call's caller leg. Supervisor 2001
(baresip, 1800 Hz) starts an API session on agent 1001 (the server calls 2001) and switches
listen -> whisper -> barge; each party's recording of what it heard is checked by spectrum,
phase by phase: the whisper reaches 1001 only, never its partner 1002.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import http, rows
from tests.helpers.baresip import BaresipAgent
from tests.helpers.carrier import Carrier
from tests.helpers.g711 import ulaw_to_linear
from tests.helpers.phones import agent, closed
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import wait_until
from tests.integration.test_dial_out import NATIONAL
from tests.integration.test_dialer_preview import sales_and_trunk
from tests.integration.test_supervisor import AGENT_HZ, CALLER_HZ, MARGIN, PHASE, SUPER_HZ, heard
from tests.integration.test_user_leaves_transfer import dialplan


def phones(artifacts: Path, srv: ServerProcess) -> list[BaresipAgent]:
    """1001, 1002 and 2001, each sending its tone (1000, 440 and 1800 Hz)."""
    return [agent(artifacts, user, audio.make_tone_wav(artifacts / f"tone{int(hz)}.wav", (hz,),
                                                       10.0), srv)
            for user, hz in (("1001", AGENT_HZ), ("1002", CALLER_HZ), ("2001", SUPER_HZ))]


@contextmanager
def three_phones(artifacts: Path, overrides: dict[str, Any] | None = None
                 ) -> Iterator[tuple[ServerProcess, BaresipAgent, BaresipAgent, BaresipAgent]]:
    """The server and 1001, 1002, 2001 registered; everything stopped afterwards."""
    srv = ServerProcess(artifacts, overrides=overrides).start()
    one, two, boss = phones(artifacts, srv)
    try:
        with one, two, boss:
            for phone in (one, two, boss):
                phone.ctrl.wait_registered()
            yield srv, one, two, boss
    finally:
        srv.stop()


def listen(srv: ServerProcess, boss: BaresipAgent) -> tuple[str, float]:
    """2001 listens to agent 1001 by API (the server calls 2001): the session's id once it
    is active, and when 2001's phone answered (its recording's start)."""
    status, session = http(srv, "POST", "/api/supervisor/sessions",
                           {"supervisor": "2001", "agent": "1001", "mode": "listen"})
    assert status == 201, session
    boss.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
    answered = time.time()
    assert wait_until(lambda: any(
        s["id"] == session["id"] and s["state"] == "active"
        for s in http(srv, "GET", "/api/supervisor/sessions")[1]["live"]), 10), srv.log_tail()
    return str(session["id"]), answered


def test_a_supervisor_joins_the_agents_own_direct_call(artifacts: Path) -> None:
    require_binary("baresip")
    require_binary("sox")
    with three_phones(artifacts) as (srv, agent_, other, boss):
        agent_.dial(f"sip:1002@127.0.0.1:{srv.sip_port}")
        other.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
        agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
        t_call = time.time()
        session, t_boss = listen(srv, boss)
        times = {"listen": time.time()}
        for mode in ("whisper", "barge"):
            time.sleep(PHASE)
            status, changed = http(srv, "PATCH",
                                   f"/api/supervisor/sessions/{session}",
                                   {"mode": mode})
            assert status == 200 and changed["mode"] == mode, changed
            times[mode] = time.time()
        time.sleep(PHASE)
        t_end = time.time()
        agent_.ctrl.command("hangup")  # the agent ends its call: everybody is hung up
        assert closed(agent_, 10)
        assert closed(other, 10), "1002 was not hung up"
        assert closed(boss, 10), "the supervisor was not hung up"
        said = [audio.read_wav(p.recordings()["heard"])[0] for p in (agent_, other, boss)]

    ends = {"listen": times["whisper"], "whisper": times["barge"], "barge": t_end}
    got = {mode: tuple(heard(samples, t0, start + MARGIN, ends[mode] - 0.3)
                       for samples, t0 in zip(said, (t_call, t_call, t_boss), strict=True))
           for mode, start in times.items()}
    assert got == {  # what 1001, 1002 and 2001 heard (tuples)
        "listen": ({CALLER_HZ}, {AGENT_HZ}, {CALLER_HZ, AGENT_HZ}),
        "whisper": ({CALLER_HZ, SUPER_HZ}, {AGENT_HZ}, {CALLER_HZ, AGENT_HZ}),
        "barge": ({CALLER_HZ, SUPER_HZ}, {AGENT_HZ, SUPER_HZ}, {CALLER_HZ, AGENT_HZ}),
    }, got
    (row,) = rows(srv.db_path, "SELECT * FROM supervisor_sessions")
    (cdr,) = rows(srv.db_path, "SELECT * FROM calls WHERE caller = '1001' AND called = '1002'")
    assert (row["agent"], row["call_id"], row["ended_by"]) == ("1001", cdr["id"], "agent"), row


PLAN = """lines:
  - {number: "0800999002", accept: [users], flow: agent}
nodes:
  agent: {type: transfer, user: "1001", next: after}
  after: {type: play, prompts: [closed_hours]}
"""


def test_agent_leaves_a_listened_transfer(artifacts: Path) -> None:
    """The IVR transferred 1002 to agent 1001 while 2001 listens; 1001 hangs up: the
    supervisor is hung up, and 1002 goes on in the IVR (hears its prompt) until it ends."""
    require_binary("baresip")
    require_binary("sox")
    with three_phones(artifacts, dialplan(artifacts, PLAN)) as (srv, agent_, caller, boss):
        caller.dial(f"sip:0800999002@127.0.0.1:{srv.sip_port}")
        agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
        listen(srv, boss)
        time.sleep(2.0)
        agent_.ctrl.command("hangup")
        t_left = time.time()
        assert closed(agent_, 10)
        assert closed(boss, 10), "the supervisor was not hung up"
        assert not caller.ctrl.seen("CALL_CLOSED"), "the caller was hung up with the agent"
        assert closed(caller, 30), "the IVR did not end the call after its prompt"
        heard_ = audio.read_wav(caller.recordings()["heard"])[0]
        t_closed = time.time()
    (row,) = rows(srv.db_path, "SELECT * FROM supervisor_sessions")
    assert (row["agent"], row["ended_by"], row["result"]) == ("1001", "agent", "ended"), row
    prompt = heard_[-int((t_closed - t_left) * 8000):][8000:]  # after 1001 left
    assert audio.active_rms(prompt) > 5 * audio.SILENCE_RMS, "the caller heard no prompt"


def test_a_supervisor_joins_the_agents_call_out_through_the_trunk(artifacts: Path) -> None:
    """Agent 1001 dials an outside number (trunk ``pstn`` to the simulated carrier, which
    greets for 0.5 s, then is silent and records what it hears); 2001 listens, whispers and
    barges: the carrier hears 2001 only in barge, 1001 hears 2001 from whisper on."""
    require_binary("baresip")
    require_binary("sox")
    carrier_port = ports.allocate(2).base
    with Carrier(carrier_port, max_call=40) as carrier, \
            three_phones(artifacts, sales_and_trunk(carrier_port)) as (srv, agent_, _, boss):
        agent_.dial(f"sip:{NATIONAL}@127.0.0.1:{srv.sip_port}")
        agent_.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)
        t_call = time.time()
        assert wait_until(lambda: any(c.answered for c in carrier.calls.values()), 10)
        (out,) = carrier.calls.values()
        session, t_boss = listen(srv, boss)
        times = {"listen": (time.time(), time.monotonic())}
        for mode in ("whisper", "barge"):
            time.sleep(PHASE)
            status, changed = http(srv, "PATCH", f"/api/supervisor/sessions/{session}",
                                   {"mode": mode})
            assert status == 200 and changed["mode"] == mode, changed
            times[mode] = (time.time(), time.monotonic())
        time.sleep(PHASE)
        t_end = (time.time(), time.monotonic())
        agent_.ctrl.command("hangup")
        assert closed(agent_, 10)
        assert closed(boss, 10), "the supervisor was not hung up"
        assert wait_until(lambda: out.ended is not None, 10), "the carrier was not hung up"
        said = [audio.read_wav(p.recordings()["heard"])[0] for p in (agent_, boss)]
        assert out.answered is not None

    def carrier_heard(start: float, end: float) -> set[float]:
        """The tones in what the carrier received between monotonic times start and end."""
        a, b = start - out.answered, end - out.answered  # type: ignore[operator]
        frames = [payload for t, payload in out.heard if a <= t < b]
        block = np.array([ulaw_to_linear(x) for f in frames for x in f], dtype=np.float64)
        assert len(block) > 4000, f"the carrier heard too little in {a:.1f}-{b:.1f} s"
        return {f for f in (AGENT_HZ, SUPER_HZ) if audio.tone_present(block, f, ratio=0.05)}

    order = ["listen", "whisper", "barge"]
    ends = {mode: (times[order[i + 1]] if i < 2 else t_end) for i, mode in enumerate(order)}
    got = {mode: (heard(said[0], t_call, start[0] + MARGIN, ends[mode][0] - 0.3),
                  heard(said[1], t_boss, start[0] + MARGIN, ends[mode][0] - 0.3),
                  carrier_heard(start[1] + MARGIN, ends[mode][1] - 0.3))
           for mode, start in times.items()}
    assert got == {  # what 1001, 2001 and the carrier heard (the carrier is silent: no tone)
        "listen": (set(), {AGENT_HZ}, {AGENT_HZ}),
        "whisper": ({SUPER_HZ}, {AGENT_HZ}, {AGENT_HZ}),
        "barge": ({SUPER_HZ}, {AGENT_HZ}, {AGENT_HZ, SUPER_HZ}),
    }, got
    (row,) = rows(srv.db_path, "SELECT * FROM supervisor_sessions")
    (cdr,) = rows(srv.db_path, "SELECT * FROM calls WHERE caller = '1001'")
    assert (row["agent"], row["call_id"], row["ended_by"]) == ("1001", cdr["id"], "agent"), row
    assert cdr["direction"] == "outbound", cdr
