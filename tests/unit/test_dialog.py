"""Dialog routing (RFC 3261 §12.2.1.1): the route set, loose and strict routers, next hop."""

from __future__ import annotations

from callcenter.sip.dialog import Dialog


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
