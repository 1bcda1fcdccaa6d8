"""RFC 3261 §17 transaction state machines, driven by a fake clock."""

from __future__ import annotations

import pytest

from callcenter.sip.events import AckTimeout, RequestReceived, ResponseReceived, TransactionTimeout
from callcenter.sip.message import Request, Response, make_response, parse_message
from callcenter.sip.transaction import TransactionLayer, TxState

SRC = ("127.0.0.1", 5071)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc", cseq: int = 1,
            to_tag: str = "", via_host: str = "127.0.0.1:5071;rport",
            from_tag: str = "f1") -> Request:
    to = "<sip:0800123456@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    raw = (
        f"{method} sip:0800123456@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:caller@127.0.0.1>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@test\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:caller@127.0.0.1:5071>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    return msg


def events(layer: TransactionLayer) -> list:
    out = []
    while (e := layer.next_event()) is not None:
        out.append(e)
    return out


def sent_times(layer: TransactionLayer, start: float, until: float) -> list[float]:
    """Step the clock through every timer up to ``until``; return when datagrams left."""
    times = []
    layer.datagrams_to_send()
    now = start
    while (at := layer.get_timer()) is not None and at <= until:
        now = at
        layer.handle_timer(now)
        if layer.datagrams_to_send():
            times.append(round(now - start, 3))
    return times


def test_client_invite_timer_a_doubles_and_timer_b_times_out() -> None:
    layer = TransactionLayer(t1=0.5)
    key = layer.send_request(request(), ("127.0.0.1", 5072), "udp", now=0.0)
    assert len(layer.datagrams_to_send()) == 1
    times = sent_times(layer, 0.0, 40.0)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A: T1, 2T1, 4T1, ... (no cap)
    evs = events(layer)
    assert [type(e) for e in evs] == [TransactionTimeout]
    assert evs[0].key == key and not evs[0].server
    assert layer.get(key) is None  # Timer B = 64*T1 = 32 s terminated it


def test_client_non_invite_timer_e_capped_at_t2() -> None:
    layer = TransactionLayer(t1=0.5, t2=4.0)
    layer.send_request(request("OPTIONS"), ("127.0.0.1", 5072), "udp", now=0.0)
    times = sent_times(layer, 0.0, 40.0)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert all(g == 4.0 for g in gaps[3:])
    assert isinstance(events(layer)[0], TransactionTimeout)


def test_client_tcp_never_retransmits() -> None:
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), ("127.0.0.1", 5072), "tcp", now=0.0)
    assert sent_times(layer, 0.0, 40.0) == []


def test_client_invite_non_2xx_is_acked_with_same_branch() -> None:
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, ("127.0.0.1", 5072), "udp", now=0.0)
    layer.datagrams_to_send()
    resp = make_response(inv, 486, to_tag="t9")
    layer.receive(resp, ("127.0.0.1", 5072), "udp", now=0.1)
    out = layer.datagrams_to_send()
    ack = parse_message(out[0][0])
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.top_via.branch == inv.top_via.branch and ack.to_tag == "t9"
    assert isinstance(events(layer)[0], ResponseReceived)
    # a retransmitted 486 is ACKed again but not reported again
    layer.receive(resp, ("127.0.0.1", 5072), "udp", now=0.2)
    assert len(layer.datagrams_to_send()) == 1 and events(layer) == []
    assert layer.get(key).state is TxState.COMPLETED
    layer.handle_timer(32.2)  # Timer D
    assert layer.get(key) is None


def test_client_invite_2xx_retransmissions_reach_the_core() -> None:
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, ("127.0.0.1", 5072), "udp", now=0.0)
    ok = make_response(inv, 200, to_tag="t1")
    layer.receive(ok, ("127.0.0.1", 5072), "udp", now=0.1)
    layer.receive(ok, ("127.0.0.1", 5072), "udp", now=0.6)
    assert [type(e) for e in events(layer)] == [ResponseReceived, ResponseReceived]
    assert layer.get(key).state is TxState.ACCEPTED


def test_server_invite_sends_100_and_absorbs_retransmissions() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, SRC, "udp", now=0.0)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived) and ev.key is not None
    (trying,) = layer.datagrams_to_send()
    assert parse_message(trying[0]).status == 100
    assert trying[1] == SRC  # rport: responses go back to the source port
    layer.receive(request(), SRC, "udp", now=0.3)
    assert events(layer) == []
    (again,) = layer.datagrams_to_send()
    assert again[0] == trying[0]


def test_server_invite_2xx_retransmitted_until_ack_then_timer_h_fires() -> None:
    layer = TransactionLayer(t1=0.5, t2=4.0)
    inv = request()
    layer.receive(inv, SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 200, to_tag="x"), now=0.0)
    times = sent_times(layer, 0.0, 40.0)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # T1 doubling, capped at T2
    (timeout,) = events(layer)
    assert isinstance(timeout, AckTimeout) and timeout.response.status == 200


def test_server_2xx_stops_on_ack() -> None:
    layer = TransactionLayer()
    layer.receive(request(), SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 200, to_tag="x"), now=0.0)
    layer.datagrams_to_send()
    layer.receive(request("ACK", branch="z9hG4bKack", to_tag="x"), SRC, "udp", now=0.2)
    (ack,) = events(layer)
    assert isinstance(ack, RequestReceived) and ack.key is None
    assert sent_times(layer, 0.2, 40.0) == []
    assert events(layer) == []


def test_server_invite_non_2xx_timer_g_and_h() -> None:
    layer = TransactionLayer(t1=0.5, t2=4.0)
    layer.receive(request(), SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 486, to_tag="x"), now=0.0)
    times = sent_times(layer, 0.0, 40.0)
    assert times[:4] == [0.5, 1.5, 3.5, 7.5]
    (timeout,) = events(layer)
    assert isinstance(timeout, TransactionTimeout) and timeout.server


def test_server_invite_non_2xx_ack_is_absorbed() -> None:
    layer = TransactionLayer()
    layer.receive(request(), SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 486, to_tag="x"), now=0.0)
    layer.receive(request("ACK", to_tag="x"), SRC, "udp", now=0.1)
    assert events(layer) == []
    assert layer.get(ev.key).state is TxState.CONFIRMED
    layer.handle_timer(5.2)  # Timer I = T4
    assert layer.get(ev.key) is None


def test_server_non_invite_retransmission_gets_last_response_and_timer_j() -> None:
    layer = TransactionLayer()
    layer.receive(request("OPTIONS"), SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 200), now=0.0)
    (first,) = layer.datagrams_to_send()
    layer.receive(request("OPTIONS"), SRC, "udp", now=1.0)
    (again,) = layer.datagrams_to_send()
    assert again == first and events(layer) == []
    layer.handle_timer(32.0)
    assert layer.get(ev.key) is None


def test_merged_request_gets_482() -> None:
    layer = TransactionLayer()
    layer.receive(request(branch="z9hG4bKone"), SRC, "udp", now=0.0)
    events(layer)
    layer.datagrams_to_send()
    layer.receive(request(branch="z9hG4bKtwo"), ("127.0.0.1", 5099), "udp", now=0.1)
    assert events(layer) == []
    (out,) = layer.datagrams_to_send()
    resp = parse_message(out[0])
    assert isinstance(resp, Response) and resp.status == 482


def test_cancel_is_its_own_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(request(), SRC, "udp", now=0.0)
    layer.receive(request("CANCEL"), SRC, "udp", now=0.1)
    evs = events(layer)
    assert [e.request.method for e in evs] == ["INVITE", "CANCEL"]
    assert evs[0].key != evs[1].key


def test_received_param_added_when_sent_by_differs() -> None:
    layer = TransactionLayer()
    layer.receive(request("OPTIONS", via_host="phone.invalid:5071"), SRC, "udp", now=0.0)
    (ev,) = events(layer)
    assert ev.request.top_via.params["received"] == "127.0.0.1"


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER", "BYE"])
def test_non_invite_client_final_response_then_timer_k(method: str) -> None:
    layer = TransactionLayer()
    req = request(method)
    key = layer.send_request(req, ("127.0.0.1", 5072), "udp", now=0.0)
    layer.receive(make_response(req, 200), ("127.0.0.1", 5072), "udp", now=0.1)
    assert isinstance(events(layer)[0], ResponseReceived)
    assert layer.get(key).state is TxState.COMPLETED
    layer.handle_timer(5.1)
    assert layer.get(key) is None


def test_client_invite_ringing_forever_times_out_after_timer_c() -> None:
    """A 180 and then silence: the transaction ends (408 for the TU) instead of living on."""
    layer = TransactionLayer(t1=0.5)
    req = request()
    key = layer.send_request(req, ("127.0.0.1", 5072), "udp", now=0.0)
    layer.receive(make_response(req, 180, to_tag="t"), SRC, "udp", now=1.0)
    assert [type(e) for e in events(layer)] == [ResponseReceived]
    layer.handle_timer(100.0)  # Timer B's 32 s passed: stopped by the 1xx
    assert layer.get(key) is not None and events(layer) == []
    layer.receive(make_response(req, 180, to_tag="t"), SRC, "udp", now=120.0)  # restarts C
    events(layer)
    layer.handle_timer(250.0)
    assert layer.get(key) is not None
    layer.handle_timer(300.0)
    evs = events(layer)
    assert [type(e) for e in evs] == [TransactionTimeout] and not evs[0].server
    assert layer.get(key) is None and len(layer) == 0


def test_ack_stops_only_the_2xx_of_its_own_dialog() -> None:
    """Review finding 5: two INVITEs with the same Call-ID and CSeq but other From tags (two
    dialogs) are both answered 200; the ACK of one must not stop the other's retransmissions."""
    layer = TransactionLayer(t1=0.5, t2=4.0)
    layer.receive(request(branch="z9hG4bKone", from_tag="a"), SRC, "udp", now=0.0)
    layer.receive(request(branch="z9hG4bKtwo", from_tag="b"), SRC, "udp", now=0.0)
    one, two = events(layer)
    layer.send_response(one.key, make_response(one.request, 200, to_tag="x"), now=0.0)
    layer.send_response(two.key, make_response(two.request, 200, to_tag="y"), now=0.0)
    ack = request("ACK", branch="z9hG4bKack", to_tag="y", from_tag="b")
    layer.receive(ack, SRC, "udp", now=0.1)
    assert [type(e) for e in events(layer)] == [RequestReceived]
    assert "2xx" in layer.get(one.key).timers  # still waiting for its own ACK
    assert "2xx" not in layer.get(two.key).timers
    sent_times(layer, 0.1, 40.0)
    (timeout,) = events(layer)  # Timer L: only the unacknowledged one
    assert isinstance(timeout, AckTimeout) and timeout.key == one.key


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_ends_the_client_transaction_with_503(method: str) -> None:
    """Review finding 6 (§17.1.1.2, §17.1.2.2): the request could not be sent (TCP connect
    failed): the TU gets a 503 at once instead of waiting 64*T1 for Timer B/F."""
    layer = TransactionLayer()
    dest = ("127.0.0.1", 5072)
    key = layer.send_request(request(method), dest, "tcp", now=0.0)
    other = layer.send_request(request(method, branch="z9hG4bKother"), dest, "tcp", now=0.0)
    (wire, _, _), _ = layer.datagrams_to_send()
    layer.transport_error(dest, "tcp", wire)
    (ev,) = events(layer)
    assert isinstance(ev, ResponseReceived) and ev.key == key and ev.response.status == 503
    assert layer.get(key) is None
    assert layer.get(other) is not None  # its request was not the one that failed
    assert layer.datagrams_to_send() == []  # no ACK for a 503 nobody sent


def test_a_settled_transaction_keeps_only_the_bytes_it_sent() -> None:
    """After the final response (an INVITE's 2xx: after its ACK) the parsed messages are
    freed at once, not after Timer J, L or M (32 s of every call over UDP); retransmissions
    are still answered from the bytes sent."""
    layer = TransactionLayer()
    dest = ("127.0.0.1", 5072)
    bye = request("BYE", branch="z9hG4bKbye", cseq=2, to_tag="x")
    layer.receive(bye, SRC, "udp", now=0.0)
    (ev,) = events(layer)
    layer.send_response(ev.key, make_response(ev.request, 200), now=0.0)
    (sent,) = layer.datagrams_to_send()
    inv = request(branch="z9hG4bKinv")
    layer.receive(inv, SRC, "udp", now=0.0)
    (got,) = events(layer)
    layer.send_response(got.key, make_response(got.request, 200, to_tag="x"), now=0.0)
    assert layer.get(got.key).request is inv  # its 2xx may go unacknowledged: AckTimeout
    layer.receive(request("ACK", branch="z9hG4bKack", to_tag="x"), SRC, "udp", now=0.1)
    out = request("INVITE", branch="z9hG4bKout")
    key = layer.send_request(out, dest, "udp", now=0.0)
    layer.receive(make_response(out, 200, to_tag="t"), dest, "udp", now=0.1)
    events(layer)
    layer.datagrams_to_send()
    for tx in (layer.get(ev.key), layer.get(got.key), layer.get(key)):
        assert tx is not None and tx.request is None and tx.last_response is None
    layer.receive(bye, SRC, "udp", now=1.0)
    assert layer.datagrams_to_send() == [sent] and events(layer) == []
    layer.receive(make_response(out, 200, to_tag="t"), dest, "udp", now=1.0)
    (again,) = events(layer)
    assert isinstance(again, ResponseReceived) and again.response.status == 200  # ACKed again
    layer.handle_timer(40.0)
    assert len(layer) == 0
