"""The media engine: RTP channels on UDP sockets, one 20 ms clock, play / record / bridge.

This is the only module of the media package that touches sockets or the event loop.

Control interface (the seam for moving media into worker processes later): the public methods
of `MediaEngine` and `Channel` (open_channel, configure, play, stop_playing, send_dtmf,
start_recording, stop_recording, bridge, unbridge, mix, set_matrix, unmix, close) are the
commands; the callbacks (`on_done`, `on_dtmf`, `on_bridge`) are the events coming back. Nothing else crosses it, so a worker can
offer the same calls over a pipe keyed by `Channel.id`.

Hot paths: one `call_at` ticker on a fixed grid of absolute deadlines drives every channel
that sends its own media; an arriving packet is read (one per readiness) from its non-blocking
socket and relayed at once, re-stamped into the peer's outgoing stream.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from . import g711
from .dtmf import DtmfError, InbandDtmfDetector, Rfc4733Receiver, event_packets
from .mixer import ULAW_SILENCE, JitterBuffer, mix_ulaw, normalise_matrix
from .prompts import Prompt
from .recorder import WavRecorder
from .rtp import (
    RTP_HEADER,
    SEQ_MOD,
    TS_MASK,
    TS_MOD,
    Bye,
    ReceptionStats,
    RtcpPacket,
    RtpError,
    RtpStream,
    decode_rtcp,
    encode_rtcp,
    is_plain_rtcp,
    payload_bounds,
    ts_delta,
)
from .srtp import SrtpError, SrtpSession, new_key
from .stats import ChannelStats, EngineStats

log = logging.getLogger(__name__)

Address = tuple[str, int]
PT_CN = 13
PTIME = 0.020
LATE_THRESHOLD = 0.010
"""A tick more than this late (s) counts as late."""
SR_INTERVAL_TICKS = 250
"""A sender report every 5 s (250 ticks) per sending channel, staggered across channels."""
_RECV_SIZE = 2048
#: seconds the latched RTP source must be silent before another source may take its place (a
#: phone whose NAT mapping changed mid-call); RFC 4961 symmetric RTP, hijack-safe
RELATCH_AFTER = 2.0
_SEQ_TS_SSRC = struct.Struct("!HII")  # octets 2-11 of the RTP header


class MediaError(Exception):
    """The engine cannot do what was asked (no free port, not started, channel closed)."""


class PlayOutcome(Enum):
    """Why a playback ended; passed to `on_done`."""

    DONE = "done"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    """Stopped by a DTMF digit because it was played with `interruptible=True`."""


DoneCallback = Callable[[PlayOutcome], None]
DtmfCallback = Callable[[str], None]


@dataclass(slots=True)
class _Playback:
    frames: Sequence[bytes]
    on_done: DoneCallback | None
    interruptible: bool
    loop: bool
    pos: int = 0


def _safe_call(fn: Callable[..., object], *args: object) -> None:
    """Run an owner's callback; a failure there must not stop the clock or the receive path."""
    try:
        fn(*args)
    except Exception:
        log.exception("media callback %r failed", fn)


class Channel:
    """One RTP endpoint: an even RTP port and the RTCP port above it. Made by `open_channel`."""

    def __init__(
        self,
        engine: MediaEngine,
        channel_id: int,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        *,
        inband_dtmf: bool,
    ) -> None:
        self.engine = engine
        assert engine._loop is not None, "channels are opened on a started engine"
        self._time: Callable[[], float] = engine._loop.time
        """The engine's clock (its loop's, looked up once: the packet path reads it for
        every packet)."""
        self.id = channel_id
        self.port: int = rtp_sock.getsockname()[1]
        self.rtcp_port: int = rtcp_sock.getsockname()[1]
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self.payload_type: int = g711.PCMU
        self.dtmf_payload_type: int | None = 101
        self.on_dtmf: DtmfCallback | None = None
        self.peer: Channel | None = None
        self._plain_to: Channel | None = None
        """The peer, while relaying to it takes nothing but a copy of the packet with our
        sequence, timestamp and SSRC: armed by `_on_packet` once it relayed a packet so,
        disarmed (`_disarm`) by every change that may need more (SRTP, a recording, a
        listener, in-band DTMF detection, a new bridge or mix, a new offer, closing)."""
        self._detector: InbandDtmfDetector | None = None
        self.inband_dtmf = inband_dtmf
        self.last_rtcp: list[RtcpPacket] = []
        """The last RTCP packets received (parsed; unknown types kept as OtherRtcp)."""
        self.send_silence = True
        """Send silence frames when nothing plays and the channel is not bridged."""
        self.stats = ChannelStats()
        self._rx = self.stats.reception
        self.latched = False
        """True once RTP came in: ``remote`` is then the source it came from (symmetric RTP,
        for phones behind NAT) and packets from elsewhere are dropped while that source keeps
        sending (no hijacking of the stream by whoever learns the port)."""
        self._heard = 0.0  # engine time of the last packet from the latched source
        self._silence_told = -1.0  # the _heard whose silence on_rtp_timeout was told of
        self.stream = RtpStream(
            ssrc=random.getrandbits(32),
            sequence=random.getrandbits(16),
            timestamp=random.getrandbits(32),
        )
        self.mix: Mix | None = None
        """The conference this channel is in (then it has no peer)."""
        self._jb: JitterBuffer | None = None
        self.closed = False
        self._sock = rtp_sock
        self._rtcp_sock = rtcp_sock
        self._silence = g711.silence(self.payload_type)
        self._current: _Playback | None = None
        self._queue: deque[_Playback] = deque()
        self._dtmf_out: deque[tuple[bytes, bool] | None] = deque()
        self._dtmf_event_ts = 0
        self._dtmf_rx = Rfc4733Receiver()
        self._rfc4733_seen = False
        self._recorder: WavRecorder | None = None
        self._rec_ssrc = -1
        self._rec_next_ts = 0
        self._rec_stereo = False
        self._listeners: list[Callable[[bytes], object]] = []
        self._sr_packets = 0
        self.srtp_key = new_key()
        """Our SRTP master key and salt, announced in our SDP when the leg uses SRTP."""
        self._srtp: SrtpSession | None = None

    # ------------------------------------------------------------------ control interface

    def configure(
        self,
        remote: Address | None = None,
        payload_type: int = g711.PCMU,
        dtmf_payload_type: int | None = 101,
        *,
        rtcp_remote: Address | None = None,
        srtp: tuple[str, bytes] | None = None,
    ) -> None:
        """Set where to send and what: payload type 0 (PCMU) or 8 (PCMA), and the RFC 4733
        payload type (None if the peer did not offer telephone-event). ``srtp`` (suite, the
        peer's key) makes the channel SRTP: what goes out is protected with ``srtp_key``,
        what comes in must authenticate with the peer's key or is dropped."""
        if payload_type not in (g711.PCMU, g711.PCMA):
            raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")
        self._disarm()
        if remote is not None:
            self.remote = remote
            self.rtcp_remote = rtcp_remote or (remote[0], remote[1] + 1)
            self.latched = False  # a new offer/answer: learn the source again
            self._heard = self.engine.now()  # RTP is expected from now on
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self._silence = g711.silence(payload_type)
        if srtp is None:
            self._srtp = None
        elif self._srtp is None or self._srtp.terms != (srtp[0], self.srtp_key, srtp[1]):
            self._srtp = SrtpSession(srtp[0], self.srtp_key, srtp[1])  # else: keep its state
        self.engine._refresh()

    def play(
        self,
        frames: Prompt | Sequence[bytes],
        on_done: DoneCallback | None = None,
        *,
        interruptible: bool = False,
        replace: bool = False,
        loop: bool = False,
    ) -> None:
        """Queue encoded 20 ms frames behind what is playing (or `replace` it). `on_done` gets a
        PlayOutcome when this item ends. `interruptible` items stop on a received DTMF digit;
        `loop` repeats until stopped (music on hold)."""
        if self.closed:
            raise MediaError(f"channel {self.id} is closed")
        if isinstance(frames, Prompt):
            if frames.codec != self.payload_type:
                frames = tuple(
                    g711.transcode(f, frames.codec, self.payload_type) for f in frames.frames
                )
            else:
                frames = frames.frames
        if replace:
            self.stop_playing()
        item = _Playback(frames, on_done, interruptible, loop)
        if not frames and not loop:
            if on_done is not None:
                _safe_call(on_done, PlayOutcome.DONE)
            return
        if self._current is None:
            self._current = item
        else:
            self._queue.append(item)

    def stop_playing(self, *, outcome: PlayOutcome = PlayOutcome.STOPPED) -> None:
        """Stop the current prompt and drop the queue; each item's on_done gets `outcome`."""
        items = [self._current, *self._queue] if self._current else list(self._queue)
        self._current = None
        self._queue.clear()
        for item in items:
            if item.on_done is not None:
                _safe_call(item.on_done, outcome)

    @property
    def playing(self) -> bool:
        return self._current is not None

    def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send digits as RFC 4733 events, one packet per tick, `gap_ms` apart."""
        if self.dtmf_payload_type is None:
            raise MediaError(f"channel {self.id}: the peer has no telephone-event payload type")
        for digit in digits:
            for pkt in event_packets(digit, duration_ms=duration_ms):
                self._dtmf_out.append((pkt.payload, pkt.marker))
            self._dtmf_out.extend([None] * max(1, gap_ms // 20))

    def dtmf_received(self, digit: str) -> None:
        """Report a digit (also used by signaling for SIP INFO): interrupts interruptible
        prompts, then calls on_dtmf."""
        self.stats.dtmf_in += 1
        if self._current is not None and self._current.interruptible:
            items = [self._current]
            while self._queue and self._queue[0].interruptible:
                items.append(self._queue.popleft())
            self._current = self._queue.popleft() if self._queue else None
            for item in items:
                if item.on_done is not None:
                    _safe_call(item.on_done, PlayOutcome.INTERRUPTED)
        if self.on_dtmf is not None:
            _safe_call(self.on_dtmf, digit)

    def start_recording(self, path: str | Path, *, stereo: bool = False) -> None:
        """Record what the far end sends, decoded, to an 8 kHz 16-bit WAV file; with `stereo`,
        the far end on the left and what this channel sends on the right."""
        self.stop_recording()
        self._disarm()
        self._recorder = WavRecorder(path, stereo=stereo)
        self._rec_stereo = stereo
        self._rec_ssrc = -1

    def stop_recording(self) -> None:
        self._rec_stereo = False
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    async def recording_closed(self) -> None:
        """Wait until the file of the last `stop_recording` is complete (here it already is;
        a media worker closes it a moment after)."""

    def add_listener(self, callback: Callable[[bytes], object]) -> None:
        """Call ``callback(pcm)`` with the decoded 16-bit linear audio of each received audio
        packet (an audio tap, e.g. answering-machine detection)."""
        self._disarm()
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[bytes], object]) -> None:
        """Stop calling ``callback``; no error if it was not added."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    @property
    def inband_dtmf(self) -> bool:
        return self._detector is not None

    @inband_dtmf.setter
    def inband_dtmf(self, enabled: bool) -> None:
        """Detect DTMF tones in received audio (until RFC 4733 events are seen)."""
        self._disarm()
        self._detector = InbandDtmfDetector() if enabled else None

    def handover(self) -> dict[str, Any]:
        """The state that must travel with the channel when another engine (a media worker)
        takes its sockets over: the outgoing stream (SSRC, sequence, timestamp), the latched
        source and the reception figures, so the far end sees one continuous stream. Plain
        JSON values; times are ages, as engines' clocks need not agree."""
        now = self.engine.now()
        stream = asdict(self.stream)
        stream["last_time"] = now - stream["last_time"]
        return {"stream": stream, "stats": asdict(self.stats), "remote": self.remote,
                "rtcp_remote": self.rtcp_remote, "latched": self.latched,
                "heard": now - self._heard, "sr_packets": self._sr_packets}

    def resume(self, state: dict[str, Any]) -> None:
        """Carry on from what `handover` gave (after `configure`)."""
        now = self.engine.now()
        stream = dict(state["stream"], last_time=now - state["stream"]["last_time"])
        self.stream = RtpStream(**stream)
        stats = dict(state["stats"])
        self.stats = ChannelStats(**stats | {"reception": ReceptionStats(**stats["reception"])})
        self._rx = self.stats.reception
        if state["remote"] is not None:
            self.remote = tuple(state["remote"])
            self.rtcp_remote = tuple(state["rtcp_remote"])
        self.latched, self._heard = state["latched"], now - state["heard"]
        self._sr_packets = state["sr_packets"]
        if self._srtp is not None:  # the SRTP streams' rollover counters go on too
            rx, out = self._rx, self.stream
            sent = (out.sequence - out.packets) % 0x10000 + out.packets  # the first one's + n
            heard = None if rx.ssrc is None else (rx.ssrc, rx.cycles + rx.max_seq)
            self._srtp.carry_on(out.ssrc, sent, heard)
        self.engine._refresh()

    stats_pending = False
    """A media worker's channel is True from close until its final figures came."""

    async def closed_stats(self) -> ChannelStats:
        """The final figures once closed (here `stats` at once; a media worker answers the
        close with them)."""
        return self.stats

    def close(self) -> None:
        """Stop everything, send RTCP BYE, release the ports. Idempotent."""
        if self.closed:
            return
        self.engine.unbridge(self)
        self.stop_playing()
        self.stop_recording()
        self._listeners.clear()
        if self.stream.packets and self.rtcp_remote is not None:
            self._send_rtcp(
                self._sr_bytes(self.engine.now(), time.time())
                + encode_rtcp(Bye((self.stream.ssrc,)))
            )
        self.closed = True
        self.engine._release(self)

    # ---------------------------------------------------------------------------- sending

    def _send(self, packet: bytes | bytearray) -> None:
        if self._srtp is not None:
            packet = self._srtp.protect(bytes(packet))
        try:
            self._sock.sendto(packet, self.remote)  # type: ignore[arg-type]
        except OSError:  # includes BlockingIOError: a full send buffer drops the packet
            self.stats.send_errors += 1
            return
        self.stats.packets_out += 1
        self.stats.bytes_out += len(packet)

    def _send_rtcp(self, packet: bytes) -> None:
        if self._srtp is not None:
            packet = self._srtp.protect_rtcp(packet)
        try:
            self._rtcp_sock.sendto(packet, self.rtcp_remote)  # type: ignore[arg-type]
            self.stats.rtcp_out += 1
        except OSError:
            self.stats.send_errors += 1

    def _tick(self, now: float, late: bool, skipped: int) -> None:
        """One 20 ms step of the clock: send a DTMF packet, a prompt frame or silence."""
        if self.remote is None:
            return
        stream = self.stream
        if self._dtmf_out:
            entry = self._dtmf_out.popleft()
            if entry is not None:
                payload, marker = entry
                self._account(late, skipped)
                if marker:
                    pkt = stream.local(payload, self.dtmf_payload_type or 101, now, marker=True)
                    self._dtmf_event_ts = stream.last_ts
                else:
                    pkt = stream.local(
                        payload, self.dtmf_payload_type or 101, now, timestamp=self._dtmf_event_ts
                    )
                self._send(pkt)
                return
        item = self._current
        if item is not None:
            frame = item.frames[item.pos]
            item.pos += 1
            self._account(late, skipped)
            self._send(stream.local(frame, self.payload_type, now, samples=len(frame)))
            if self._rec_stereo:
                self._record_out(frame, self.payload_type)
            if item.pos >= len(item.frames):
                if item.loop:
                    item.pos = 0
                else:
                    self._current = self._queue.popleft() if self._queue else None
                    if item.on_done is not None:
                        _safe_call(item.on_done, PlayOutcome.DONE)
            return
        if self.peer is not None or self.mix is not None or not self.send_silence:
            return
        self._account(late, skipped)
        self._send(stream.local(self._silence, self.payload_type, now, samples=len(self._silence)))
        if self._rec_stereo:
            self._record_out(self._silence, self.payload_type)

    def _account(self, late: bool, skipped: int) -> None:
        if late:
            self.stats.late_frames += 1
        if skipped:
            self.stats.missed_frames += skipped
            self.stream.skip(skipped * g711.FRAME_SAMPLES)

    def _sender_report(self, now: float, unix_time: float) -> None:
        if self.stream.packets != self._sr_packets and self.rtcp_remote is not None:
            self._sr_packets = self.stream.packets
            self._send_rtcp(self._sr_bytes(now, unix_time))

    def _sr_bytes(self, now: float, unix_time: float) -> bytes:
        """Our SR, with a reception report block once RTP came in."""
        sr = self.stream.sender_report(now, unix_time)
        block = self._rx.report_block()
        if block is not None:
            sr = replace(sr, reports=(block,))
        return encode_rtcp(sr)

    # -------------------------------------------------------------------------- receiving

    def _on_readable(self) -> None:
        """One datagram per readiness: the loop reports the socket again while more wait.
        Draining until the socket is empty cost every packet of a 50 packets/s stream a
        second, failing ``recvfrom`` and its exception: a tenth of a relayed packet's CPU and
        more than half of its latency under load (docs/benchmarks.md)."""
        try:
            data, addr = self._sock.recvfrom(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.stats.dropped_in += 1
            return
        now = self._time()
        peer = self._plain_to
        b1 = data[1]
        # The plain relay, inline: most packets of a bridged call are the next packet of the
        # stream being relayed, and each Python call or attribute written here costs every
        # packet. Calling `ReceptionStats.update` and `_send` instead of their in-order
        # lines below gives back a third of what this path saves (docs/benchmarks.md).
        # Anything else goes through `_on_packet`.
        if (peer is not None and b1 == self.payload_type and data[0] == 0x80
                and peer.payload_type == b1 and addr == self.remote
                and peer._current is None and not peer._dtmf_out):
            seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
            rx = self._rx
            prev = rx.transit
            out = None
            if ssrc == rx.ssrc and seq == (rx.max_seq + 1) & 0xFFFF and prev is not None:
                out = peer.stream.restamp(data, ssrc, ts, now)
            if out is not None:  # the next packet in order of the stream being relayed
                n = len(data)
                stats = self.stats
                stats.packets_in += 1
                stats.bytes_in += n
                self._heard = now
                # ReceptionStats.update for this case, inline (RFC 3550 A.1 and A.8)
                if not seq:
                    rx.cycles += SEQ_MOD
                rx.max_seq = seq
                rx.received += 1
                transit = int(now * rx.clock_rate) - ts
                rx.transit = transit
                d = (transit - prev) & TS_MASK
                if d & 0x8000_0000:
                    d = TS_MOD - d
                rx.jitter += (d - rx.jitter) / 16
                ps = peer.stats
                try:
                    peer._sock.sendto(out, peer.remote)  # type: ignore[arg-type]
                except OSError:  # as in _send
                    ps.send_errors += 1
                    return
                ps.packets_out += 1
                ps.bytes_out += n
                ps.relayed_out += 1
                return
        self._on_packet(data, addr, now)

    def _on_packet(self, data: bytes, addr: Address, now: float) -> None:
        n = len(data)
        if n < 12:
            self.stats.dropped_in += 1
            return
        b1 = data[1]
        if 192 <= b1 <= 223:  # RTCP multiplexed on the RTP port (RFC 5761)
            self._on_rtcp(data, addr)
            return
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect(data)
            except SrtpError:  # forged, replayed, plain RTP, or not yet keyed: never heard
                self._srtp_failed()
                return
            n = len(data)
        if data[0] == 0x80:
            start = 12
            end = n
        else:
            try:
                start, end = payload_bounds(data)
            except RtpError:
                self.stats.dropped_in += 1
                return
        pt = b1 & 0x7F
        if pt != self.payload_type and pt != self.dtmf_payload_type:
            if pt != PT_CN:
                self.stats.dropped_in += 1
            return
        stats = self.stats
        if addr != self.remote:  # symmetric RTP: answer where the media comes from
            if self.latched and now - self._heard < RELATCH_AFTER:
                stats.foreign_in += 1
                return
            self.remote = addr
            self.rtcp_remote = (addr[0], addr[1] + 1)
            self.engine._refresh()
        self.latched = True
        self._heard = now
        stats.packets_in += 1
        stats.bytes_in += n
        _, _, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        peer = self.peer
        if pt == self.dtmf_payload_type:
            self._rx.count(ssrc, seq)  # same sequence space; its timestamps are not for jitter
            self._on_event(data[start:end], ts, ssrc, b1, now)
            return
        self._rx.update(ssrc, seq, ts, now)
        if self._recorder is not None or self._listeners or (
                self._detector is not None and not self._rfc4733_seen):
            self._on_audio(data[start:end], pt, ts, ssrc)
        if (
            peer is not None
            and peer._current is None
            and not peer._dtmf_out
            and peer.remote is not None
        ):
            out: bytes | bytearray | None = peer.stream.restamp(data, ssrc, ts, now) if (
                start == 12 and end == n and peer.payload_type == pt) else None
            if out is None:  # a new source, a jump, a header with more, or transcoding
                payload = data[start:end]
                if peer.payload_type != pt:
                    payload = payload.translate(
                        g711.ULAW_TO_ALAW if pt == g711.PCMU else g711.ALAW_TO_ULAW)
                out = peer.stream.relay(payload, peer.payload_type, ssrc, ts, now,
                                        marker=b1 > 127, samples=len(payload))
            peer._send(out)
            peer.stats.relayed_out += 1
            if peer._rec_stereo:
                peer._record_out(bytes(out[12:]), peer.payload_type)
            elif self._plain_to is None and self._relays_plainly(peer):
                self._plain_to = peer
        elif self._jb is not None:
            payload = data[start:end]
            self._jb.push(payload if pt == g711.PCMU else payload.translate(g711.ALAW_TO_ULAW),
                          ts, ssrc)

    def _relays_plainly(self, peer: Channel) -> bool:
        """True when relaying to ``peer`` needs nothing but the copy (see `_plain_to`)."""
        return (self._srtp is None and peer._srtp is None and self._recorder is None
                and not self._listeners and not peer._rec_stereo and self.latched
                and (self._detector is None or self._rfc4733_seen)
                and peer.remote is not None)

    def _disarm(self) -> None:
        """Relay through `_on_packet` again, both ways, until it finds the relay plain."""
        self._plain_to = None
        peer = self.peer
        if peer is not None:
            peer._plain_to = None

    def _srtp_failed(self, plain: bool = False) -> None:
        """Count a packet the SRTP session refused. RTCP in the clear (``plain``: phones such
        as baresip send an APP before their SRTP is on and a BYE after it is off) is counted
        apart from failed authentication. Plain RTP is not: it cannot be told from forged SRTP
        (both are an RTP header and bytes), so it counts as failed."""
        if plain:
            self.stats.srtp_plain += 1
            self.engine.stats.srtp_plain += 1
        else:
            self.stats.srtp_failed += 1
            self.engine.stats.srtp_failed += 1

    def _send_mixed(self, frame: bytes, now: float, late: bool, skipped: int) -> None:
        """Send this tick's mixed µ-law frame, unless a prompt or DTMF has the channel."""
        if self._current is not None or self._dtmf_out or self.remote is None or self.closed:
            return
        pt = self.payload_type
        if pt != g711.PCMU:
            frame = frame.translate(g711.ULAW_TO_ALAW)
        self._account(late, skipped)
        self._send(self.stream.local(frame, pt, now, samples=len(frame)))
        if self._rec_stereo:
            self._record_out(frame, pt)

    def _record_out(self, payload: bytes, pt: int) -> None:
        if self._recorder is not None:
            self.stats.decoded += 1
            self._recorder.write(g711.decode(payload, pt), 1)

    def _on_event(self, payload: bytes, ts: int, ssrc: int, b1: int, now: float) -> None:
        try:
            digit = self._dtmf_rx.feed(payload, ts, ssrc)
        except DtmfError:
            self.stats.dropped_in += 1
            return
        peer = self.peer
        if (
            peer is not None
            and peer.dtmf_payload_type is not None
            and peer.remote is not None
            and not peer._dtmf_out
        ):
            peer._send(
                peer.stream.relay(
                    payload, peer.dtmf_payload_type, ssrc, ts, now, marker=b1 > 127, samples=0
                )
            )
            peer.stats.relayed_out += 1
        if digit is not None:
            self._rfc4733_seen = True
            self.dtmf_received(digit)

    def _on_audio(self, payload: bytes, pt: int, ts: int, ssrc: int) -> None:
        self.stats.decoded += 1
        pcm = g711.decode(payload, pt)
        rec = self._recorder
        if rec is not None:
            if ssrc == self._rec_ssrc:
                gap = ts_delta(ts, self._rec_next_ts)
                if 0 < gap <= g711.SAMPLE_RATE:  # lost packets: keep the timeline
                    rec.write(bytes(2 * gap), 0)
                elif gap < 0:  # late or duplicate: already covered
                    return
            self._rec_ssrc = ssrc
            self._rec_next_ts = (ts + len(payload)) & 0xFFFFFFFF
            rec.write(pcm, 0)
        if self._detector is not None and not self._rfc4733_seen:
            for digit in self._detector.feed(pcm):
                self.dtmf_received(digit)
        for listener in tuple(self._listeners):
            _safe_call(listener, pcm)

    def _on_rtcp_readable(self) -> None:
        try:
            data, addr = self._rtcp_sock.recvfrom(_RECV_SIZE)
        except OSError:
            return
        self._on_rtcp(data, addr)

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        if self.latched and self.remote is not None and addr[0] != self.remote[0]:
            self.stats.foreign_in += 1
            return
        if self._srtp is not None:
            try:
                data = self._srtp.unprotect_rtcp(data)
            except SrtpError:
                self._srtp_failed(is_plain_rtcp(data))
                return
        self.stats.rtcp_in += 1
        self.rtcp_remote = addr
        self.last_rtcp = decode_rtcp(data)


def mix_matrix(members: Sequence[Any], matrix: Sequence[Sequence[float]] | np.ndarray, *,
               new: bool = True) -> np.ndarray:
    """The normalised matrix for the (open, distinct) ``members`` of a mix, one row each."""
    m = normalise_matrix(matrix)
    if m.shape[0] != len(members):
        raise MediaError(f"matrix is {m.shape[0]}x{m.shape[0]}, mix has {len(members)} channels")
    if new and (len(set(map(id, members))) != len(members) or any(c.closed for c in members)):
        raise MediaError("mix needs distinct open channels")
    return m


def leave_mix(ch: Any, mixes: list[Any]) -> None:
    """Take ``ch`` out of its mix (its matrix row and column too); an empty mix is dropped."""
    mix = ch.mix
    ch.mix = None
    if mix is None or ch not in mix.channels:
        return
    i = mix.channels.index(ch)
    mix.channels.pop(i)
    mix.matrix = np.delete(np.delete(mix.matrix, i, 0), i, 1)
    if not mix.channels and mix in mixes:
        mixes.remove(mix)


class Mix:
    """A conference of channels mixed by the clock; made by `MediaEngine.mix`.

    ``matrix[listener][source]`` is the gain with which one member hears another (diagonal
    ignored); ``channels`` are the members in matrix order.
    """

    def __init__(self, engine: MediaEngine, channels: list[Channel], matrix: np.ndarray) -> None:
        self.engine = engine
        self.channels = channels
        self.matrix = matrix

    @property
    def active(self) -> bool:
        return self in self.engine._mixes


class MediaEngine:
    """RTP channels on one address and port range, driven by one 20 ms clock."""

    def __init__(
        self,
        address: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        *,
        ptime: float = PTIME,
    ) -> None:
        lo, hi = port_range
        if lo > hi or lo < 1 or hi > 65535:
            raise ValueError(f"bad port range {port_range}")
        self.address = address
        self.port_range = (lo + (lo & 1), hi)
        self.ptime = ptime
        self.stats = EngineStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._channels: dict[int, Channel] = {}
        self._clocked: tuple[Channel, ...] = ()
        self._clocked_dirty = False
        self._ports_used: set[int] = set()
        self._next_port = self.port_range[0]
        self._next_id = 1
        self._mixes: list[Mix] = []
        self.on_bridge: list[Callable[[Channel, Channel], None]] = []
        """Called with both channels after each `bridge` (recording policies, supervisors)."""
        self.rtp_timeout = 0.0
        """Seconds without RTP from a configured channel's far end before `on_rtp_timeout`
        is told (once per silence); 0 = never."""
        self.on_rtp_timeout: list[Callable[[Channel], None]] = []
        self.mix_ticks = 0
        self.mix_time = 0.0
        """Seconds spent mixing, over `mix_ticks` ticks that had mixes."""

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    async def start(self) -> None:
        """Start the clock on the running loop."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + self.ptime
        self._timer = self._loop.call_at(self._deadline, self._tick)

    def _check_silence(self, now: float) -> None:
        """Once a second: tell of channels whose far end has sent nothing for `rtp_timeout`."""
        for ch in self._clocked:
            if not ch.closed and ch._silence_told != ch._heard \
                    and now - ch._heard > self.rtp_timeout:
                ch._silence_told = ch._heard
                for fn in list(self.on_rtp_timeout):
                    _safe_call(fn, ch)

    async def close(self) -> None:
        """Close every channel and stop the clock."""
        for ch in list(self._channels.values()):
            ch.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def open_channel(self, *, inband_dtmf: bool = False,
                     sockets: tuple[socket.socket, socket.socket] | None = None,
                     near: object | None = None) -> Channel:
        """Bind an RTP (even) + RTCP port pair (or take the bound, non-blocking ``sockets`` a
        media worker was handed) and return its channel. ``near`` (where workers place a
        channel) means nothing in one process."""
        loop = self._loop
        if loop is None:
            raise MediaError("MediaEngine.start() was not awaited")
        rtp, rtcp = sockets or self._bind_pair()
        ch = Channel(self, self._next_id, rtp, rtcp, inband_dtmf=inband_dtmf)
        self._next_id += 1
        self._channels[ch.id] = ch
        self._ports_used.add(ch.port)
        loop.add_reader(rtp.fileno(), ch._on_readable)
        loop.add_reader(rtcp.fileno(), ch._on_rtcp_readable)
        self.stats.channels = len(self._channels)
        return ch

    def bridge(self, a: Channel, b: Channel, *, notify: bool = True) -> None:
        """Relay each channel's incoming audio and DTMF to the other as it arrives; a pair
        bridged already (early media) stays as it is. ``on_bridge`` hears of it (a
        conversation starts) unless ``notify`` is False."""
        if a is b or a.closed or b.closed:
            raise MediaError("bridge needs two open channels")
        if a.peer is not b or b.peer is not a:
            self.unbridge(a)
            self.unbridge(b)
            a.peer = b
            b.peer = a
        for fn in list(self.on_bridge) if notify else ():
            _safe_call(fn, a, b)

    def unbridge(self, ch: Channel) -> None:
        """Undo `bridge` for `ch` and its peer (both go back to silence or prompts); a channel
        in a mix leaves it."""
        ch._disarm()
        peer = ch.peer
        ch.peer = None
        if peer is not None and peer.peer is ch:
            peer.peer = None
        if ch.mix is not None:
            self._leave(ch)

    def mix(self, channels: Sequence[Channel], matrix: Sequence[Sequence[float]] | np.ndarray,
            ) -> Mix:
        """Join channels in a conference mixed on the clock: each hears the sum of the others
        weighted by its row of ``matrix`` (listener x source). Channels leave their bridge or
        previous mix."""
        members = list(channels)
        m = mix_matrix(members, matrix)
        for ch in members:
            self.unbridge(ch)
        mix = Mix(self, members, m)
        for ch in members:
            ch.mix = mix
            ch._jb = JitterBuffer()
        self._mixes.append(mix)
        return mix

    def set_matrix(self, mix: Mix, matrix: Sequence[Sequence[float]] | np.ndarray) -> None:
        """Change who hears whom in a mix (takes effect on the next tick)."""
        mix.matrix = mix_matrix(mix.channels, matrix, new=False)

    def unmix(self, mix: Mix) -> None:
        """Dissolve a mix; its channels go back to silence or prompts (bridge them again)."""
        for ch in list(mix.channels):
            self._leave(ch)
        if mix in self._mixes:
            self._mixes.remove(mix)

    def _leave(self, ch: Channel) -> None:
        ch._jb = None
        leave_mix(ch, self._mixes)

    def _mix_tick(self, now: float, late: bool, skipped: int) -> None:
        """Decode each member's next frame, mix per listener, encode and send; mixes of the
        same size are done together as one array."""
        t0 = time.perf_counter()
        groups: dict[int, list[Mix]] = {}
        for mix in self._mixes:
            if mix.channels:
                groups.setdefault(len(mix.channels), []).append(mix)
        for n, mixes in groups.items():
            raw = bytearray()
            for mix in mixes:
                for ch in mix.channels:
                    frame = ch._jb.pop() if ch._jb is not None else None
                    raw += frame if frame is not None else ULAW_SILENCE
            codes = np.frombuffer(raw, dtype=np.uint8).reshape(len(mixes), n, -1)
            mats = np.stack([mix.matrix for mix in mixes])
            out = mix_ulaw(codes, mats).tobytes()
            size = codes.shape[-1]
            pos = 0
            for mix in mixes:
                for ch in mix.channels:
                    ch._send_mixed(out[pos:pos + size], now, late, skipped)
                    pos += size
        self.mix_ticks += 1
        self.mix_time += time.perf_counter() - t0

    # ------------------------------------------------------------------------- internals

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        lo, hi = self.port_range
        span = (hi - lo) // 2 + 1
        for _ in range(span):
            port = self._next_port
            self._next_port = port + 2 if port + 3 <= hi else lo
            if port in self._ports_used or port + 1 > hi:
                continue
            socks = []
            try:
                for p in (port, port + 1):
                    s = socket.socket(
                        socket.AF_INET6 if ":" in self.address else socket.AF_INET,
                        socket.SOCK_DGRAM,
                    )
                    socks.append(s)
                    s.setblocking(False)
                    s.bind((self.address, p))
            except OSError:
                for s in socks:
                    s.close()
                continue
            return socks[0], socks[1]
        raise MediaError(f"no free RTP port pair in {self.port_range}")

    def _release(self, ch: Channel) -> None:
        loop = self._loop
        for s in (ch._sock, ch._rtcp_sock):
            if loop is not None:
                loop.remove_reader(s.fileno())
            s.close()
        self._channels.pop(ch.id, None)
        self._ports_used.discard(ch.port)
        self.stats.channels = len(self._channels)
        self._refresh()

    def _refresh(self) -> None:
        """Note that the set of clocked channels changed; the next tick rebuilds it once.

        Rebuilding here cost O(channels) per call setup, teardown and remote change, which was
        the top hot spot of the CPS benchmark (docs/benchmarks.md)."""
        self._clocked_dirty = True

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        stats = self.stats
        lateness = now - self._deadline
        skipped = 0
        if lateness >= self.ptime:  # stalled: skip whole ticks instead of bursting
            skipped = int(lateness / self.ptime)
            stats.missed_ticks += skipped
            self._deadline += skipped * self.ptime
        late = lateness > LATE_THRESHOLD
        if late:
            stats.late_ticks += 1
        if lateness > stats.max_lateness:
            stats.max_lateness = lateness
        stats.ticks += 1
        self._deadline += self.ptime
        self._timer = loop.call_at(self._deadline, self._tick)
        slot = stats.ticks % SR_INTERVAL_TICKS
        unix_time = 0.0
        if self._clocked_dirty:
            self._clocked_dirty = False
            self._clocked = tuple(c for c in self._channels.values() if c.remote is not None)
        for ch in self._clocked:
            if ch.closed:
                continue
            try:
                ch._tick(now, late, skipped)
                if ch.id % SR_INTERVAL_TICKS == slot:
                    unix_time = unix_time or time.time()
                    ch._sender_report(now, unix_time)
            except Exception:
                log.exception("media channel %d failed on the clock", ch.id)
        if self.rtp_timeout and stats.ticks % 50 == 0:
            self._check_silence(now)
        if self._mixes:
            try:
                self._mix_tick(now, late, skipped)
            except Exception:
                log.exception("mixing failed on the clock")
