"""RFC 4733 receive/send, SIP INFO bodies, and the Goertzel in-band detector."""

from __future__ import annotations

import numpy as np
import pytest

from callcenter.media.dtmf import (
    COL_FREQS,
    KEYPAD,
    ROW_FREQS,
    DtmfError,
    InbandDtmfDetector,
    Rfc4733Receiver,
    decode_event,
    encode_event,
    event_packets,
    parse_sip_info,
)


def test_event_payload_round_trip() -> None:
    data = encode_event(11, end=True, volume=10, duration=800)
    assert data == bytes([11, 0x80 | 10]) + (800).to_bytes(2, "big")
    ev = decode_event(data)
    assert (ev.digit, ev.end, ev.volume, ev.duration) == ("#", True, 10, 800)
    assert decode_event(encode_event(16, end=False, volume=0, duration=0)).digit is None
    with pytest.raises(DtmfError):
        decode_event(b"\x01\x02")


def test_sender_packets_for_one_press() -> None:
    pkts = event_packets("5", duration_ms=100)
    events = [decode_event(p.payload) for p in pkts]
    assert pkts[0].marker and not any(p.marker for p in pkts[1:])
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.digit for e in events} == {"5"}
    with pytest.raises(ValueError):
        event_packets("x")


def _feed(rx: Rfc4733Receiver, packets: list[tuple[bytes, int]]) -> list[str]:
    return [d for payload, ts in packets if (d := rx.feed(payload, ts, ssrc=1)) is not None]


def test_receiver_one_digit_per_event_with_end_retransmissions() -> None:
    rx = Rfc4733Receiver()
    stream = [(p.payload, 1000) for p in event_packets("1")]
    stream += [(p.payload, 1960) for p in event_packets("1")]  # same key again: new timestamp
    stream += [(p.payload, 2960) for p in event_packets("#")]
    assert _feed(rx, stream) == ["1", "1", "#"]


def test_receiver_reports_digit_when_start_packets_are_lost() -> None:
    rx = Rfc4733Receiver()
    pkts = event_packets("9")
    assert _feed(rx, [(p.payload, 500) for p in pkts[2:]]) == ["9"]
    only_end = event_packets("7")[-1].payload
    assert _feed(rx, [(only_end, 900), (only_end, 900)]) == ["7"]


def test_receiver_distinguishes_sources_and_ignores_non_dtmf_events() -> None:
    rx = Rfc4733Receiver()
    payload = event_packets("3")[0].payload
    assert rx.feed(payload, 100, ssrc=1) == "3"
    assert rx.feed(payload, 100, ssrc=2) == "3"
    assert rx.feed(encode_event(16, end=False, volume=0, duration=160), 200) is None


@pytest.mark.parametrize(
    ("ctype", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("Application/DTMF-Relay; charset=utf-8", "signal= #\nDuration=250", "#"),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=160", "#"),
        ("application/dtmf-relay", b"Signal=10", "*"),
        ("application/dtmf", b"5", "5"),
        ("application/dtmf", b" a\r\n", "A"),
        ("application/dtmf-relay", b"Duration=160", None),
        ("application/dtmf-relay", b"Signal=X", None),
        ("application/dtmf", b"", None),
        ("text/plain", b"5", None),
    ],
)
def test_sip_info_bodies(ctype: str, body: bytes | str, digit: str | None) -> None:
    assert parse_sip_info(ctype, body) == digit


# ------------------------------------------------------------------------------ in-band

RATE = 8000
RNG = np.random.default_rng(7)


def tone(digit: str, ms: float, amp: float = 4000.0, col_gain_db: float = 0.0) -> np.ndarray:
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    t = np.arange(int(RATE * ms / 1000)) / RATE
    col_amp = amp * 10 ** (col_gain_db / 20)
    return amp * np.sin(2 * np.pi * ROW_FREQS[row] * t) + col_amp * np.sin(
        2 * np.pi * COL_FREQS[col] * t
    )


def gap(ms: float) -> np.ndarray:
    return np.zeros(int(RATE * ms / 1000))


def detect(signal: np.ndarray, noise: float = 150.0, frame: int = 160) -> list[str]:
    x = signal + RNG.normal(0, noise, len(signal))
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    det = InbandDtmfDetector()
    out: list[str] = []
    for i in range(0, len(pcm), 2 * frame):
        out += det.feed(pcm[i : i + 2 * frame])
    return out


def test_all_sixteen_keys_in_noise() -> None:
    keys = "0123456789*#ABCD"
    signal = np.concatenate([np.concatenate((tone(k, 60), gap(50))) for k in keys])
    assert detect(np.concatenate((gap(13), signal))) == list(keys)


@pytest.mark.parametrize("offset", [0, 17, 40, 80, 123])
def test_forty_ms_accepted_twenty_ms_rejected_at_any_alignment(offset: int) -> None:
    sig = np.concatenate((np.zeros(offset), tone("8", 40), gap(100), tone("2", 20), gap(100)))
    assert detect(sig) == ["8"]


def test_long_press_is_one_digit_and_repeats_count() -> None:
    sig = np.concatenate((tone("5", 1500), gap(60), tone("5", 80), gap(60)))
    assert detect(sig, frame=80) == ["5", "5"]


def test_twist_limits() -> None:
    assert detect(np.concatenate((tone("6", 80, col_gain_db=-6), gap(50)))) == ["6"]
    assert detect(np.concatenate((tone("6", 80, col_gain_db=-12), gap(50)))) == []
    assert detect(np.concatenate((tone("6", 80, col_gain_db=3), gap(50)))) == ["6"]
    assert detect(np.concatenate((tone("6", 80, col_gain_db=8), gap(50)))) == []


def test_quiet_tones_single_tones_and_noise_are_not_digits() -> None:
    assert detect(np.concatenate((tone("1", 100, amp=20), gap(50))), noise=0) == []
    t = np.arange(RATE) / RATE
    assert detect(3000 * np.sin(2 * np.pi * 770 * t)) == []
    assert detect(3000 * np.sin(2 * np.pi * 1000 * t)) == []
    assert detect(gap(2000), noise=3000) == []
