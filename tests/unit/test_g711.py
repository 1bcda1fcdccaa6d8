"""G.711 against a reference built here from the ITU-T G.711 segment tables."""

from __future__ import annotations

import numpy as np
import pytest

from callcenter.media import g711
from callcenter.media.g711 import NumpyG711


def _ulaw_ref_encode(sample: int) -> int:
    """µ-law of a 16-bit sample: 14-bit magnitude, bias 33, 8 segments (G.711 table 2a)."""
    v = sample >> 2
    sign = 0x00 if v >= 0 else 0x80  # sign bit set = negative, before inversion
    mag = min(-v if v < 0 else v, 8159) + 33
    seg = 0
    while seg < 8 and mag >= 64 << seg:
        seg += 1
    code = 0x7F if seg == 8 else (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    return (code | sign) ^ 0xFF


def _ulaw_ref_decode(code: int) -> int:
    c = code ^ 0xFF
    seg = (c >> 4) & 7
    mag = ((2 * (c & 0x0F) + 33) << seg) - 33  # 14-bit decision value midpoint
    return (-mag if c & 0x80 else mag) * 4


def _alaw_ref_encode(sample: int) -> int:
    """A-law of a 16-bit sample: 13-bit magnitude, 8 segments, even bits inverted (G.711 1a)."""
    v = sample >> 3
    positive = v >= 0
    mag = v if positive else -v - 1
    if mag < 32:
        seg, quant = 0, mag >> 1
    else:
        seg = 1
        while seg < 8 and mag >= 32 << seg:
            seg += 1
        quant = (mag >> seg) & 0x0F
    code = 0x7F if seg == 8 else (seg << 4) | quant
    return (code | (0x80 if positive else 0)) ^ 0x55


def _alaw_ref_decode(code: int) -> int:
    c = code ^ 0x55
    seg = (c >> 4) & 7
    q = c & 0x0F
    mag = 2 * q + 1 if seg == 0 else (2 * q + 33) << (seg - 1)  # in 13-bit units
    return (mag if c & 0x80 else -mag) * 8


ALL = np.arange(-32768, 32768, dtype="<i2").tobytes()
CODES = bytes(range(256))
ULAW_ENC = bytes(_ulaw_ref_encode(s) for s in range(-32768, 32768))
ALAW_ENC = bytes(_alaw_ref_encode(s) for s in range(-32768, 32768))
ULAW_DEC = np.array([_ulaw_ref_decode(c) for c in range(256)], "<i2").tobytes()
ALAW_DEC = np.array([_alaw_ref_decode(c) for c in range(256)], "<i2").tobytes()


def test_reference_sanity() -> None:
    assert _ulaw_ref_encode(0) == 0xFF and _alaw_ref_encode(0) == 0xD5
    assert _ulaw_ref_decode(0xFF) == 0 and _ulaw_ref_decode(0x80) == 32124
    assert _alaw_ref_decode(0xD5) == 8 and _alaw_ref_decode(0xAA) == 32256


@pytest.mark.parametrize(
    ("encode", "decode"),
    [
        pytest.param(g711, g711, id="module"),
        pytest.param(NumpyG711, NumpyG711, id="numpy-fallback"),
    ],
)
def test_all_65536_inputs_and_256_codes_bit_exact(encode, decode) -> None:
    assert encode.ulaw_encode(ALL) == ULAW_ENC
    assert encode.alaw_encode(ALL) == ALAW_ENC
    assert decode.ulaw_decode(CODES) == ULAW_DEC
    assert decode.alaw_decode(CODES) == ALAW_DEC


def test_audioop_path_in_use_on_311() -> None:
    assert g711.HAVE_AUDIOOP


def test_transcode_equals_decode_then_encode() -> None:
    for frm, to in ((0, 8), (8, 0)):
        expected = g711.encode(g711.decode(CODES, frm), to)
        assert g711.transcode(CODES, frm, to) == expected
    assert g711.transcode(b"\x01\x02", 0, 0) == b"\x01\x02"


def test_silence_and_payload_type_checks() -> None:
    assert g711.decode(g711.silence(0), 0) == bytes(320)
    assert set(np.frombuffer(g711.decode(g711.silence(8), 8), "<i2")) == {8}
    assert len(g711.silence(8)) == 160
    with pytest.raises(ValueError):
        g711.encode(b"\x00\x00", 18)


def test_round_trip_error_is_bounded() -> None:
    x = np.linspace(-32000, 32000, 4000).astype("<i2")
    for pt in (0, 8):
        y = np.frombuffer(g711.decode(g711.encode(x.tobytes(), pt), pt), "<i2")
        rel = np.abs(y.astype(float) - x) / np.maximum(np.abs(x.astype(float)), 256)
        assert rel.max() < 0.07
