"""Digest authentication (RFC 7616 / 2617 / 2069) and the failure limiter."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip.auth import (
    AuthParseError,
    AuthResult,
    DigestAuthenticator,
    FailureLimiter,
    build_authorization,
    digest_response,
    parse_auth_params,
)

REALM = "callcenter.example"
SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"agent101": "s3cret", "Jäsøn": "pässword"}
T0 = 1000.0


def lookup(user: str) -> str | None:
    return USERS.get(user)


def make_auth(**kwargs: object) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, secret=SECRET, **kwargs)  # type: ignore[arg-type]


def login(
    auth: DigestAuthenticator,
    *,
    user: str = "agent101",
    password: str = "s3cret",
    issued: float = T0,
    now: float = T0 + 1,
    which: int = 0,
    method: str = "REGISTER",
) -> AuthResult:
    challenge = auth.challenge(issued)[which]
    value = build_authorization(
        challenge,
        method=method,
        uri="sip:callcenter.example",
        username=user,
        password=password,
        cnonce="0a4f113b",
    )
    return auth.verify(value, method=method, lookup_password=lookup, now=now)


# ------------------------------------------------------------------- RFC test vectors

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_example(alg: str, expected: str) -> None:
    value = build_authorization(
        RFC7616_CHALLENGE.format(alg=alg),
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    scheme, params = parse_auth_params(value)
    assert scheme == "Digest"
    assert params == {
        "username": "Mufasa",
        "realm": "http-auth@example.org",
        "uri": "/dir/index.html",
        "algorithm": alg,
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "nc": "00000001",
        "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "qop": "auth",
        "response": expected,
        "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    }


def test_rfc2617_section_3_5_example() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = build_authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    params = parse_auth_params(value)[1]
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert "algorithm" not in params  # not in the challenge: MD5 implied, not added


def test_rfc2069_example_errata_corrected() -> None:
    # RFC 2069 §2.4 with the password of errata 749 ("CircleOfLife").
    challenge = 'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"'
    value = build_authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="CircleOfLife",
        cnonce="unused",
    )
    params = parse_auth_params(value)[1]
    assert params["response"] == "1949323746fe6a43ef61f9606e7febea"
    assert {"qop", "nc", "cnonce"}.isdisjoint(params)


def test_digest_response_sess_variant_matches_rfc_formula() -> None:
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    expected = md5(f"{ha1}:n:00000001:c:auth:{md5('INVITE:sip:x')}")
    got = digest_response(
        algorithm="md5-sess",
        username="u",
        realm="r",
        password="p",
        method="INVITE",
        uri="sip:x",
        nonce="n",
        qop="auth",
        nc="00000001",
        cnonce="c",
    )
    assert got == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithm": "SHA-512-256"},
        {"qop": "auth-int", "nc": "00000001", "cnonce": "c"},
        {"qop": "auth"},
        {"algorithm": "MD5-sess"},
    ],
)
def test_digest_response_rejects_what_it_cannot_compute(kwargs: dict) -> None:
    args = {"algorithm": "MD5", "username": "u", "realm": "r", "password": "p"}
    args |= {"method": "REGISTER", "uri": "sip:x", "nonce": "n"} | kwargs
    with pytest.raises(ValueError):
        digest_response(**args)


# ----------------------------------------------------------------------------- parser


def test_parse_handles_quotes_escapes_commas_and_case() -> None:
    value = (
        'Digest  USERNAME="a\\"b\\\\c" ,Realm = "x, y" ,nonce="",'
        'algorithm=MD5,uri="sip:h;transport=UDP",  ,qop=auth'
    )
    scheme, params = parse_auth_params(value)
    assert scheme == "Digest"
    assert params == {
        "username": 'a"b\\c',
        "realm": "x, y",
        "nonce": "",
        "algorithm": "MD5",
        "uri": "sip:h;transport=UDP",
        "qop": "auth",
    }


def test_parse_scheme_only() -> None:
    assert parse_auth_params("Digest") == ("Digest", {})


@pytest.mark.parametrize(
    "value",
    [
        "",
        '="x"',
        "Digest username",
        'Digest username="unterminated',
        'Digest username="a" realm="b"',  # missing comma
        'Digest username="a", username="b"',
        "Digest =x",
        'Dig"est a=b',
    ],
)
def test_parse_rejects_garbage(value: str) -> None:
    with pytest.raises(AuthParseError):
        parse_auth_params(value)


@given(
    st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), st.text(), max_size=6)
)
def test_quoted_values_round_trip(params: dict[str, str]) -> None:
    quoted = ", ".join(
        f'{k}="' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for k, v in params.items()
    )
    assert parse_auth_params(f"Digest {quoted}") == ("Digest", params)


# -------------------------------------------------------------------------- challenge


def test_challenge_offers_sha256_then_md5_with_shared_nonce() -> None:
    values = make_auth().challenge(T0)
    assert len(values) == 2
    parsed = [parse_auth_params(v) for v in values]
    assert [p["algorithm"] for _, p in parsed] == ["SHA-256", "MD5"]
    for scheme, params in parsed:
        assert scheme == "Digest"
        assert params["realm"] == REALM
        assert params["qop"] == "auth"
        assert "stale" not in params
    assert parsed[0][1]["nonce"] == parsed[1][1]["nonce"]
    assert parsed[0][1]["opaque"] == parsed[1][1]["opaque"]


def test_challenge_stale_flag_and_fresh_nonces() -> None:
    auth = make_auth(algorithms=("MD5",))
    (value,) = auth.challenge(T0, stale=True)
    assert parse_auth_params(value)[1]["stale"] == "TRUE"
    assert auth.challenge(T0)[0] != auth.challenge(T0)[0]


def test_authenticator_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, secret=b"")
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, secret=SECRET, algorithms=("SHA-1",))
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, secret=SECRET, algorithms=())


# ---------------------------------------------------------------------------- verify


@pytest.mark.parametrize("which", [0, 1])
def test_round_trip_both_algorithms(which: int) -> None:
    result = login(make_auth(), which=which)
    assert result == AuthResult(True, "agent101", False, "ok")


def test_round_trip_non_ascii_username() -> None:
    assert login(make_auth(), user="Jäsøn", password="pässword").ok


def test_nonce_reused_with_higher_nc_is_accepted() -> None:
    auth = make_auth()
    challenge = auth.challenge(T0)[0]
    for nc in (1, 2, 3):
        value = build_authorization(
            challenge,
            method="INVITE",
            uri="sip:0800@callcenter.example",
            username="agent101",
            password="s3cret",
            cnonce="abc",
            nc=nc,
        )
        assert f"nc={nc:08x}" in value
        assert auth.verify(value, method="INVITE", lookup_password=lookup, now=T0 + nc).ok


def test_method_is_part_of_the_digest() -> None:
    auth = make_auth()
    challenge = auth.challenge(T0)[0]
    value = build_authorization(
        challenge,
        method="REGISTER",
        uri="sip:h",
        username="agent101",
        password="s3cret",
        cnonce="c",
    )
    assert not auth.verify(value, method="INVITE", lookup_password=lookup, now=T0).ok


def test_wrong_password_and_unknown_user_are_indistinguishable() -> None:
    auth = make_auth()
    wrong = login(auth, password="guess")
    unknown = login(auth, user="nobody", password="guess")
    assert wrong.ok is unknown.ok is False
    assert wrong.reason == unknown.reason == "bad credentials"
    assert wrong.stale is unknown.stale is False
    assert (wrong.username, unknown.username) == ("agent101", "nobody")


def test_unknown_user_with_expired_nonce_is_not_stale() -> None:
    auth = make_auth(nonce_ttl=30.0)
    assert login(auth, user="nobody", now=T0 + 31) == login(auth, user="nobody", now=T0 + 1)


def test_expired_nonce_with_right_password_is_stale() -> None:
    auth = make_auth(nonce_ttl=30.0)
    assert login(auth, now=T0 + 30).ok
    result = login(auth, now=T0 + 31)
    assert (result.ok, result.stale, result.username) == (False, True, "agent101")
    wrong = login(auth, password="guess", now=T0 + 31)
    assert (wrong.ok, wrong.stale, wrong.reason) == (False, False, "bad credentials")


def test_nonce_from_the_future_is_rejected() -> None:
    result = login(make_auth(), issued=T0 + 100, now=T0)
    assert (result.ok, result.stale, result.reason) == (False, False, "bad nonce")


def tamper(value: str, param: str, replace: str) -> str:
    return re.sub(rf'{param}="[^"]*"', f'{param}="{replace}"', value)


def signed_value(auth: DigestAuthenticator, *, nonce: str | None = None) -> str:
    challenge = auth.challenge(T0)[1]
    if nonce is not None:
        challenge = tamper(challenge, "nonce", nonce)
    return build_authorization(
        challenge,
        method="REGISTER",
        uri="sip:h",
        username="agent101",
        password="s3cret",
        cnonce="c",
    )


def test_tampered_nonce_fails_even_with_a_matching_response() -> None:
    auth = make_auth()
    nonce = parse_auth_params(auth.challenge(T0)[0])[1]["nonce"]
    stamp, rand, mac = nonce.split(".")
    # Push the timestamp forward to dodge expiry; the client computes a valid response for it.
    later = f"{int(stamp, 16) + 10_000_000:x}.{rand}.{mac}"
    result = auth.verify(
        signed_value(auth, nonce=later), method="REGISTER", lookup_password=lookup, now=T0 + 20_000
    )
    assert (result.ok, result.stale, result.reason) == (False, False, "bad nonce")
    forged = auth.verify(
        signed_value(auth, nonce="1.2.3"), method="REGISTER", lookup_password=lookup, now=T0
    )
    assert (forged.ok, forged.reason) == (False, "bad nonce")


def test_nonce_from_another_secret_or_realm_fails() -> None:
    ours = make_auth()
    for other in (
        DigestAuthenticator(REALM, secret=b"another secret"),
        DigestAuthenticator("other.example", secret=SECRET),
    ):
        value = signed_value(other)
        assert other.verify(value, method="REGISTER", lookup_password=lookup, now=T0).ok
        # Without opaque (it differs too) and with our realm, only the nonce gives it away.
        value = re.sub(r', opaque="[^"]*"', "", value).replace(other.realm, REALM)
        result = ours.verify(value, method="REGISTER", lookup_password=lookup, now=T0)
        assert (result.ok, result.reason) == (False, "bad nonce")


def test_rfc2069_style_like_pyvoip() -> None:
    auth = make_auth()
    # pyVoIP keeps one WWW-Authenticate, ignores qop, and answers with MD5 and no cnonce.
    nonce = parse_auth_params(auth.challenge(T0)[0])[1]["nonce"]
    ha1 = hashlib.md5(f"agent101:{REALM}:s3cret".encode()).hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:10.0.0.1;transport=UDP").hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    value = (
        f'Digest username="agent101",realm="{REALM}",nonce="{nonce}",'
        f'uri="sip:10.0.0.1;transport=UDP",response="{response}",algorithm=MD5'
    )
    assert auth.verify(value, method="REGISTER", lookup_password=lookup, now=T0 + 5).ok
    no_alg = value.removesuffix(",algorithm=MD5")
    assert auth.verify(no_alg, method="REGISTER", lookup_password=lookup, now=T0 + 5).ok
    upper = value.replace(response, response.upper())
    assert auth.verify(upper, method="REGISTER", lookup_password=lookup, now=T0 + 5).ok


def test_md5_sess_round_trip() -> None:
    auth = make_auth()
    challenge = auth.challenge(T0)[1].replace("algorithm=MD5", "algorithm=MD5-sess")
    value = build_authorization(
        challenge,
        method="REGISTER",
        uri="sip:h",
        username="agent101",
        password="s3cret",
        cnonce="c",
    )
    assert auth.verify(value, method="REGISTER", lookup_password=lookup, now=T0).ok


def test_algorithm_not_enabled_is_refused() -> None:
    sha_only = make_auth(algorithms=("SHA-256",))
    value = signed_value(make_auth())  # an MD5 answer to a nonce of the same secret
    result = sha_only.verify(value, method="REGISTER", lookup_password=lookup, now=T0)
    assert (result.ok, result.reason) == (False, "unsupported algorithm")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda v: v.replace("Digest ", "Basic "), "unsupported scheme"),
        (lambda v: re.sub(r'uri="[^"]*", ', "", v), "missing uri"),
        (lambda v: re.sub(r'response="[^"]*", ', "", v), "missing response"),
        (lambda v: re.sub(r'username="[^"]*", ', "", v), "missing username"),
        (lambda v: tamper(v, "realm", "elsewhere"), "wrong realm"),
        (lambda v: tamper(v, "opaque", "0000"), "bad opaque"),
        (lambda v: v.replace("qop=auth", "qop=auth-int"), "unsupported qop"),
        (lambda v: v.replace("nc=00000001", "nc=1"), "bad nc or cnonce"),
        (lambda v: re.sub(r'cnonce="[^"]*", ', "", v), "bad nc or cnonce"),
        (lambda v: v.replace("algorithm=MD5", "algorithm=SHA-512"), "unsupported algorithm"),
        (lambda v: v + ", userhash=true", "userhash not supported"),
        (lambda v: v + ', response="dup"', "malformed header"),
        (lambda v: v[:-5], "malformed header"),
    ],
)
def test_verify_failures(edit, reason: str) -> None:  # type: ignore[no-untyped-def]
    auth = make_auth()
    value = signed_value(auth)
    assert auth.verify(value, method="REGISTER", lookup_password=lookup, now=T0).ok
    result = auth.verify(edit(value), method="REGISTER", lookup_password=lookup, now=T0)
    assert (result.ok, result.stale, result.reason) == (False, False, reason)


def test_opaque_may_be_omitted() -> None:
    auth = make_auth()
    value = re.sub(r', opaque="[^"]*"', "", signed_value(auth))
    assert "opaque" not in value
    assert auth.verify(value, method="REGISTER", lookup_password=lookup, now=T0).ok


def test_username_star_extended_notation() -> None:
    auth = make_auth()
    login_value = build_authorization(
        auth.challenge(T0)[0],
        method="REGISTER",
        uri="sip:h",
        username="Jäsøn",
        password="pässword",
        cnonce="c",
    )
    value = login_value.replace('username="Jäsøn"', "username*=UTF-8''J%C3%A4s%C3%B8n")
    result = auth.verify(value, method="REGISTER", lookup_password=lookup, now=T0)
    assert (result.ok, result.username) == (True, "Jäsøn")
    broken = login_value.replace('username="Jäsøn"', "username*=UTF-8''%FF")
    result = auth.verify(broken, method="REGISTER", lookup_password=lookup, now=T0)
    assert (result.ok, result.reason) == (False, "missing username")


@given(st.text(max_size=200))
def test_verify_never_raises_on_garbage(value: str) -> None:
    result = make_auth().verify(value, method="REGISTER", lookup_password=lookup, now=T0)
    assert result.ok is False


@given(st.text(alphabet=st.characters(), max_size=20))
def test_verify_never_raises_on_odd_usernames_and_responses(text: str) -> None:
    auth = make_auth()
    value = signed_value(auth)
    for param in ("username", "response", "uri", "nonce", "cnonce", "opaque"):
        edited = tamper(value, param, text.replace("\\", "").replace('"', ""))
        result = auth.verify(edited, method="REGISTER", lookup_password=lookup, now=T0)
        assert isinstance(result, AuthResult)


# --------------------------------------------------------------------- client misuse


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="x"',
        'Digest realm="x"',
        'Digest nonce="x"',
        'Digest realm="x", nonce="n", qop="auth-int"',
        'Digest realm="x", nonce="n", algorithm=SHA-512-256',
        'Digest realm="x, nonce="n"',
    ],
)
def test_build_authorization_rejects_unusable_challenges(challenge: str) -> None:
    with pytest.raises(ValueError):
        build_authorization(
            challenge, method="INVITE", uri="sip:x", username="u", password="p", cnonce="c"
        )


def test_build_authorization_quotes_special_characters() -> None:
    value = build_authorization(
        'Digest realm="we \\"quote\\"", nonce="n"',
        method="INVITE",
        uri="sip:x",
        username='a"b',
        password="p",
        cnonce="c",
    )
    params = parse_auth_params(value)[1]
    assert params["username"] == 'a"b'
    assert params["realm"] == 'we "quote"'


# ------------------------------------------------------------------- FailureLimiter


def test_limiter_blocks_after_max_failures_in_window() -> None:
    limiter = FailureLimiter(max_failures=3, window=60.0, block_for=300.0)
    assert not limiter.record_failure("10.0.0.1", 0.0)
    assert not limiter.record_failure("10.0.0.1", 10.0)
    assert not limiter.is_blocked("10.0.0.1", 10.0)
    assert limiter.record_failure("10.0.0.1", 20.0)  # the third one triggers the block
    assert limiter.is_blocked("10.0.0.1", 20.0)
    assert limiter.is_blocked("10.0.0.1", 319.9)
    assert not limiter.is_blocked("10.0.0.1", 320.0)
    assert not limiter.is_blocked("10.0.0.2", 20.0)


def test_limiter_failures_outside_window_do_not_count() -> None:
    limiter = FailureLimiter(max_failures=3, window=60.0, block_for=300.0)
    for t in (0.0, 30.0, 61.0, 95.0):  # never three within 60 s
        assert not limiter.record_failure("k", t)
    assert not limiter.is_blocked("k", 95.0)
    assert limiter.record_failure("k", 120.0)  # 61, 95, 120 are within 60 s


def test_limiter_failures_during_block_do_not_retrigger() -> None:
    limiter = FailureLimiter(max_failures=2, window=60.0, block_for=100.0)
    limiter.record_failure("k", 0.0)
    assert limiter.record_failure("k", 1.0)
    assert not limiter.record_failure("k", 50.0)
    assert not limiter.is_blocked("k", 101.0)
    # After the block the count starts afresh.
    assert not limiter.record_failure("k", 102.0)
    assert limiter.record_failure("k", 103.0)


def test_limiter_success_clears_failures_but_not_a_block() -> None:
    limiter = FailureLimiter(max_failures=2, window=60.0, block_for=100.0)
    limiter.record_failure("a", 0.0)
    limiter.record_success("a")
    assert not limiter.record_failure("a", 1.0)
    assert len(limiter) == 1
    limiter.record_success("a")
    assert len(limiter) == 0
    limiter.record_failure("b", 0.0)
    limiter.record_failure("b", 1.0)
    limiter.record_success("b")
    assert limiter.is_blocked("b", 2.0)
    limiter.record_success("never seen")


def test_limiter_drops_stale_entries() -> None:
    limiter = FailureLimiter(max_failures=5, window=60.0, block_for=300.0)
    for i in range(100):
        limiter.record_failure(f"10.0.0.{i}", float(i))
    assert len(limiter) == 100
    limiter.record_failure("late", 1000.0)
    assert len(limiter) == 1


def test_limiter_caps_tracked_keys() -> None:
    limiter = FailureLimiter(max_failures=5, window=60.0, block_for=300.0, max_keys=50)
    for i in range(1000):
        limiter.record_failure(i, 0.0)
        assert len(limiter) <= 50
    assert len(limiter) == 50


def test_limiter_validates_configuration() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(max_failures=0)
    with pytest.raises(ValueError):
        FailureLimiter(max_keys=0)


def test_authenticator_and_limiter_together() -> None:
    """What the registrar does: count bad credentials per source, stop verifying when blocked."""
    auth = make_auth()
    limiter = FailureLimiter(max_failures=3, window=60.0, block_for=300.0)
    source = "198.51.100.9"
    blocked_at = None
    for attempt in range(5):
        now = T0 + attempt
        if limiter.is_blocked(source, now):
            blocked_at = blocked_at if blocked_at is not None else attempt
            continue
        result = login(auth, password=f"guess{attempt}", now=now)
        assert not result.ok
        limiter.record_failure(source, now)
    assert blocked_at == 3
    assert login(auth, now=T0 + 301, issued=T0 + 300).ok
    assert not limiter.is_blocked(source, T0 + 302 + 300)
