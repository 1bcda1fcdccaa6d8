"""Say-number grammar: Polish and English, 0-1000 and beyond, durations and wait times."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.say import (
    Gender,
    SayError,
    plural_pl,
    required_prompts,
    say,
    say_digits,
    say_duration,
    say_number,
    say_position,
    say_wait_time,
    unit_prompt,
)

REPO = Path(__file__).resolve().parents[2]
TEXTS = {
    (lang, name): text
    for lang, name, text in (
        line.split("|", 2)
        for line in (REPO / "sounds" / "prompts.txt").read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    )
}


def words(prompts: list[str], lang: str) -> str:
    """What the caller hears, from the prompt texts."""
    return " ".join(TEXTS[(lang, p)] for p in prompts)


def value_of(prompts: list[str]) -> int:
    """Read a number back from prompt names (an independent check of the composition)."""
    total = current = 0
    for p in prompts:
        name = p.removeprefix("numbers/")
        if name in ("1000", "thousand", "thousands_few", "thousands_many"):
            total += (current or 1) * 1000
            current = 0
        else:
            current += int(name.rstrip("f"))
    return total + current


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_every_number_0_to_1000_reads_back_and_has_sound_files(lang: str) -> None:
    for n in [*range(0, 1001), 1999, 2000, 2022, 5000, 12345, 21000, 999_999]:
        for gender in Gender:
            prompts = say_number(n, lang, gender)
            assert value_of(prompts) == n, (n, prompts)
            assert len(prompts) <= 7
            for p in prompts:
                assert (REPO / "sounds" / lang / f"{p}.wav").is_file(), p


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "zero"),
        (1, "jeden"),
        (12, "dwanaście"),
        (21, "dwadzieścia jeden"),
        (100, "sto"),
        (115, "sto piętnaście"),
        (342, "trzysta czterdzieści dwa"),
        (1000, "tysiąc"),
        (1001, "tysiąc jeden"),
        (2000, "dwa tysiące"),
        (5000, "pięć tysięcy"),
        (12000, "dwanaście tysięcy"),
        (22000, "dwadzieścia dwa tysiące"),
        (21000, "dwadzieścia jeden tysięcy"),
    ],
)
def test_polish_numbers(n: int, text: str) -> None:
    assert words(say_number(n, "pl"), "pl") == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (101, "one hundred one"),
        (1000, "one thousand"),
        (2500, "two thousand five hundred"),
    ],
)
def test_english_numbers(n: int, text: str) -> None:
    assert words(say_number(n, "en"), "en") == text


def test_polish_plural_categories() -> None:
    one = [1]
    few = [2, 3, 4, 22, 23, 24, 32, 102, 104, 1002]
    many = [0, 5, 11, 12, 13, 14, 15, 20, 21, 25, 100, 111, 112, 1000]
    assert [plural_pl(n) for n in one] == ["one"]
    assert {plural_pl(n) for n in few} == {"few"}
    assert {plural_pl(n) for n in many} == {"many"}


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "jedna minuta"),
        (2, "dwie minuty"),
        (3, "trzy minuty"),
        (5, "pięć minut"),
        (12, "dwanaście minut"),
        (21, "dwadzieścia jeden minut"),
        (22, "dwadzieścia dwie minuty"),
        (42, "czterdzieści dwie minuty"),
        (52, "pięćdziesiąt dwie minuty"),
        (59, "pięćdziesiąt dziewięć minut"),
    ],
)
def test_polish_minutes_agree_in_number_and_gender(minutes: int, text: str) -> None:
    assert words(say_duration(minutes * 60, "pl"), "pl") == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (60, "one minute"),
        (120, "two minutes"),
        (3600 + 60 + 1, "one hour one minute one second"),
        (0, "zero seconds"),
        (45, "forty five seconds"),
    ],
)
def test_english_durations(seconds: int, text: str) -> None:
    assert words(say_duration(seconds, "en"), "en") == text


def test_polish_durations_with_hours_and_seconds() -> None:
    assert words(say_duration(2 * 3600 + 5 * 60 + 22, "pl"), "pl") == (
        "dwie godziny pięć minut dwadzieścia dwie sekundy"
    )
    assert words(say_duration(3600, "pl"), "pl") == "jedna godzina"


def test_wait_time_rounds_up_to_whole_minutes() -> None:
    assert say_wait_time(10, "pl") == ["wait_time_is", "numbers/1f", "minutes_one"]
    assert say_wait_time(61, "pl") == ["wait_time_is", "numbers/2f", "minutes_few"]
    assert say_wait_time(300, "en") == ["wait_time_is", "numbers/5", "minutes_other"]
    assert words(say_wait_time(90 * 60, "pl"), "pl").endswith(
        "jedna godzina trzydzieści minut"
    )


def test_position_and_digits() -> None:
    assert say_position(3, "pl") == ["position_is", "numbers/3"]
    assert say_digits("12*#", "en") == ["numbers/1", "numbers/2", "numbers/star", "numbers/hash"]
    assert words(say_digits("+48 601", "pl"), "pl") == "cztery osiem sześć zero jeden"


def test_say_dispatch_and_errors() -> None:
    assert say("number", "22", "pl", "feminine") == ["numbers/20", "numbers/2f"]
    assert say("wait_time", "59.5", "pl")[1:] == ["numbers/1f", "minutes_one"]
    with pytest.raises(SayError):
        say("number", "abc", "pl")
    with pytest.raises(SayError):
        say("number", "1.5", "pl")
    with pytest.raises(SayError):
        say_number(-1, "pl")
    with pytest.raises(SayError):
        say_number(1_000_000, "pl")
    with pytest.raises(SayError):
        say_number(1, "de")


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_required_prompts_exist_in_the_shipped_sounds(lang: str) -> None:
    for p in required_prompts(lang):
        assert (REPO / "sounds" / lang / f"{p}.wav").is_file(), p


@pytest.mark.parametrize(
    ("n", "text"),
    [(112, "sto dwanaście minut"), (102, "sto dwie minuty"), (1001, "tysiąc jeden minut"),
     (1002, "tysiąc dwie minuty"), (1000, "tysiąc minut")],
)
def test_polish_large_counts_with_a_feminine_noun(n: int, text: str) -> None:
    prompts = [*say_number(n, "pl", Gender.FEMININE), unit_prompt("minutes", n, "pl")]
    assert words(prompts, "pl") == text
