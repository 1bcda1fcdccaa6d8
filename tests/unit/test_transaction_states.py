"""Every (state, input) pair of the four transaction machines, in the style of h2's
test_state_machines: each pair has a table entry that leads to a state of that machine with
actions the layer can run, or raises TransactionError."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip.message import Request, make_response, parse_message
from callcenter.sip.transaction import (
    TABLE,
    TIMER_C,
    TIMER_D,
    Do,
    Input,
    Machine,
    Start,
    Stop,
    Timer,
    Transaction,
    TransactionError,
    TransactionLayer,
    TxState,
    client_key,
    server_key,
    step,
)

S = TxState
STATES = {
    Machine.INVITE_CLIENT: {S.CALLING, S.PROCEEDING, S.COMPLETED, S.ACCEPTED},
    Machine.NON_INVITE_CLIENT: {S.TRYING, S.PROCEEDING, S.COMPLETED},
    Machine.INVITE_SERVER: {S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.ACCEPTED},
    Machine.NON_INVITE_SERVER: {S.TRYING, S.PROCEEDING, S.COMPLETED},
}
TIMERS = {
    Machine.INVITE_CLIENT: {Timer.A, Timer.B, Timer.C, Timer.D, Timer.M},
    Machine.NON_INVITE_CLIENT: {Timer.E, Timer.F, Timer.K},
    Machine.INVITE_SERVER: {Timer.G, Timer.H, Timer.I, Timer.L, Timer.RETRANSMIT_2XX},
    Machine.NON_INVITE_SERVER: {Timer.J},
}
EVENTS: list[Input | Timer] = [*Input, *Timer]
PEER = ("127.0.0.1", 5072)


@functools.cache
def request(method: str) -> Request:
    msg = parse_message((
        f"{method} sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKs\r\n"
        "From: <sip:b@127.0.0.1>;tag=f\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c@t\r\n"
        f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


@given(st.sampled_from(Machine), st.sampled_from(TxState), st.sampled_from(EVENTS),
       st.sampled_from(["udp", "tcp"]))
def test_every_pair_has_a_valid_entry_or_raises(
    machine: Machine, state: TxState, event: Input | Timer, transport: str
) -> None:
    check_pair(machine, state, event, transport)


def test_every_pair_exhaustively() -> None:
    for args in itertools.product(Machine, TxState, EVENTS, ["udp", "tcp"]):
        check_pair(*args)


def check_pair(machine: Machine, state: TxState, event: Input | Timer, transport: str) -> None:
    invite = machine in (Machine.INVITE_CLIENT, Machine.INVITE_SERVER)
    server = machine in (Machine.INVITE_SERVER, Machine.NON_INVITE_SERVER)
    req = request("INVITE" if invite else "OPTIONS")
    key = server_key(req) if server else client_key("z9hG4bKs", req.method)
    layer = TransactionLayer()
    tx = Transaction(key, req, PEER, transport, server, state, wire=b"x", interval=0.5)
    tx.last_response = make_response(req, 200)
    layer._txs[key] = tx
    status = {Input.RECV_1XX: 180, Input.SEND_1XX: 180, Input.RECV_FINAL: 486,
              Input.SEND_FINAL: 486}.get(event, 200)  # type: ignore[call-overload]
    kwargs = {"response": make_response(req, status, to_tag="t"),
              "request": request("ACK") if event is Input.RECV_ACK else req,
              "source": PEER, "transport": transport}
    try:
        actions, after = step(machine, state, event)
    except TransactionError:
        with pytest.raises(TransactionError):
            layer._input(tx, event, 1.0, **kwargs)
        return
    assert state in STATES[machine]
    assert after in STATES[machine] | {S.TERMINATED}
    assert (Do.TERMINATE in actions) == (after is S.TERMINATED)
    if {Do.TIMEOUT, Do.ACK_TIMEOUT, Do.FAIL_503} & set(actions):  # the TU hears of its end
        assert after is S.TERMINATED
    if isinstance(event, Timer):
        assert event in TIMERS[machine]
    for action in actions:
        if isinstance(action, Start | Stop):
            assert action.timer in TIMERS[machine]
            if isinstance(action, Start):  # from T1, T4 or the RFC's fixed C and D
                assert layer.duration(action.timer, tx) in {
                    None, 0.0, tx.interval, 64 * layer.t1, layer.t4, TIMER_C, TIMER_D}
        else:
            assert isinstance(action, Do)
    layer._input(tx, event, 1.0, **kwargs)
    assert tx.state is after
    assert (layer.get(key) is None) == (after is S.TERMINATED)
    assert all(timer in TIMERS[machine] for timer in tx.timers)


@pytest.mark.parametrize("machine", list(Machine))
def test_every_running_timer_has_an_entry_where_it_can_fire(machine: Machine) -> None:
    """Follow the table from the start: a timer still running in a state can fire there."""
    table = TABLE[machine]
    first = next(s for (s, event) in table if event is Input.START)
    running: dict[TxState, set[Timer]] = {first: set()}
    todo = [first]
    while todo:
        state = todo.pop()
        for (source, _), (actions, after) in table.items():
            if source is not state or after is S.TERMINATED:
                continue
            timers = set(running[state])
            for action in actions:
                if action is Do.STOP_TIMERS:
                    timers.clear()
                elif isinstance(action, Start):
                    timers.add(action.timer)
                elif isinstance(action, Stop):
                    timers.discard(action.timer)
            if not timers <= running.setdefault(after, set()):
                running[after] |= timers
                todo.append(after)
    for state, timers in running.items():
        for timer in timers:
            assert (state, timer) in table, f"{machine}: {timer} can fire in {state}"
    assert set(running) == STATES[machine]  # every state is reachable
