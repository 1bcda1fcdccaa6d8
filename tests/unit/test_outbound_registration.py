"""The client side of REGISTER: challenges answered once, refreshes, backoff, no tight loop."""

from __future__ import annotations

from callcenter.sip.auth import DigestAuthenticator
from callcenter.sip.message import Headers, Request, Response, make_response
from callcenter.sip.outbound_registration import Account, OutboundRegistration, RegState

VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport"
CONTACT = "<sip:acme@127.0.0.1:5060>"


class Carrier:
    """A registrar that demands digest (our own verifier) and grants ``grant`` seconds."""

    def __init__(self, password: str = "secret", grant: int = 120) -> None:
        self.auth = DigestAuthenticator("carrier", secret=b"k", algorithms=("MD5",))
        self.password, self.grant, self.seen = password, grant, 0

    def answer(self, req: Request, now: float, *, stale: bool = False) -> Response:
        self.seen += 1
        value = req.headers.get("Authorization")
        if value is None or stale or not self.auth.verify(
                value, method="REGISTER", lookup_password=lambda u: self.password, now=now).ok:
            resp = make_response(req, 401)
            for challenge in self.auth.challenge(now, stale=stale):
                resp.headers.add("WWW-Authenticate", challenge)
            return resp
        resp = make_response(req, 200)
        resp.headers.add("Contact", f"{CONTACT};expires={self.grant}")
        return resp


def reg(password: str = "secret", expires: int = 3600) -> OutboundRegistration:
    return OutboundRegistration(Account(user="acme", password=password, domain="carrier.test",
                                        contact=CONTACT, expires=expires))


def step(r: OutboundRegistration, carrier: Carrier, now: float, **kw: bool) -> list[Request]:
    """Poll and answer until the registration settles; the REGISTERs sent."""
    sent = []
    while (req := r.poll(now, via=VIA)) is not None:
        sent.append(req)
        r.on_response(carrier.answer(req, now, **kw), now)
        assert len(sent) < 10
    return sent


def test_registers_answering_the_challenge_and_refreshes_before_expiry() -> None:
    r, carrier = reg(), Carrier(grant=120)
    first = step(r, carrier, 0.0)
    assert [x.headers.get("Authorization") is None for x in first] == [True, False]
    assert r.state is RegState.REGISTERED and r.last is not None and r.last.expires == 120
    assert r.wake_at == 60.0 and r.registered_until == 120.0
    assert r.poll(59.9, via=VIA) is None
    refresh = step(r, carrier, 60.0)
    assert len(refresh) == 1  # the cached challenge answered without a new 401
    assert refresh[0].call_id == first[0].call_id
    assert refresh[0].cseq == (3, "REGISTER")
    assert refresh[0].headers.get("Contact") == CONTACT
    assert refresh[0].uri == "sip:carrier.test"


def test_long_bindings_are_refreshed_a_minute_early() -> None:
    r = reg()
    step(r, Carrier(grant=3600), 0.0)
    assert r.wake_at == 3540.0


def test_wrong_password_fails_once_per_attempt_with_backoff() -> None:
    r, carrier = reg(password="wrong"), Carrier()
    sent = step(r, carrier, 0.0)
    assert len(sent) == 2
    assert r.state is RegState.FAILED and r.last is not None and r.last.auth_failed
    assert r.wake_at == 5.0
    waits, now = [], 0.0
    for _ in range(10):
        assert r.wake_at is not None
        waits.append(r.wake_at - now)
        now = r.wake_at
        assert r.poll(now - 0.01, via=VIA) is None
        assert len(step(r, carrier, now)) <= 2
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300, 300]
    assert carrier.seen <= 22


def test_a_stale_nonce_is_answered_once_more_then_fails() -> None:
    r, carrier = reg(), Carrier()
    assert len(step(r, carrier, 0.0, stale=True)) == 3
    assert r.state is RegState.FAILED


def test_503_honours_retry_after_and_timeouts_back_off() -> None:
    r = reg()
    req = r.poll(0.0, via=VIA)
    assert req is not None
    busy = make_response(req, 503)
    busy.headers.add("Retry-After", "30")
    change = r.on_response(busy, 0.0)
    assert change is not None and change.status == 503 and r.wake_at == 30.0
    assert r.poll(30.0, via=VIA) is not None
    assert r.on_error("timeout", 62.0).status is None
    assert r.wake_at == 72.0  # second failure: 10 s


def test_423_raises_the_interval_and_asks_again_at_once() -> None:
    r = reg(expires=30)
    req = r.poll(0.0, via=VIA)
    assert req is not None and req.headers.get("Expires") == "30"
    brief = make_response(req, 423)
    brief.headers.add("Min-Expires", "600")
    assert r.on_response(brief, 0.0) is None
    again = r.poll(0.0, via=VIA)
    assert again is not None and again.headers.get("Expires") == "600"


def test_expires_header_when_the_contact_is_not_echoed_and_unregister() -> None:
    r = reg()
    req = r.poll(0.0, via=VIA)
    assert req is not None
    ok = Response(200, "OK", Headers())
    for name, value in req.headers:
        if name in ("Via", "From", "To", "Call-ID", "CSeq"):
            ok.headers.add(name, value)
    ok.headers.add("Expires", "90")
    change = r.on_response(ok, 0.0)
    assert change is not None and change.expires == 90
    bye = r.unregister(VIA)
    assert bye is not None and bye.headers.get("Expires") == "0"
    challenge = make_response(bye, 401)
    challenge.headers.add("WWW-Authenticate", Carrier().auth.challenge(1.0)[0])
    assert r.on_response(challenge, 1.0) is None
    again = r.poll(1.0, via=VIA)
    assert again is not None and again.headers.get("Expires") == "0"
    assert again.headers.get("Authorization") is not None
