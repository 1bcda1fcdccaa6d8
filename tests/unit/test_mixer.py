"""The conference mixer: per-listener sums, minus self, saturation, jitter buffer; mode matrices."""

from __future__ import annotations

import numpy as np
import pytest

from callcenter.media import g711
from callcenter.media.mixer import (
    ULAW_SILENCE,
    JitterBuffer,
    decode_ulaw,
    encode_ulaw,
    mix,
    mix_ulaw,
    normalise_matrix,
)
from callcenter.supervisor.modes import KEYS, Mode, Role, matrix

ALL = np.ones((3, 3), dtype=np.int32)


def frames(*values: int) -> np.ndarray:
    return np.array([[v] * 160 for v in values], dtype=np.int16)


def test_each_hears_the_others_minus_self() -> None:
    out = mix(frames(100, 20, 3), ALL)
    assert out[:, 0].tolist() == [23, 103, 120]


def test_matrix_rows_pick_sources() -> None:
    m = np.array([[0, 1, 0], [1, 0, 0], [1, 1, 0]])
    out = mix(frames(100, 20, 3), m)
    assert out[:, 0].tolist() == [20, 100, 120]


def test_saturation_both_ways() -> None:
    out = mix(frames(30000, 30000, -30000), np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0]]))
    assert out[1, 0] == 30000
    loud = mix(frames(30000, 30000, 30000), ALL)
    assert (loud == 32767).all()
    quiet = mix(frames(-30000, -30000, -30000), ALL)
    assert (quiet == -32768).all()


def test_batched_mixes_match_single() -> None:
    rng = np.random.default_rng(1)
    pcm = rng.integers(-20000, 20000, size=(5, 3, 160), dtype=np.int16)
    mats = rng.integers(0, 2, size=(5, 3, 3))
    batched = mix(pcm, mats)
    for i in range(5):
        assert np.array_equal(batched[i], mix(pcm[i], mats[i]))


def test_ulaw_tables_match_g711() -> None:
    pcm = np.arange(-32768, 32768, 37, dtype=np.int16)
    assert encode_ulaw(pcm).tobytes() == g711.ulaw_encode(pcm.tobytes())
    codes = np.arange(256, dtype=np.uint8)
    assert decode_ulaw(codes).tobytes() == g711.ulaw_decode(codes.tobytes())


def test_single_source_passes_through_ulaw_unchanged() -> None:
    codes = np.frombuffer(g711.ulaw_encode(frames(1234, 0, 0)[0].tobytes()), np.uint8)
    both = np.stack([codes, np.frombuffer(ULAW_SILENCE, np.uint8)])
    out = mix_ulaw(both, np.array([[0, 0], [1, 0]]))
    assert out[1].tobytes() == codes.tobytes()


def test_normalise_matrix_zeroes_diagonal_and_needs_square() -> None:
    assert normalise_matrix([[1, 1], [1, 1]]).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError):
        normalise_matrix([[1, 1, 1]])


def test_jitter_buffer_prefill_underrun_and_cap() -> None:
    jb = JitterBuffer(prefill=320, cap=800)
    jb.push(b"\x01" * 160, 0, 7)
    assert jb.pop() is None  # still filling
    jb.push(b"\x02" * 160, 160, 7)
    assert jb.pop() == b"\x01" * 160
    assert jb.pop() == b"\x02" * 160
    assert jb.pop() is None and jb.underruns == 1
    for i in range(2, 10):
        jb.push(bytes([i]) * 160, i * 160, 7)
    assert len(jb) <= 800 and jb.dropped > 0
    assert jb.pop() is not None


def test_jitter_buffer_drops_late_and_fills_gaps() -> None:
    jb = JitterBuffer(prefill=160, cap=960)
    jb.push(b"\x01" * 160, 1000, 1)
    jb.push(b"\x01" * 160, 1000, 1)  # duplicate
    assert jb.late == 1
    jb.push(b"\x03" * 160, 1320, 1)  # one packet lost: 160 samples of silence in between
    assert len(jb) == 480
    assert jb.pop() == b"\x01" * 160
    assert jb.pop() == ULAW_SILENCE
    jb.push(b"\x05" * 160, 99, 2)  # a new source starts its own timeline
    assert len(jb) == 320


CALLER, AGENT = Role.CALLER, Role.AGENT


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # rows: who listens (caller, agent, supervisor); columns: who is heard
        (Mode.LISTEN, [[0, 1, 0], [1, 0, 0], [1, 1, 0]]),
        (Mode.WHISPER, [[0, 1, 0], [1, 0, 1], [1, 1, 0]]),
        (Mode.BARGE, [[0, 1, 1], [1, 0, 1], [1, 1, 0]]),
    ],
)
def test_mode_matrices(mode: Mode, expected: list[list[int]]) -> None:
    assert matrix([CALLER, AGENT, mode]).tolist() == expected


def test_two_supervisors() -> None:
    m = matrix([CALLER, AGENT, Mode.LISTEN, Mode.BARGE])
    assert m[2].tolist() == [1, 1, 0, 1]  # the listener hears the barging supervisor
    assert m[3].tolist() == [1, 1, 0, 0]  # nobody hears a listener
    assert m[:, 2].tolist() == [0, 0, 0, 0]


def test_whisper_reaches_only_the_agent_in_a_mix() -> None:
    out = mix(frames(440, 1000, 1800), matrix([CALLER, AGENT, Mode.WHISPER]))
    assert out[:, 0].tolist() == [1000, 440 + 1800, 440 + 1000]


def test_keys() -> None:
    assert KEYS == {"4": Mode.LISTEN, "5": Mode.WHISPER, "6": Mode.BARGE}
