"""SDES keys for SRTP in SDP (RFC 4568 ``a=crypto``), pure.

``a=crypto:<tag> <suite> inline:<base64 master key||salt>[|lifetime][|MKI:length]
[session params]``. We take the AES_CM_128_HMAC_SHA1_80 and _32 suites (30 octets of key
and salt) with one key each; a line with an MKI, several keys or session parameters is
treated as unknown (skipped). The policy of a leg is ``off`` (plain RTP), ``optional``
(SRTP when the peer offers or accepts it) or ``required`` (RTP/SAVP, SRTP or nothing).
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
KEY_LENGTH = 30  #: master key (16) + master salt (14) octets
SECURE_PROTOS = frozenset({"RTP/SAVP", "RTP/SAVPF"})
POLICIES = ("off", "optional", "required")


class Crypto(NamedTuple):
    """One usable ``a=crypto`` line."""

    tag: int
    suite: str
    key: bytes  #: master key || master salt

    def __str__(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def parse_crypto(value: str) -> Crypto | None:
    """The line's key if we can use it, else None (unknown suite, MKI, bad key...)."""
    parts = value.split()
    if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in SUITES:
        return None  # session parameters (a 4th field) change the transform: not ours
    method, _, params = parts[2].partition(":")
    if method != "inline" or "|" in params and ":" in params.split("|", 1)[1]:
        return None  # several keys or an MKI
    try:
        key = base64.b64decode(params.split("|", 1)[0], validate=True)
    except (binascii.Error, ValueError):
        return None
    return Crypto(int(parts[0]), parts[1], key) if len(key) == KEY_LENGTH else None


def offered_cryptos(attributes: list[tuple[str, str | None]]) -> list[Crypto]:
    """The usable crypto lines among a media section's attributes, in order."""
    found = (parse_crypto(value) for name, value in attributes if name == "crypto" and value)
    return [c for c in found if c is not None]
