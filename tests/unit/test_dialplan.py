"""Dialplan loading: positioned errors, duplicates across files, missing prompts, matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.dialplan import Dialplan, DialplanError, Line, load_dialplans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    root = tmp_path / "sounds"
    for lang, prompt in [("pl", "welcome"), ("pl", "welcome_shared_cost"), ("en", "welcome")]:
        (root / lang).mkdir(parents=True, exist_ok=True)
        (root / lang / f"{prompt}.wav").write_bytes(b"RIFF")
    return root


def plans(tmp_path: Path, **files: str) -> Path:
    root = tmp_path / "dialplans"
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


def errors_of(directory: Path, sounds: Path, **kwargs: object) -> list[str]:
    with pytest.raises(DialplanError) as info:
        load_dialplans(directory, sounds, **kwargs)  # type: ignore[arg-type]
    return info.value.errors


def test_shipped_hotline_loads_against_shipped_sounds() -> None:
    plan = load_dialplans(REPO / "dialplans", REPO / "sounds", trunks=["pstn"])
    free = plan.match("0800123456")
    shared = plan.match("0801123456")
    assert free is not None and free.kind == "toll-free" and free.prompt == "welcome"
    assert free.language == "pl" and free.timeout == 10 and free.accepts("trunk:pstn")
    assert shared is not None and shared.kind == "shared-cost"
    assert shared.prompt == "welcome_shared_cost"
    sales = plan.match("0800000001")
    assert sales is not None and sales.queue == "sales"


def test_duplicate_number_across_files_names_both_places(tmp_path: Path, sounds: Path) -> None:
    directory = plans(
        tmp_path,
        a='lines:\n  - number: "0800123456"\n    accept: [pstn]\n',
        b='lines:\n  - number: "0800999999"\n    accept: [pstn]\n'
        '  - number: "0800123456"\n    accept: [users]\n',
    )
    [error] = errors_of(directory, sounds)
    assert error.startswith(f"{directory / 'b.yaml'}:4:13: lines[1].number: ")
    assert f"already defined at {directory / 'a.yaml'}:2:13" in error


def test_missing_prompt_for_the_language(tmp_path: Path, sounds: Path) -> None:
    text = (
        "lines:\n"
        '  - number: "0800123456"\n'
        "    accept: [pstn]\n"
        "    language: en\n"
        "    prompt: welcome_shared_cost\n"
    )
    [error] = errors_of(plans(tmp_path, hotline=text), sounds)
    assert ":5:13: lines[0].prompt: prompt 'welcome_shared_cost' has no sound file" in error
    assert "en/welcome_shared_cost.wav" in error


def test_unknown_key_and_bad_number(tmp_path: Path, sounds: Path) -> None:
    text = 'lines:\n  - number: "08OO123456"\n    accept: [pstn]\n    promt: welcome\n'
    errors = errors_of(plans(tmp_path, hotline=text), sounds)
    assert len(errors) == 2
    assert ":2:13: lines[0].number: bad number '08OO123456'" in errors[0]
    assert ":4:5: lines[0].promt: unknown key 'promt'; did you mean 'prompt'?" in errors[1]


def test_unquoted_number_and_unknown_kind(tmp_path: Path, sounds: Path) -> None:
    text = "lines:\n  - {number: 800123456, accept: [pstn], kind: premium}\n"
    errors = errors_of(plans(tmp_path, hotline=text), sounds)
    assert "lines[0].number: expected a quoted string" in errors[0]
    assert "lines[0].kind: expected 'toll-free', 'shared-cost' or 'other'" in errors[1]


def test_accept_checked_against_trunks(tmp_path: Path, sounds: Path) -> None:
    text = 'lines:\n  - {number: "0800123456", accept: [pstn, gsm, users]}\n'
    directory = plans(tmp_path, hotline=text)
    [error] = errors_of(directory, sounds, trunks=["pstn"])
    assert ":2:43: lines[0].accept[1]: unknown source 'gsm'" in error
    assert len(load_dialplans(directory, sounds)) == 1  # without trunks: not checked


def test_errors_from_every_file_are_reported(tmp_path: Path, sounds: Path) -> None:
    directory = plans(tmp_path, a="lines: [\n", b="lines:\n  - {number: '1', accept: []}\n")
    errors = errors_of(directory, sounds)
    assert "a.yaml" in errors[0] and "YAML syntax error" in errors[0]
    assert "b.yaml:2:27: lines[0].accept: expected at least 1 item" in errors[1]


def test_missing_directory(tmp_path: Path, sounds: Path) -> None:
    [error] = errors_of(tmp_path / "nope", sounds)
    assert "dialplans directory not found" in error


def test_match_exact_wins_over_patterns_and_specific_patterns_first() -> None:
    lines = [
        Line(number="0800XXXXXX", accept=["pstn"], prompt="a"),
        Line(number="08001234XX", accept=["pstn"], prompt="b"),
        Line(number="0800123456", accept=["pstn"], prompt="c"),
    ]
    plan = Dialplan(lines)
    assert plan.match("0800123456").prompt == "c"  # type: ignore[union-attr]
    assert plan.match("0800123499").prompt == "b"  # type: ignore[union-attr]
    assert plan.match("0800999999").prompt == "a"  # type: ignore[union-attr]
    assert plan.match("080012345") is None  # length differs
    assert plan.match("08001234AB") is None  # X only matches digits
    assert plan.match("0801123456") is None


def test_accepts_sources() -> None:
    line = Line(number="1", accept=["pstn", "users"])
    assert line.accepts("trunk:pstn") and line.accepts("user:1001")
    assert not line.accepts("trunk:other")
    assert not Line(number="1", accept=["pstn"]).accepts("user:1001")


OUTBOUND = '''outbound:
  - {pattern: "^00", deny: true, reason: international}
  - {pattern: "^070", deny: true}
  - {pattern: "^0[1-9][0-9]{8}$", allow: ["1009"], trunk: gsm, caller_id: "0221234567"}
  - {pattern: "^0[1-9][0-9]{8}$", allow: [agent, ivr], trunk: pstn}
'''


def test_outbound_first_applying_rule_wins(tmp_path: Path, sounds: Path) -> None:
    plan = load_dialplans(plans(tmp_path, out=OUTBOUND), sounds, trunks=["pstn", "gsm"])
    own = plan.route_out("0221234567", ["1009", "agent"])
    assert own is not None and own.allowed and own.rule is not None
    assert (own.rule.trunk, own.rule.caller_id) == ("gsm", "0221234567")
    agent = plan.route_out("0221234567", ["1001", "agent"])
    assert agent is not None and agent.rule is not None and agent.rule.trunk == "pstn"
    assert agent.rule.caller_id is None
    ivr = plan.route_out("0221234567", ["ivr"])
    assert ivr is not None and ivr.allowed
    boss = plan.route_out("0221234567", ["1002", "supervisor"])  # matched, allowed to nobody
    assert boss is not None and not boss.allowed and boss.reason == "not allowed"
    abroad = plan.route_out("0048221234567", ["1001", "agent"])
    assert abroad is not None and not abroad.allowed and abroad.reason == "international"
    premium = plan.route_out("0700123456", ["ivr"])
    assert premium is not None and not premium.allowed and premium.reason == "not allowed"
    assert plan.route_out("112", ["1001", "agent"]) is None  # no rule: not an outside number


def test_outbound_errors_are_positioned(tmp_path: Path, sounds: Path) -> None:
    text = '''outbound:
  - {pattern: "^0(", trunk: pstn}
  - {pattern: "^0"}
  - {pattern: "^070", deny: true, trunk: pstn}
  - {pattern: "^0", trunk: pstn, caller_id: "08-00"}
'''
    errors = errors_of(plans(tmp_path, out=text), sounds, trunks=["pstn"])
    assert len(errors) == 4, errors
    assert ":2:15: outbound[0].pattern: bad regular expression '^0('" in errors[0]
    assert ":3:5: outbound[1]: expected `trunk:`" in errors[1]
    assert ":4:5: outbound[2]: a `deny: true` rule takes no `trunk:`" in errors[2]
    assert ":5:45: outbound[3].caller_id: bad number '08-00'" in errors[3]
    typo = plans(tmp_path, out='outbound:\n  - {pattern: "^0", trunk: pstm}\n')
    [error] = errors_of(typo, sounds, trunks=["pstn"])
    assert ":2:28: outbound[0].trunk: unknown trunk 'pstm' (did you mean 'pstn'?)" in error


def test_shipped_outbound_rules() -> None:
    plan = load_dialplans(REPO / "dialplans", REPO / "sounds", trunks=["pstn"])
    national = plan.route_out("0221234567", ["1001", "agent"])
    assert national is not None and national.allowed and national.rule is not None
    assert (national.rule.trunk, national.rule.caller_id) == ("pstn", "0800123456")
    for number, why in [("0700123456", "premium-rate"), ("0048221234567", "international")]:
        refused = plan.route_out(number, ["1001", "agent"])
        assert refused is not None and not refused.allowed and refused.reason == why
