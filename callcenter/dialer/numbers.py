"""Contact numbers to E.164 with ``phonenumbers``: validity, and the contact's time zone.

``normalize("22 123-45-67")`` and ``normalize("0048 22 123 45 67")`` both give ``"+48221234567"``
(national numbers belong to ``country``, default PL); ``+1`` and ``+44`` numbers are checked
against their own country's plan. Garbage raises :class:`NumberError` with a reason fit for an
import report.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as pn_timezone

from callcenter.calls.numbers import parse

_SEPARATORS = re.compile(r"[\s\-./()\u00a0]")


class NumberError(ValueError):
    """Not a dialable number; ``reason`` says why (for the import report)."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


def normalize(raw: str, *, country: str = "PL") -> str:
    """``raw`` as E.164 (``+`` and digits); national numbers belong to ``country`` (ISO 3166).

    Accepted: ``+48 22 123 45 67``, ``0048221234567``, ``48221234567``, national ``221234567``
    and the trunk-prefixed ``0 22 123 45 67``, with spaces, dashes, dots and parentheses.
    Raises :class:`NumberError`.
    """
    text = raw.strip()
    if not text:
        raise NumberError(raw, "empty")
    compact = _SEPARATORS.sub("", text)
    body = compact.removeprefix("+")
    bad = next((c for c in body if not (c.isascii() and c.isdigit())), None)
    if bad is not None:
        raise NumberError(raw, f"unexpected character {bad!r}")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    parsed = parse(compact, country)
    if parsed is None:
        raise NumberError(raw, _why_invalid(compact, country))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _why_invalid(compact: str, country: str) -> str:
    """Why ``phonenumbers`` refused ``compact`` (a number of ``country`` unless it has a +)."""
    if compact.startswith("+") and not 8 <= len(compact) - 1 <= 15:
        return f"E.164 numbers have 8-15 digits, got {len(compact) - 1}"
    try:
        number = phonenumbers.parse(compact, country)
    except phonenumbers.NumberParseException as exc:
        return str(exc)
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    nsn = phonenumbers.national_significant_number(number)
    where = f" after +{number.country_code}" if compact.startswith("+") else ""
    example = phonenumbers.example_number(region)
    size = len(phonenumbers.national_significant_number(example)) if example else 0
    if size and len(nsn) != size:
        return f"a {region} number has {size} digits{where}, got {len(nsn)}"
    if nsn.startswith("0"):
        return f"{region} national numbers do not start with 0"
    return f"not a valid {region} number"


def try_normalize(raw: str, *, country: str = "PL") -> tuple[str | None, str | None]:
    """``(e164, None)`` or ``(None, reason)``. Remembered (4,096 texts of up to 64
    characters): every call from a trunk looks its caller's number up a few times, and
    ``phonenumbers`` takes tens of microseconds."""
    if len(raw) > 64:  # no number is this long: not worth keeping (an import's garbage)
        return _try_normalize.__wrapped__(raw, country)
    return _try_normalize(raw, country)


@lru_cache(maxsize=4096)
def _try_normalize(raw: str, country: str) -> tuple[str | None, str | None]:
    try:
        return normalize(raw, country=country), None
    except NumberError as exc:
        return None, exc.reason


def timezone_for(e164: str) -> str | None:
    """The time zone of the number's area (``America/New_York`` for +1 212...), or None when
    ``phonenumbers`` knows none for it or several (a +1 mobile: ask the contact list)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    zones = pn_timezone.time_zones_for_number(number)
    return zones[0] if len(zones) == 1 and zones[0] != pn_timezone.UNKNOWN_TIMEZONE else None
