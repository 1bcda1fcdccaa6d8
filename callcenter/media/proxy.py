"""`MediaWorkers`: the engine's public interface, carried out by media worker processes.

The signalling process binds each channel's RTP/RTCP sockets itself (so ``open_channel`` knows
the port at once, as the in-process engine does) and hands them to the least loaded worker.
Channels that must meet share a worker: when a bridge or mix joins channels of two workers, the
others are moved to the first one's worker (closed there without RTCP BYE, reopened with the
same sockets and settings; a prompt still playing on a moved channel ends as STOPPED). A worker
that dies is restarted; ``on_failure`` gets its channels so their calls can end.

Mirrored here, so reading them needs no round trip: ``peer``, ``mix``, ``closed``, ``playing``
(prompts not yet reported done). Statistics arrive once a second (``STATS_INTERVAL``), and a
channel's final ones in answer to its close (`WorkerChannel.closed_stats`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from . import g711
from . import protocol as p
from .engine import (
    DoneCallback,
    DtmfCallback,
    MediaEngine,
    MediaError,
    PlayOutcome,
    leave_mix,
    mix_matrix,
)
from .link import Link
from .prompts import Prompt
from .srtp import new_key
from .stats import ChannelStats, EngineStats

log = logging.getLogger(__name__)
RECORDED_WAIT = 5.0
"""Seconds `recording_closed` waits at most for a worker to close a recording."""
CLOSED_WAIT = 2.0
"""Seconds `closed_stats` waits at most for a worker's final figures of a channel."""
PROMPTS_KEPT = 512
"""Prompts each worker keeps (least recently played are forgotten)."""
PING_INTERVAL = 1.0
"""Seconds between pings of each worker."""
START_WAIT = 30.0
"""Seconds `start` waits at most for the workers' first word."""


class _Gate:
    """Queued to a worker before a moved-in channel's Open: what follows for that channel waits
    there until the worker it leaves has answered its Close with the state to resume from."""

    def __init__(self, ch: int, worker: _Worker) -> None:
        self.ch = ch
        self.worker = worker
        self.resume = p.Resume(ch)


def _names(msg: object) -> tuple[object, ...]:
    """The channels and mixes (their ids never clash: one counter) and the prompts (the
    worker's cache: a key comes after the play that brought its frames) a message is about."""
    cls = type(msg)
    if cls in _ONE_CHANNEL:  # most messages (Open, Configure, Close, ...): one test
        return (msg.ch,)  # type: ignore[attr-defined]
    if isinstance(msg, p.Play):
        return msg.ch, *(k for k in (msg.key, *msg.forget) if k)
    if isinstance(msg, p.Bridge):
        return msg.a, msg.b
    if isinstance(msg, p.Mix):
        return *msg.channels, msg.mix
    if isinstance(msg, p.SetMatrix | p.Unmix):
        return (msg.mix,)
    ch = getattr(msg, "ch", None)
    return () if ch is None else (ch,)


_ONE_CHANNEL = frozenset(cls for cls in p.MESSAGES.values()
                         if cls not in (p.Play, p.Bridge, p.Mix, p.SetMatrix, p.Unmix)
                         and "ch" in {f.name for f in fields(cls)})
"""The messages whose only id is their channel's, ``ch`` (never None)."""


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callcenter.media.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),))
        theirs.close()
        self.sock = ours
        self.link: Link | None = None
        self.channels: set[WorkerChannel] = set()
        self.figures = EngineStats()
        self.closing: dict[int, WorkerChannel] = {}
        """Channels closed here whose final figures (`Closed`) have not come yet."""
        self.prompts: OrderedDict[str, None] = OrderedDict()
        self.forget: list[str] = []
        self.held: list[tuple[object, tuple[int, ...], tuple[object, ...]]] = []
        """Held back, in order: messages (and `_Gate`s), our copies of their descriptors and
        the ids they name. Only what names a channel behind a gate waits: two moves in opposite
        directions never wait on each other."""
        self.stuck: set[object] = set()
        """Ids named by a held message: what else names them is held after it."""
        self.leaving: dict[int, deque[_Gate]] = {}
        """Channels moved out, by id: the gates their `Moved` opens, in the order of the Closes."""
        self.ready = asyncio.Event()
        """Set by the worker's first message (it runs its loop)."""
        self.pinged: float | None = None
        """When the ping not yet answered went out."""

    def send(self, msg: object, fds: tuple[int, ...] = ()) -> None:
        ids = _names(msg)
        if isinstance(msg, _Gate) or not self.stuck.isdisjoint(ids):
            self.held.append((msg, tuple(os.dup(f) for f in fds), ids))
            self.stuck.update(ids)
        elif self.link is not None:
            self.link.send(msg, fds)

    def resumed(self, gate: _Gate, state: dict[str, object] | None) -> None:
        """``gate``'s state arrived (None: the old worker died): send what no longer waits."""
        gate.resume.state = state
        held, self.held, self.stuck = self.held, [], set()
        for msg, fds, _ in held:
            if msg is not gate:
                self.send(msg, fds)
            for f in fds:
                os.close(f)

    def drop_held(self) -> None:
        for _, fds, _ in self.held:
            for f in fds:
                os.close(f)
        self.held, self.stuck = [], set()


class WorkerChannel:
    """A channel living in a media worker; the same public interface as `engine.Channel`."""

    def __init__(self, engine: MediaWorkers, channel_id: int, socks: tuple[socket.socket, ...],
                 inband_dtmf: bool) -> None:
        self.engine = engine
        self.id = channel_id
        self.port: int = socks[0].getsockname()[1]
        self.rtcp_port: int = socks[1].getsockname()[1]
        self.peer: WorkerChannel | None = None
        self.mix: WorkerMix | None = None
        self.on_dtmf: DtmfCallback | None = None
        self.closed = False
        self.stats = ChannelStats()
        """The figures the worker sent last (once a second, and the final ones at close)."""
        self._final: asyncio.Future[None] | None = None
        self.srtp_key = new_key()
        """Our SRTP key for this leg's SDP; the worker's channel uses it (see Configure)."""
        self.payload_type = g711.PCMU
        self.dtmf_payload_type: int | None = 101
        self._socks = socks
        self._inband = inband_dtmf
        self._config: p.Configure | None = None
        self._plays: dict[int, DoneCallback | None] = {}
        self._listeners: list[Callable[[bytes], object]] = []
        self._worker: _Worker | None = None
        self._recorded: deque[asyncio.Future[None]] = deque()

    def _send(self, msg: object) -> None:
        w = self._worker
        if not self.closed and w is not None:
            w.send(msg)

    def configure(self, remote: tuple[str, int] | None = None, payload_type: int = g711.PCMU,
                  dtmf_payload_type: int | None = 101, *,
                  rtcp_remote: tuple[str, int] | None = None,
                  srtp: tuple[str, bytes] | None = None) -> None:
        if payload_type not in (g711.PCMU, g711.PCMA):
            raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")
        old = self._config
        if remote is None and old is not None:  # as the engine: no remote keeps the last one
            remote, rtcp_remote = old.remote, old.rtcp_remote
        self.payload_type, self.dtmf_payload_type = payload_type, dtmf_payload_type
        self._config = p.Configure(
            self.id, remote, payload_type, dtmf_payload_type, rtcp_remote,
            None if srtp is None else (srtp[0], base64.b64encode(srtp[1]).decode()),
            base64.b64encode(self.srtp_key).decode())
        self._send(self._config)

    def play(self, frames: Prompt | Sequence[bytes], on_done: DoneCallback | None = None, *,
             interruptible: bool = False, replace: bool = False, loop: bool = False) -> None:
        if self.closed:
            raise MediaError(f"channel {self.id} is closed")
        if replace:
            self.stop_playing()
        if not frames and not loop:
            if on_done is not None:
                on_done(PlayOutcome.DONE)
            return
        w = self._worker
        key, codec, data = "", self.payload_type, b""
        if isinstance(frames, Prompt):
            key = f"{frames.name}|{frames.codec}|{len(frames.frames)}|{hash(frames.frames)}"
            codec = frames.codec
            frames = frames.frames
        if w is not None and key and key in w.prompts:
            w.prompts.move_to_end(key)
        else:
            data = b"".join(frames)
            if w is not None and key:
                w.prompts[key] = None
                while len(w.prompts) > PROMPTS_KEPT:
                    w.forget.append(w.prompts.popitem(last=False)[0])
        play_id = self.engine._next_id()
        self._plays[play_id] = on_done
        forget = tuple(w.forget) if w is not None else ()
        if w is not None:
            w.forget.clear()
        self._send(p.Play(self.id, play_id, key, codec, len(frames[0]), interruptible, False,
                          loop, forget, data))

    def stop_playing(self, *, outcome: PlayOutcome = PlayOutcome.STOPPED) -> None:
        if self._plays:
            self._send(p.StopPlaying(self.id))
        self._end_plays(outcome)

    def _end_plays(self, outcome: PlayOutcome) -> None:
        plays, self._plays = self._plays, {}
        for fn in plays.values():
            if fn is not None:
                _safe(fn, outcome)

    @property
    def playing(self) -> bool:
        return bool(self._plays)

    def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        if self.dtmf_payload_type is None:
            raise MediaError(f"channel {self.id}: the peer has no telephone-event payload type")
        self._send(p.SendDtmf(self.id, digits, duration_ms, gap_ms))

    def dtmf_received(self, digit: str) -> None:
        self._send(p.DtmfReceived(self.id, digit))

    def start_recording(self, path: str | Path, *, stereo: bool = False) -> None:
        self._send(p.Record(self.id, str(path), stereo))

    def stop_recording(self) -> None:
        if self._worker is not None and not self.closed:
            self._recorded.append(asyncio.get_running_loop().create_future())
        self._send(p.StopRecording(self.id))

    async def recording_closed(self) -> None:
        if self._recorded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._recorded[-1]), RECORDED_WAIT)

    def _recording_done(self, count: int | None = None) -> None:
        """Resolve the first ``count`` waits for a closed file (None: all of them)."""
        n = len(self._recorded)
        for _ in range(n if count is None else min(count, n)):
            fut = self._recorded.popleft()
            if not fut.done():
                fut.set_result(None)

    def add_listener(self, callback: Callable[[bytes], object]) -> None:
        self._listeners.append(callback)
        self._send(p.Listen(self.id, True))

    def remove_listener(self, callback: Callable[[bytes], object]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)
        if not self._listeners:
            self._send(p.Listen(self.id, False))

    @property
    def inband_dtmf(self) -> bool:
        return self._inband

    def close(self) -> None:
        if self.closed:
            return
        self.engine._unbridge(self, tell=False)
        self._end_plays(PlayOutcome.STOPPED)
        self._listeners.clear()
        self._send(p.Close(self.id))
        if self._worker is not None:
            self._final = asyncio.get_running_loop().create_future()
            self._worker.closing[self.id] = self
        self.closed = True
        self._recording_done()  # the worker closes the file with the channel
        self.engine._release(self)

    @property
    def stats_pending(self) -> bool:
        """Closed, and the worker's final figures not here yet (`closed_stats` waits)."""
        return self._final is not None and not self._final.done()

    async def closed_stats(self) -> ChannelStats:
        """The channel's final figures, which the worker answers a close with (waits at most
        `CLOSED_WAIT`; then the last ones sent)."""
        if self._final is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._final), CLOSED_WAIT)
        return self.stats

    def _closed(self, stats: ChannelStats | None) -> None:
        """The final figures came (None: they never will, the worker is gone)."""
        if stats is not None:
            self.stats = stats
        if self._final is not None and not self._final.done():
            self._final.set_result(None)

    def _attach(self, worker: _Worker) -> None:
        """Open this channel on ``worker`` (first open, a move, or after a restart)."""
        old = self._worker
        gate = _Gate(self.id, worker)
        if old is not None:  # the new worker holds it back until the old one tells its state
            self._send(p.Close(self.id, moving=True))
            old.leaving.setdefault(self.id, deque()).append(gate)
            old.channels.discard(self)
            self._end_plays(PlayOutcome.STOPPED)
            worker.send(gate)
        self._worker = worker
        worker.channels.add(self)
        worker.send(p.Open(self.id, self._inband), tuple(s.fileno() for s in self._socks))
        if self._config is not None:
            self._send(self._config)
        if old is not None:
            self._send(gate.resume)
        if self._listeners:
            self._send(p.Listen(self.id, True))


class WorkerMix:
    """A conference on one worker; ``channels`` in matrix order, as `engine.Mix`."""

    def __init__(self, engine: MediaWorkers, mix_id: int, channels: list[WorkerChannel],
                 matrix: np.ndarray) -> None:
        self.engine = engine
        self.id = mix_id
        self.channels = channels
        self.matrix = matrix

    @property
    def active(self) -> bool:
        return self in self.engine._mixes


def _safe(fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("media callback %r failed", fn)


def worker_count(setting: int | str) -> int:
    """``media.workers``: ``auto`` = one per usable core."""
    if setting == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    return int(setting)


class MediaWorkers:
    """The `MediaEngine` interface over ``workers`` processes (see the module notes)."""

    def __init__(self, address: str = "127.0.0.1",
                 port_range: tuple[int, int] = (20000, 29999), *, workers: int = 2,
                 hung_after: float = 10.0, realtime_priority: int = 0) -> None:
        if workers < 1:
            raise ValueError("MediaWorkers needs at least one worker (0 = use MediaEngine)")
        self.address = address
        self._ports = MediaEngine(address, port_range)  # binds pairs; never started
        self.port_range = self._ports.port_range
        self.workers_wanted = workers
        self.hung_after = hung_after
        """Seconds a worker may leave a ping unanswered before it is killed as hung."""
        self.realtime_priority = realtime_priority
        """SCHED_RR priority of the workers (``media.realtime_priority``); 0 = normal."""
        self._watch: asyncio.Task[None] | None = None
        self._workers: list[_Worker] = []
        self._channels: dict[int, WorkerChannel] = {}
        self._mixes: list[WorkerMix] = []
        self._ids = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.restarts = 0
        self.on_bridge: list[Callable[[WorkerChannel, WorkerChannel], None]] = []
        self._rtp_timeout = 0.0
        self.on_rtp_timeout: list[Callable[[WorkerChannel], None]] = []
        self.on_failure: list[Callable[[list[WorkerChannel]], None]] = []
        """Called with the channels of a worker that died (their calls should end)."""

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    @property
    def stats(self) -> EngineStats:
        figs = [w.figures for w in self._workers]
        return EngineStats(
            ticks=sum(f.ticks for f in figs), late_ticks=sum(f.late_ticks for f in figs),
            missed_ticks=sum(f.missed_ticks for f in figs),
            max_lateness=max((f.max_lateness for f in figs), default=0.0),
            channels=len(self._channels), worker_restarts=self.restarts,
            srtp_failed=sum(f.srtp_failed for f in figs),
            srtp_plain=sum(f.srtp_plain for f in figs))

    @property
    def channels(self) -> list[WorkerChannel]:
        return list(self._channels.values())

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    async def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for i in range(self.workers_wanted):
            self._workers.append(self._spawn(i))
        self._watch = asyncio.create_task(self._watchdog())
        try:  # calls before that would wait on them (a move waits for the old worker's word)
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in self._workers)),
                                   START_WAIT)
        except TimeoutError:
            log.warning("media workers not all running after %.0f s", START_WAIT)

    async def _watchdog(self) -> None:
        """Ping each worker; one alive but not answering is killed and handled as dead."""
        n = 0
        while True:
            await asyncio.sleep(PING_INTERVAL)
            now = self.now()
            for w in list(self._workers):
                if w.link is None or w.link.closed:
                    continue
                w.link.receive()  # an answer waiting while this process was busy counts
                if w.pinged is None:
                    n += 1
                    w.pinged = now
                    w.link.send(p.Ping(n))  # not held back: it names no channel
                elif now - w.pinged > self.hung_after and w in self._workers:
                    log.error("media worker %d (pid %d) has not answered for %.1f s: killing it",
                              w.index, w.proc.pid, now - w.pinged)
                    w.proc.kill()
                    w.link.close()  # -> _died

    @property
    def rtp_timeout(self) -> float:
        return self._rtp_timeout

    @rtp_timeout.setter
    def rtp_timeout(self, seconds: float) -> None:
        self._rtp_timeout = seconds
        for w in self._workers:
            if w.link is not None:
                w.link.send(p.Settings(seconds))

    def _spawn(self, index: int) -> _Worker:
        w = _Worker(index)
        w.link = Link(w.sock, lambda msg: self._event(w, msg), lambda: self._died(w))
        w.link.send(p.Settings(self._rtp_timeout))
        log.info("media worker %d started (pid %d)", index, w.proc.pid)
        if self.realtime_priority:
            self._realtime(w.proc.pid)
        return w

    def _realtime(self, pid: int) -> None:
        try:
            os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(self.realtime_priority))
        except OSError as exc:
            log.warning("media worker %d stays at normal priority (%s): media.realtime_"
                        "priority needs root, CAP_SYS_NICE or LimitRTPRIO= at least %d",
                        pid, exc.strerror, self.realtime_priority)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for ch in list(self._channels.values()):
            ch.close()
        workers, self._workers = self._workers, []
        for w in workers:
            w.channels.clear()
            w.drop_held()
            self._forget_closing(w)
            if w.link is not None:
                w.link.flush()
                w.link.close(notify=False)
        for w in workers:
            try:
                await asyncio.wait_for(asyncio.to_thread(w.proc.wait), 5.0)
            except TimeoutError:
                w.proc.kill()
        self._loop = None

    def open_channel(self, *, inband_dtmf: bool = False,
                     near: object | None = None) -> WorkerChannel:
        """A channel on the worker of ``near`` (a channel it will likely be bridged or mixed
        with: no move later), else on the least loaded worker."""
        if self._loop is None:
            raise MediaError("MediaWorkers.start() was not awaited")
        socks = self._ports._bind_pair()
        ch = WorkerChannel(self, self._next_id(), socks, inband_dtmf)
        self._ports._ports_used.add(ch.port)
        self._channels[ch.id] = ch
        home = near._worker if isinstance(near, WorkerChannel) and not near.closed else None
        ch._attach(home if home in self._workers
                   else min(self._workers, key=lambda w: len(w.channels)))
        return ch

    def _release(self, ch: WorkerChannel) -> None:
        for s in ch._socks:  # a held or unsent Open has its own copies
            s.close()
        self._channels.pop(ch.id, None)
        self._ports._ports_used.discard(ch.port)
        if ch._worker is not None:
            ch._worker.channels.discard(ch)

    def _gather(self, channels: Sequence[WorkerChannel]) -> None:
        """Move every channel to the first one's worker."""
        home = channels[0]._worker
        for ch in channels[1:]:
            if ch._worker is not home and home is not None:
                ch._attach(home)

    def bridge(self, a: WorkerChannel, b: WorkerChannel, *, notify: bool = True) -> None:
        if a is b or a.closed or b.closed:
            raise MediaError("bridge needs two open channels")
        if a.peer is not b or b.peer is not a:  # else bridged already (early media): no gap
            self.unbridge(a)
            self.unbridge(b)
            self._gather((b, a) if a.playing and not b.playing else (a, b))
            a.peer, b.peer = b, a
            a._send(p.Bridge(a.id, b.id))
        for fn in list(self.on_bridge) if notify else ():
            _safe(fn, a, b)

    def unbridge(self, ch: WorkerChannel) -> None:
        self._unbridge(ch, tell=True)

    def _unbridge(self, ch: WorkerChannel, *, tell: bool) -> None:
        """``tell``: False when a Close follows (the worker's close unbridges the channel)."""
        peer = ch.peer
        ch.peer = None
        if peer is not None and peer.peer is ch:
            peer.peer = None
        if tell and (peer is not None or ch.mix is not None):
            ch._send(p.Unbridge(ch.id))
        leave_mix(ch, self._mixes)

    def mix(self, channels: Sequence[WorkerChannel],
            matrix: Sequence[Sequence[float]] | np.ndarray) -> WorkerMix:
        members = list(channels)
        m = mix_matrix(members, matrix)
        for ch in members:
            self.unbridge(ch)
        self._gather(members)
        mix = WorkerMix(self, self._next_id(), members, m)
        for ch in members:
            ch.mix = mix
        self._mixes.append(mix)
        members[0]._send(p.Mix(mix.id, tuple(ch.id for ch in members), m.tolist()))
        return mix

    def set_matrix(self, mix: WorkerMix, matrix: Sequence[Sequence[float]] | np.ndarray) -> None:
        mix.matrix = mix_matrix(mix.channels, matrix, new=False)
        if mix.channels:
            mix.channels[0]._send(p.SetMatrix(mix.id, mix.matrix.tolist()))

    def unmix(self, mix: WorkerMix) -> None:
        if mix.channels:
            mix.channels[0]._send(p.Unmix(mix.id))
        for ch in list(mix.channels):
            leave_mix(ch, self._mixes)
        if mix in self._mixes:
            self._mixes.remove(mix)

    # ------------------------------------------------------------------ events, failures

    def _event(self, w: _Worker, msg: object) -> None:
        w.ready.set()
        if isinstance(msg, p.Pong):
            w.pinged = None
            return
        if isinstance(msg, p.Moved):
            if gates := w.leaving.get(msg.ch):
                gate = gates.popleft()
                if not gates:
                    del w.leaving[msg.ch]
                gate.worker.resumed(gate, msg.state)
            return
        if isinstance(msg, p.Stats):
            for key, fig in msg.channels.items():
                ch = self._channels.get(int(key))
                if ch is not None:
                    ch.stats = fig
            w.figures = msg.engine
            return
        if isinstance(msg, p.Closed):
            if (closing := w.closing.pop(msg.ch, None)) is not None:
                closing._closed(msg.stats)
            return
        ch = self._channels.get(msg.ch)  # type: ignore[attr-defined]
        if ch is None or ch._worker is not w:
            return
        if isinstance(msg, p.PlayDone):
            if msg.play in ch._plays:
                fn = ch._plays.pop(msg.play)
                if fn is not None:
                    _safe(fn, PlayOutcome(msg.outcome))
        elif isinstance(msg, p.Recorded):
            ch._recording_done(1)
        elif isinstance(msg, p.Dtmf):
            if ch.on_dtmf is not None:
                _safe(ch.on_dtmf, msg.digit)
        elif isinstance(msg, p.RtpTimeout):
            for told in list(self.on_rtp_timeout):
                _safe(told, ch)
        elif isinstance(msg, p.Audio):
            for listener in tuple(ch._listeners):
                _safe(listener, msg.data)

    @staticmethod
    def _forget_closing(w: _Worker) -> None:
        closing, w.closing = w.closing, {}
        for ch in closing.values():
            ch._closed(None)

    def _died(self, w: _Worker) -> None:
        """A worker's pipe closed: restart it and hand its channels to ``on_failure``."""
        if w not in self._workers:
            return
        code = w.proc.poll()
        self.restarts += 1
        log.error("media worker %d (pid %d) died (exit %s): %d channels lost, restarting",
                  w.index, w.proc.pid, code, len(w.channels))
        lost = [ch for ch in w.channels if not ch.closed]
        for ch in lost:
            ch._worker = None
            ch._plays.clear()  # no on_done: the call is ending, not the prompt
            ch._recording_done()
        w.channels.clear()
        self._forget_closing(w)
        w.drop_held()
        leaving, w.leaving = w.leaving, {}
        for gates in leaving.values():  # moves out of it: the new workers go on without state
            for gate in gates:
                gate.worker.resumed(gate, None)
        self._workers[self._workers.index(w)] = self._spawn(w.index)
        if w.proc.poll() is None:
            w.proc.kill()
        for fn in list(self.on_failure):
            _safe(fn, lost)
