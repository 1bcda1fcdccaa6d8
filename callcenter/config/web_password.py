"""Passwords for the API login only (``web_password``), kept as scrypt hashes.

SIP digest needs the HA1 (``ha1:``), which anyone holding it can log in with; a separate
web password set by the API is stored as ``scrypt:N:r:p:<salt hex>:<key hex>`` (RFC 7914,
through OpenSSL's ``hashlib.scrypt``: N = 2**14, r = 8, p = 1, a random 16-byte salt, a
32-byte key), so the stored value gives nothing away but by brute force.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

N, R, P, SALT_BYTES, KEY_BYTES = 2**14, 8, 1, 16, 32
#: what a stored web password looks like (N a power of two up to 2**20, r and p small)
PATTERN = re.compile(r"scrypt:(\d{1,7}):(\d{1,2}):(\d{1,2}):([0-9a-f]{32}):([0-9a-f]{64})")


def _key(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=256 * n * r + 1024 * 1024)


def hash_web_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    return f"scrypt:{N}:{R}:{P}:{salt.hex()}:{_key(password, salt, N, R, P).hex()}"


def valid(stored: str) -> bool:
    m = PATTERN.fullmatch(stored)
    if m is None:
        return False
    n, r, p = (int(g) for g in m.groups()[:3])
    return 2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16


def web_password_matches(stored: str, given: str) -> bool:
    """``given`` hashes to ``stored`` (compared in constant time); False for a malformed one."""
    m = PATTERN.fullmatch(stored)
    if m is None or not valid(stored):
        return False
    n, r, p = (int(g) for g in m.groups()[:3])
    key = _key(given, bytes.fromhex(m.group(4)), n, r, p)
    return hmac.compare_digest(key, bytes.fromhex(m.group(5)))
