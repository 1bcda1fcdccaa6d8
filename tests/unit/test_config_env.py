"""Secrets from the environment (CALLCENTER_HTTP_TOKENS, CALLCENTER_USER_<user>_PASSWORD,
CALLCENTER_MQTT_PASSWORD) replace the file's values; a wrong variable is named in the error."""

from __future__ import annotations

import pytest

from callcenter.config import ConfigError, apply_env, load_config
from tests.helpers.artifacts import REPO

CFG = load_config(REPO / "config.yaml")


def test_tokens_replace_the_files_tokens() -> None:
    cfg = apply_env(CFG, {"CALLCENTER_HTTP_TOKENS": "s3cret-admin:admin:ops, wallboard-9x "})
    assert [(t.token, t.role, t.name) for t in cfg.http.tokens] == [
        ("s3cret-admin", "admin", "ops"), ("wallboard-9x", "read", "")]


def test_user_and_mqtt_passwords() -> None:
    cfg = apply_env(CFG, {"CALLCENTER_USER_1002_PASSWORD": "long-secret",
                          "CALLCENTER_MQTT_PASSWORD": "broker-pw", "HOME": "/root"})
    assert cfg.user("1002").password == "long-secret"  # type: ignore[union-attr]
    assert cfg.user("1001").password == "agent1001"  # type: ignore[union-attr]
    assert cfg.events.mqtt.password == "broker-pw"
    assert apply_env(CFG, {}) is CFG


@pytest.mark.parametrize(("env", "expected"), [
    ({"CALLCENTER_HTTP_TOKENS": "short:admin"}, "CALLCENTER_HTTP_TOKENS: token 1: "),
    ({"CALLCENTER_HTTP_TOKENS": "long-enough:boss"}, "CALLCENTER_HTTP_TOKENS: token 1: "),
    ({"CALLCENTER_USER_9999_PASSWORD": "x"}, "CALLCENTER_USER_9999_PASSWORD: no user '9999'"),
    ({"CALLCENTER_USER_1001_PASSWORD": ""}, "CALLCENTER_USER_*_PASSWORD: a password may not"),
])
def test_bad_variables_are_named(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_env(CFG, env)
    assert info.value.errors[0].startswith(expected), info.value.errors


def test_check_and_serve_read_the_environment(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli import main

    monkeypatch.setenv("CALLCENTER_USER_9999_PASSWORD", "x")
    assert main(["check", "--config", str(REPO / "config.yaml")]) == 1
    assert "CALLCENTER_USER_9999_PASSWORD: no user" in capsys.readouterr().err
