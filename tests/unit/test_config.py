"""Configuration loading, validation messages with file:line:col, overrides and warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import (
    DEFAULT_CONFIG_YAML,
    Config,
    ConfigError,
    apply_overrides,
    check_warnings,
    load_config,
    load_yaml,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.errors


def test_embedded_default_equals_shipped_config_yaml() -> None:
    assert (REPO / "config.yaml").read_text(encoding="utf-8") == DEFAULT_CONFIG_YAML


def test_shipped_config_loads_with_the_contract_values() -> None:
    cfg = load_config(REPO / "config.yaml")
    assert cfg.sip.listen == "127.0.0.1" and cfg.sip.port == 5060
    assert cfg.sip.transports == ["udp", "tcp"]
    assert cfg.sip.advertised == "127.0.0.1"
    assert cfg.sip.registration.default_expires == 600
    assert cfg.sip.auth.max_failures == 5
    assert (cfg.http.listen, cfg.http.port) == ("127.0.0.1", 8080)
    assert (cfg.media.rtp_port_min, cfg.media.rtp_port_max) == (20000, 29999)
    assert cfg.media.codecs == ["PCMU", "PCMA"]
    assert [u.user for u in cfg.users] == ["1001", "1002", "1003", "1004", "2001"]
    assert cfg.user("1003") is not None and cfg.user("1003").name == "Maria Wiśniewska"
    assert cfg.user("2001").role == "supervisor"
    assert cfg.trunk("pstn").addresses == ["127.0.0.1"]
    # Relative paths resolve against the config file's directory.
    assert cfg.database == REPO / "var" / "callcenter.db"
    assert cfg.sounds == REPO / "sounds" and cfg.dialplans == REPO / "dialplans"
    assert cfg.logging.file is None


def test_embedded_defaults_resolve_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.database == tmp_path / "var" / "callcenter.db"
    assert len(cfg.users) == 5


def test_partial_file_gets_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "sip: {port: 5070}\ndatabase: data/cc.db\nlogging: {file: log/cc.log}\n")
    cfg = load_config(path)
    assert cfg.sip.port == 5070 and cfg.http.port == 8080
    assert cfg.database == tmp_path / "data" / "cc.db"
    assert cfg.logging.file == tmp_path / "log" / "cc.log"
    assert cfg.users == []


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "# nothing\n"))
    assert cfg.sip.port == 5060


def test_yaml_syntax_error_reports_file_line_col(tmp_path: Path) -> None:
    path = write(tmp_path, "sip:\n  port: 5060\n  transports: [udp, tcp\nhttp: {}\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:4:5: YAML syntax error")


def test_schema_error_reports_file_line_col_and_dotted_path(tmp_path: Path) -> None:
    text = (
        "sip:\n"
        "  port: 5060\n"
        "users:\n"
        '  - {user: "1001", password: "x", role: agent}\n'
        '  - {user: "1002", password: "y", role: admin}\n'
    )
    [error] = errors_of(write(tmp_path, text))
    assert error.startswith(f"{tmp_path / 'config.yaml'}:5:41: users[1].role: ")
    assert "'agent' or 'supervisor'" in error and "'admin'" in error


def test_unknown_key_points_at_the_key_and_suggests(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "sip:\n  listen: 127.0.0.1\n  prot: 5060\n"))
    assert ":3:3: sip.prot: unknown key 'prot'; did you mean 'port'?" in error


def test_every_error_is_reported_in_file_order(tmp_path: Path) -> None:
    text = "http:\n  port: 70000\nsip:\n  port: abc\n  transports: [udp, sctp]\n"
    errors = errors_of(write(tmp_path, text))
    assert [e.split(": ")[1] for e in errors] == ["http.port", "sip.port", "sip.transports[1]"]
    assert [e.split(":")[1] for e in errors] == ["2", "4", "5"]


def test_unquoted_number_is_rejected_with_advice(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "users:\n  - {user: 1001, password: pw, role: agent}\n"))
    assert ":2:12: users[0].user: " in error and 'quotes (e.g. "1001")' in error


def test_missing_key_points_at_its_mapping(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "users:\n  - user: '1001'\n    role: agent\n"))
    assert ":2:5: users[0].password: required key is missing" in error


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "sip:\n  port: 5060\n  port: 5070\n"))
    assert ":3:3: sip.port: duplicate key (first defined at line 2)" in error


def test_duplicate_users_and_trunks(tmp_path: Path) -> None:
    text = (
        "users:\n"
        '  - {user: "1001", password: "a", role: agent}\n'
        '  - {user: "1001", password: "b", role: agent}\n'
        "trunks:\n"
        "  - {name: pstn, addresses: [10.0.0.1]}\n"
        "  - {name: pstn, addresses: [10.0.0.0/24]}\n"
    )
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 2
    assert ":3:12: users[1].user: user '1001' is already defined" in errors[0]
    assert ":6:12: trunks[1].name: trunk 'pstn' is already defined" in errors[1]


def test_failover_names_other_trunks(tmp_path: Path) -> None:
    text = (
        "trunks:\n"
        "  - {name: a, addresses: [10.0.0.1], failover: [b, a]}\n"
        "  - {name: b, addresses: [10.0.0.2], failover: [c, a, a]}\n"
    )
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 3
    assert ":2:52: trunks[0].failover[1]: trunk 'a' cannot fail over to itself" in errors[0]
    assert ":3:49: trunks[1].failover[0]: expected a trunk (a, b), got 'c'" in errors[1]
    assert ":3:55: trunks[1].failover[2]: 'a' is listed twice" in errors[2]


def test_trunk_inbound_needs_addresses_or_a_registration(tmp_path: Path) -> None:
    bad = "trunks:\n  - {name: c, addresses: [10.0.0.1], max_channels: 0, caller_id: {number: a}}\n"
    errors = errors_of(write(tmp_path, bad, "bad.yaml"))
    assert ":2:52: trunks[0].max_channels: expected greater than or equal to 1" in errors[0]
    assert ":2:75: trunks[0].caller_id.number: expected text matching" in errors[1]
    text = (
        "trunks:\n"
        "  - {name: a, inbound: both}\n"
        "  - {name: b, inbound: register, register: {user: u, password: p}, max_channels: 2}\n"
    )
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 2, errors
    assert ":2:5: trunks[0].addresses: expected at least one address" in errors[0]
    assert ":2:24: trunks[0].inbound: inbound: both takes calls at the registered Contact" \
        in errors[1]
    ok = load_config(write(tmp_path, "trunks:\n  - {name: b, inbound: register, register: "
                           "{user: u, password: p}, trusted: true, caller_id: {number: '+4822'}}"
                           "\n", "ok.yaml"))
    trunk = ok.trunk("b")
    assert trunk is not None and (trunk.trusted, trunk.caller_id.number) == (True, "+4822")


@pytest.mark.parametrize(
    ("media", "where", "expected"),
    [
        ("{rtp_port_min: 20001, rtp_port_max: 20011}", "media.rtp_port_min", "even port"),
        ("{rtp_port_min: 20000, rtp_port_max: 20000}", "media.rtp_port_max", "at least"),
        ("{rtp_port_min: 80}", "media.rtp_port_min", "greater than or equal to 1024"),
        ("{codecs: [PCMU, PCMU]}", "media.codecs[1]", "listed twice"),
        ("{codecs: []}", "media.codecs", "at least 1"),
        ("{address: localhost}", "media.address", "IP address"),
    ],
)
def test_media_validation(tmp_path: Path, media: str, where: str, expected: str) -> None:
    [error] = errors_of(write(tmp_path, f"media: {media}\n"))
    assert f": {where}: " in error and expected in error


@pytest.mark.parametrize(("given", "ours"), [("rrmemory", "round-robin"), ("top-down", "linear"),
                                             ("skills", "skills-based"), ("Ring-All", "ring-all")])
def test_strategy_aliases_become_our_names(tmp_path: Path, given: str, ours: str) -> None:
    cfg = load_config(write(tmp_path, f"queues:\n  - name: q\n    strategy: {given}\n"))
    assert cfg.queues[0].strategy == ours  # what the ACD engine is built with


def test_strategy_without_an_equivalent_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "queues:\n  - name: q\n    strategy: wrandom\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:3:15: queues[0].strategy: unknown strategy 'wrandom'")
    assert "accepted: longest-idle-agent, " in error and "rrmemory" in error


def test_registration_bounds_must_be_ordered(tmp_path: Path) -> None:
    text = "sip:\n  registration: {min_expires: 600, default_expires: 60}\n"
    [error] = errors_of(write(tmp_path, text))
    assert "sip.registration.default_expires: expected min_expires <= default_expires" in error


def test_two_rtp_ports_are_enough(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "media: {rtp_port_min: 20000, rtp_port_max: 20001}\n"))
    assert cfg.media.rtp_port_max == 20001


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "- a\n- b\n"))
    assert error.endswith("expected a mapping of keys at the top level")


def test_overrides() -> None:
    cfg = load_config(None)
    new = apply_overrides(
        cfg, sip_port=5099, http_port=0, db=Path("/tmp/x.db"), log_format="json", log_level="DEBUG"
    )
    assert (new.sip.port, new.http.port, new.database) == (5099, 0, Path("/tmp/x.db"))
    assert (new.logging.format, new.logging.level) == ("json", "debug")
    assert new.sip.listen == cfg.sip.listen and new.users == cfg.users
    assert cfg.sip.port == 5060  # the original is untouched (frozen models)
    with pytest.raises(ValueError):
        apply_overrides(cfg, sip_port=70000)


def test_config_objects_are_frozen_and_keyword_only() -> None:
    cfg = Config()
    with pytest.raises(ValueError):
        cfg.sip.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config("x")  # type: ignore[misc]


def test_no_warnings_on_loopback_defaults() -> None:
    assert check_warnings(load_config(None)) == []


def test_warns_when_demo_passwords_are_exposed(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG_YAML.replace(
        "sip:\n  listen: 127.0.0.1", "sip:\n  listen: 0.0.0.0", 1
    ).replace("  advertised_address: null", "  advertised_address: 192.0.2.1")
    warnings = check_warnings(load_config(write(tmp_path, text)))
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "exposing demo passwords on 0.0.0.0:5060; change users[].password before exposing"
    )


def test_no_exposure_warning_with_real_passwords(tmp_path: Path) -> None:
    text = (
        "sip: {listen: 0.0.0.0, advertised_address: pbx.example.com}\n"
        "http: {listen: 192.0.2.1}\n"
        "users:\n  - {user: '1001', password: 'a-long-secret', role: agent}\n"
    )
    assert check_warnings(load_config(write(tmp_path, text))) == []


def test_http_exposure_and_missing_advertised_address(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG_YAML.replace("http:\n  listen: 127.0.0.1", 'http:\n  listen: "::"', 1)
    text = text.replace("sip:\n  listen: 127.0.0.1", "sip:\n  listen: 0.0.0.0", 1)
    warnings = check_warnings(load_config(write(tmp_path, text)))
    assert any(w.startswith("exposing demo passwords on :::8080") for w in warnings)
    assert any("advertised_address is not set" in w for w in warnings)


def test_load_yaml_records_positions() -> None:
    doc = load_yaml("a:\n  b: [1, {c: 2}]\n", "x.yaml")
    assert doc.data == {"a": {"b": [1, {"c": 2}]}}
    assert doc.mark(("a", "b", 1, "c")).line == 2
    assert doc.mark(("a", "b", 1, "c")).col == 14
    assert doc.error(("a", "b", 0), "bad") == "x.yaml:2:7: a.b[0]: bad"


def test_tls_needs_its_certificate_and_resolves_its_files(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "sip: {transports: [udp, tls]}\n"))
    assert "sip.transports: the tls transport needs sip.tls" in error
    text = "sip:\n  transports: [udp, tls]\n  tls: {certificate: c.pem, key: k.pem}\n"
    tls = load_config(write(tmp_path, text)).sip.tls
    assert tls is not None and tls.port == 5061 and tls.verify_peer and tls.ca is None
    assert (tls.certificate, tls.key) == (tmp_path / "c.pem", tmp_path / "k.pem")


def test_an_agent_dialling_out_presents_its_queue_caller_id_unless_the_rule_sets_one() -> None:
    cfg = Config.model_validate({"queues": [
        {"name": "a", "members": ["1002"]},
        {"name": "b", "members": ["1001", "1002"], "caller_id": "0800111222"},
        {"name": "c", "members": ["1001"], "caller_id": "0800333444"}]})
    assert cfg.caller_id(None, "1001") == "0800111222"  # the first queue listing it
    assert cfg.caller_id("0800555666", "1001") == "0800555666"  # the rule's wins
    assert (cfg.caller_id(None, "1002"), cfg.caller_id("", "1003")) == ("0800111222", "1003")
    with pytest.raises(ValueError):
        Config.model_validate({"queues": [{"name": "a", "caller_id": "08 00"}]})
