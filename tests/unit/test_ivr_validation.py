"""Dialplan flow validation (file:line:col, node path, what was expected) and hot reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.dialplan import Dialplan, DialplanError, load_dialplans
from ivr.nodes import MenuNode
from ivr.watcher import DialplanWatcher

REPO = Path(__file__).resolve().parents[2]
SOUNDS = REPO / "sounds"

HEAD = 'lines:\n  - {number: "0800123456", accept: [pstn], flow: start}\n'  # lines 1-2


def errors(tmp_path: Path, text: str) -> list[str]:
    d = tmp_path / "dialplans"
    d.mkdir(exist_ok=True)
    (d / "f.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DialplanError) as info:
        load_dialplans(d, SOUNDS)
    return [e.split("f.yaml:", 1)[1] for e in info.value.errors]


def test_shipped_demo_is_valid() -> None:
    plan = load_dialplans(REPO / "dialplans", SOUNDS, trunks=["pstn"])
    program = plan.program(plan.match("0800123456"))  # type: ignore[arg-type]
    assert "main_menu" in program.nodes and "business" in program.schedules
    menu = program.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert menu.options == {
        "1": "sales", "2": "support", "3": "switch_language", "8": "callback",
        "9": "voicemail", "0": "repeat",
    }
    line = (REPO / "dialplans" / "hotline.yaml").read_text("utf-8").splitlines().index(
        "  main_menu:"
    )
    assert program.origins["main_menu"].endswith(f"hotline.yaml:{line + 1}:3")


def test_unknown_node_type_and_key(tmp_path: Path) -> None:
    text = HEAD + "nodes:\n  start:\n    type: manu\n  x:\n    type: play\n    promts: welcome\n"
    assert errors(tmp_path, text) == [
        "5:11: nodes.start.type: unknown node type 'manu' (did you mean 'menu'?) (expected one "
        "of play, menu, collect, set, branch, schedule, language, say, queue, transfer, "
        "voicemail, callback, survey, hangup, goto)",
        "7:5: nodes.x.prompts: required key is missing",
        "8:5: nodes.x.promts: unknown key 'promts' for a play node (did you mean 'prompts'?) "
        "(allowed: interruptible, next, prompts, type)",
    ]


def test_unknown_target_names_the_field_and_the_choices(tmp_path: Path) -> None:
    text = HEAD + (
        "nodes:\n"
        "  start:\n"
        "    type: menu\n"
        "    prompts: menu\n"
        "    options:\n"
        "      1: sales\n"
        "      2: salse\n"
        "    on_timeout: nowhere\n"
        "  sales:\n"
        "    type: queue\n"
        "    queue: sales\n"
    )
    assert errors(tmp_path, text) == [
        "9:10: nodes.start.options.2: unknown target 'salse' (did you mean 'sales'?); "
        "expected a node of this file (start, sales) or goodbye / hangup",
        "10:17: nodes.start.on_timeout: unknown target 'nowhere'; expected a node of this "
        "file (start, sales) or goodbye / hangup",
    ]


def test_key_used_twice(tmp_path: Path) -> None:
    text = HEAD + (
        "nodes:\n  start:\n    type: menu\n    prompts: menu\n"
        '    options:\n      1: hangup\n      "1": goodbye\n'
    )
    assert errors(tmp_path, text) == [
        "9:7: nodes.start.options.1: key '1' is used twice (first at line 8); each key may "
        "lead to one target",
    ]


def test_yaml_duplicate_key_is_reported(tmp_path: Path) -> None:
    text = HEAD + "nodes:\n  start:\n    type: menu\n    prompts: menu\n" + (
        "    options:\n      1: hangup\n      1: goodbye\n"
    )
    [error] = errors(tmp_path, text)
    assert error == (
        "9:7: nodes.start.options[1]: duplicate key (first defined at line 8); remove one of them"
    )


def test_missing_prompt_for_each_language_used(tmp_path: Path) -> None:
    (tmp_path / "sounds" / "pl").mkdir(parents=True)
    (tmp_path / "sounds" / "en").mkdir(parents=True)
    for lang, name in [("pl", "welcome"), ("pl", "goodbye"), ("pl", "menu"), ("en", "welcome"),
                       ("en", "goodbye")]:
        (tmp_path / "sounds" / lang / f"{name}.wav").write_bytes(b"RIFF")
    d = tmp_path / "dialplans"
    d.mkdir()
    (d / "f.yaml").write_text(
        HEAD + (
            "nodes:\n"
            "  start:\n"
            "    type: play\n"
            "    prompts: [welcome, menu]\n"
            "    next: english\n"
            "  english:\n"
            "    type: language\n"
            "    language: en\n"
            "    next: again\n"
            "  again:\n"
            "    type: play\n"
            "    prompts: [welcome, menu]\n"
        ),
        encoding="utf-8",
    )
    with pytest.raises(DialplanError) as info:
        load_dialplans(d, tmp_path / "sounds")
    [error] = info.value.errors
    assert error.endswith(
        "f.yaml:14:24: nodes.again.prompts[1]: prompt 'menu' has no sound file "
        f"{tmp_path / 'sounds' / 'en' / 'menu.wav'} for language 'en'; add the WAV (8 kHz mono) "
        "or pick an existing prompt"
    )


def test_say_in_a_language_without_number_prompts(tmp_path: Path) -> None:
    (tmp_path / "sounds" / "de").mkdir(parents=True)
    (tmp_path / "sounds" / "pl").mkdir(parents=True)
    (tmp_path / "sounds" / "pl" / "welcome.wav").write_bytes(b"RIFF")
    (tmp_path / "sounds" / "de" / "goodbye.wav").write_bytes(b"RIFF")
    d = tmp_path / "dialplans"
    d.mkdir()
    (d / "f.yaml").write_text(
        'lines:\n  - {number: "1", accept: [pstn], language: de, flow: start}\n'
        "nodes:\n  start:\n    type: say\n    say: number\n    value: 5\n",
        encoding="utf-8",
    )
    with pytest.raises(DialplanError) as info:
        load_dialplans(d, tmp_path / "sounds")
    assert info.value.errors[-1].endswith(
        "f.yaml:6:10: nodes.start.say: no number grammar for language 'de'; say nodes work in "
        "pl, en"
    )


def test_unreachable_node_and_silent_loop(tmp_path: Path) -> None:
    text = HEAD + (
        "nodes:\n"
        "  start:\n"
        "    type: goto\n"
        "    target: again\n"
        "  again:\n"
        "    type: set\n"
        "    variables: {x: 1}\n"
        "    next: start\n"
        "  orphan:\n"
        "    type: play\n"
        "    prompts: welcome\n"
    )
    assert errors(tmp_path, text) == [
        "4:3: nodes.start: loop that never waits for the caller: start -> again -> start; put "
        "a menu, play or other waiting node in it",
        "11:3: nodes.orphan: unreachable node 'orphan': no line's flow and no other node leads "
        "here; remove it or point a target at it",
    ]


def test_line_flow_schedule_and_variable_references(tmp_path: Path) -> None:
    text = (
        'lines:\n  - {number: "1", accept: [pstn], flow: strat}\n'
        '  - {number: "2", accept: [pstn], flow: start, queue: sales}\n'
        "schedules:\n  biz:\n    hours: {mon-fri: \"08:00-20:00\", fri: \"09:00-10:00\"}\n"
        "nodes:\n"
        "  start:\n"
        "    type: schedule\n"
        "    schedule: buz\n"
        "    open: speak\n"
        "    closed: goodbye\n"
        "  speak:\n"
        "    type: say\n"
        "    say: number\n"
        '    value: "${count}"\n'
    )
    assert errors(tmp_path, text) == [
        "2:41: lines[0].flow: unknown node 'strat' (did you mean 'start'?); expected a node of "
        "this file's `nodes:` (start, speak)",
        "3:55: lines[1].queue: a line with a `flow:` does not take `queue:`; use a queue node in "
        "the flow, or drop `flow:` to send callers straight to the queue",
        "6:37: schedules.biz.hours.fri: fri is given hours twice; each day may appear in one "
        "entry",
        "10:15: nodes.start.schedule: unknown schedule 'buz' (did you mean 'biz'?); expected "
        "one of this file's `schedules:` (biz)",
        "16:12: nodes.speak.value: unknown variable 'count'; expected one set by a collect or "
        "set node, or a built-in (call_id, callback_number, called, caller, customer.fields.<name>, "
        "customer.known, customer.language, customer.last_agent, customer.last_contact_days, "
        "customer.name, customer.open_callbacks, customer.tier, digits, history.last_agent, "
        "history.open_callbacks, history.previous_calls, language, line, outcome, rating)",
    ]


def test_bad_field_values_are_positioned(tmp_path: Path) -> None:
    text = HEAD + (
        "nodes:\n"
        "  start:\n"
        "    type: collect\n"
        "    prompts: menu\n"
        "    variable: acct\n"
        "    min_digits: 5\n"
        "    max_digits: 4\n"
        '    pattern: "[0-9"\n'
        "    timeout: 0\n"
        "    terminator: x\n"
    )
    assert errors(tmp_path, text) == [
        "10:14: nodes.start.pattern: bad regular expression '[0-9': unterminated character set "
        "at position 0",
        "11:14: nodes.start.timeout: expected greater than 0, got 0",
        "12:17: nodes.start.terminator: expected one key of 0-9 * # A-D, got 'x'",
    ]
    fixed = text.replace('"[0-9"', '"[0-9]+"').replace("timeout: 0", "timeout: 3")
    assert errors(tmp_path, fixed.replace("terminator: x", "terminator: '#'")) == [
        "5:5: nodes.start: expected min_digits <= max_digits, got 5 > 4",
    ]


# -- hot reload --------------------------------------------------------------------------------

GOOD = HEAD + "nodes:\n  start:\n    type: play\n    prompts: welcome\n"


def touch(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_watcher_reloads_and_keeps_the_old_version_on_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "dialplans"
    d.mkdir()
    f = d / "f.yaml"
    touch(f, GOOD, 0)
    watcher = DialplanWatcher(d, SOUNDS, trunks=["pstn"])
    first = watcher.current
    assert isinstance(first, Dialplan) and watcher.poll() is None
    touch(f, GOOD.replace("welcome", "menu"), 1)
    second = watcher.poll()
    assert isinstance(second, Dialplan) and watcher.current is second
    # a call that started on `first` still has its own program
    assert first.program(first.lines[0]).nodes["start"].prompts == ["welcome"]  # type: ignore[union-attr]
    touch(f, GOOD.replace("type: play", "type: pley"), 2)
    failed = watcher.poll()
    assert isinstance(failed, DialplanError)
    assert watcher.current is second
    assert "unknown node type 'pley'" in watcher.errors[0]
    assert "keeping the previous version" in caplog.text
    assert watcher.poll() is None  # not retried until the file changes again
    (d / "g.yaml").write_text('lines:\n  - {number: "2", accept: [pstn]}\n', "utf-8")
    assert isinstance(watcher.poll(), DialplanError)  # f.yaml is still broken
    touch(f, GOOD, 3)
    fixed = watcher.poll()
    assert isinstance(fixed, Dialplan) and len(fixed) == 2 and watcher.errors == []


def test_watcher_sees_a_removed_file(tmp_path: Path) -> None:
    d = tmp_path / "dialplans"
    d.mkdir()
    touch(d / "f.yaml", GOOD, 0)
    (d / "g.yaml").write_text('lines:\n  - {number: "2", accept: [pstn]}\n', "utf-8")
    watcher = DialplanWatcher(d, SOUNDS)
    assert len(watcher.current) == 2
    (d / "g.yaml").unlink()
    plan = watcher.poll()
    assert isinstance(plan, Dialplan) and len(plan) == 1
