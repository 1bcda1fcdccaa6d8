"""The registrar service over an in-memory transaction layer: challenges, REGISTER, expiry
and qualify with an injected clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from callcenter.sip.auth import DigestAuthenticator, FailureLimiter, build_authorization
from callcenter.sip.dialog import new_branch
from callcenter.sip.errors import SipError
from callcenter.sip.events import RequestReceived
from callcenter.sip.message import Request, Response, parse_message
from callcenter.sip.registrar import Registrar
from callcenter.sip.registrar_service import BindingChanged, RegistrarService
from callcenter.sip.stack import RequestTimeout, ServerRequest, answer_failure
from callcenter.sip.transaction import TransactionLayer

PHONE = ("127.0.0.1", 5070)


class FakeStack:
    user_agent = "callcenter-test"
    advertised = "127.0.0.1"

    def __init__(self) -> None:
        self.layer = TransactionLayer(t1=0.5)
        self.clock = 0.0
        self.sent: list[Request] = []
        self.answer: Response | None = None  # None: the OPTIONS times out
        self.transports = SimpleNamespace(contacts={})
        self.transport = "udp"  # what the phone's requests come over

    def answering(self, key: object, status: int) -> None:
        """A response goes out (the real stack times its handlers)."""

    def now(self) -> float:
        return self.clock

    def flush(self) -> None:
        pass

    def via(self, transport: str, branch: str | None = None) -> str:
        return f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch or new_branch()};rport"

    async def request(self, req: Request, dest: Any, transport: str) -> Response:
        self.sent.append(req)
        if self.answer is None:
            raise RequestTimeout(req.method)
        return self.answer

    def serve(self, req: Request) -> Response:
        """Hand ``req`` to a fresh server transaction; the final response it got."""
        self.layer.receive(req, PHONE, self.transport, self.clock)
        event = self.layer.next_event()
        assert isinstance(event, RequestReceived)
        sreq = ServerRequest(self, req, PHONE, self.transport, event.key)  # type: ignore[arg-type]
        try:  # as the real stack does: a raised SipError is the answer
            if req.method == "REGISTER":
                service.on_register(sreq)
            else:
                service.authenticate(sreq, proxy=True)
        except SipError as exc:
            answer_failure(sreq, exc)
        finals = [m for data, _, _ in self.layer.datagrams_to_send()
                  if isinstance(m := parse_message(data), Response) and m.status >= 200]
        assert len(finals) == 1
        return finals[0]


stack: FakeStack
service: RegistrarService
changes: list[BindingChanged]
users: list[tuple[str, bool]]
reach: list[tuple[str, bool]]


def setup_function() -> None:
    global stack, service, changes, users, reach
    stack, changes, users, reach = FakeStack(), [], [], []
    service = RegistrarService(
        stack=stack, registrar=Registrar(min_expires=60), passwords={"1001": "secret"},  # type: ignore[arg-type]
        auth=DigestAuthenticator("test", secret=b"k" * 32), limiter=FailureLimiter(),
        qualify_interval=30, on_binding=changes.append,
        on_user=lambda u, on: users.append((u, on)), on_reachability=lambda u, ok: reach.append((u, ok)),
        wall=lambda: 1_700_000_000.0,
    )


def register(*, cseq: int = 1, auth: str = "", method: str = "REGISTER",
             contact: str = "sip:1001@127.0.0.1:5070") -> Request:
    lines = [
        f"{method} sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={new_branch()}",
        "From: <sip:1001@127.0.0.1>;tag=a", "To: <sip:1001@127.0.0.1>",
        "Call-ID: reg-1", f"CSeq: {cseq} {method}", f"Contact: <{contact}>",
        "Expires: 120", *([auth] if auth else []), "Content-Length: 0", "", "",
    ]
    msg = parse_message("\r\n".join(lines).encode())
    assert isinstance(msg, Request)
    return msg


def answer(challenge: Response, password: str, *, header: str = "WWW-Authenticate",
           method: str = "REGISTER") -> str:
    value = build_authorization(
        challenge.headers.get_all(header)[0], method=method, uri="sip:127.0.0.1",
        username="1001", password=password, cnonce="c1",
    )
    return f"{'Proxy-' if header.startswith('Proxy') else ''}Authorization: {value}"


def test_register_is_challenged_then_bound_and_told() -> None:
    challenge = stack.serve(register())
    assert challenge.status == 401 and challenge.headers.get("WWW-Authenticate")
    ok = stack.serve(register(cseq=2, auth=answer(challenge, "secret")))
    assert ok.status == 200
    assert ok.headers.get_all("Contact") == ["<sip:1001@127.0.0.1:5070>;expires=120"]
    assert [(c.user, c.registered, c.expires, c.source) for c in changes] == [
        ("1001", True, 120, "udp:127.0.0.1:5070")]
    assert users == [("1001", True)]


def test_wrong_password_is_challenged_again_and_nothing_bound() -> None:
    challenge = stack.serve(register())
    again = stack.serve(register(cseq=2, auth=answer(challenge, "wrong")))
    assert again.status == 401 and not changes and not users
    assert not service.registrar.all_bindings()


def test_invite_from_a_user_gets_a_407_and_authenticates() -> None:
    challenge = stack.serve(register(method="INVITE"))
    assert challenge.status == 407 and challenge.headers.get("Proxy-Authenticate")
    value = answer(challenge, "secret", header="Proxy-Authenticate", method="INVITE")
    req = register(method="INVITE", cseq=2, auth=value)
    stack.layer.receive(req, PHONE, "udp", 0.0)
    event = stack.layer.next_event()
    assert isinstance(event, RequestReceived)
    sreq = ServerRequest(stack, req, PHONE, "udp", event.key)  # type: ignore[arg-type]
    assert service.authenticate(sreq, proxy=True) == "1001"
    assert service.is_user_signalling(req, PHONE)


def test_expiry_and_qualify_follow_the_injected_clock() -> None:
    challenge = stack.serve(register())
    stack.serve(register(cseq=2, auth=answer(challenge, "secret")))
    changes.clear()
    users.clear()
    assert service.tick(29.0) == []  # registered at 0: not due before 30 s
    due = service.tick(30.0)
    assert [b.contact for b in due] == ["sip:1001@127.0.0.1:5070"]
    assert service.tick(31.0) == []  # qualified at 30: due again at 60
    asyncio.run(service.qualify(due[0]))  # no answer: unreachable
    assert stack.sent[0].method == "OPTIONS" and stack.sent[0].uri == due[0].contact
    assert reach == [("1001", False)] and due[0].missed_qualify == 1
    service.tick(120.0)  # Expires: 120 runs out
    assert [(c.contact, c.registered, c.expired) for c in changes] == [
        ("sip:1001@127.0.0.1:5070", False, True)]
    assert users == [("1001", False)] and not service.registrar.all_bindings()


def test_phones_registered_together_are_qualified_spread_over_the_interval() -> None:
    """600 phones that registered in the same second are not all sent an OPTIONS at once:
    each one-second tick takes its share (600 / 30 s = 20), the longest unqualified first,
    and every phone is qualified once within the interval."""
    from callcenter.sip.registrar import Binding

    table = service.registrar._bindings
    for i in range(600):
        user = f"{2000 + i}"
        table[user] = {f"sip:{user}@127.0.0.1": Binding(
            user=user, contact=f"sip:{user}@127.0.0.1", expires_at=3600.0,
            source=("127.0.0.1", 6000 + i), transport="udp", call_id=f"c{i}", cseq=1,
            last_qualified=0.0)}  # all registered at 0
    assert service.tick(1.0) == []  # the loop's first tick: nothing due yet
    batches = [service.tick(float(t)) for t in range(2, 62)]
    assert [len(b) for b in batches[:28]] == [0] * 28  # due from 30 s on
    assert [len(b) for b in batches[28:58]] == [20] * 30  # 30.0 s .. 59.0 s, 20 a tick
    firsts = [b for batch in batches[28:58] for b in batch]
    assert len({b.user for b in firsts}) == 600  # each phone once
    assert {b.user for b in batches[58]} == {b.user for b in batches[28]}  # 60 s: oldest first


def test_a_phone_on_tls_is_dialled_at_its_contact_once_its_connection_is_gone() -> None:
    """The transports learn each TLS phone's Contact by its source, and forget it on expiry."""
    stack.transport = "tls"
    challenge = stack.serve(register())
    contact = "sips:1001@127.0.0.1:5071;transport=tls"
    stack.serve(register(cseq=2, auth=answer(challenge, "secret"), contact=contact))
    assert stack.transports.contacts == {("tls", PHONE): ("127.0.0.1", 5071)}
    service.tick(120.0)
    assert stack.transports.contacts == {}
