"""SRTP and SRTCP (RFC 3711) for one channel, by libsrtp through ``pylibsrtp``: no crypto here.

One session protects what we send with our master key, the other checks and decrypts what
the peer sends with its key (SDES, RFC 4568: each side announces the key it sends with).
"""

from __future__ import annotations

import os

import pylibsrtp

#: SDES suite names (RFC 4568 §6.2) to libsrtp profiles; the _32 profile keeps the 80-bit
#: tag on SRTCP, as RFC 4568 §6.2.2 requires
PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_LENGTH = 30  #: master key and salt of the AES_CM_128 suites
SrtpError = pylibsrtp.Error


def new_key() -> bytes:
    return os.urandom(KEY_LENGTH)


class SrtpSession:
    """``protect``/``unprotect`` (and the RTCP ones) raise ``SrtpError`` on a packet that
    fails authentication or replay checks."""

    def __init__(self, suite: str, local_key: bytes, remote_key: bytes) -> None:
        profile = PROFILES[suite]
        self.terms = (suite, local_key, remote_key)
        out = pylibsrtp.Policy(key=local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                               srtp_profile=profile)
        inn = pylibsrtp.Policy(key=remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                               srtp_profile=profile)
        tx, rx = pylibsrtp.Session(policy=out), pylibsrtp.Session(policy=inn)
        self.protect, self.protect_rtcp = tx.protect, tx.protect_rtcp
        self.unprotect, self.unprotect_rtcp = rx.unprotect, rx.unprotect_rtcp
