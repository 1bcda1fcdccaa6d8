"""Secure phones: baresip agents registered over SIP/TLS (a throw-away CA made with openssl)
with SRTP (SDES keys) call each other and the IVR through the server."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_binary
from tests.helpers import audio, ports
from tests.helpers.api import http
from tests.helpers.artifacts import REPO
from tests.helpers.baresip import BaresipAgent
from tests.helpers.certs import Certs, make_certs
from tests.helpers.rtp_sink import RtpSink
from tests.helpers.secure import TlsServer, secure_agent, users_with_srtp
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import Sipp, sipp_tls_path, wait_until
from tests.helpers.sniff import UdpSniffer
from tests.integration.demo import LINE_TOLLFREE, USERS, Media, pcap_seconds

TALK_SECONDS = 7.0  # the words (2.5 s) repeat every 2.75 s: one whole repeat in any 5.3 s heard
MATCH = 0.6  # best_match of the other side's words in a recording (1.0 = exact copy)


@pytest.fixture
def certs(artifacts: Path) -> Certs:
    require_binary("openssl")
    return make_certs(artifacts / "certs")


@pytest.fixture
def tls_server(artifacts: Path, certs: Certs) -> Iterator[TlsServer]:
    with TlsServer(artifacts, certs) as srv:
        yield srv


def _agent(artifacts: Path, user: str, port: int, wav: Path, certs: Certs,
           transport: str = "tls", mediaenc: str = "") -> BaresipAgent:
    return secure_agent(artifacts / f"a{user}", user, USERS[user], port, wav, certs,
                        transport=transport, mediaenc=mediaenc)


def _talk(caller: BaresipAgent, callee: BaresipAgent, target: str) -> None:
    if callee.regint:  # a carrier does not register
        callee.ctrl.wait_registered()
    caller.ctrl.wait_registered()
    caller.dial(target)
    callee.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
    caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
    time.sleep(TALK_SECONDS)
    caller.ctrl.command("hangup")
    caller.ctrl.wait_event("CALL_CLOSED", timeout=10)


def _heard_each_other(caller: BaresipAgent, callee: BaresipAgent, media: Media) -> None:
    heard_by_caller = audio.read_wav(caller.recordings()["heard"])[0]
    heard_by_callee = audio.read_wav(callee.recordings()["heard"])[0]
    words_a = audio.read_wav(media.agent_a_wav)[0]
    words_b = audio.read_wav(media.agent_b_wav)[0]
    assert audio.best_match(words_b, heard_by_caller) > MATCH, "caller did not hear the callee"
    assert audio.best_match(words_a, heard_by_callee) > MATCH, "callee did not hear the caller"


def test_agents_over_tls(tls_server: TlsServer, artifacts: Path, media: Media,
                         certs: Certs) -> None:
    require_binary("baresip")
    port = tls_server.tls_port
    caller = _agent(artifacts, "1001", port, media.agent_a_wav, certs)
    callee = _agent(artifacts, "1002", port, media.agent_b_wav, certs)
    with callee, caller:
        callee.ctrl.wait_registered()
        status, regs = http(tls_server, "GET", "/api/registrations")
        assert status == 200
        assert {r["transport"] for r in regs if r["user"] == "1002"} == {"tls"}, regs
        # the INVITE to 1002 goes back on the connection 1002 registered over
        _talk(caller, callee, f"sip:1002@127.0.0.1:{port};transport=tls")
    _heard_each_other(caller, callee, media)
    assert "tls_connect_failed" not in tls_server.log_tail(200000)


def _sipp_tls_caller(port: int, artifacts: Path, media: Media, certs: Certs) -> Sipp:
    """SIPp over TLS (`-t l1`, the server's certificate checked against our CA) calling the
    toll-free line: the caller's words, the digits 1 2 #, then BYE."""
    client = make_certs(artifacts / "certs", "sipp")  # SIPp loads a certificate in any role
    pcaps = {"audio_pcap": str(media.caller_pcap["PCMU"]),
             "dtmf_pcap": str(media.dtmf_pcap["PCMU"])}
    return Sipp("uac_call_dtmf.xml", workdir=artifacts / "sipp", ports=ports.allocate(8),
                remote_port=port, service=LINE_TOLLFREE, transport="tls",
                binary=require_binary(sipp_tls_path()), timeout=30,
                duration_ms=int(pcap_seconds(media.caller_pcap["PCMU"]) * 1000) + 300,
                keys={"codec_pt": "0", "codec_name": "PCMU", **pcaps},
                extra=["-tls_cert", str(client.certificate), "-tls_key", str(client.key),
                       "-tls_ca", str(certs.ca)])


def test_sipp_caller_over_tls(tls_server: TlsServer, artifacts: Path, media: Media,
                              certs: Certs) -> None:
    """A SIPp caller over TLS reaches the hotline's IVR: the prompt's RTP reaches it, its
    digits are collected, it hangs up, and the CDR has the call answered and ended by it."""
    port = tls_server.tls_port
    sipp = _sipp_tls_caller(port, artifacts, media, certs)
    with RtpSink(sipp.sink_port) as sink:
        result = sipp.start().wait()
        heard = sink.audio(0)
    assert result.returncode == 0, result.summary()
    assert "SIP/2.0/TLS" in result.messages, "SIPp did not speak TLS"
    assert audio.active_rms(heard) > 5 * audio.SILENCE_RMS, "the caller heard only silence"
    call_id = result.messages.split("Call-ID: ", 1)[1].split()[0]
    cdr = tls_server.wait_cdr(lambda r: r["sip_call_id"] == call_id and r["end"] is not None)
    assert cdr is not None, f"no finished CDR for {call_id}: {tls_server.cdrs()}"
    assert (cdr["called"], cdr["digits"]) == (LINE_TOLLFREE, "12#"), cdr
    assert cdr["answer"] is not None and cdr["hangup_side"] == "caller", cdr


def test_sipp_tls_caller_gets_nowhere_without_tls(server: ServerProcess, artifacts: Path,
                                                  media: Media, certs: Certs) -> None:
    """The same caller against a server without `sip.tls` (at its plain SIP/TCP port): no
    handshake, no call. (So the call above did go over TLS.)"""
    result = _sipp_tls_caller(server.sip_port, artifacts, media, certs).start().wait()
    assert result.returncode != 0, result.summary()
    assert "SSL_connect" in result.errors, result.summary()
    assert server.alive()
    assert server.cdrs() == [], server.cdrs()


TONE_HZ = 1800.0


def _sniffer(wanted: Callable[[int, int], bool]) -> UdpSniffer | None:
    try:
        return UdpSniffer(wanted)
    except (PermissionError, OSError):
        return None


def test_srtp_agent_hears_the_prompt_decrypted(artifacts: Path, certs: Certs) -> None:
    """An agent over TLS with mandatory SRTP (RTP/SAVP) dials the toll-free line, whose welcome
    is a tone here: the tone arrives decrypted, and on the wire it was never plain RTP."""
    require_binary("baresip")
    sounds = artifacts / "sounds"
    shutil.rmtree(sounds, ignore_errors=True)
    shutil.copytree(REPO / "sounds", sounds)
    audio.make_tone_wav(sounds / "pl" / "welcome.wav", (TONE_HZ,), 6.0)
    srv = TlsServer(artifacts, certs, sounds=str(sounds))
    port = srv.tls_port
    agent = _agent(artifacts, "1001", port, REPO / "sounds" / "pl" / "welcome.wav", certs,
                   mediaenc="srtp-mand")
    rtp_ports, phone_ports = range(srv.rtp.base, srv.rtp.last + 1), range(*agent.rtp_ports)
    sniffer = _sniffer(lambda src, dst: src in rtp_ports and dst in phone_ports)
    try:
        with srv, agent:
            agent.ctrl.wait_registered()
            agent.dial(f"sip:{LINE_TOLLFREE}@127.0.0.1:{port};transport=tls")
            agent.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            time.sleep(3.0)
            agent.ctrl.command("hangup")
            agent.ctrl.wait_event("CALL_CLOSED", timeout=10)
    finally:
        if sniffer is not None:
            sniffer.close()
    heard = audio.read_wav(agent.recordings()["heard"])[0]
    # In 100 ms blocks, not over the whole 1.5 s: a pure tone carries about a quarter of a
    # block's energy, and a jitter gap or a restart out of phase inside one long block took
    # it under the threshold on a busy box. Undecrypted audio is noise in every block.
    blocks = [heard[i:i + 800] for i in range(4000, 16000, 800)]
    toned = [audio.tone_present(b, TONE_HZ, ratio=0.1) for b in blocks]
    assert sum(toned) >= len(blocks) // 2, f"tone in {toned} of 100 ms blocks 0.5-2 s in " \
        f"({len(heard)} samples heard)"
    if sniffer is None:
        return  # no CAP_NET_RAW here: what the phone heard is the proof
    to_phone = [p[2] for p in sniffer.packets if len(p[2]) > 172]
    assert len(to_phone) > 50, f"{len(to_phone)} SRTP packets seen of {len(sniffer.packets)}"
    as_plain = np.concatenate([audio.decode_g711(p[12:172], "PCMU") for p in to_phone])
    assert not audio.tone_present(as_plain, TONE_HZ, ratio=0.05), "plain RTP on the wire"


def test_plain_caller_and_srtp_agent_hear_each_other(artifacts: Path, media: Media,
                                                     certs: Certs) -> None:
    """The B2BUA decrypts one leg and encrypts the other: a plain RTP phone (UDP) calls an
    agent whose user requires SRTP (`users[].srtp: required`, so we offer RTP/SAVP) and who
    takes nothing else (baresip `srtp-mand`); each hears the other's words."""
    require_binary("baresip")
    with TlsServer(artifacts, certs, users=users_with_srtp({"1001": "required"})) as srv:
        port = srv.tls_port
        caller = _agent(artifacts, "1002", srv.sip_port, media.agent_a_wav, certs,
                        transport="udp")
        callee = _agent(artifacts, "1001", port, media.agent_b_wav, certs, mediaenc="srtp-mand")
        with callee, caller:
            _talk(caller, callee, f"sip:1001@127.0.0.1:{srv.sip_port}")
    _heard_each_other(caller, callee, media)


def test_a_call_out_through_a_tls_trunk(artifacts: Path, media: Media, certs: Certs) -> None:
    """Trunk `transport: tls`: an agent dials a national number; the server opens a TLS
    connection to the carrier (a baresip with a certificate from our CA, checked by the
    server against `sip.tls.ca`) and both sides hear each other."""
    require_binary("baresip")
    carrier_certs = make_certs(artifacts / "certs", "carrier")  # signed by the same CA
    # baresip takes a call only for its account's user: the number as the trunk presents it
    carrier = BaresipAgent(artifacts / "carrier", "+48221234567", "unused", registrar_port=9,
                           ports=ports.allocate(20), source_wav=media.agent_b_wav,
                           transport="tls", regint=0, certificate=carrier_certs.combined)
    trunk = {"name": "pstn", "addresses": ["127.0.0.1"], "host": "127.0.0.1",
             "port": carrier.sip_port + 1, "transport": "tls"}
    with TlsServer(artifacts, certs, trunks=[trunk]) as srv, carrier:
        agent = _agent(artifacts, "1001", srv.sip_port, media.agent_a_wav, certs,
                       transport="udp")
        with agent:
            _talk(agent, carrier, f"sip:0221234567@127.0.0.1:{srv.sip_port}")
        log = srv.log_tail(400000)
    _heard_each_other(agent, carrier, media)
    assert "tls_connect_failed" not in log


def test_a_phone_whose_tls_connection_closed_is_called_at_its_contact(
        artifacts: Path, media: Media, certs: Certs) -> None:
    """The server closes 1002's idle TLS connection (`tcp_idle_timeout` 2 s); a call to 1002
    then opens a new connection to its registered Contact (baresip with a certificate takes
    TLS there) instead of failing on the dead source port. (The 2 s idle limit would close
    that connection too during a call, and baresip ends a call whose connection closes: the
    test stops at the answer.)"""
    require_binary("baresip")
    phone_certs = make_certs(artifacts / "certs", "phone")
    with TlsServer(artifacts, certs, sip={"tcp_idle_timeout": 2}) as srv:
        port = srv.tls_port
        caller = _agent(artifacts, "1001", srv.sip_port, media.agent_a_wav, certs,
                        transport="udp")
        callee = BaresipAgent(artifacts / "a1002", "1002", USERS["1002"], registrar_port=port,
                              ports=ports.allocate(20), source_wav=media.agent_b_wav,
                              transport="tls", cafile=certs.ca,
                              certificate=phone_certs.combined)
        with callee, caller:
            callee.ctrl.wait_registered()
            caller.ctrl.wait_registered()
            assert wait_until(lambda: "tcp_idle_close" in srv.log_tail(400000), 15)
            caller.dial(f"sip:1002@127.0.0.1:{srv.sip_port}")
            callee.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            caller.ctrl.wait_event("CALL_ESTABLISHED", timeout=20)
            caller.ctrl.command("hangup")
        log = srv.log_tail(400000)
    assert "tls_connect_failed" not in log
