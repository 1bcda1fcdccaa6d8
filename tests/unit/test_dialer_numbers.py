"""E.164 normalisation of Polish and international numbers, and the contact's time zone."""

from __future__ import annotations

import pytest

from callcenter.dialer.numbers import (
    NumberError,
    _try_normalize,
    normalize,
    timezone_for,
    try_normalize,
)


@pytest.mark.parametrize("raw", [
    "221234567", "22 123 45 67", "22-123-45-67", "+48 22 123 45 67", "0048221234567",
    "48221234567", "(0-22) 123-45-67", " +48.22.123.45.67 ",
])
def test_polish_forms(raw: str) -> None:
    assert normalize(raw) == "+48221234567"


def test_mobile_and_foreign() -> None:
    assert normalize("600 700 800") == "+48600700800"
    assert normalize("+44 20 7946 0018") == "+442079460018"
    assert normalize("001 (212) 555-1234") == "+12125551234"
    assert normalize("(212) 555-1234", country="US") == "+12125551234"
    assert normalize("020 7946 0018", country="GB") == "+442079460018"


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"), ("12345", "9 digits"), ("22 123 45 6x", "unexpected character"),
    ("+48 22 123 45", "9 digits after +48"), ("+48 022 123 456", "do not start with 0"),
    ("+1234", "8-15 digits"), ("+1 012 555 1234", "US national numbers do not start with 0"),
    ("+1 212 155 1234", "not a valid US number"),
    ("+44 20 7946 001", "a GB number has 10 digits after +44, got 9"),
])
def test_garbage_rejected_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(NumberError) as exc:
        normalize(raw)
    assert reason in exc.value.reason
    assert try_normalize(raw)[0] is None


def test_timezone_from_number() -> None:
    assert timezone_for("+48221234567") == "Europe/Warsaw"
    assert timezone_for("+442079460018") == "Europe/London"
    assert timezone_for("+12125551234") == "America/New_York"
    assert timezone_for("+13105551234") == "America/Los_Angeles"
    assert timezone_for("+999") is None


def test_try_normalize_remembers_short_texts_only() -> None:
    """Numbers are looked up several times a call: the answer is kept, for texts of up to
    64 characters (an import's long garbage is checked each time, never kept)."""
    _try_normalize.cache_clear()
    assert try_normalize("22 123 45 67") == ("+48221234567", None)
    assert try_normalize("22 123 45 67") == ("+48221234567", None)
    assert _try_normalize.cache_info().hits == 1
    long = "1" * 65
    assert try_normalize(long)[0] is None and try_normalize(long)[1]
    assert _try_normalize.cache_info().currsize == 1
