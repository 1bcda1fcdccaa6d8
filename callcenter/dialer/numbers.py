"""Telephone numbers to E.164, with Polish national numbers understood.

``normalize("22 123-45-67")`` and ``normalize("0048 22 123 45 67")`` both give ``"+48221234567"``;
garbage raises :class:`NumberError` with a reason fit for an import report.
"""

from __future__ import annotations

import re

__all__ = [
    "NumberError",
    "normalize",
    "try_normalize",
    "country_code",
    "timezone_for",
]

_SEPARATORS = re.compile(r"[\s\-./()\u00a0]")
#: country calling codes we can place in a time zone (longest prefix wins)
_COUNTRY_TZ = {
    "48": "Europe/Warsaw",
    "49": "Europe/Berlin",
    "44": "Europe/London",
    "420": "Europe/Prague",
    "421": "Europe/Bratislava",
    "380": "Europe/Kyiv",
    "370": "Europe/Vilnius",
    "33": "Europe/Paris",
    "34": "Europe/Madrid",
    "39": "Europe/Rome",
    "31": "Europe/Amsterdam",
    "353": "Europe/Dublin",
}


class NumberError(ValueError):
    """Not a dialable number; ``reason`` says why (for the import report)."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


def normalize(raw: str, *, default_country: str = "48") -> str:
    """``raw`` as E.164 (``+`` and digits); national numbers belong to ``default_country``.

    Accepted: ``+48 22 123 45 67``, ``0048221234567``, ``48221234567`` (11 digits), national
    ``221234567`` (9 digits) and the old trunk-prefixed ``0 22 123 45 67``, with spaces, dashes,
    dots and parentheses. Raises :class:`NumberError`.
    """
    text = raw.strip()
    if not text:
        raise NumberError(raw, "empty")
    compact = _SEPARATORS.sub("", text)
    international = False
    if compact.startswith("+"):
        international, compact = True, compact[1:]
    elif compact.startswith("00"):
        international, compact = True, compact[2:]
    if not compact.isdigit() or not compact.isascii():
        bad = next((c for c in compact if not (c.isascii() and c.isdigit())), "?")
        raise NumberError(raw, f"unexpected character {bad!r}")
    if international:
        digits = compact
    elif default_country == "48":
        if len(compact) == 10 and compact.startswith("0"):
            compact = compact[1:]  # old trunk prefix: 0 22 123 45 67
        if len(compact) == 11 and compact.startswith("48"):
            digits = compact
        elif len(compact) == 9:
            digits = "48" + compact
        else:
            raise NumberError(raw, f"a Polish number has 9 digits, got {len(compact)}")
    else:
        digits = default_country + compact.lstrip("0")
    if digits.startswith("0"):
        raise NumberError(raw, "country code cannot start with 0")
    if digits.startswith("48"):
        national = digits[2:]
        if len(national) != 9:
            raise NumberError(raw, f"a Polish number has 9 digits after +48, got {len(national)}")
        if national[0] == "0":
            raise NumberError(raw, "Polish national numbers do not start with 0")
    if not 8 <= len(digits) <= 15:
        raise NumberError(raw, f"E.164 numbers have 8-15 digits, got {len(digits)}")
    return "+" + digits


def try_normalize(raw: str, *, default_country: str = "48") -> tuple[str | None, str | None]:
    """``(e164, None)`` or ``(None, reason)``."""
    try:
        return normalize(raw, default_country=default_country), None
    except NumberError as exc:
        return None, exc.reason


def country_code(e164: str) -> str | None:
    """The known country calling code of an E.164 number, or None."""
    digits = e164.lstrip("+")
    for n in (3, 2, 1):
        if digits[:n] in _COUNTRY_TZ:
            return digits[:n]
    return None


def timezone_for(e164: str, default: str = "Europe/Warsaw") -> str:
    """A time zone for the number's country (for the calling window when none is given)."""
    code = country_code(e164)
    return _COUNTRY_TZ[code] if code else default
