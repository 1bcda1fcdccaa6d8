"""SDP parse/serialize (RFC 4566) and offer/answer (RFC 3264)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip import sdp
from callcenter.sip.errors import NotAcceptableHere
from callcenter.sip.sdp import (
    Direction,
    RtpMap,
    SdpError,
    answer_offer,
    is_hold,
    make_offer,
    parse,
    parse_answer,
)

# RFC 4566 §5 example, extended with the attributes a softphone sends.
RFC4566_EXAMPLE = (
    "v=0\r\n"
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=SDP Seminar\r\n"
    "i=A Seminar on the session description protocol\r\n"
    "u=http://www.example.com/seminars/sdp.pdf\r\n"
    "e=j.doe@example.com (Jane Doe)\r\n"
    "c=IN IP4 224.2.17.12/127\r\n"
    "t=2873397496 2873404696\r\n"
    "a=recvonly\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)

# What baresip/Linphone-style phones offer: Opus first, then G.711, DTMF, RTCP, video.
PHONE_OFFER = (
    "v=0\n"
    "o=alice 123456 654321 IN IP4 192.0.2.10\n"
    "s=Talk\n"
    "c=IN IP4 192.0.2.10\n"
    "t=0 0\n"
    "a=tool:some-phone 1.0\n"
    "m=audio 7078 RTP/AVP 96 8 0 101\n"
    "a=rtpmap:96 opus/48000/2\n"
    "a=fmtp:96 useinbandfec=1\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=rtcp:7079\n"
    "a=ptime:30\n"
    "m=video 9078 RTP/AVP 97\n"
    "a=rtpmap:97 H264/90000\n"
)


def offer_text(*lines: str, audio: str = "m=audio 4000 RTP/AVP 0 8 101") -> str:
    head = ["v=0", "o=- 1 1 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0", audio]
    body = head + ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", *lines]
    return "\r\n".join(body) + "\r\n"


def answer(text: str, **kwargs: object) -> tuple[sdp.SessionDescription, sdp.NegotiatedMedia]:
    params: dict = {
        "local_address": "203.0.113.5",
        "local_port": 20000,
        "session_id": 42,
        "session_version": 1,
    }
    params.update(kwargs)
    return answer_offer(parse(text), **params)


# ---------------------------------------------------------------------------- parsing


def test_parse_rfc4566_example() -> None:
    sd = parse(RFC4566_EXAMPLE)
    assert sd.version == 0
    assert sd.origin == sdp.Origin("jdoe", 2890844526, 2890842807, "IN", "IP4", "10.47.16.5")
    assert sd.session_name == "SDP Seminar"
    assert sd.information == "A Seminar on the session description protocol"
    assert sd.connection == sdp.Connection("IN", "IP4", "224.2.17.12/127")
    assert sd.connection.host == "224.2.17.12"
    assert sd.timing == sdp.Timing(2873397496, 2873404696)
    assert sd.direction is Direction.RECVONLY
    assert [(m.media, m.port, m.proto, m.formats) for m in sd.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["99"]),
    ]
    assert sd.media[1].rtpmap == {99: RtpMap("h263-1998", 90000)}
    assert sd.direction_for(sd.media[0]) is Direction.RECVONLY


def test_parse_phone_offer_with_lf_line_ends() -> None:
    sd = parse(PHONE_OFFER)
    audio = sd.media[0]
    assert audio.payload_types == [96, 8, 0, 101]
    assert audio.rtpmap[96] == RtpMap("opus", 48000, 2)
    assert audio.fmtp == {96: "useinbandfec=1", 101: "0-15"}
    assert audio.ptime == 30
    assert audio.direction is None
    assert audio.attribute("rtcp") == "7079"
    assert sd.attributes == [("tool", "some-phone 1.0")]
    assert sd.direction_for(audio) is Direction.SENDRECV


def test_static_payload_types_need_no_rtpmap() -> None:
    audio = parse(offer_text(audio="m=audio 4000 RTP/AVP 8 0 18")).media[0]
    assert audio.codec(0) == RtpMap("PCMU", 8000)
    assert audio.codec(8) == RtpMap("PCMA", 8000)
    assert audio.codec(18) == RtpMap("G729", 8000)
    assert audio.codec(97) is None


def test_serialize_uses_crlf_and_rfc_order() -> None:
    text = parse(PHONE_OFFER).serialize()
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    kinds = [line[0] for line in text.split("\r\n") if line]
    assert kinds[:5] == ["v", "o", "s", "c", "t"]
    assert "a=rtpmap:96 opus/48000/2" in text
    assert "m=video 9078 RTP/AVP 97" in text


@pytest.mark.parametrize("text", [RFC4566_EXAMPLE, PHONE_OFFER, offer_text("a=sendonly")])
def test_round_trip_is_stable(text: str) -> None:
    once = parse(text)
    again = parse(once.serialize())
    assert again == once
    assert again.serialize() == once.serialize()


def test_parse_accepts_bytes_and_ignores_unknown_lines() -> None:
    body = offer_text("y=unknown line type", "a=x-custom", "k=prompt").encode()
    sd = parse(body)
    assert sd.media[0].attributes == [("x-custom", None)]
    assert "y=" not in sd.serialize()


def test_malformed_optional_attributes_are_kept_verbatim() -> None:
    sd = parse(offer_text("a=rtpmap:banana", "a=ptime:soon", "a=fmtp:101"))
    audio = sd.media[0]
    assert audio.rtpmap == {101: RtpMap("telephone-event", 8000)}
    assert audio.ptime is None
    assert ("rtpmap", "banana") in audio.attributes
    assert ("ptime", "soon") in audio.attributes


def test_media_level_connection_and_port_count() -> None:
    sd = parse(offer_text("c=IN IP4 10.1.1.1", audio="m=audio 4000/2 RTP/AVP 0"))
    audio = sd.media[0]
    assert audio.number_of_ports == 2
    assert sd.connection_for(audio) == sdp.Connection("IN", "IP4", "10.1.1.1")
    assert "m=audio 4000/2 RTP/AVP 0" in sd.serialize()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n\r\n",
        "hello world",
        "INVITE sip:bob@example.com SIP/2.0\r\n",
        "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",  # v= must come first
        "v=0\r\ns=-\r\nt=0 0\r\n",  # no o=
        "v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # o= short
        "v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # sess-id not numeric
        "v=x\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nthis is not sdp\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=now\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio port RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
    ],
)
def test_garbage_raises_sdp_error_as_400(text: str) -> None:
    with pytest.raises(SdpError) as info:
        parse(text)
    assert info.value.status == 400


def test_non_utf8_body_is_a_400() -> None:
    with pytest.raises(SdpError):
        parse(b"v=0\r\no=\xff\xfe 1 1 IN IP4 1.2.3.4\r\n")


@given(st.text(max_size=300))
def test_parse_never_raises_anything_but_sdp_error(text: str) -> None:
    try:
        sd = parse(text)
    except SdpError:
        return
    assert parse(sd.serialize()) == sd


SDP_LINES = [
    "s=Session",
    "s= ",
    "i=info",
    "c=IN IP4 10.0.0.1",
    "c=IN IP6 ::1",
    "c=IN IP4 0.0.0.0",
    "b=AS:64",
    "b=bogus",
    "t=0 0",
    "a=sendonly",
    "a=recvonly:odd",
    "a=tool:x y",
    "a=flag",
    "a=:empty-name",
    "m=audio 4000 RTP/AVP 0 8 101",
    "m=audio 0 RTP/AVP 0",
    "m=video 5000/2 RTP/AVP 97",
    "m=application 9 UDP/BFCP *",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=rtpmap:99 x/y",
    "a=fmtp:101 0-16",
    "a=fmtp:96 useinbandfec=1; stereo=1",
    "a=fmtp:x y",
    "a=ptime:20",
    "a=ptime:2.5",
    "a=rtcp:4001 IN IP4 10.0.0.1",
    "a=inactive",
    "z=0 0",
    "k=clear:x",
    "x=unknown",
]


@given(st.lists(st.sampled_from(SDP_LINES), max_size=25), st.sampled_from(["\r\n", "\n"]))
def test_structured_bodies_round_trip(lines: list[str], eol: str) -> None:
    text = eol.join(["v=0", "o=- 1 2 IN IP4 10.0.0.1", *lines]) + eol
    sd = parse(text)
    assert parse(sd.serialize()) == sd
    assert len(sd.media) == sum(line.startswith("m=") for line in lines)


# ----------------------------------------------------------------------- answer_offer


def test_answer_picks_callers_most_preferred_supported_codec() -> None:
    ans, neg = answer(PHONE_OFFER)
    # Opus is first but unsupported; PCMA (8) comes before PCMU (0) in the offer.
    assert neg.codec == "PCMA"
    assert neg.payload_type == 8
    assert neg.remote == ("192.0.2.10", 7078)
    assert neg.dtmf_payload_type == 101
    assert neg.ptime == 30
    assert neg.direction is Direction.SENDRECV
    assert neg.remote_hold is False
    audio = ans.media[0]
    assert audio.formats == ["8", "101"]
    assert audio.port == 20000
    assert audio.rtpmap[101] == RtpMap("telephone-event", 8000)
    assert audio.fmtp[101] == "0-16"
    assert audio.direction is Direction.SENDRECV
    assert ans.connection == sdp.Connection("IN", "IP4", "203.0.113.5")
    assert (ans.origin.sess_id, ans.origin.sess_version) == (42, 1)


def test_answer_prefers_offer_order_not_ours() -> None:
    _, neg = answer(offer_text(audio="m=audio 4000 RTP/AVP 8 0 101"), supported=("PCMU", "PCMA"))
    assert neg.codec == "PCMA"
    _, neg = answer(offer_text(audio="m=audio 4000 RTP/AVP 0 8 101"), supported=("PCMA", "PCMU"))
    assert neg.codec == "PCMU"


def test_answer_keeps_offered_dynamic_payload_numbers() -> None:
    text = offer_text(
        "a=rtpmap:120 PCMU/8000",
        "a=rtpmap:126 telephone-event/8000",
        audio="m=audio 4000 RTP/AVP 120 126",
    )
    ans, neg = answer(text)
    assert (neg.payload_type, neg.dtmf_payload_type) == (120, 126)
    assert ans.media[0].formats == ["120", "126"]
    assert "a=rtpmap:120 PCMU/8000" in ans.serialize()


def test_answer_without_telephone_event_offered() -> None:
    ans, neg = answer(
        "v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 5 RTP/AVP 0\n"
    )
    assert neg.dtmf_payload_type is None
    assert ans.media[0].formats == ["0"]
    assert "telephone-event" not in ans.serialize()


def test_answer_rejects_other_streams_in_place() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
        "m=video 6000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
        "m=audio 5000 RTP/AVP 0\r\n"
        "m=audio 5002 RTP/AVP 8\r\n"
        "m=application 5004 UDP/BFCP *\r\n"
    )
    ans, neg = answer(text)
    assert [(m.media, m.port) for m in ans.media] == [
        ("video", 0),
        ("audio", 20000),
        ("audio", 0),
        ("application", 0),
    ]
    assert ans.media[0].formats == ["97"]
    assert neg.remote == ("10.0.0.9", 5000)
    reparsed = parse(ans.serialize())
    assert len(reparsed.media) == 4


def test_answer_skips_audio_stream_without_common_codec() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
        "m=audio 5000 RTP/AVP 18\r\n"
        "m=audio 5002 RTP/AVP 0\r\n"
    )
    ans, neg = answer(text)
    assert [m.port for m in ans.media] == [0, 20000]
    assert neg.remote == ("10.0.0.9", 5002)


@pytest.mark.parametrize(
    "audio",
    [
        "m=audio 4000 RTP/AVP 18 101",  # G.729 only
        "m=audio 0 RTP/AVP 0",  # the only audio stream is disabled
        "m=audio 4000 RTP/SAVP 0",  # SRTP: we cannot do it
    ],
)
def test_no_acceptable_audio_raises_488(audio: str) -> None:
    with pytest.raises(NotAcceptableHere) as info:
        answer(offer_text(audio=audio))
    assert info.value.status == 488


def test_no_media_at_all_raises_488() -> None:
    with pytest.raises(NotAcceptableHere):
        answer("v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nt=0 0\r\n")


def test_opus_alone_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptableHere):
        answer(offer_text("a=rtpmap:96 opus/48000/2", audio="m=audio 4000 RTP/AVP 96"))


def test_supported_list_may_add_codecs() -> None:
    _, neg = answer(offer_text(audio="m=audio 4000 RTP/AVP 9 0"), supported=("G722", "PCMU"))
    assert neg.codec == "G722"


def test_media_level_connection_overrides_session_level() -> None:
    _, neg = answer(offer_text("c=IN IP4 10.9.9.9"))
    assert neg.remote == ("10.9.9.9", 4000)


def test_missing_connection_is_a_400() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
    with pytest.raises(SdpError):
        answer(text)


@pytest.mark.parametrize(
    ("offered", "answered", "hold"),
    [
        ("sendrecv", Direction.SENDRECV, False),
        ("sendonly", Direction.RECVONLY, True),
        ("recvonly", Direction.SENDONLY, False),
        ("inactive", Direction.INACTIVE, True),
    ],
)
def test_answer_direction_mirrors_offer(offered: str, answered: Direction, hold: bool) -> None:
    ans, neg = answer(offer_text(f"a={offered}"))
    assert ans.media[0].direction is answered
    assert f"a={answered}\r\n" in ans.serialize()
    assert neg.direction is answered
    assert neg.remote_hold is hold
    assert is_hold(parse(offer_text(f"a={offered}"))) is hold


def test_session_level_direction_applies_to_media() -> None:
    text = offer_text().replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    ans, neg = answer(text)
    assert ans.media[0].direction is Direction.RECVONLY
    assert neg.remote_hold is True


def test_rfc2543_hold_with_zero_address() -> None:
    text = offer_text().replace("c=IN IP4 198.51.100.7", "c=IN IP4 0.0.0.0")
    sd = parse(text)
    assert is_hold(sd)
    ans, neg = answer(text)
    assert neg.remote_hold is True
    assert neg.remote == ("0.0.0.0", 4000)
    # We must not send to 0.0.0.0: we only receive.
    assert neg.direction is Direction.RECVONLY
    assert ans.media[0].direction is Direction.RECVONLY


def test_answer_with_rtcp_and_ipv6() -> None:
    ans, _ = answer(offer_text(), local_address="2001:db8::5", rtcp_port=20001)
    text = ans.serialize()
    assert "c=IN IP6 2001:db8::5\r\n" in text
    assert "o=- 42 1 IN IP6 2001:db8::5\r\n" in text
    assert "a=rtcp:20001\r\n" in text


def test_answer_keeps_avpf_profile() -> None:
    ans, _ = answer(offer_text(audio="m=audio 4000 RTP/AVPF 0 101"))
    assert ans.media[0].proto == "RTP/AVPF"


# ------------------------------------------------------------ make_offer / parse_answer


def test_make_offer_contents() -> None:
    offer = make_offer(local_address="10.0.0.1", local_port=30000, session_id=7, session_version=3)
    text = offer.serialize()
    assert "o=- 7 3 IN IP4 10.0.0.1\r\n" in text
    assert "m=audio 30000 RTP/AVP 0 8 101\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" in text
    assert "a=sendrecv\r\n" in text
    assert parse(text) == offer


def test_make_offer_options_and_misuse() -> None:
    offer = make_offer(
        local_address="10.0.0.1",
        local_port=30000,
        codecs=("PCMA",),
        dtmf_pt=None,
        session_id=1,
        session_version=1,
        direction="sendonly",
    )
    assert offer.media[0].formats == ["8"]
    assert offer.media[0].direction is Direction.SENDONLY
    with pytest.raises(ValueError):
        make_offer(
            local_address="h", local_port=1, codecs=("opus",), session_id=1, session_version=1
        )
    with pytest.raises(ValueError):
        make_offer(local_address="h", local_port=1, codecs=(), session_id=1, session_version=1)
    with pytest.raises(ValueError):
        make_offer(local_address="h", local_port=1, dtmf_pt=8, session_id=1, session_version=1)


def our_offer(**kwargs: object) -> sdp.SessionDescription:
    params: dict = {"local_address": "10.0.0.1", "local_port": 30000}
    params.update(kwargs)
    return make_offer(session_id=1, session_version=1, **params)


def test_offer_answer_round_trip_between_two_of_us() -> None:
    offer = our_offer(codecs=("PCMA", "PCMU"))
    ans, theirs = answer_offer(
        parse(offer.serialize()),
        local_address="10.0.0.2",
        local_port=40000,
        session_id=9,
        session_version=1,
    )
    mine = parse_answer(parse(ans.serialize()), offer)
    assert (mine.codec, mine.payload_type, mine.dtmf_payload_type) == ("PCMA", 8, 101)
    assert (theirs.codec, theirs.payload_type) == ("PCMA", 8)
    assert mine.remote == ("10.0.0.2", 40000)
    assert theirs.remote == ("10.0.0.1", 30000)


def test_parse_answer_from_a_phone() -> None:
    text = (
        "v=0\r\no=agent 9 9 IN IP4 192.0.2.50\r\ns=-\r\nt=0 0\r\n"
        "m=audio 8000 RTP/AVP 8 97\r\nc=IN IP4 192.0.2.51\r\n"
        "a=rtpmap:97 telephone-event/8000\r\na=ptime:40\r\n"
    )
    neg = parse_answer(parse(text), our_offer())
    assert neg.remote == ("192.0.2.51", 8000)
    assert (neg.codec, neg.payload_type) == ("PCMA", 8)
    # The peer receives DTMF on 97: that is the number we must send with.
    assert neg.dtmf_payload_type == 97
    assert neg.ptime == 40
    assert neg.direction is Direction.SENDRECV


def test_parse_answer_without_dtmf() -> None:
    text = "v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 8 RTP/AVP 0\r\n"
    assert parse_answer(parse(text), our_offer()).dtmf_payload_type is None


def test_parse_answer_ignores_dtmf_we_did_not_offer() -> None:
    text = (
        "v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
        "m=audio 8 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    assert parse_answer(parse(text), our_offer(dtmf_pt=None)).dtmf_payload_type is None


@pytest.mark.parametrize(
    "audio",
    [
        "m=audio 0 RTP/AVP 0",  # rejected stream
        "m=audio 8 RTP/AVP 18",  # G.729, which we did not offer
        "m=audio 8 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000",  # DTMF only
        "m=video 8 RTP/AVP 0",
    ],
)
def test_parse_answer_with_nothing_we_offered_is_488(audio: str) -> None:
    text = f"v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n{audio}\r\n"
    with pytest.raises(NotAcceptableHere):
        parse_answer(parse(text), our_offer())


def test_parse_answer_with_no_m_line_is_488() -> None:
    with pytest.raises(NotAcceptableHere):
        parse_answer(parse("v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\n"), our_offer())


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("sendrecv", "sendrecv", Direction.SENDRECV),
        ("sendrecv", "recvonly", Direction.SENDONLY),
        ("sendrecv", "sendonly", Direction.RECVONLY),
        ("sendonly", "recvonly", Direction.SENDONLY),
        ("sendonly", "sendrecv", Direction.SENDONLY),  # an answer cannot widen the offer
        ("inactive", "inactive", Direction.INACTIVE),
    ],
)
def test_parse_answer_direction(ours: str, theirs: str, expected: Direction) -> None:
    text = (
        "v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\n"
        f"m=audio 8 RTP/AVP 0\r\na={theirs}\r\n"
    )
    assert parse_answer(parse(text), our_offer(direction=ours)).direction is expected


def test_direction_helpers() -> None:
    for d in Direction:
        assert d.reversed().reversed() is d
        assert Direction.of(sends=d.sends, receives=d.receives) is d
