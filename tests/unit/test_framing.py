"""TCP stream framing (RFC 3261 §18.3): Content-Length, keep-alives, size cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.framing import FramingError, StreamFramer
from callcenter.sip.message import parse_message

HEAD = (
    b"MESSAGE sip:agent@cc.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK%d\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:agent@cc.example.com>\r\n"
    b"Call-ID: c%d\r\nCSeq: %d MESSAGE\r\nMax-Forwards: 70\r\n"
)


def message(n: int, body: bytes = b"hello\r\n\r\nworld") -> bytes:
    head = HEAD.replace(b"%d", str(n).encode())
    return head + b"l: " + str(len(body)).encode() + b"\r\n\r\n" + body


def test_whole_messages_in_one_feed() -> None:
    f = StreamFramer()
    data = message(1) + message(2, b"") + message(3)
    assert f.feed(data) == [message(1), message(2, b""), message(3)]
    assert f.buffered == 0


def test_byte_by_byte() -> None:
    f = StreamFramer()
    data = message(1) + message(2)
    out: list[bytes] = []
    for i in range(len(data)):
        out += f.feed(data[i : i + 1])
    assert out == [message(1), message(2)]
    assert parse_message(out[1]).call_id == "c2"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=600), max_size=8))
def test_any_split_gives_same_messages(cuts: list[int]) -> None:
    data = b"\r\n\r\n" + message(1) + b"\r\n" + message(2, b"\x00\r\n") + message(3)
    f = StreamFramer()
    out: list[bytes] = []
    prev = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += f.feed(data[prev:cut])
        prev = cut
    assert out == [message(1), message(2, b"\x00\r\n"), message(3)]


def test_keepalives_skipped_and_counted() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n\r\n") == []
    assert f.feed(b"\r\n\r\n" + message(1)) == [message(1)]
    assert f.keepalives == 2


def test_missing_content_length_is_an_error_with_answerable_request() -> None:
    f = StreamFramer()
    bad = message(2).replace(b"l: 14\r\n", b"")
    with pytest.raises(FramingError) as info:
        f.feed(message(1) + bad)
    err = info.value
    assert err.status == 400 and "Content-Length" in err.reason
    assert err.messages == [message(1)]
    assert err.request is not None and err.request.call_id == "c2"
    with pytest.raises(FramingError):
        f.feed(message(3))  # the stream stays broken: the transport closes it


@pytest.mark.parametrize(
    "replacement", [b"l: -1\r\n", b"l: 1x\r\n", b"l: 14\r\nContent-Length: 16\r\n"]
)
def test_bad_content_length(replacement: bytes) -> None:
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(message(1).replace(b"l: 14\r\n", replacement))
    assert info.value.status == 400


def test_size_cap() -> None:
    f = StreamFramer(max_size=1000)
    with pytest.raises(FramingError) as info:
        f.feed(message(1, b"x" * 2000))
    assert info.value.status == 413
    assert info.value.request is not None
    g = StreamFramer(max_size=1000)
    with pytest.raises(FramingError) as info:
        for _ in range(20):
            g.feed(b"X-Endless-Header: " + b"y" * 100 + b"\r\n")
    assert info.value.status == 413


def test_waits_for_body() -> None:
    f = StreamFramer()
    data = message(1)
    assert f.feed(data[:-3]) == []
    assert f.buffered == len(data) - 3
    assert f.feed(data[-3:]) == [data]
