"""``ha1:`` passwords (issue 15): the file may hold a SIP user's digest HA1 instead of the
password; phones still register (MD5), the API login still takes the password."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from callcenter.config import ConfigError, load_config
from callcenter.sip.auth import (
    DigestAuthenticator,
    build_authorization,
    ha1_of,
    password_matches,
)

REALM = "callcenter"
HA1 = "ha1:" + hashlib.md5(b"1001:callcenter:agent1001").hexdigest()


def _verify(stored: str, password: str, algorithms: tuple[str, ...] = ("MD5",)) -> bool:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32, algorithms=algorithms)
    value = build_authorization(auth.challenge(10.0)[0], method="REGISTER",
                                uri="sip:callcenter", username="1001", password=password,
                                cnonce="0a4f113b")
    return auth.verify(value, method="REGISTER", lookup_password={"1001": stored}.get,
                       now=11.0).ok


def test_a_phone_registers_against_an_ha1_entry_with_md5_only() -> None:
    assert _verify(HA1, "agent1001") and _verify(HA1.upper().replace("HA1:", "ha1:"),
                                                 "agent1001")
    assert not _verify(HA1, "wrong")
    assert not _verify(HA1, "agent1001", ("SHA-256",))  # refused, not an error
    assert _verify("agent1001", "agent1001", ("SHA-256",))


def test_the_api_login_compares_the_password_with_the_hash() -> None:
    assert HA1 == "ha1:" + ha1_of("1001", REALM, "agent1001")
    assert password_matches(HA1, user="1001", realm=REALM, given="agent1001")
    assert not password_matches(HA1, user="1001", realm=REALM, given=HA1)
    assert password_matches("plain", user="1001", realm=REALM, given="plain")


def _config(tmp_path: Path, password: str, algorithms: str = "[MD5]") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"sip: {{auth: {{algorithms: {algorithms}}}}}\nusers:\n"
                    f'  - {{user: "1001", password: "{password}", role: agent}}\n',
                    encoding="utf-8")
    return path


def test_the_file_checks_ha1_entries(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, HA1)).users[0].password == HA1
    with pytest.raises(ConfigError, match=r"c\.yaml:3:\d+: users\[0\]\.password: .*32 hex"):
        load_config(_config(tmp_path, "ha1:1234"))
    with pytest.raises(ConfigError, match="SHA-256"):
        load_config(_config(tmp_path, HA1, "[SHA-256, MD5]"))
