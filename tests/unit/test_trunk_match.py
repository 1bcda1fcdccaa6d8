"""Which trunk an INVITE comes from: ``trunks[].inbound`` ip, register or both (issue 14)."""

from __future__ import annotations

import pytest

from callcenter.calls.trunks import Registered, addresses_of, trunk_of
from callcenter.config.models import Trunk, TrunkRegister
from callcenter.sip.uri import SipUri

REG = TrunkRegister(user="acme", password="p")
TRUNKS = [
    Trunk(name="byip", addresses=["10.0.0.0/24"]),
    Trunk(name="reg", inbound="register", addresses=["10.0.1.1"], register=REG),
    Trunk(name="both", inbound="both", addresses=["10.0.2.0/24"],
          register=REG.model_copy(update={"user": "beta"})),
]
REGISTERED = {"reg": Registered("acme", frozenset({"10.0.0.9"})),
              "both": Registered("beta", frozenset({"10.0.9.9"}))}


@pytest.mark.parametrize(("target", "source", "trunk"), [
    ("sip:0800123456@cc", "10.0.0.5", "byip"),
    ("sip:acme@192.0.2.1:5060", "10.0.0.9", "reg"),  # our Contact, from its registrar
    ("sip:acme@192.0.2.1:5060", "10.0.0.8", "byip"),  # someone else's: by address
    ("sip:0800123456@cc", "10.0.1.1", None),  # a register-only trunk's address is no match
    ("sip:beta@192.0.2.1", "10.0.9.9", "both"),
    ("sip:0800123456@cc", "10.0.2.7", "both"),
    ("sip:acme@192.0.2.1", "10.0.9.9", None),  # the Contact of another registration
    ("tel:+48800123456", "10.0.0.9", "byip"),
])
def test_the_trunk_of_an_invite(target: str, source: str, trunk: str | None) -> None:
    uri = SipUri.parse(target) if target.startswith("sip:") else target
    found = trunk_of(TRUNKS, REGISTERED, uri, source)
    assert (found.name if found else None) == trunk


def test_a_registrars_addresses() -> None:
    assert addresses_of("127.0.0.1") == {"127.0.0.1"}
    assert "127.0.0.1" in addresses_of("localhost")
    assert addresses_of("no-such-host.invalid") == frozenset()
