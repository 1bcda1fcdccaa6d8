"""Secure peers for live tests: the server listening on SIP/TLS with a certificate from a
throw-away CA (certs.py), baresip agents registered over TLS with SDES-keyed SRTP, and the
demo users with a per-user SRTP policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from . import ports
from .artifacts import REPO
from .baresip import BaresipAgent
from .certs import Certs
from .server import ServerProcess


class TlsServer(ServerProcess):
    """The server with `tls` among its transports; `tls_port` is its SIP/TLS port.
    `overrides` deep-merge into the config as for ServerProcess (`sip` ones included)."""

    def __init__(self, workdir: Path, certs: Certs, **overrides: Any) -> None:
        self.tls_port = ports.free_port()
        tls = {"certificate": str(certs.certificate), "key": str(certs.key),
               "ca": str(certs.ca), "port": self.tls_port}
        sip = {"transports": ["udp", "tcp", "tls"], "tls": tls, **overrides.pop("sip", {})}
        super().__init__(workdir, overrides={"sip": sip, **overrides})


def secure_agent(workdir: Path, user: str, password: str, port: int, wav: Path, certs: Certs,
                 *, transport: str = "tls", mediaenc: str = "") -> BaresipAgent:
    """A baresip agent registering at `port` over `transport`, trusting the test CA;
    `mediaenc` "srtp" (best effort) or "srtp-mand" (RTP/SAVP only)."""
    return BaresipAgent(workdir, user, password, registrar_port=port, ports=ports.allocate(20),
                        source_wav=wav, transport=transport, mediaenc=mediaenc, cafile=certs.ca)


def users_with_srtp(policies: dict[str, str]) -> list[dict[str, Any]]:
    """config.yaml's users with `users[].srtp` set for the ones named (user -> policy)."""
    users: list[dict[str, Any]] = yaml.safe_load(
        (REPO / "config.yaml").read_text(encoding="utf-8"))["users"]
    for user in users:
        if user["user"] in policies:
            user["srtp"] = policies[user["user"]]
    return users
