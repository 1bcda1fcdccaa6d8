"""SIP URI, name-addr and Via parsing and rendering (RFC 3261 §19.1, §20.10, §20.42)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip import grammar as g
from callcenter.sip.uri import NameAddr, SipUri, Via, escape, parse_uri, unescape


def test_full_sip_uri() -> None:
    u = SipUri.parse(
        "sips:alice:secret@Example.COM:5061;Transport=TCP;lr?Subject=hi&Priority=urgent"
    )
    assert u.scheme == "sips"
    assert (u.user, u.password, u.host, u.port) == ("alice", "secret", "Example.COM", 5061)
    assert u.params == {"transport": "TCP", "lr": None}
    assert u.transport == "tcp"
    assert u.headers == {"Subject": "hi", "Priority": "urgent"}
    assert (
        str(u) == "sips:alice:secret@Example.COM:5061;transport=TCP;lr?Subject=hi&Priority=urgent"
    )


def test_host_only_uri() -> None:
    u = SipUri.parse("sip:example.com")
    assert u.user is None and u.port is None
    assert str(u) == "sip:example.com"


def test_ipv6_reference() -> None:
    u = SipUri.parse("sip:bob@[2001:db8::1]:5060;maddr=[2001:db8::2]")
    assert u.host == "2001:db8::1"
    assert u.port == 5060
    assert u.params["maddr"] == "[2001:db8::2]"
    assert str(u) == "sip:bob@[2001:db8::1]:5060;maddr=[2001:db8::2]"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:user@host:99999",
        "sip:user@host:5x",
        "sip:a b@c",
        "sip:user@[2001:db8::1",
        "sip:user@ho st",
        "http://x",
        "sip:u@h;=v",
        "sip:u@h?x",
    ],
)
def test_malformed_sip_uris(text: str) -> None:
    with pytest.raises(ValueError):
        SipUri.parse(text)


def test_escapes_are_decoded_and_reencoded() -> None:
    u = SipUri.parse("sip:%75se%72@example.com;n%61me=v%61lue%25%34%31")
    assert u.user == "user"
    assert u.params == {"name": "value%41"}  # value%41 is not valueA (RFC 4475 esc01)
    assert str(u) == "sip:user@example.com;name=value%2541"


def test_nul_in_user_survives() -> None:
    u = SipUri.parse("sip:null-%00-null@example.com")
    assert u.user == "null-\x00-null"
    assert str(u) == "sip:null-%00-null@example.com"
    assert SipUri.parse("sip:%00@h").user != SipUri.parse("sip:%00%00@h").user


def test_semicolon_in_user_part() -> None:
    u = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u@example.net"
    assert u.host == "example.com"
    assert u.params == {}
    assert SipUri.parse(str(u)) == u


def test_unescape_leaves_stray_percent() -> None:
    assert unescape("100%") == "100%"
    assert unescape("%zz%4") == "%zz%4"
    assert unescape("%E2%82%AC") == "€"
    assert escape("a b€", g.USER_CHARS) == "a%20b%E2%82%AC"


def test_other_schemes_stay_text() -> None:
    assert parse_uri("tel:+48-800-123-456") == "tel:+48-800-123-456"
    assert parse_uri("mailto:x@example.com") == "mailto:x@example.com"
    with pytest.raises(ValueError):
        parse_uri("no-scheme-here")


def test_name_addr_with_quoted_display() -> None:
    na = NameAddr.parse('"J Rosenberg \\\\\\""  <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert na.display == 'J Rosenberg \\"'
    assert isinstance(na.uri, SipUri) and na.uri.user == "jdrosen"
    assert na.tag == "98asjd8"
    assert NameAddr.parse(str(na)) == na


def test_name_addr_token_display_without_space() -> None:
    na = NameAddr.parse("caller<sip:caller@example.com>;tag=323")
    assert na.display == "caller"
    assert na.tag == "323"


def test_addr_spec_params_belong_to_header() -> None:
    na = NameAddr.parse("sip:caller@example.net;tag=134161461246")
    assert isinstance(na.uri, SipUri)
    assert na.uri.params == {}
    assert na.tag == "134161461246"
    assert str(na) == "<sip:caller@example.net>;tag=134161461246"


def test_uri_params_inside_brackets_stay_in_uri() -> None:
    na = NameAddr.parse("<sip:user@host;unknownparam>;expires=60")
    assert isinstance(na.uri, SipUri)
    assert na.uri.params == {"unknownparam": None}
    assert na.params == {"expires": "60"}


def test_name_addr_non_sip_uri_and_tag_setter() -> None:
    na = NameAddr.parse("<http://example.com/x>")
    assert na.uri == "http://example.com/x"
    na.tag = "abc"
    assert str(na) == "<http://example.com/x>;tag=abc"
    na.tag = None
    assert na.tag is None


@pytest.mark.parametrize(
    "text", ['"unterminated <sip:a@b>', "<sip:a@b", "", "sip:a@b;;", '"x" sip:a@b', "<sip:a@b>;="]
)
def test_malformed_name_addr(text: str) -> None:
    with pytest.raises(ValueError):
        NameAddr.parse(text)


def test_via_with_lws_and_params() -> None:
    v = Via.parse("SIP  / 2.0  / tcp     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
    assert (v.protocol, v.transport, v.host, v.port) == (
        "SIP/2.0",
        "TCP",
        "spindle.example.com",
        None,
    )
    assert v.branch == "z9hG4bK9ikj8"
    assert str(v) == "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"


def test_via_ipv6_rport_received() -> None:
    v = Via.parse("SIP/2.0/UDP [2001:db8::9]:5062;rport;branch=z9hG4bKx;received=2001:db8::7")
    assert v.host == "2001:db8::9" and v.port == 5062
    assert v.has_rport and v.rport is None and v.params["rport"] is None
    assert v.received == "2001:db8::7"
    v.params["rport"] = "40000"
    assert v.rport == 40000
    assert (
        str(v) == "SIP/2.0/UDP [2001:db8::9]:5062;rport=40000;branch=z9hG4bKx;received=2001:db8::7"
    )
    assert Via.parse(str(v)) == v


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDPhost",
        "SIP/2.0/UDP host;branch=",
    ],
)
def test_malformed_via(text: str) -> None:
    with pytest.raises(ValueError):
        Via.parse(text)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("v", "Via"),
        ("I", "Call-ID"),
        ("call-id", "Call-ID"),
        ("cseq", "CSeq"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("e", "Content-Encoding"),
        ("f", "From"),
        ("t", "To"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
        ("www-authenticate", "WWW-Authenticate"),
        ("x-my-HEADER", "X-My-Header"),
    ],
)
def test_canonical_header_names(name: str, canonical: str) -> None:
    assert g.canonical_name(name) == canonical


_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF),
    min_size=1,
    max_size=12,
)
_hosts = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=4).map(str),
)


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | _text,
    password=st.none() | _text,
    host=_hosts,
    port=st.none() | st.integers(min_value=0, max_value=65535),
    params=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True), st.none() | _text, max_size=3
    ),
    headers=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z-]{0,8}", fullmatch=True), _text, max_size=2
    ),
)
def test_sip_uri_round_trip(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: dict[str, str | None],
    headers: dict[str, str],
) -> None:
    uri = SipUri(
        host=host,
        user=user,
        password=password if user is not None else None,
        port=port,
        scheme=scheme,
        params=params,
        headers=headers,
    )
    assert SipUri.parse(str(uri)) == uri
    na = NameAddr(
        uri=uri, display="x" if port is None else 'A "quoted", name\\', params={"tag": "1"}
    )
    assert NameAddr.parse(str(na)) == na
