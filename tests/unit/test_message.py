"""SIP message parsing, serialising and response building (RFC 3261 §7, §8.2.6, §18.3)."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.message import (
    MAX_MESSAGE_SIZE,
    Headers,
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
    serialize,
    validate_request,
)
from callcenter.sip.received import stamp_via
from callcenter.sip.uri import NameAddr, SipUri, Via

INVITE = (
    b"INVITE sip:0800123456@cc.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKa, SIP/2.0/UDP [2001:db8::1]:5070"
    b";branch=z9hG4bKb;received=2001:db8::2\r\n"
    b"max-forwards: 70\r\n"
    b"t: <sip:0800123456@cc.example.com>\r\n"
    b'f: "Alice, the caller" <sip:alice@example.com>;tag=1928301774\r\n'
    b"i: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:alice@pc33.example.com>\r\n"
    b'WWW-Authenticate: Digest realm="cc", nonce="abc", qop="auth"\r\n'
    b"Subject: hello,\r\n world\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\n"
)


def test_parse_request_and_properties() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    assert (req.method, req.uri, req.version) == (
        "INVITE",
        "sip:0800123456@cc.example.com",
        "SIP/2.0",
    )
    assert req.call_id == "a84b4c76e66710@pc33.example.com"
    assert req.cseq == (314159, "INVITE")
    assert req.max_forwards == 70
    assert [v.transport for v in req.vias] == ["UDP", "TCP", "UDP"]
    assert req.vias[2].host == "2001:db8::1" and req.vias[2].port == 5070
    assert req.top_via.branch == "z9hG4bK776asdhds" and req.top_via.has_rport
    assert req.top_via.port == 5060
    assert req.from_.display == "Alice, the caller"
    assert req.from_tag == "1928301774"
    assert req.to_tag is None
    assert req.body == b"v=0\r"  # Content-Length 4: the trailing octet is ignored
    assert req.content_type == "application/sdp"


def test_parsed_properties_follow_header_changes() -> None:
    """Cached parsed values go stale with every kind of header mutation."""
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    assert req.to_tag is None and req.cseq == (314159, "INVITE")
    version = req.headers.version
    req.headers.set("To", "<sip:0800123456@cc.example.com>;tag=x1")
    assert req.headers.version > version
    assert req.to_tag == "x1" and req.to.tag == "x1"
    req.headers.set("CSeq", "7 INVITE")
    assert req.cseq == (7, "INVITE")
    req.headers.set("Call-ID", "other@host")
    assert req.call_id == "other@host"
    assert len(req.vias) == 3
    assert req.headers.pop_first("Via") is not None
    assert [v.branch for v in req.vias] == ["z9hG4bKa", "z9hG4bKb"]
    assert req.top_via.branch == "z9hG4bKa"
    req.headers.add("Via", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKtop", first=True)
    assert req.top_via.branch == "z9hG4bKtop" and len(req.vias) == 3
    req.headers.remove("Contact")
    assert req.contacts == []
    req.headers.add("Contact", "<sip:bob@192.0.2.9>")
    assert [str(c.uri) for c in req.contacts] == ["sip:bob@192.0.2.9"]
    req.headers.remove("Max-Forwards")
    assert req.max_forwards is None
    req.headers.set("From", "<sip:carol@example.com>;tag=c2")
    assert req.from_tag == "c2" and req.from_.display is None
    req.headers.set("Content-Type", "text/plain; charset=utf-8")
    assert req.content_type == "text/plain"


def test_parsed_properties_follow_new_headers_object() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    assert req.from_tag == "1928301774"
    new = req.headers.copy()
    new.set("From", "<sip:dave@example.com>;tag=d4")
    assert req.from_tag == "1928301774"  # the copy is another object: req unchanged
    req.headers = new
    assert req.from_tag == "d4"
    req.headers = Headers(new)  # a fresh object at the same mutation count
    req.headers.set("From", "<sip:erin@example.com>;tag=e5")
    req.headers = Headers(req.headers)
    assert req.headers.version == 0 and req.from_tag == "e5"


def test_returned_objects_are_copies() -> None:
    """Changing what a property returned changes neither the cache nor the message."""
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    top = req.top_via
    top.params["received"] = "203.0.113.5"
    top.host = "mangled"
    vias = req.vias
    vias[0].params["rport"] = "1234"
    vias.pop()
    frm = req.from_
    frm.tag = "changed"
    assert isinstance(frm.uri, SipUri)
    frm.uri.params["x"] = "y"
    frm.uri.user = "mallory"
    contacts = req.contacts
    contacts[0].params["expires"] = "0"
    assert req.top_via.host == "192.0.2.1" and "received" not in req.top_via.params
    assert req.top_via.params["rport"] is None
    assert len(req.vias) == 3
    assert req.from_tag == "1928301774"
    assert req.from_.uri == SipUri(host="example.com", user="alice")
    assert req.contacts[0].params == {}
    assert serialize(req) == serialize(parse_message(INVITE))  # type: ignore[arg-type]


def test_messages_with_the_same_values_share_nothing_they_hand_out() -> None:
    """A dialog's messages repeat From, To, Contact and Via: parsed once for all of them, and
    what one message hands out is still its own copy."""
    first, second = parse_message(INVITE), parse_message(INVITE)
    assert isinstance(first, Request) and isinstance(second, Request)
    frm, via, contact = first.from_, first.top_via, first.contacts[0]
    frm.params["tag"] = "changed"
    assert isinstance(frm.uri, SipUri)
    frm.uri.user = "mallory"
    via.params["received"] = "203.0.113.5"
    contact.params["expires"] = "0"
    for msg in (second, first):
        assert msg.from_tag == "1928301774"
        assert msg.from_.uri == SipUri(host="example.com", user="alice")
        assert "received" not in msg.top_via.params and msg.contacts[0].params == {}
    assert second.from_ is not first.from_ and second.top_via is not first.top_via


def test_copies_carry_every_field() -> None:
    """The cache hands out copies field by field: a new dataclass field must be copied too."""
    assert [f.name for f in fields(Via)] == ["transport", "host", "port", "params", "protocol"]
    assert [f.name for f in fields(NameAddr)] == ["uri", "display", "params"]
    assert [f.name for f in fields(SipUri)] == [
        "host", "user", "password", "port", "scheme", "params", "headers"
    ]  # fmt: skip
    raw = INVITE.replace(
        b"m: <sip:alice@pc33.example.com>",
        b'm: "A" <sips:alice:pw@pc33.example.com:5061;transport=tcp?Subject=x>;expires=60',
    ).replace(b"v: SIP/2.0/UDP", b"v: SIP/2.0/TCP")
    req = parse_message(raw)
    assert isinstance(req, Request)
    for _ in range(2):  # the first read parses, the second copies from the cache
        assert req.contacts == [NameAddr.parse(req.headers.get_all("Contact")[0])]
        assert req.vias == [Via.parse(v) for v in req.headers.get_all("Via")]
        assert req.top_via == Via.parse(req.headers.get_all("Via")[0])
        assert req.from_ == NameAddr.parse(req.headers.get("From") or "")


def test_stamp_via_rewrites_the_top_via() -> None:
    """stamp_via edits a copy, then writes the headers: the next read sees the stamp."""
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    assert req.top_via.received is None
    stamp_via(req, ("198.51.100.7", 40000))
    assert req.top_via.received == "198.51.100.7" and req.top_via.rport == 40000
    assert [v.branch for v in req.vias] == ["z9hG4bK776asdhds", "z9hG4bKa", "z9hG4bKb"]
    reparsed = parse_message(serialize(req))
    assert reparsed.top_via == req.top_via


def test_bad_value_is_not_cached() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    req.headers.set("CSeq", "x INVITE")
    for _ in range(2):
        with pytest.raises(ValueError):
            req.cseq  # noqa: B018
    req.headers.set("CSeq", "2 INVITE")
    assert req.cseq == (2, "INVITE")


def test_headers_canonical_names_and_splitting() -> None:
    req = parse_message(INVITE)
    names = [n for n, _ in req.headers]
    assert names[:3] == ["Via", "Via", "Max-Forwards"]
    assert "call-id" in req.headers and "I" in req.headers
    assert len(req.headers.get_all("v")) == 3
    # Never split: values with unquoted commas.
    assert req.headers.get_all("WWW-Authenticate") == ['Digest realm="cc", nonce="abc", qop="auth"']
    assert req.headers.get("Subject") == "hello, world"  # folded line joined by one space


def test_headers_api() -> None:
    h = Headers([("via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("x-custom-thing", "1, 2")])
    h.add("Via", "SIP/2.0/UDP b;branch=z9hG4bK2", first=True)
    assert h.get("Via") == "SIP/2.0/UDP b;branch=z9hG4bK2"
    assert h.get_all("X-Custom-Thing") == ["1", "2"]
    h.set("VIA", "SIP/2.0/UDP c;branch=z9hG4bK3")
    assert h.get_all("Via") == ["SIP/2.0/UDP c;branch=z9hG4bK3"]
    c = h.copy()
    c.remove("via")
    assert "Via" not in c and "Via" in h
    assert h.pop_first("X-Custom-Thing") == "1"
    assert h.get_all("X-Custom-Thing") == ["2"]
    assert h.get("Missing") is None and h.get_all("Missing") == []
    h.add("Contact", "<sip:a@b>", first=True)
    assert next(iter(h)) == ("Contact", "<sip:a@b>")


def test_round_trip() -> None:
    req = parse_message(INVITE)
    wire = serialize(req)
    assert wire.count(b"Content-Length: 4\r\n") == 1
    assert b"\nl:" not in wire and b"Call-ID: a84b" in wire
    again = parse_message(wire)
    assert again == req


def test_serialize_writes_content_length() -> None:
    req = parse_message(INVITE)
    req.body = b"hello world"
    wire = serialize(req)
    assert b"\r\nContent-Length: 11\r\n\r\nhello world" in wire
    assert wire.split(b"\r\n\r\n")[0].count(b"\n") == wire.split(b"\r\n\r\n")[0].count(b"\r\n")


def test_parse_response_empty_reason() -> None:
    resp = parse_message(
        b"SIP/2.0 100 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (100, "")


def test_make_response_copies_and_tags() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 486, to_tag="as8d7")
    assert resp.reason == "Busy Here"
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.to_tag == "as8d7"
    assert resp.from_tag == "1928301774"
    assert (resp.call_id, resp.cseq) == (req.call_id, req.cseq)
    assert "Contact" not in resp.headers and resp.body == b""
    tagged = make_response(make_request_with_to_tag(), 200, "Fine", to_tag="new")
    assert tagged.to_tag == "old" and tagged.reason == "Fine"
    wire = serialize(resp)
    assert wire.startswith(b"SIP/2.0 486 Busy Here\r\n")
    assert serialize(parse_message(wire)) == wire


def test_a_dialog_creating_response_carries_the_record_route() -> None:
    """§12.1.1: a proxy that record-routed stays on the path only if our 1xx/2xx copies it."""
    rr = b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nRecord-Route: <sip:p0;lr>\r\n"
    req = parse_message(INVITE.replace(b"i: ", rr + b"i: ", 1))
    assert isinstance(req, Request)
    routes = ["<sip:p2.example;lr>", "<sip:p1.example;lr>", "<sip:p0;lr>"]
    for status in (180, 200):
        assert make_response(req, status, to_tag="t").headers.get_all("Record-Route") == routes
    assert "Record-Route" not in make_response(req, 486, to_tag="t").headers
    assert "Record-Route" not in make_response(req, 100).headers
    in_dialog = parse_message(
        INVITE.replace(b"i: ", rr + b"i: ", 1).replace(
            b"cc.example.com>\r\n", b"cc.example.com>;tag=old\r\n"))
    assert isinstance(in_dialog, Request)
    assert "Record-Route" not in make_response(in_dialog, 200).headers


def make_request_with_to_tag() -> Request:
    req = parse_message(INVITE.replace(b"cc.example.com>\r\n", b"cc.example.com>;tag=old\r\n"))
    assert isinstance(req, Request)
    return req


@pytest.mark.parametrize(
    ("mutation", "status", "answerable"),
    [
        ((b"i: a84b4c76e66710@pc33.example.com\r\n", b""), 400, False),
        ((b"CSeq: 314159 INVITE", b"CSeq: x INVITE"), 400, False),
        ((b"CSeq: 314159 INVITE", b"CSeq: 4294967296 INVITE"), 400, True),
        ((b"max-forwards: 70", b"max-forwards: 256"), 400, True),
        ((b"max-forwards: 70", b"max-forwards: seventy"), 400, True),
        ((b"cc.example.com SIP/2.0", b"cc.example.com SIP/3.0"), 505, True),
        ((b"l: 4", b"l: 40"), 400, True),
        ((b"l: 4", b"l: -4"), 400, True),
        ((b"l: 4", b"l: 4\r\nContent-Length: 5"), 400, True),
        ((b"INVITE sip:0800123456@cc.example.com", b"INVITE <sip:0800@cc>"), 400, True),
        ((b"t: <sip:", b't: "unbalanced <sip:'), 400, True),
        ((b"max-forwards: 70\r\n", b"max-forwards 70\r\n"), 400, False),
    ],
)
def test_parse_errors(mutation: tuple[bytes, bytes], status: int, answerable: bool) -> None:
    data = INVITE.replace(*mutation)
    assert data != INVITE
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status
    assert info.value.reason.startswith(("Bad Request", "Version Not Supported"))
    assert (info.value.request is not None) == answerable
    if info.value.request is not None:
        resp = make_response(info.value.request, info.value.status, info.value.reason)
        assert resp.call_id == "a84b4c76e66710@pc33.example.com"


def test_missing_call_id_reason() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE.replace(b"i: a84b4c76e66710@pc33.example.com\r\n", b""))
    assert info.value.reason == "Bad Request (missing Call-ID)"


def test_too_large() -> None:
    big = INVITE.replace(b"l: 4", f"l: {MAX_MESSAGE_SIZE}".encode()) + b"x" * MAX_MESSAGE_SIZE
    with pytest.raises(SipParseError) as info:
        parse_message(big)
    assert info.value.status == 413
    assert info.value.request is not None


def test_missing_content_length_means_rest_of_datagram() -> None:
    req = parse_message(INVITE.replace(b"l: 4\r\n", b""))
    assert req.body == b"v=0\r\n"


def test_leading_crlf_skipped_and_bare_lf_accepted() -> None:
    assert parse_message(b"\r\n\r\n" + INVITE).call_id == "a84b4c76e66710@pc33.example.com"
    lf = INVITE.replace(b"\r\n", b"\n")
    assert parse_message(lf).cseq == (314159, "INVITE")


def test_validate_request() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    validate_request(req)
    cases = [
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 OPTIONS"), 400),
        (INVITE.replace(b"INVITE sip:0800123456@cc", b"INVITE foo:0800123456@cc"), 416),
        (INVITE.replace(b"i: a84b", b"i: other\r\ni: a84b"), 400),
    ]
    for data, status in cases:
        msg = parse_message(data)
        assert isinstance(msg, Request)
        with pytest.raises(SipParseError) as info:
            validate_request(msg)
        assert info.value.status == status
        assert info.value.request is msg
    built = Request("OPTIONS", "sip:x@y", Headers(), version="SIP/3.0")
    with pytest.raises(SipParseError) as info:
        validate_request(built)
    assert info.value.status == 505 and info.value.request is None


def test_bad_status_codes() -> None:
    base = b"SIP/2.0 %s OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
    base += b"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"
    for code in (b"099", b"700", b"4294967301", b"2OO", b"\xd9\xa3\xd9\xa3\xd9\xa3"):
        with pytest.raises(SipParseError):
            parse_message(base.replace(b"%s", code))
    resp = parse_message(base.replace(b"%s", b"699"))
    assert isinstance(resp, Response) and resp.status == 699


# Property-based: nothing but SipParseError, whatever the bytes -------------------------------


def _check_total(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as err:
        assert 400 <= err.status < 600
        if err.request is not None:
            serialize(make_response(err.request, err.status, err.reason))
        return
    wire = serialize(msg)
    again = parse_message(wire)
    assert serialize(again) == wire
    for prop in (
        "call_id",
        "cseq",
        "vias",
        "top_via",
        "from_",
        "to",
        "from_tag",
        "to_tag",
        "max_forwards",
    ):
        getattr(msg, prop)
    if isinstance(msg, Request):
        try:
            validate_request(msg)
        except SipParseError:
            pass
        serialize(make_response(msg, 200, to_tag="t"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check_total(data)


_ALPHABET = b' \t\r\n:;,<>"\\%@[]=/?0123456789abcSIPVv\x00\xff'


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(INVITE)),
            st.integers(min_value=0, max_value=6),
            st.binary(max_size=4).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_messages_never_crash(edits: list[tuple[int, int, bytes]]) -> None:
    data = INVITE
    for pos, cut, insert in edits:
        pos = min(pos, len(data))
        data = data[:pos] + insert + data[pos + cut :]
    _check_total(data)


def test_the_request_uri_is_parsed_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing, validation and the property read it once; each read is a copy; a new `uri`
    text is parsed again. (Messages share what they parsed: the memo is taken out here to
    count.)"""
    import callcenter.sip.message as message

    calls: list[str] = []
    real = message.parse_uri
    monkeypatch.setattr(message, "_parse_request_uri",
                        lambda text: calls.append(text) or real(text))
    req = parse_message(
        b"INVITE sip:0800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:0800@127.0.0.1>\r\nCall-ID: c\r\n"
        b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(req, Request)
    validate_request(req)
    first = req.request_uri
    assert isinstance(first, SipUri) and first.user == "0800"
    first.user = "changed"
    assert req.request_uri.user == "0800" and calls == ["sip:0800@127.0.0.1"]
    req.uri = "sip:0900@127.0.0.1"
    assert req.request_uri.user == "0900" and len(calls) == 2  # type: ignore[union-attr]


def test_validation_checks_the_core_headers_again_only_after_a_change() -> None:
    """Validating a request just parsed does not check its core headers twice; a request
    whose headers changed since (or were replaced) is checked again."""
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    validate_request(req)
    req.headers.set("CSeq", "x INVITE")
    with pytest.raises(SipParseError):
        validate_request(req)
    req.headers.set("CSeq", "314159 INVITE")
    validate_request(req)
    bad = req.headers.copy()
    bad.remove("Call-ID")
    req.headers = bad
    with pytest.raises(SipParseError):
        validate_request(req)


def test_header_names_are_checked_once_and_the_memo_stays_bounded() -> None:
    """Header names as peers spell them are remembered once checked: a name seen before is
    still refused on a line without a colon, and a peer sending ever new or long names does
    not grow the memo past its bound (they are checked each time)."""
    import callcenter.sip.message as message

    head = (b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
            b"From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c\r\n"
            b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70")
    for i in range(700):
        req = parse_message(head + f"\r\nX-Name-{i}: v\r\n\r\n".encode())
        assert req.headers.get(f"x-name-{i}") == "v"
    assert len(message._LINE_NAMES) <= 512
    with pytest.raises(SipParseError):
        parse_message(head + b"\r\nVia\r\n\r\n")  # "Via" is remembered; no colon here
    with pytest.raises(SipParseError):
        parse_message(head + b"\r\nBad Name: x\r\n\r\n")  # never remembered
    message._LINE_NAMES.clear()
    req = parse_message(head + b"\r\nX-" + b"a" * 100 + b": v\r\n\r\n")
    assert req.headers.get("x-" + "a" * 100) == "v" and "Via" in message._LINE_NAMES
    assert not any(len(name) > 64 for name in message._LINE_NAMES)
