"""The supervisor's view in headless Chromium (issue 16): log in, see the queue live, listen.

Supervisor 2001 watches sales (``supervisor.queues``); support (agent 1003) is not theirs.
Zofia Nowicka (a customer) calls 0800000001 from SIPp, playing a 440 Hz tone, and reaches SIPp
agent 1001 in sales; a second caller waits. In ``/desk/supervisor`` 2001 logs in and sees 1001
on her call (number and name) and the waiting caller, never support or 1003; one click on
"Listen" makes the server call 2001's phone (pyVoIP), which hears the tone; "Stop" hangs it up
and the call goes on. Screenshot: ``supervisor-desk.png``.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from tests.conftest import require_binary
from tests.helpers import audio, pcap, ports
from tests.helpers.api import http
from tests.helpers.browser import Page
from tests.helpers.phones import answering_phone
from tests.helpers.pyvoip_agent import PyVoipAgent
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, wait_until
from tests.integration.demo import USERS
from tests.integration.test_desk import _caller
from tests.integration.test_wallboard import FLAGS

TONE_HZ, NUMBER, WAITING = 440.0, "+48221234567", "+48221234599"
QUEUE = {"ring_timeout": 30, "max_wait": 120, "announce_every": None, "whisper": False}
OVERRIDES = {"queues": [{"name": "sales", "members": ["1001"], **QUEUE},
                        {"name": "support", "members": ["1003"], **QUEUE}],
             "supervisor": {"queues": {"2001": ["sales"]}}}


def _text(page: Page, selector: str) -> str:
    return str(page.eval(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"))


def _click(page: Page, agent: str, mode: str) -> None:
    page.eval(f"document.querySelector('button[data-agent=\"{agent}\"][data-mode=\"{mode}\"]')"
              ".click(); 1")


def test_supervisor_logs_in_sees_the_call_and_listens(artifacts: Path) -> None:
    require_binary("sipp")
    require_binary("chromium")
    tone = pcap.wav_to_pcap(audio.make_tone_wav(artifacts / "tone.wav", (TONE_HZ,), 60.0),
                            artifacts / "tone.pcap")
    steps = (f'  <nop><action><exec play_pcap_audio="{tone}"/></action></nop>\n'
             '  <pause milliseconds="60000"/>')
    with ServerProcess(artifacts, overrides=OVERRIDES) as server, ExitStack() as stack:
        assert http(server, "POST", "/api/customers", {"name": "Zofia Nowicka",
                                                       "numbers": [NUMBER]})[0] == 201
        answering_phone(server, "1001", artifacts, stack, talk_ms=60000, calls=1, timeout=120)
        boss = stack.enter_context(PyVoipAgent("2001", USERS["2001"],
                                               registrar_port=server.sip_port,
                                               ports=ports.allocate(20), call_seconds=30,
                                               workdir=artifacts))
        for name, number, script in (("caller", NUMBER, steps),
                                     ("second", WAITING, '  <pause milliseconds="60000"/>')):
            stack.enter_context(Sipp(
                str(_caller(artifacts / name, script, number)), workdir=artifacts / name,
                ports=ports.allocate(8), remote_port=server.sip_port, service="0800000001",
                keys={"codec_pt": "0", "codec_name": "PCMU"}, timeout=120))
            assert wait_until(lambda: any(a["id"] == "1001" and a["state"] == "on_call"
                                          for a in http(server, "GET", "/api/agents")[1]),
                              40), server.log_tail()

        page = stack.enter_context(
            Page(f"http://127.0.0.1:{server.http_port}/desk/supervisor", artifacts, FLAGS))
        assert wait_until(lambda: page.eval("document.body?.dataset.ready === '1'"), 30)
        page.eval("document.getElementById('user').value = '2001';"
                  f"document.getElementById('password').value = {USERS['2001']!r};"
                  "document.getElementById('login').requestSubmit(); 1")
        row = 'tr[data-agent="1001"] [data-field="{}"]'
        assert wait_until(lambda: "Zofia Nowicka" in _text(page, row.format("customer")), 30), (
            page.eval("document.body.innerHTML"))
        assert wait_until(lambda: page.eval(
            "document.getElementById('link').classList.contains('live')"), 30)
        shown = page.eval("[...document.querySelectorAll('[data-queue]')].map("
                          "q => q.dataset.queue).concat([...document.querySelectorAll("
                          "'tr[data-agent]')].map(r => r.dataset.agent))")
        state, call = _text(page, row.format("state")), _text(page, row.format("call"))
        assert wait_until(lambda: _text(page, '[data-queue="sales"] .waiting') == WAITING, 30)

        _click(page, "1001", "listen")
        assert boss.incoming.wait(30), server.log_tail()
        stop = 'button[data-agent="1001"][data-mode="stop"]'
        assert wait_until(lambda: page.eval(f"document.querySelector('{stop}')?.disabled "
                                            "=== false"), 30)
        assert wait_until(lambda: "listen on agent 1001: active" in _text(page, "#sessions"),
                          30), _text(page, "#sessions")
        wait_until(lambda: len(b"".join(boss.calls[0].frames)) > 8000 * 5, 20)
        page.screenshot(artifacts / "supervisor-desk.png")
        _click(page, "1001", "stop")
        assert boss.calls[0].ended.wait(30), "the supervisor's phone was not hung up"
        sessions = http(server, "GET", "/api/supervisor/sessions")[1]
        agents = {a["id"]: a for a in http(server, "GET", "/api/agents")[1]}
    assert shown == ["sales", "1001"], shown  # support and 1003 are not 2001's
    assert state.startswith("on call") and call == f"{NUMBER} (sales)", (state, call)
    assert sessions["live"] == [] and sessions["history"][0]["agent"] == "1001"
    assert sessions["history"][0]["ended_by"] != "caller", sessions  # Stop ended it, not the call
    assert agents["1001"]["state"] == "on_call"  # the call went on without the supervisor
    heard = boss.calls[0].audio()
    assert audio.active_rms(heard) > 5 * audio.SILENCE_RMS, "the supervisor heard silence"
    assert audio.tone_present(heard[-8000 * 3:], TONE_HZ, ratio=0.05), "no caller's tone"
    assert (artifacts / "supervisor-desk.png").stat().st_size > 10_000
