"""The callcenter command: check exit codes and messages, serve wiring."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from callcenter.cli import main
from callcenter.config import DEFAULT_CONFIG_YAML, Config
from ivr.clock import ServerClock
from ivr.dialplan import Dialplan

REPO = Path(__file__).resolve().parents[2]


def test_check_shipped_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(REPO / "config.yaml")]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "OK: 5 users, 1 trunks, 4 lines"
    assert err == ""


def test_check_builtin_defaults_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no sounds/ or dialplans/ here: the shipped ones are used
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 users")


def test_check_broken_config_exits_1_with_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DEFAULT_CONFIG_YAML.replace("  port: 5060", "  port: fifty"), "utf-8")
    assert main(["check", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:5:9: sip.port: expected a valid integer")
    assert "1 error; fix them" in err


def test_check_broken_yaml_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sip:\n  port: 5060\n   listen: x\n", "utf-8")
    assert main(["check", "--config", str(path)]) == 1
    assert f"{path}:3:" in capsys.readouterr().err


def test_check_broken_dialplan_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "x.yaml").write_text(
        'lines:\n  - number: "0800123456"\n    accept: [pstn]\n    prompt: missing\n', "utf-8"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        DEFAULT_CONFIG_YAML.replace("sounds: sounds", f"sounds: {REPO / 'sounds'}"), "utf-8"
    )
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "x.yaml:4:13: lines[0].prompt: prompt 'missing' has no sound file" in err


def test_check_prints_warnings_but_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    text = DEFAULT_CONFIG_YAML.replace("http:\n  listen: 127.0.0.1", "http:\n  listen: 0.0.0.0")
    text = text.replace("sounds: sounds", f"sounds: {REPO / 'sounds'}")
    text = text.replace("dialplans: dialplans", f"dialplans: {REPO / 'dialplans'}")
    config.write_text(text, "utf-8")
    assert main(["check", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "warning: exposing demo passwords on 0.0.0.0:8080" in err
    assert out.startswith("OK:")


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml' not found" in err and "--config" in err


def test_bad_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--sip-port", "70000"])
    assert info.value.code == 2
    assert "expected a port 0-65535" in capsys.readouterr().err


def test_serve_applies_overrides_and_calls_run_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def run_server(cfg: Config, dialplan: Dialplan, *, clock: ServerClock,
                   read_config: Callable[[], Config], config_path: Path) -> None:
        seen["cfg"], seen["dialplan"], seen["clock"] = cfg, dialplan, clock
        seen["again"], seen["path"] = read_config(), config_path

    monkeypatch.setitem(sys.modules, "callcenter.app", types.SimpleNamespace(run_server=run_server))
    db = tmp_path / "x.db"
    code = main(
        [
            "serve",
            "--config",
            str(REPO / "config.yaml"),
            "--sip-port",
            "5199",
            "--http-port",
            "0",
            "--db",
            str(db),
            "--log-format",
            "json",
            "--log-level",
            "WARNING",
            "--clock",
            "2026-11-23T10:00",
        ]
    )
    assert code == 0
    clock = seen["clock"]
    assert isinstance(clock, ServerClock)
    assert clock.now().strftime("%Y-%m-%d %H") == "2026-11-23 10"
    assert str(clock.now().tzinfo) == "Europe/Warsaw"
    cfg = seen["cfg"]
    assert isinstance(cfg, Config)
    assert (cfg.sip.port, cfg.http.port, cfg.database) == (5199, 0, db)
    assert (cfg.logging.format, cfg.logging.level) == ("json", "warning")
    assert isinstance(seen["dialplan"], Dialplan) and len(seen["dialplan"]) == 4
    assert seen["again"] == cfg and seen["path"] == REPO / "config.yaml"  # a reload keeps them


def test_serve_with_broken_config_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("users:\n  - {user: '1', role: boss}\n", "utf-8")
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:5: users[0].password: required key is missing" in err
    assert f"{path}:2:23: users[0].role:" in err


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", "check", "--config", str(REPO / "config.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 5 users, 1 trunks")
