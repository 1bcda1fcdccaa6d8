"""SDES keys (RFC 4568 a=crypto) in offer/answer: which offers get SRTP, which a 488."""

from __future__ import annotations

import base64

import pytest

from callcenter.sip import sdp
from callcenter.sip.errors import NotAcceptableHere
from callcenter.sip.sdes import Crypto, parse_crypto

KEY = bytes(range(30))
B64 = base64.b64encode(KEY).decode()
OURS = bytes(range(100, 130))


def offer(proto: str, *cryptos: str) -> sdp.SessionDescription:
    lines = "".join(f"a=crypto:{c}\r\n" for c in cryptos)
    return sdp.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 4000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{lines}")


def answer(o: sdp.SessionDescription, policy: str) -> tuple[str, sdp.NegotiatedMedia]:
    sd, media = sdp.answer_offer(o, local_address="127.0.0.1", local_port=5000,
                                 session_id=1, session_version=1, srtp=policy, srtp_key=OURS)
    return sd.serialize(), media


@pytest.mark.parametrize(("value", "expected"), [
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}", Crypto(1, "AES_CM_128_HMAC_SHA1_80", KEY)),
    (f"2 AES_CM_128_HMAC_SHA1_32 inline:{B64}|2^31", Crypto(2, "AES_CM_128_HMAC_SHA1_32", KEY)),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}|2^20|1:4", None),  # an MKI: not supported
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64} UNENCRYPTED_SRTP", None),  # session params
    (f"1 AES_256_CM_HMAC_SHA1_80 inline:{B64}", None),  # unknown suite
    ("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=", None),  # key too short
    ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!", None),
])
def test_crypto_lines(value: str, expected: Crypto | None) -> None:
    assert parse_crypto(value) == expected


def test_savp_offer_gets_an_srtp_answer_with_our_key_under_its_tag() -> None:
    text, media = answer(offer("RTP/SAVP", f"5 AES_CM_128_HMAC_SHA1_32 inline:{B64}"), "optional")
    assert "m=audio 5000 RTP/SAVP 0 101" in text
    assert f"a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{base64.b64encode(OURS).decode()}" in text
    assert media.srtp == Crypto(5, "AES_CM_128_HMAC_SHA1_32", KEY)


@pytest.mark.parametrize(("proto", "crypto", "policy"), [
    ("RTP/SAVP", "1 AES_256_CM_HMAC_SHA1_80 inline:" + B64, "optional"),  # only unknown suites
    ("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}", "off"),
    ("RTP/AVP", None, "required"),
])
def test_offers_we_cannot_take_get_488(proto: str, crypto: str | None, policy: str) -> None:
    with pytest.raises(NotAcceptableHere, match="SRTP"):
        answer(offer(proto, *([crypto] if crypto else [])), policy)


def test_best_effort_offer_is_answered_plain_when_srtp_is_off() -> None:
    text, media = answer(offer("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}"), "off")
    assert "RTP/AVP" in text and "a=crypto" not in text and media.srtp is None


def test_our_offer_and_the_peers_answer() -> None:
    ours = sdp.make_offer(local_address="127.0.0.1", local_port=5000, session_id=1,
                          session_version=1, srtp="required", srtp_key=OURS)
    assert ours.media[0].proto == "RTP/SAVP"
    theirs = offer("RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{B64}")
    assert sdp.parse_answer(theirs, ours).srtp == Crypto(1, "AES_CM_128_HMAC_SHA1_80", KEY)
    with pytest.raises(NotAcceptableHere, match="no SRTP key"):
        sdp.parse_answer(offer("RTP/SAVP"), ours)
    best_effort = sdp.make_offer(local_address="127.0.0.1", local_port=5000, session_id=1,
                                 session_version=1, srtp="optional", srtp_key=OURS)
    assert sdp.parse_answer(offer("RTP/AVP"), best_effort).srtp is None  # plain is fine
