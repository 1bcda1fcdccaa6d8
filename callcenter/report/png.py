"""A bar chart as PNG without a plotting library: numpy draws, zlib compresses.

matplotlib would pull in ~40 MB (and fonts, and a backend) for one chart; a PNG is a signature,
an IHDR, one zlib-compressed IDAT of filtered scanlines and an IEND, each chunk with a CRC
(about 15 lines). Text uses a built-in 3x5 pixel font scaled up, enough for times and numbers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

RGB = tuple[int, int, int]

BG: RGB = (16, 22, 34)
GRID: RGB = (48, 58, 78)
TEXT: RGB = (210, 218, 232)
COLORS: tuple[RGB, ...] = ((88, 140, 230), (70, 200, 120), (235, 90, 80))
SL_COLOR: RGB = (250, 200, 60)


def encode_png(pixels: np.ndarray) -> bytes:
    """An (h, w, 3) uint8 RGB array as PNG bytes (8-bit truecolor, filter 0)."""
    h, w, _ = pixels.shape
    raw = np.zeros((h, w * 3 + 1), dtype=np.uint8)
    raw[:, 1:] = pixels.reshape(h, w * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))


_FONT_ROWS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", ":": "000010000010000", ".": "000000000000010",
    "%": "101001010100101", "-": "000000111000000", "/": "001001010100100",
    " ": "000000000000000", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010",
    "P": "110101110100100", "R": "110101110101101", "S": "011100010001110",
    "T": "111010010010010", "U": "101101101101111", "V": "101101101101010",
    "W": "101101111111101", "Y": "101101010010010", "Q": "010101101110011",
}


def _text(img: np.ndarray, x: int, y: int, s: str, color: RGB, scale: int = 2) -> None:
    for i, ch in enumerate(s.upper()):
        rows = _FONT_ROWS.get(ch, _FONT_ROWS[" "])
        glyph = np.array([int(b) for b in rows], dtype=bool).reshape(5, 3)
        big = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        gx = x + i * 4 * scale
        region = img[y:y + big.shape[0], gx:gx + big.shape[1]]
        if region.shape[:2] == big.shape:
            region[big] = color


def _line(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: RGB, width: int = 2) -> None:
    n = max(abs(x1 - x0), abs(y1 - y0), 1)
    xs = np.linspace(x0, x1, n + 1).round().astype(int)
    ys = np.linspace(y0, y1, n + 1).round().astype(int)
    for dx in range(width):
        for dy in range(width):
            img[np.clip(ys + dy, 0, img.shape[0] - 1), np.clip(xs + dx, 0, img.shape[1] - 1)] = color


def bar_chart(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
    line: tuple[str, Sequence[float | None]] | None = None, *, title: str = "",
    width: int = 1200, height: int = 500,
) -> bytes:
    """Grouped bars per label (up to three series), an optional 0-100 % line on top; PNG."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = BG
    left, right, top, bottom = 70, 70, 60, 50
    pw, ph = width - left - right, height - top - bottom
    peak = max((max(values, default=0) for _, values in series), default=0) or 1
    step = max(1, int(np.ceil(peak / 5)))
    peak = step * 5
    for k in range(6):
        y = top + ph - k * ph // 5
        img[y, left:left + pw] = GRID
        _text(img, 10, y - 5, str(k * step), TEXT)
        if line is not None:
            _text(img, left + pw + 8, y - 5, f"{k * 20}%", SL_COLOR)
    n = max(len(labels), 1)
    slot = pw / n
    bar = max(1, int(slot * 0.8 / max(len(series), 1)))
    every = max(1, int(np.ceil(n * 5 * 2 * 4 / pw)))
    for i, label in enumerate(labels):
        x = int(left + i * slot + slot * 0.1)
        for j, (_, values) in enumerate(series):
            v = values[i] if i < len(values) else 0
            h = int(ph * v / peak)
            if h > 0:
                img[top + ph - h:top + ph, x + j * bar:x + (j + 1) * bar - (1 if bar > 2 else 0)] = \
                    COLORS[j % len(COLORS)]
        if i % every == 0:
            _text(img, x, top + ph + 10, label, TEXT)
    if line is not None:
        points = [(int(left + (i + 0.5) * slot), top + ph - int(ph * v))
                  for i, v in enumerate(line[1]) if v is not None]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            _line(img, x0, y0, x1, y1, SL_COLOR)
        for x, y in points:
            img[max(0, y - 3):y + 4, max(0, x - 3):x + 4] = SL_COLOR
    _text(img, left, 15, title, TEXT, scale=3)
    lx = left + pw - 10
    legend = [(name, COLORS[j % len(COLORS)]) for j, (name, _) in enumerate(series)]
    if line is not None:
        legend.append((line[0], SL_COLOR))
    for name, color in reversed(legend):
        lx -= len(name) * 8 + 30
        img[18:30, lx:lx + 12] = color
        _text(img, lx + 18, 19, name, TEXT)
    return encode_png(img)
