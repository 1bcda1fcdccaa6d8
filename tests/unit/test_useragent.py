"""Requests outside a dialog (RFC 3261 §8.1.1): what a new INVITE and an OPTIONS carry."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from callcenter.sip.errors import Forbidden
from callcenter.sip.message import parse_message, serialize
from callcenter.sip.useragent import ALLOW, Handlers, dispatch, new_invite, new_request

VIA = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKu1;rport"


def test_a_new_invite_opens_a_dialog_with_our_offer() -> None:
    invite = new_invite(
        "sip:1001@10.0.0.9:5062", via=VIA, host="10.0.0.1", from_user="48221234567",
        from_display="Jan Kowalski", to_user="1001", contact="<sip:callcenter@10.0.0.1:5060>",
        sdp=b"v=0\r\n",
    )
    again = parse_message(serialize(invite))  # what goes on the wire reads back the same
    assert again.method == "INVITE" and again.uri == "sip:1001@10.0.0.9:5062"
    assert again.cseq == (1, "INVITE") and again.from_tag and again.to_tag is None
    assert (again.headers.get("From") or "").startswith('"Jan Kowalski" <sip:48221234567@10.0.0.1>')
    assert again.headers.get("To") == "<sip:1001@10.0.0.1>"
    assert again.call_id.endswith("@10.0.0.1") and again.max_forwards == 70
    assert ", ".join(again.headers.get_all("Allow")) == ALLOW and again.content_type == "application/sdp"
    assert again.body == b"v=0\r\n"


def test_each_request_outside_a_dialog_gets_its_own_tag_and_call_id() -> None:
    a, b = (new_request("OPTIONS", "sip:1001@10.0.0.9", via=VIA, from_="<sip:cc@10.0.0.1>",
                        to="<sip:1001@10.0.0.9>", host="10.0.0.1") for _ in range(2))
    assert a.from_tag != b.from_tag and a.call_id != b.call_id
    assert "Contact" not in a.headers and a.cseq == (1, "OPTIONS")


def test_a_refer_outside_a_dialog_is_forbidden_and_one_inside_goes_to_its_dialog() -> None:
    """Only a party of a call may transfer it: a REFER with no To tag is refused 403 (RFC
    3515 lets a UA refuse a REFER); with one it goes to the dialog's handler (which answers
    481 for a dialog it does not know, RFC 3261 §12.2.2)."""
    seen: list[str] = []

    async def in_dialog(sreq: Any) -> None:
        seen.append(sreq.request.method)

    handlers = Handlers(invite=in_dialog, in_dialog=in_dialog, cancel=seen.append,
                        register=seen.append)
    refer = new_request("REFER", "sip:cc@10.0.0.1", via=VIA, from_="<sip:x@10.0.0.9>",
                        to="<sip:cc@10.0.0.1>", host="10.0.0.9")
    with pytest.raises(Forbidden):
        asyncio.run(dispatch(SimpleNamespace(request=refer), handlers))  # type: ignore[arg-type]
    assert seen == []
    refer.headers.set("To", "<sip:cc@10.0.0.1>;tag=t1")
    asyncio.run(dispatch(SimpleNamespace(request=refer), handlers))  # type: ignore[arg-type]
    assert seen == ["REFER"]
