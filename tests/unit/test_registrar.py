"""Registrar bindings (RFC 3261 §10.3) with an injected clock."""

from __future__ import annotations

import pytest

from callcenter.sip.errors import BadRequest, SipError
from callcenter.sip.message import Request, parse_message
from callcenter.sip.registrar import Registrar

SRC = ("127.0.0.1", 5070)


def register(contacts: list[str], *, expires: int | None = None, cseq: int = 1,
             call_id: str = "reg-1") -> Request:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1",
        "From: <sip:1001@127.0.0.1>;tag=a",
        "To: <sip:1001@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *[f"Contact: {c}" for c in contacts],
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def test_several_contacts_expiry_and_order() -> None:
    reg = Registrar(min_expires=60, max_expires=3600, default_expires=600)
    result = reg.register(
        register(["<sip:1001@127.0.0.1:5070>;q=0.5", "<sip:1001@127.0.0.1:5072>"],
                 expires=120), "1001", SRC, "udp", now=0.0)
    assert result.status == 200 and len(result.added) == 2
    assert all(c.endswith(";expires=120") for c in result.contacts)
    best = reg.contacts("1001", now=1.0)
    assert [b.contact for b in best] == ["sip:1001@127.0.0.1:5072", "sip:1001@127.0.0.1:5070"]
    assert reg.is_registered("1001", now=119.0)
    assert not reg.contacts("1001", now=121.0)  # expired, even before the sweep
    assert len(reg.expire(121.0)) == 2 and reg.all_bindings() == []


def test_expires_default_clamped_and_too_brief() -> None:
    reg = Registrar(min_expires=60, max_expires=3600, default_expires=600)
    ok = reg.register(register(["<sip:1001@127.0.0.1:5070>"]), "1001", SRC, "udp", now=0.0)
    assert ok.contacts == ["<sip:1001@127.0.0.1:5070>;expires=600"]
    long = reg.register(register(["<sip:1001@127.0.0.1:5070>;expires=99999"], cseq=2),
                        "1001", SRC, "udp", now=0.0)
    assert long.contacts == ["<sip:1001@127.0.0.1:5070>;expires=3600"]
    brief = reg.register(register(["<sip:1002@127.0.0.1:5074>"], expires=10, call_id="x"),
                         "1002", SRC, "udp", now=0.0)
    assert (brief.status, brief.min_expires) == (423, 60)
    assert [b.user for b in reg.all_bindings()] == ["1001"]  # no empty entry left for 1002


def test_unregister_one_and_all() -> None:
    reg = Registrar()
    reg.register(register(["<sip:1001@127.0.0.1:5070>", "<sip:1001@127.0.0.1:5072>"]),
                 "1001", SRC, "udp", now=0.0)
    one = reg.register(register(["<sip:1001@127.0.0.1:5070>;expires=0"], cseq=2),
                       "1001", SRC, "udp", now=1.0)
    assert [b.contact for b in one.removed] == ["sip:1001@127.0.0.1:5070"]
    assert len(one.contacts) == 1
    with pytest.raises(BadRequest):  # Contact: * needs Expires: 0
        reg.register(register(["*"], cseq=3), "1001", SRC, "udp", now=2.0)
    everything = reg.register(register(["*"], expires=0, cseq=4), "1001", SRC, "udp", now=2.0)
    assert len(everything.removed) == 1 and everything.contacts == []
    assert reg.all_bindings() == []


def test_out_of_order_register_is_refused() -> None:
    reg = Registrar()
    reg.register(register(["<sip:1001@127.0.0.1:5070>"], cseq=5), "1001", SRC, "udp", now=0.0)
    with pytest.raises(SipError) as err:
        reg.register(register(["<sip:1001@127.0.0.1:5070>"], cseq=4), "1001", SRC, "udp", 1.0)
    assert err.value.status == 500
