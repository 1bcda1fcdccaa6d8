"""SRTP and SRTCP (RFC 3711) for one channel, by libsrtp through ``pylibsrtp``: no crypto here.

One session protects what we send with our master key, the other checks and decrypts what
the peer sends with its key (SDES, RFC 4568: each side announces the key it sends with).
"""

from __future__ import annotations

import os
import struct

import pylibsrtp

#: SDES suite names (RFC 4568 §6.2) to libsrtp profiles; the _32 profile keeps the 80-bit
#: tag on SRTCP, as RFC 4568 §6.2.2 requires
PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_LENGTH = 30  #: master key and salt of the AES_CM_128 suites
_STEP = 0x4000
"""Index steps of `SrtpSession.carry_on`: under half the sequence space, so libsrtp's guess
of the rollover counter follows each one."""
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

    def carry_on(self, ssrc: int, sent: int, heard: tuple[int, int] | None) -> None:
        """Bring this fresh session to where another one with the same keys left off (a
        channel moved to another media worker). libsrtp keys each packet by its index, the
        sequence number plus the rollover counter (ROC) the stream has counted; pylibsrtp has
        no call to set the ROC (its binding lacks srtp_set_stream_roc), so throwaway packets,
        never sent, go through each direction in `_STEP`s up to below the next index:
        ``sent`` is the index our next packet (SSRC ``ssrc``) has, ``heard`` the far end's
        SSRC and the highest index received from it."""
        def packet(ssrc: int, index: int) -> bytes:
            return struct.pack("!BBHII", 0x80, 0, index & 0xFFFF, 0, ssrc) + bytes(4)

        for index in range(_STEP, sent, _STEP):
            self.protect(packet(ssrc, index))
        if heard is not None:
            suite, local, remote = self.terms
            far = SrtpSession(suite, remote, local)
            for index in range(_STEP, heard[1], _STEP):
                self.unprotect(far.protect(packet(heard[0], index)))
