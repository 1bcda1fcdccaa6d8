"""A throw-away CA and a server certificate for 127.0.0.1 / localhost, made with the openssl
command line (RSA 2048, valid a day), for the TLS tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path  #: the CA certificate (PEM) peers trust
    certificate: Path  #: the server certificate, signed by the CA
    key: Path  #: its private key
    combined: Path  #: certificate + key in one PEM (what baresip wants)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def make_certs(directory: Path, name: str = "server") -> Certs:
    """A new CA in `directory` and a certificate `name` signed by it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca = d / "ca.key", d / "ca.pem"
    if not ca.exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                 "-days", "1", "-subj", "/CN=callcenter test CA")
    key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={name}")
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "1", "-extfile", ext)
    combined = d / f"{name}-combined.pem"
    combined.write_text(cert.read_text() + key.read_text())
    return Certs(ca, cert, key, combined)
