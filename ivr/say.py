"""Say numbers, digits, queue positions and durations as lists of prompt names.

Prompt names are relative to ``sounds/<language>/`` (``numbers/21`` is not a file: 21 is
``numbers/20`` + ``numbers/1``). Polish agrees numerals with the noun: 1 minuta, 2 minuty,
5 minut, 12 minut, 22 minuty; the feminine forms ``jedna`` / ``dwie`` are ``numbers/1f`` /
``numbers/2f``. English uses ``minutes_one`` / ``minutes_other``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

LANGUAGES = ("pl", "en")
MAX_NUMBER = 999_999


class SayError(ValueError):
    """A value that cannot be said (negative, too large, not a number, unknown language)."""


class Gender(StrEnum):
    """Grammatical gender of the counted noun (Polish: jeden/jedna, dwa/dwie)."""

    MASCULINE = "masculine"
    FEMININE = "feminine"


def plural_pl(n: int) -> Literal["one", "few", "many"]:
    """Polish plural category: 1 -> one; 2-4, 22-24, 102-104... -> few; else many."""
    if n == 1:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


def _check(n: int, language: str) -> None:
    if language not in LANGUAGES:
        raise SayError(f"no number grammar for language {language!r}; have {', '.join(LANGUAGES)}")
    if not 0 <= n <= MAX_NUMBER:
        raise SayError(f"cannot say {n}: expected 0-{MAX_NUMBER}")


def _below_1000_pl(n: int, gender: Gender, *, whole: bool) -> list[str]:
    out: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        out.append(f"numbers/{hundreds * 100}")
    if 10 <= rest <= 19:
        out.append(f"numbers/{rest}")
        return out
    tens, units = divmod(rest, 10)
    if tens:
        out.append(f"numbers/{tens * 10}")
    if units:
        if gender is Gender.FEMININE and units == 2:
            out.append("numbers/2f")
        elif gender is Gender.FEMININE and units == 1 and whole and n == 1:
            out.append("numbers/1f")  # "jedna minuta", but "dwadzieścia jeden minut"
        else:
            out.append(f"numbers/{units}")
    return out


def _number_pl(n: int, gender: Gender) -> list[str]:
    if n == 0:
        return ["numbers/0"]
    thousands, rest = divmod(n, 1000)
    out: list[str] = []
    if thousands == 1:
        out.append("numbers/1000")
    elif thousands:
        out += _below_1000_pl(thousands, Gender.MASCULINE, whole=False)
        out.append(f"numbers/thousands_{'few' if plural_pl(thousands) == 'few' else 'many'}")
    if rest:
        out += _below_1000_pl(rest, gender, whole=not thousands)
    return out


def _below_1000_en(n: int) -> list[str]:
    out: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        out.append(f"numbers/{hundreds * 100}")
    if 1 <= rest <= 19:
        out.append(f"numbers/{rest}")
    elif rest:
        tens, units = divmod(rest, 10)
        out.append(f"numbers/{tens * 10}")
        if units:
            out.append(f"numbers/{units}")
    return out


def _number_en(n: int) -> list[str]:
    if n == 0:
        return ["numbers/0"]
    thousands, rest = divmod(n, 1000)
    out: list[str] = []
    if thousands == 1:
        out.append("numbers/1000")
    elif thousands:
        out += [*_below_1000_en(thousands), "numbers/thousand"]
    return out + _below_1000_en(rest)


def say_number(n: int, language: str, gender: Gender | str = Gender.MASCULINE) -> list[str]:
    """Cardinal ``n`` (0-999999); ``gender`` is the gender of the noun that follows (Polish)."""
    _check(n, language)
    if language == "pl":
        return _number_pl(n, Gender(gender))
    return _number_en(n)


_DIGIT_NAMES = {"*": "numbers/star", "#": "numbers/hash"}


def say_digits(text: str, language: str) -> list[str]:
    """Each digit (and * #) one by one, e.g. a phone number; other characters are skipped."""
    _check(0, language)
    return [
        f"numbers/{c}" if c.isdigit() else _DIGIT_NAMES[c] for c in text if c.isdigit() or c in
        _DIGIT_NAMES
    ]


def unit_prompt(unit: Literal["hours", "minutes", "seconds"], n: int, language: str) -> str:
    """The noun form after ``n``: ``minutes_one`` / ``minutes_few`` / ``minutes_many`` (pl),
    ``minutes_one`` / ``minutes_other`` (en)."""
    if language == "pl":
        return f"{unit}_{plural_pl(n)}"
    return f"{unit}_{'one' if n == 1 else 'other'}"


def _count(n: int, unit: Literal["hours", "minutes", "seconds"], language: str) -> list[str]:
    # godzina, minuta, sekunda are feminine
    return [*say_number(n, language, Gender.FEMININE), unit_prompt(unit, n, language)]


def say_duration(seconds: float, language: str) -> list[str]:
    """An exact duration: hours, minutes and seconds that are not zero (``0 seconds`` for 0)."""
    total = round(seconds)
    _check(max(0, total // 3600), language)
    if total < 0:
        raise SayError(f"cannot say a negative duration ({seconds})")
    hours, rem = divmod(total, 3600)
    minutes, secs = divmod(rem, 60)
    out: list[str] = []
    if hours:
        out += _count(hours, "hours", language)
    if minutes:
        out += _count(minutes, "minutes", language)
    if secs or not out:
        out += _count(secs, "seconds", language)
    return out


def say_wait_time(seconds: float, language: str) -> list[str]:
    """"The estimated waiting time is about N minutes": rounded up to whole minutes, at least 1,
    hours and minutes from 60 minutes on."""
    if seconds < 0 or math.isnan(seconds):
        raise SayError(f"cannot say a negative wait time ({seconds})")
    minutes = max(1, math.ceil(seconds / 60))
    _check(minutes // 60, language)
    hours, minutes = divmod(minutes, 60)
    out = ["wait_time_is"]
    if hours:
        out += _count(hours, "hours", language)
    if minutes:
        out += _count(minutes, "minutes", language)
    return out


def say_position(n: int, language: str) -> list[str]:
    """"Your position in the queue is N"."""
    return ["position_is", *say_number(n, language)]


SayWhat = Literal["number", "digits", "position", "wait_time", "duration"]


def say(what: SayWhat, value: str, language: str, gender: Gender | str = Gender.MASCULINE) -> list[str]:
    """Dispatch on ``what``; ``value`` is text (a variable's value). Raises SayError."""
    if what == "digits":
        return say_digits(value, language)
    try:
        number = float(value.strip())
    except ValueError:
        raise SayError(f"cannot say {value!r} as a {what}: expected a number") from None
    if what == "number":
        if number != int(number):
            raise SayError(f"cannot say {value!r}: expected a whole number")
        return say_number(int(number), language, gender)
    if what == "position":
        return say_position(int(number), language)
    if what == "wait_time":
        return say_wait_time(number, language)
    return say_duration(number, language)


def required_prompts(language: str) -> list[str]:
    """Every prompt the grammar of ``language`` may use (for validation)."""
    _check(0, language)
    names = {f"numbers/{i}" for i in range(20)}
    names |= {f"numbers/{i * 10}" for i in range(2, 10)}
    names |= {f"numbers/{i * 100}" for i in range(1, 10)}
    names |= {"numbers/1000", "numbers/star", "numbers/hash", "position_is", "wait_time_is"}
    forms = ("one", "few", "many") if language == "pl" else ("one", "other")
    names |= {f"{unit}_{form}" for unit in ("hours", "minutes", "seconds") for form in forms}
    if language == "pl":
        names |= {"numbers/1f", "numbers/2f", "numbers/thousands_few", "numbers/thousands_many"}
    else:
        names.add("numbers/thousand")
    return sorted(names)
