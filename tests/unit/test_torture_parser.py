"""RFC 4475 torture messages against the parser, with INDEX.tsv as the oracle.

Where each outcome is decided:

* ``parse``: `parse_message` raises `SipParseError` (framing, syntax, version, ranges).
* ``validate``: `parse_message` succeeds (the message is well-formed) and `validate_request`
  raises (mismatched CSeq method, duplicated single-valued headers, unsupported URI scheme).
* ``ok``: both succeed; any other answer the RFC asks for (501, 420, 415, 483, 406, 401, ...)
  is a decision of the server core, not of the message layer.

Known deviations from the RFC's preferred outcome, kept deliberately: `badinv01` and `insuf`
are dropped rather than answered with 400, because without a parseable top Via (badinv01) or a
Call-ID/From/To (insuf) no response can be routed or matched to the request.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from callcenter.sip.message import Request, Response, SipParseError, parse_message, validate_request
from callcenter.sip.uri import SipUri

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rfc4475"
ROWS = [
    line.split("\t")
    for line in (FIXTURES / "INDEX.tsv").read_text().splitlines()[1:]
    if line.strip()
]

#: Stage at which each message is rejected (absent: accepted by both stages).
REJECTED_AT = {
    "badinv01": "parse",  # empty Via parameters / list elements
    "clerr": "parse",  # Content-Length larger than the datagram
    "ncl": "parse",  # negative Content-Length
    "scalar02": "parse",  # CSeq > 2**32-1
    "scalarlg": "parse",  # response with CSeq > 2**32-1: dropped
    "quotbal": "parse",  # unterminated quoted display name
    "ltgtruri": "parse",  # Request-URI in <>
    "lwsruri": "parse",  # LWS inside the Request-URI
    "badvers": "parse",  # SIP/7.0 -> 505
    "bigcode": "parse",  # status code > 699: dropped
    "insuf": "parse",  # no Call-ID, From, To
    "mcl01": "parse",  # conflicting Content-Length values
    "test": "parse",  # header line without a colon
    "mismatch01": "validate",  # CSeq method != Request-Line method
    "mismatch02": "validate",
    "multi01": "validate",  # duplicated Call-ID, To, From, CSeq, Max-Forwards
    "unkscm": "validate",  # unknown Request-URI scheme -> 416
    "novelsc": "validate",  # soap.beep: -> 416
}
#: Rejected requests we cannot answer (see module docstring).
UNANSWERABLE = {"badinv01", "insuf", "test"}


def _codes(strict: str) -> set[int]:
    return {int(tok) for tok in strict.split(",") if tok.isdigit()}


def _run(data: bytes) -> tuple[str, Request | Response | None, SipParseError | None]:
    try:
        msg = parse_message(data)
    except SipParseError as err:
        return "parse", None, err
    if isinstance(msg, Request):
        try:
            validate_request(msg)
        except SipParseError as err:
            return "validate", msg, err
    return "ok", msg, None


def test_fixture_checksums() -> None:
    for line in (FIXTURES / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name
    assert len(ROWS) == 50


@pytest.mark.parametrize(("name", "expected", "strict"), [(r[0], r[2], r[4]) for r in ROWS])
def test_torture_outcome(name: str, expected: str, strict: str) -> None:
    data = (FIXTURES / f"{name}.dat").read_bytes()
    stage, msg, err = _run(data)
    assert stage == REJECTED_AT.get(name, "ok"), (stage, err)
    if expected == "valid":
        assert msg is not None, "valid messages must parse"
    if err is None:
        assert expected != "invalid", "invalid messages must be rejected"
        return
    codes = _codes(strict)
    if codes:
        assert err.status in codes, (err.status, strict)
    else:
        assert 400 <= err.status < 500 and err.status != 500
    is_response = data.lstrip(b"\r\n").startswith(b"SIP/")
    if is_response or name in UNANSWERABLE:
        assert err.request is None, "responses and unroutable requests are dropped"
    else:
        assert err.request is not None, "a rejected request must be answerable"
        assert err.request.call_id and err.request.top_via


def _parse(name: str) -> Request | Response:
    return parse_message((FIXTURES / f"{name}.dat").read_bytes())


def _req(name: str) -> Request:
    msg = _parse(name)
    assert isinstance(msg, Request)
    return msg


def test_wsinv_semantics() -> None:
    req = _req("wsinv")
    assert req.cseq == (9, "INVITE")
    assert req.max_forwards == 68
    assert req.from_.display == 'J Rosenberg \\"'
    assert req.from_tag == "98asjd8"
    assert req.to_tag == "1918181833n"
    assert [v.transport for v in req.vias] == ["UDP", "TCP", "UDP"]
    assert req.vias[1].branch == "z9hG4bK9ikj8"
    assert (req.headers.get("NewFangledHeader") or "").startswith("newfangled value")
    assert len(req.body) == 150


def test_intmeth_semantics() -> None:
    req = _req("intmeth")
    assert req.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert req.cseq[1] == req.method
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert req.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.from_tag == "_token~1'+`*%!-."
    assert req.top_via.branch == "z9hG4bK-.!%66*_+`'~"


def test_esc01_unescaping() -> None:
    req = _req("esc01")
    uri = req.request_uri
    assert isinstance(uri, SipUri)
    assert uri.user == "sips:user@example.com" and uri.host == "example.net"
    to_uri, from_uri = req.to.uri, req.from_.uri
    assert isinstance(to_uri, SipUri) and to_uri.user == "user"
    assert isinstance(from_uri, SipUri) and from_uri.user == "I have spaces"
    contact = req.contacts[0].uri
    assert isinstance(contact, SipUri)
    assert contact.user == "caller"
    assert contact.params == {"lr": None, "name": "value%41"}


def test_escnull_distinct_contacts() -> None:
    req = _req("escnull")
    users = [c.uri.user for c in req.contacts if isinstance(c.uri, SipUri)]
    assert users == ["\x00", "\x00\x00"]
    to_uri = req.to.uri
    assert isinstance(to_uri, SipUri) and to_uri.user == "null-\x00-null"


def test_esc02_escaped_method_and_header_name_are_literal() -> None:
    req = _req("esc02")
    assert req.method == "RE%47IST%45R"
    assert len(req.contacts) == 2
    assert "C%6Fntact" in req.headers


def test_lwsdisp_and_longreq() -> None:
    assert _req("lwsdisp").from_.display == "caller"
    req = _req("longreq")
    assert len(req.vias) == 34
    assert req.vias[0].host == "sip33.example.com"
    assert len(req.call_id) > 100 and len(req.from_tag or "") > 10
    assert len(req.to.display or "") > 80
    assert len(req.headers.get_all("Unknown-" + "Long" * 20 + "-Name")) == 1


def test_dblreq_trailing_octets_ignored() -> None:
    req = _req("dblreq")
    assert req.method == "REGISTER"
    assert req.body == b""


def test_semiuri_and_escruri() -> None:
    uri = _req("semiuri").request_uri
    assert isinstance(uri, SipUri) and uri.user == "user;par=u@example.net"
    assert uri.params == {}
    req = _req("escruri")
    ruri = req.request_uri
    assert isinstance(ruri, SipUri) and ruri.headers == {"Route": "<sip:example.com>"}
    assert "Route" not in req.headers  # never turned into a real header


def test_transports_and_mpart() -> None:
    assert [v.transport for v in _req("transports").vias] == [
        "UDP",
        "SCTP",
        "TLS",
        "UNKNOWN",
        "TCP",
    ]
    req = _req("mpart01")
    assert len(req.body) == 553
    assert b"\x00" in req.body and req.top_via.has_rport


def test_responses() -> None:
    unreason = _parse("unreason")
    assert isinstance(unreason, Response) and unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 ")
    noreason = _parse("noreason")
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")
    bcast = _parse("bcast")
    assert isinstance(bcast, Response) and bcast.vias[1].host == "255.255.255.255"


def test_contact_params_vs_uri_params() -> None:
    (c1,) = _req("cparam01").contacts
    assert isinstance(c1.uri, SipUri) and c1.uri.params == {} and "unknownparam" in c1.params
    (c2,) = _req("cparam02").contacts
    assert isinstance(c2.uri, SipUri) and c2.uri.params == {"unknownparam": None}
    (c3,) = _req("regescrt").contacts
    assert isinstance(c3.uri, SipUri) and c3.uri.headers == {"Route": "<sip:sip.example.com>"}


def test_zeromf_and_inv2543() -> None:
    assert _req("zeromf").max_forwards == 0
    req = _req("inv2543")
    assert req.max_forwards is None and req.from_tag is None and req.top_via.branch is None
    assert req.body.startswith(b"v=0")


def test_unksm2_non_sip_uris_parse() -> None:
    req = _req("unksm2")
    assert req.to.uri == "isbn:2983792873"
    assert isinstance(req.from_.uri, str) and req.from_.uri.startswith("http:")
    assert [c.uri for c in req.contacts] == ["name:John_Smith"]
