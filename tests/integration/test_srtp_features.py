"""DTMF, recording, supervisor listening and RTP/RTCP figures on SRTP legs, with real peers.

One server (SIP over TLS, calls recorded, users 1001 and 1002 `srtp: required`) and a small
dialplan of its own: line 0800123456 plays a menu tone and branches on keys 1 and 2 to two
other tones. Every party sends a tone of its own, so each check is a frequency in a recording:
- an SRTP caller (baresip over TLS, `srtp-mand`) presses 2 (RFC 4733 inside SRTP): the IVR
  takes branch 2 (its event and the CDR's digits) and the caller hears that branch's tone;
- an SRTP caller calls an SRTP agent: the call's stereo WAV has each party's tone on its side,
  a plain RTP supervisor listening (*81) hears both;
- the CDRs of both calls carry loss and jitter for the SRTP caller leg; SRTCP goes both
  ways (seen where a raw socket is allowed); baresip's clear-text RTCP is counted as plain and
  nothing fails authentication.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callcenter.media.rtp import is_plain_rtcp
from tests.conftest import require_binary
from tests.helpers import audio
from tests.helpers.api import rows
from tests.helpers.artifacts import REPO, artifact_dir
from tests.helpers.baresip import BaresipAgent, CtrlError
from tests.helpers.certs import Certs, make_certs
from tests.helpers.secure import TlsServer, secure_agent, users_with_srtp
from tests.helpers.sipp import wait_until
from tests.helpers.sniff import UdpSniffer
from tests.integration.demo import LINE_TOLLFREE, USERS
from tests.integration.test_supervisor import read_stereo

MENU_HZ, ONE_HZ, TWO_HZ = 600.0, 1800.0, 1300.0  # the IVR's prompts
CALLER_HZ, AGENT_HZ, SUPER_HZ = 440.0, 1000.0, 2200.0  # what the phones say
DIALPLAN = f"""\
lines:
  - {{number: "{LINE_TOLLFREE}", name: SRTP menu, kind: toll-free, accept: [pstn, users],
     language: pl, flow: menu}}
nodes:
  menu: {{type: menu, prompts: tone_menu, options: {{1: one, 2: two}}, timeout: 10, retries: 1,
         on_timeout: hangup, on_invalid: hangup}}
  one: {{type: play, prompts: tone_one, next: hangup}}
  two: {{type: play, prompts: tone_two, next: hangup}}
"""


@dataclass(frozen=True)
class Setup:
    server: TlsServer
    certs: Certs
    tones: dict[float, Path]
    workdir: Path


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    require_binary("baresip")
    require_binary("openssl")
    workdir = artifact_dir("test_srtp_features")
    certs = make_certs(workdir / "certs")
    sounds, dialplans = workdir / "sounds", workdir / "dialplans"
    shutil.rmtree(sounds, ignore_errors=True)
    shutil.copytree(REPO / "sounds", sounds)
    for name, hz in (("tone_menu", MENU_HZ), ("tone_one", ONE_HZ), ("tone_two", TWO_HZ)):
        audio.make_tone_wav(sounds / "pl" / f"{name}.wav", (hz,), 8.0)
    dialplans.mkdir(exist_ok=True)
    (dialplans / "srtp.yaml").write_text(DIALPLAN, encoding="utf-8")
    tones = {hz: audio.make_tone_wav(workdir / f"tone{int(hz)}.wav", (hz,), 10.0)
             for hz in (CALLER_HZ, AGENT_HZ, SUPER_HZ)}
    users = users_with_srtp({"1001": "required", "1002": "required"})
    with TlsServer(workdir / "server", certs, sounds=str(sounds), dialplans=str(dialplans),
                   users=users, recording={"calls": True}) as srv:
        yield Setup(srv, certs, tones, workdir)
        assert srv.proc is not None and srv.proc.poll() is None, srv.log_tail()


def _phone(setup: Setup, user: str, hz: float, *, secure: bool = True) -> BaresipAgent:
    """A baresip phone saying `hz`: over TLS with mandatory SRTP, or plain UDP and RTP."""
    srv = setup.server
    return secure_agent(setup.workdir / f"phone{user}", user, USERS[user],
                        srv.tls_port if secure else srv.sip_port, setup.tones[hz], setup.certs,
                        transport="tls" if secure else "udp",
                        mediaenc="srtp-mand" if secure else "")


def _tones(samples: np.ndarray, start: float, end: float) -> set[float]:
    """The tones of this file present between `start` and `end` seconds of a recording."""
    block = samples[int(start * 8000):int(end * 8000)]
    assert len(block) > 4000, f"recording too short for {start:.1f}-{end:.1f} s"
    return {hz for hz in (MENU_HZ, ONE_HZ, TWO_HZ, CALLER_HZ, AGENT_HZ, SUPER_HZ)
            if audio.tone_present(block, hz, ratio=0.05)}


def _heard(phone: BaresipAgent) -> np.ndarray:
    return audio.read_wav(phone.recordings()["heard"])[0]


def _hang_up(phone: BaresipAgent) -> None:
    phone.ctrl.command("hangup")
    phone.ctrl.wait_event("CALL_CLOSED", timeout=10)


def _cdr(srv: TlsServer, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    cdr = srv.wait_cdr(lambda r: match(r) and r["end"] is not None, timeout=15)
    assert cdr is not None, srv.cdrs()
    return cdr


def _sane_rtp_figures(cdr: dict[str, Any]) -> None:
    """The CDR's figures for the (SRTP) caller leg: measured, and what loopback gives."""
    lost, jitter = cdr["rtp_lost_pct"], cdr["rtp_jitter_ms"]
    assert lost is not None and 0 <= lost < 5, cdr
    assert jitter is not None and 0 < jitter < 200, cdr


def _srtp_dropped(srv: TlsServer) -> tuple[float, float]:
    """`/metrics`' SRTP packets that failed authentication, and plain RTCP dropped."""
    url = f"http://127.0.0.1:{srv.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    got = dict(x.split()[:2] for x in text.splitlines() if x.startswith("callcenter_rtp_srtp_"))
    return (float(got["callcenter_rtp_srtp_failed_total"]),
            float(got["callcenter_rtp_srtp_plain_total"]))


def test_dtmf_on_an_srtp_leg_takes_the_ivr_branch(setup: Setup) -> None:
    srv = setup.server
    with _phone(setup, "1003", CALLER_HZ) as caller:
        caller.ctrl.wait_registered()
        caller.dial(f"sip:{LINE_TOLLFREE}@127.0.0.1:{srv.tls_port};transport=tls")
        caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
        time.sleep(2.0)  # the menu tone plays
        caller.ctrl.command("sndcode 2")

        def choice() -> list[dict[str, Any]]:
            return rows(srv.db_path, "SELECT * FROM call_events WHERE type = 'ivr_choice'")
        assert wait_until(choice, 15), "the IVR took no key"
        time.sleep(2.5)  # branch two's tone plays
        _hang_up(caller)
        heard = _heard(caller)
    cdr = _cdr(srv, lambda r: r["called"] == LINE_TOLLFREE)
    events = [e for e in choice() if e["call_id"] == cdr["id"]]
    assert len(events) == 1 and '"key": "2"' in events[0]["data"], events
    assert '"target": "two"' in events[0]["data"], events
    assert cdr["digits"] == "2", cdr
    assert _tones(heard, 0.5, 1.5) == {MENU_HZ}
    assert _tones(heard, len(heard) / 8000 - 2.0, len(heard) / 8000 - 0.3) == {TWO_HZ}
    _sane_rtp_figures(cdr)


def _sniffer(wanted: Callable[[int, int], bool]) -> UdpSniffer | None:
    try:
        return UdpSniffer(wanted)
    except (PermissionError, OSError):
        return None


def test_srtp_call_recorded_listened_to_and_measured(setup: Setup) -> None:
    """SRTP caller 1001 calls SRTP agent 1002 (both `required`: our offer to 1002 is RTP/SAVP,
    which srtp-mand alone takes); supervisor 2001 listens over plain RTP."""
    srv = setup.server
    before = _srtp_dropped(srv)
    server_rtcp = range(srv.rtp.base + 1, srv.rtp.last + 1, 2)
    caller, agent = _phone(setup, "1001", CALLER_HZ), _phone(setup, "1002", AGENT_HZ)
    boss = _phone(setup, "2001", SUPER_HZ, secure=False)
    phone_rtcp = {p + 1 for a in (caller, agent) for p in range(*a.rtp_ports)}
    sniffer = _sniffer(lambda src, dst: src in server_rtcp and dst in phone_rtcp
                       or src in phone_rtcp and dst in server_rtcp)
    try:
        with caller, agent, boss:
            for phone in (caller, agent, boss):
                phone.ctrl.wait_registered()
            caller.dial(f"sip:1002@127.0.0.1:{srv.tls_port};transport=tls")
            agent.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            boss.dial(f"sip:*811002@127.0.0.1:{srv.sip_port}")
            boss.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            time.sleep(4.0)  # listening
            _hang_up(boss)
            boss_heard = _heard(boss)
            time.sleep(4.0)  # RTCP goes every 5 s or so (randomised): let both legs send more
            _hang_up(caller)
            try:
                agent.ctrl.wait_event("CALL_CLOSED", timeout=10)
            except CtrlError:
                pytest.fail("the agent was not hung up")
    finally:
        if sniffer is not None:
            sniffer.close()
    end = len(boss_heard) / 8000
    assert _tones(boss_heard, end - 3.0, end - 0.3) == {CALLER_HZ, AGENT_HZ}

    cdr = _cdr(srv, lambda r: r["called"] == "1002")
    assert cdr["recording"], cdr
    stereo, _ = read_stereo(Path(cdr["recording"]))
    left, right = stereo[:, 0], stereo[:, 1]
    assert _tones(left, 1.0, len(left) / 8000 - 0.5) == {CALLER_HZ}
    assert _tones(right, 1.0, len(right) / 8000 - 0.5) == {AGENT_HZ}
    sessions = rows(srv.db_path, "SELECT * FROM supervisor_sessions")
    assert [(s["agent"], s["result"]) for s in sessions] == [("1002", "ended")], sessions

    _sane_rtp_figures(cdr)
    # baresip sends two RTCP packets in the clear per stream: an APP ("PING", to open NAT
    # bindings) before its SRTP is on and a BYE after it is off; the server drops those that
    # reach an SRTP channel, counted as plain (not those that come before the leg has its keys
    # or after its channel closed), and nothing may fail authentication
    after = _srtp_dropped(srv)
    failed, plain_dropped = after[0] - before[0], after[1] - before[1]
    assert failed == 0, f"{failed} SRTP or SRTCP packets failed authentication"
    if sniffer is None:  # no CAP_NET_RAW here: the figures and the counts are the proof
        assert plain_dropped <= 4, plain_dropped
        return
    rtcp = [(s, p) for s, _, p in sniffer.packets if len(p) > 8 and 200 <= p[1] <= 204]
    to_phones = [p for s, p in rtcp if s in server_rtcp]
    from_phones = [p for s, p in rtcp if s not in server_rtcp]
    plain = [p for p in from_phones if is_plain_rtcp(p)]
    assert all(p[1] in (203, 204) for p in plain), plain  # BYE, APP
    assert plain_dropped <= len(plain), f"{plain_dropped} plain RTCP dropped, {len(plain)} sent"
    assert any(p[1] in (200, 201) for p in from_phones if not is_plain_rtcp(p)), \
        "no SRTCP report (SR or RR) from the phones"
    assert to_phones, "no RTCP to the phones"
    assert not any(is_plain_rtcp(p) for p in to_phones), "plain RTCP to an SRTP phone"
