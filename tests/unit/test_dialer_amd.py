"""Answering-machine detection on synthesised 8 kHz signals."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np

from callcenter.calls.b2bua import B2BUA
from callcenter.calls.call import Call, LegState
from callcenter.dialer.amd import AmdDecision, detect
from callcenter.dialer.runner import _AmdTap
from callcenter.sip.message import make_response, serialize
from tests.unit.test_b2bua_core import FakeChannel, FakeMedia, sdp_answer
from tests.unit.test_stack import PEER, make_stack

RATE = 8000


def tone(ms: int, amp: int = 6000) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return (amp * np.sin(2 * np.pi * 300 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(
        np.int16)


def silence(ms: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.normal(0, 30, RATE * ms // 1000).astype(np.int16)


def test_hello_then_silence_is_human() -> None:
    r = detect(np.concatenate([silence(400), tone(500), silence(1500)]))
    assert r.decision is AmdDecision.HUMAN
    assert r.confidence > 0.6


def test_long_greeting_is_machine() -> None:
    words = [np.concatenate([tone(400), silence(150)]) for _ in range(8)]
    r = detect(np.concatenate([silence(300), *words, silence(1000)]))
    assert r.decision is AmdDecision.MACHINE
    assert r.cause in {"MAXWORDS", "LONGGREETING"}


def test_continuous_speech_is_machine() -> None:
    r = detect(np.concatenate([silence(200), tone(3000)]))
    assert r.decision is AmdDecision.MACHINE and r.cause == "LONGGREETING"


def test_dead_air_is_machine_and_short_audio_notsure() -> None:
    assert detect(silence(3000)).cause == "INITIALSILENCE"
    assert detect(silence(500)).decision is AmdDecision.NOTSURE


def test_the_campaign_tap_hears_the_callee_from_the_2xx_on() -> None:
    """The dialer listens from the INVITE on, but early media is not the callee; the tap opens
    as the real stack processes the 200 (the B2BUA's answer hook), so a greeting right behind
    it is heard although the dial has not resumed yet (it does a few loop turns later)."""

    async def run() -> None:
        stack, _ = make_stack()
        media = FakeMedia()
        b2bua = B2BUA(stack=stack, media=media, media_address="127.0.0.1",  # type: ignore[arg-type]
                      codecs=("PCMU",), on_call_end=lambda call: None)
        tap = _AmdTap(answered=False)
        call = Call(caller="caller", called="1001", source="campaign:c")
        dial = asyncio.ensure_future(b2bua.dial(
            call, target_uri="sip:1001@127.0.0.1:5072", dest=PEER, transport="udp",
            party="1001", from_user="caller", on_answer=tap.on_answer))
        await asyncio.sleep(0)
        leg = call.legs[0]
        tap.listen(leg.channel)
        assert media.channels[0].listeners == [tap]
        for chunk in (tone(1000), silence(100)):  # ringback tone, early media: ignored
            tap(chunk.astype("<i2").tobytes())
        assert tap.result is None and tap.detector._t == 0
        assert leg.outbound_invite is not None
        ok = make_response(leg.outbound_invite, 200, to_tag="t1")
        ok.body = sdp_answer(30000)
        stack._on_message(serialize(ok), PEER, "udp")
        assert leg.state is not LegState.ANSWERED  # the dial task has not seen the 200 yet
        tap(np.concatenate([tone(500), silence(2500)]).astype("<i2").tobytes())
        assert tap.result is not None and tap.result.decision is AmdDecision.HUMAN
        assert tap.decided.is_set()
        assert (await dial).state is LegState.ANSWERED
        await stack.close()

    asyncio.run(run())


def test_the_tap_follows_the_leg_of_a_trunk_failover() -> None:
    """The first trunk failed and another leg (channel) answered: the tap listens there."""
    tap = _AmdTap(answered=False)
    first, second = FakeChannel(20000), FakeChannel(20002)
    tap.listen(first)
    tap.on_answer(SimpleNamespace(channel=second))  # type: ignore[arg-type]
    assert tap.answered and tap.channel is second and second.listeners == [tap]
