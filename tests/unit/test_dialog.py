"""Dialog routing (RFC 3261 §12.2.1.1): the route set, loose and strict routers, next hop."""

from __future__ import annotations

from callcenter.sip.dialog import Dialog, DialogState


def dialog(*routes: str) -> Dialog:
    return Dialog(
        call_id="d1@test", local_tag="l1", remote_tag="r1",
        local_uri="<sip:callcenter@10.0.0.1>", remote_uri="<sip:1001@10.0.0.9>",
        remote_target="sip:1001@10.0.0.9:5062", route_set=list(routes), local_seq=1,
    )


def via() -> str:
    return "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd1;rport"


def test_without_a_route_set_there_is_no_next_hop() -> None:
    d = dialog()
    assert d.next_hop() is None
    req = d.create_request("BYE", via=via())
    assert req.uri == "sip:1001@10.0.0.9:5062" and req.headers.get_all("Route") == []


def test_loose_router_is_the_next_hop_and_the_target_stays_the_request_uri() -> None:
    d = dialog("<sip:192.0.2.7:5070;lr>", "<sip:192.0.2.8;lr>")
    assert d.next_hop() == ("192.0.2.7", 5070)
    req = d.create_request("BYE", via=via())
    assert req.uri == "sip:1001@10.0.0.9:5062"
    assert req.headers.get_all("Route") == ["<sip:192.0.2.7:5070;lr>", "<sip:192.0.2.8;lr>"]


def test_strict_router_becomes_the_request_uri_and_the_target_the_last_route() -> None:
    d = dialog("<sip:192.0.2.7;maddr=192.0.2.7;method=INVITE>", "<sip:192.0.2.8;lr>")
    assert d.next_hop() == ("192.0.2.7", 5060)
    req = d.create_request("BYE", via=via())
    assert req.uri == "sip:192.0.2.7;maddr=192.0.2.7"  # no `method`: not allowed there
    assert req.headers.get_all("Route") == ["<sip:192.0.2.8;lr>", "<sip:1001@10.0.0.9:5062>"]


def test_a_route_by_name_or_unparsable_gives_no_next_hop() -> None:
    """No RFC 3263 resolver here: the caller keeps sending where the dialog came from."""
    assert dialog("<sip:proxy.example.com;lr>").next_hop() is None
    assert dialog("<sips:[2001:db8::1];lr>").next_hop() == ("2001:db8::1", 5061)
    broken = dialog("not a uri")
    assert broken.next_hop() is None
    assert broken.create_request("BYE", via=via()).uri == "sip:1001@10.0.0.9:5062"


def test_requests_asked_of_a_dialog_carry_its_identifiers_and_sequence() -> None:
    d = dialog()
    ack = d.ack(via=via(), cseq=1)
    assert ack.method == "ACK" and ack.cseq == (1, "ACK") and d.local_seq == 1  # ACK: no new CSeq
    bye = d.bye(via=via())
    assert bye.cseq == (2, "BYE") and bye.from_tag == "l1" and bye.to_tag == "r1"
    assert bye.call_id == "d1@test" and bye.uri == "sip:1001@10.0.0.9:5062"
    offer = b"v=0\r\n"
    reinvite = d.reinvite(via=via(), contact="<sip:cc@10.0.0.1>", sdp=offer)
    assert reinvite.cseq == (3, "INVITE") and reinvite.body == offer
    assert reinvite.content_type == "application/sdp"
    assert reinvite.headers.get("Contact") == "<sip:cc@10.0.0.1>"


def test_state_changes_go_through_the_dialog() -> None:
    d = dialog()
    assert d.state is DialogState.EARLY
    d.confirm()
    assert d.state is DialogState.CONFIRMED
    d.terminate()
    assert d.state is DialogState.TERMINATED


def test_refer_names_exactly_one_target_in_angle_brackets() -> None:
    """RFC 3515 §2.1/§2.4.1: one Refer-To; a URI with parameters or headers must be a
    name-addr, or its ';' and '?' would be read as Refer-To parameters."""
    d = dialog()
    req = d.refer(via=via(), contact="<sip:cc@10.0.0.1>",
                  refer_to="sip:1002@10.0.0.1;transport=udp?Replaces=abc",
                  referred_by="<sip:callcenter@10.0.0.1>")
    assert req.method == "REFER" and req.cseq == (2, "REFER")
    assert req.headers.get_all("Refer-To") == ["<sip:1002@10.0.0.1;transport=udp?Replaces=abc>"]
    assert req.headers.get("Referred-By") == "<sip:callcenter@10.0.0.1>"
    assert req.headers.get("Contact") == "<sip:cc@10.0.0.1>"
    named = d.refer(via=via(), contact="<sip:cc@10.0.0.1>", refer_to='"Desk" <sip:1003@h>')
    assert named.headers.get_all("Refer-To") == ['"Desk" <sip:1003@h>']
    assert "Referred-By" not in named.headers


def test_notify_reports_the_referred_call_as_a_sipfrag() -> None:
    """RFC 3515 §2.4.4-2.4.6: Event refer (with id after the first REFER), a message/sipfrag
    Status-Line, the subscription active until a final status terminates it."""
    d = dialog()
    trying = d.notify(via=via(), contact="<sip:cc@10.0.0.1>", status=100, reason="Trying")
    assert trying.method == "NOTIFY" and trying.headers.get("Event") == "refer"
    assert trying.headers.get("Subscription-State") == "active;expires=60"
    assert trying.content_type == "message/sipfrag"
    assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    done = d.notify(via=via(), contact="<sip:cc@10.0.0.1>", status=200, reason="OK",
                    refer_cseq=7)
    assert done.headers.get("Event") == "refer;id=7"
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert done.body == b"SIP/2.0 200 OK\r\n"
    assert done.cseq[0] == trying.cseq[0] + 1


def test_a_dialog_from_an_invite_takes_its_values_from_the_message() -> None:
    """From, To (without tags) and the target come from the message; a Contact of ``*``
    names no target (as before, a ValueError); a From longer than the shared memo keeps is
    parsed all the same."""
    import pytest

    from callcenter.sip.message import parse_message

    long_name = "x" * 600

    def invite(contact: str, display: str = "Alice") -> bytes:
        return (
            "INVITE sip:0800@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
            f'From: "{display}" <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:0800@127.0.0.1>\r\n'
            f"Call-ID: c1\r\nCSeq: 7 INVITE\r\nContact: {contact}\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()

    for display in ("Alice", long_name):
        req = parse_message(invite("<sip:alice@127.0.0.1:5070;transport=udp>", display))
        d = Dialog.from_uas(req, "b2")  # type: ignore[arg-type]
        assert d.remote_uri == f'"{display}" <sip:alice@127.0.0.1>' and d.remote_tag == "a1"
        assert d.local_uri == "<sip:0800@127.0.0.1>" and d.remote_seq == 7
        assert d.remote_target == "sip:alice@127.0.0.1:5070;transport=udp"
        assert req.from_tag == "a1"  # the message's own value kept its tag
    with pytest.raises(ValueError):
        Dialog.from_uas(parse_message(invite("*")), "b2")  # type: ignore[arg-type]
