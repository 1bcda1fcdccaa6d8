"""The number a carrier called, as the dialplan's line (issue 14)."""

from __future__ import annotations

import pytest

from callcenter.calls.numbers import called_number, caller_identity, national
from callcenter.sip.message import Request, parse_message


def invite(ruri: str, to: str) -> Request:
    raw = (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\n"
           f"From: <sip:+48221234567@carrier.test>;tag=a\r\nTo: {to}\r\nCall-ID: c1\r\n"
           "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


@pytest.mark.parametrize("ruri", [
    "sip:+48800123456@cc.example", "sip:48800123456@cc.example",
    "sip:0048800123456@cc.example", "sip:800123456@cc.example", "sip:0800123456@cc.example",
    "sip:+48800123456@cc.example;user=phone", "tel:+48800123456",
    "tel:800-123-456;phone-context=+48", "sip:+48-800-123-456@cc.example;user=phone",
])
def test_every_format_in_the_request_uri_reaches_line_0800123456(ruri: str) -> None:
    req = invite(ruri, "<sip:someone@cc.example>")
    assert national(called_number(req), "PL") == "0800123456"


@pytest.mark.parametrize("to", [
    "<sip:+48800123456@carrier.test;user=phone>", "<tel:0048800123456>",
    '"Infolinia" <sip:800123456@carrier.test>',
])
def test_the_to_is_read_when_the_request_uri_is_our_contact(to: str) -> None:
    req = invite("sip:acme@127.0.0.1:5060", to)  # a registered trunk: our Contact
    assert national(called_number(req), "PL") == "0800123456"


def test_the_request_uri_wins_over_the_to() -> None:
    req = invite("sip:+48800123457@cc.example", "<sip:+48800123456@cc.example>")
    assert national(called_number(req), "PL") == "0800123457"


@pytest.mark.parametrize(("number", "country", "expected"), [
    ("1001", "PL", "1001"),  # an extension: not a phone number, left alone
    ("+441632960123", "PL", "+441632960123"),  # another country's number: as it came
    ("+442079460123", "GB", "02079460123"),  # GB's national prefix is 0
    ("02079460123", "GB", "02079460123"),
    ("+48221234567", "PL", "0221234567"),
])
def test_national_form(number: str, country: str, expected: str) -> None:
    assert national(number, country) == expected


def from_trunk(from_: str, *extra: str) -> Request:
    raw = ("INVITE sip:0800123456@cc.example SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\n"
           f"From: {from_};tag=a\r\nTo: <sip:0800123456@cc.example>\r\nCall-ID: c1\r\n"
           + "".join(f"{h}\r\n" for h in extra) + "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    msg = parse_message(raw.encode())
    assert isinstance(msg, Request)
    return msg


PAI = "P-Asserted-Identity: <sip:+48221234567@carrier.test;user=phone>, <tel:+48221234567>"


@pytest.mark.parametrize(("from_", "extra", "trusted", "caller"), [
    ("<sip:+48600100200@carrier.test>", [PAI], True, "+48221234567"),  # the carrier vouches
    ("<sip:+48600100200@carrier.test>", [PAI], False, "+48600100200"),  # anyone can say so
    ('"Jan" <sip:600100200@carrier.test>', [], True, "600100200"),
    ("<sip:+48600100200@carrier.test>", [PAI, "Privacy: id"], True, "anonymous"),
    ("<sip:+48600100200@carrier.test>", ["Privacy: header;id"], False, "anonymous"),
    ('"Anonymous" <sip:anonymous@anonymous.invalid>', [PAI], True, "anonymous"),
    ("<sip:Anonymous@carrier.test>", [], False, "anonymous"),
    ("<sip:carrier.test>", [], False, "anonymous"),
    ("<tel:+48600100200>", ["P-Asserted-Identity: <sip:garbage"], True, "+48600100200"),
])
def test_who_calls_from_a_trunk(from_: str, extra: list[str], trusted: bool,
                                caller: str) -> None:
    assert caller_identity(from_trunk(from_, *extra), trusted=trusted) == caller
