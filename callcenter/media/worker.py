"""A media worker process: its own event loop, 20 ms clock and `MediaEngine`, commanded over a
socketpair by `proxy.MediaWorkers` (``python -m callcenter.media.worker FD``).

Channel ids are the signalling side's; the RTP and RTCP sockets come with `Open` (bound by the
signalling process, so it knows the port at once and can hand the channel to another worker).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

from . import protocol as p
from .engine import Channel, MediaEngine, PlayOutcome
from .engine import Mix as EngineMix
from .link import Link
from .prompts import Prompt

log = logging.getLogger(__name__)
STATS_INTERVAL = 1.0
STATS_SLICES = 50
"""Each channel's figures go once per STATS_INTERVAL, a 50th of the channels at a time: all of
them at once (600 channels, about 7 ms of encoding) held the relay up once a second."""


class Worker:
    """Carries out the commands on an in-process engine and sends its events back."""

    def __init__(self, engine: MediaEngine, sock: socket.socket) -> None:
        self.engine = engine
        self.channels: dict[int, Channel] = {}
        self.mixes: dict[int, EngineMix] = {}
        self.prompts: dict[str, Prompt] = {}
        self.done = asyncio.Event()
        self._reported: dict[int, tuple[int, int]] = {}
        self.link = Link(sock, self.handle, self.done.set)
        engine.on_rtp_timeout.append(self._silent)

    def _silent(self, ch: Channel) -> None:
        for i, c in self.channels.items():
            if c is ch:
                self.link.send(p.RtpTimeout(i))

    def handle(self, msg: Any) -> None:
        if isinstance(msg, p.Open):
            rtp, rtcp = (socket.socket(fileno=self.link.fds.popleft()) for _ in range(2))
            ch = self.engine.open_channel(inband_dtmf=msg.inband_dtmf, sockets=(rtp, rtcp))
            self.channels[msg.ch] = ch
            ch.on_dtmf = lambda digit, i=msg.ch: self.link.send(p.Dtmf(i, digit))
            return
        if isinstance(msg, p.Mix | p.SetMatrix | p.Unmix):
            self._mix(msg)
            return
        if isinstance(msg, p.Settings):
            self.engine.rtp_timeout = msg.rtp_timeout
            return
        if isinstance(msg, p.Ping):
            self.link.send(p.Pong(msg.n))
            return
        if isinstance(msg, p.Bridge):
            self.engine.bridge(self.channels[msg.a], self.channels[msg.b])
            return
        ch = self.channels[msg.ch]
        match msg:
            case p.Configure():
                if msg.srtp_key:
                    ch.srtp_key = base64.b64decode(msg.srtp_key)
                srtp = None if msg.srtp is None else (msg.srtp[0], base64.b64decode(msg.srtp[1]))
                ch.configure(msg.remote, msg.payload_type, msg.dtmf_payload_type,
                             rtcp_remote=msg.rtcp_remote, srtp=srtp)
            case p.Play():
                self._play(ch, msg)
            case p.StopPlaying():
                ch.stop_playing()
            case p.SendDtmf():
                ch.send_dtmf(msg.digits, duration_ms=msg.duration_ms, gap_ms=msg.gap_ms)
            case p.DtmfReceived():
                ch.dtmf_received(msg.digit)
            case p.Record():
                ch.start_recording(msg.path, stereo=msg.stereo)
            case p.StopRecording():
                ch.stop_recording()
                self.link.send(p.Recorded(msg.ch))
            case p.Listen():
                ch._listeners.clear()
                if msg.on:
                    ch.add_listener(partial(self._audio, msg.ch))
            case p.Unbridge():
                self.engine.unbridge(ch)
            case p.Resume():
                if msg.state is not None:
                    ch.resume(msg.state)
            case p.Close():
                del self.channels[msg.ch]
                self._reported.pop(msg.ch, None)
                if msg.moving:  # the next worker carries the stream on: no RTCP BYE
                    self.link.send(p.Moved(msg.ch, ch.handover()))
                    ch.stream.packets = 0
                ch.close()
                if not msg.moving:
                    self.link.send(p.Closed(msg.ch, ch.stats))

    def _play(self, ch: Channel, msg: p.Play) -> None:
        for key in msg.forget:
            self.prompts.pop(key, None)
        prompt = self.prompts.get(msg.key) if not msg.data else None
        if prompt is None:
            size = msg.frame_size
            frames = tuple(msg.data[i:i + size] for i in range(0, len(msg.data), size))
            prompt = Prompt(msg.key, msg.codec, frames)
            if msg.key:
                self.prompts[msg.key] = prompt
        ch.play(prompt, partial(self._done, msg.ch, msg.play), interruptible=msg.interruptible,
                replace=msg.replace, loop=msg.loop)

    def _done(self, ch: int, play: int, outcome: PlayOutcome) -> None:
        self.link.send(p.PlayDone(ch, play, outcome.value))

    def _audio(self, ch: int, pcm: bytes) -> None:
        self.link.send(p.Audio(ch, pcm))

    def _mix(self, msg: p.Mix | p.SetMatrix | p.Unmix) -> None:
        if isinstance(msg, p.Mix):  # mixes whose members all left are forgotten here
            self.mixes = {k: m for k, m in self.mixes.items() if m.active}
            self.mixes[msg.mix] = self.engine.mix(
                [self.channels[i] for i in msg.channels], msg.matrix)
        elif isinstance(msg, p.SetMatrix) and msg.mix in self.mixes:
            self.engine.set_matrix(self.mixes[msg.mix], msg.matrix)
        elif isinstance(msg, p.Unmix) and msg.mix in self.mixes:
            self.engine.unmix(self.mixes.pop(msg.mix))

    def report(self, part: int = 0, parts: int = 1) -> None:
        """The clock's figures and those of this part's channels (id modulo `parts`) whose
        packet counts moved."""
        changed = {}
        for i, ch in self.channels.items():
            if i % parts != part:
                continue
            mark = (ch.stats.packets_in, ch.stats.packets_out)
            if self._reported.get(i) != mark:
                self._reported[i] = mark
                changed[str(i)] = ch.stats
        self.link.send(p.Stats(self.engine.stats, changed))

    async def run(self) -> None:
        part = 0
        while not self.done.is_set():
            self.report(part, STATS_SLICES)
            part = (part + 1) % STATS_SLICES
            await asyncio.sleep(STATS_INTERVAL / STATS_SLICES)  # done: ends within a slice


async def serve(fd: int) -> None:
    engine = MediaEngine()
    await engine.start()
    worker = Worker(engine, socket.socket(fileno=fd))
    try:
        await worker.run()
    finally:
        await engine.close()


def main(argv: Sequence[str] = sys.argv[1:]) -> None:
    # Ctrl-C and a service manager's SIGTERM to the whole group are for the server, which
    # drains its calls and then ends us by closing the pipe
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="media worker %(process)d: %(levelname)s %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(int(argv[0])))
    else:
        uvloop.run(serve(int(argv[0])))


if __name__ == "__main__":
    main()
