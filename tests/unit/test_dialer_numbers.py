"""E.164 normalisation of Polish and international numbers."""

from __future__ import annotations

import pytest

from callcenter.dialer.numbers import NumberError, normalize, timezone_for, try_normalize


@pytest.mark.parametrize("raw", [
    "221234567", "22 123 45 67", "22-123-45-67", "+48 22 123 45 67", "0048221234567",
    "48221234567", "(0-22) 123-45-67", " +48.22.123.45.67 ",
])
def test_polish_forms(raw: str) -> None:
    assert normalize(raw) == "+48221234567"


def test_mobile_and_foreign() -> None:
    assert normalize("600 700 800") == "+48600700800"
    assert normalize("+44 20 7946 0018") == "+442079460018"


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"), ("12345", "9 digits"), ("22 123 45 6x", "unexpected character"),
    ("+48 22 123 45", "9 digits after +48"), ("+48 022 123 456", "do not start with 0"),
    ("+1234", "8-15 digits"),
])
def test_garbage_rejected_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(NumberError) as exc:
        normalize(raw)
    assert reason in exc.value.reason
    assert try_normalize(raw)[0] is None


def test_timezone_from_country() -> None:
    assert timezone_for("+48221234567") == "Europe/Warsaw"
    assert timezone_for("+442079460018") == "Europe/London"
