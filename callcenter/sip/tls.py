"""TLS contexts for SIP over TLS (RFC 3261 §26) from the configured files, stdlib ``ssl``.

``verify_peer`` checks the certificate of every server we connect to (a trunk, a phone's
contact) against ``ca`` (the system's store when none) and the host we dialled; a phone that
presents a client certificate must chain to ``ca`` as well (phones without one log in with
their digest password, as over UDP).
"""

from __future__ import annotations

import ssl


def server_context(*, certificate: str, key: str, ca: str | None,
                   verify_peer: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certificate, key)
    if verify_peer:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        _trust(ctx, ca, ssl.Purpose.CLIENT_AUTH)
    return ctx


def client_context(*, certificate: str | None, key: str | None, ca: str | None,
                   verify_peer: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify_peer:
        _trust(ctx, ca, ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certificate:  # offered to carriers that ask for a client certificate
        ctx.load_cert_chain(certificate, key)
    return ctx


def _trust(ctx: ssl.SSLContext, ca: str | None, purpose: ssl.Purpose) -> None:
    if ca:
        ctx.load_verify_locations(cafile=ca)
    else:
        ctx.load_default_certs(purpose)
