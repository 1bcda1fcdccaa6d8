"""Concurrent calls with prompt audio: how many playing calls the media clock keeps on time.

A small asyncio UAC (built on callcenter.sip.message) places N calls to the benchmark line at
--setup-rate calls/s, holds them all for --hold seconds and hangs them up with BYE. Every
INVITE's SDP points at one RTP sink socket in a separate process; the server's channels are
told apart by their source port. The server plays a prompt long enough to cover the whole
call (the benchmark line's welcome prompt, looped into a long WAV in the work directory), so
every frame received is prompt audio sent by the 20 ms media clock.

The sink takes the kernel's receive time of every packet (SO_TIMESTAMPNS), so a busy sink
does not make packets look late. Per call (source port + SSRC):

  * grid: frame k is due at anchor + (timestamp_k - timestamp_0) / 8000, where anchor is the
    earliest arrival minus its offset (the best latency that call ever saw);
  * late: arrived more than --late-ms (default 40) after its slot;
  * missing: frames whose timestamp or sequence number never arrived (clock skips after a
    stall advance the timestamp; losses on the way leave sequence gaps).

Reported for the steady window (all calls up, before the first BYE) and for the whole run.

    python benchmarks/bench_concurrent.py --calls 1000 --hold 60
    python benchmarks/bench_concurrent.py --calls 200,500,1000 --hold 30 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
import time
import uuid
import wave
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
    BENCH,
    HOST,
    ROOT,
    CpuSampler,
    Server,
    hot_spots,
    machine,
    py_spy,
    udp_socket_drops,
)
from rtp_frames import (
    Frames,
    Stream,
    as_arrays,
    count_frames,
    lateness,
    open_sink,
    receive,
    unwrap,
)

from callcenter.sip.message import (
    Headers,
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
    serialize,
)

SINK_SECONDS = 6 * 3600  # the sink's bound; a run ends it with "stop" long before
# ----------------------------------------------------------------------------- preparation


def prepare(workdir: Path, seconds: float, workers: str = "0") -> Path:
    """A config whose sounds dir has a welcome prompt of at least `seconds` (the real
    welcome looped) and the real goodbye, ``media.workers``; the rest from bench-config.yaml."""
    sounds = workdir / "sounds" / "pl"
    sounds.mkdir(parents=True, exist_ok=True)
    src = ROOT / "sounds" / "pl"
    with wave.open(str(src / "welcome.wav")) as w:
        params = w.getparams()
        pcm = w.readframes(w.getnframes())
    reps = int(seconds / (len(pcm) / (2 * params.framerate))) + 1
    with wave.open(str(sounds / "welcome.wav"), "wb") as out:
        out.setparams(params)
        out.writeframes(pcm * reps)
    shutil.copy(src / "goodbye.wav", sounds / "goodbye.wav")
    cfg = yaml.safe_load((BENCH / "bench-config.yaml").read_text())
    cfg["sounds"] = str(workdir / "sounds")
    cfg["dialplans"] = str(BENCH / "dialplans")
    cfg["database"] = str(workdir / "bench.db")
    cfg.setdefault("media", {})["workers"] = workers if workers == "auto" else int(workers)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# -------------------------------------------------------------------------------- RTP sink


def sink(conn: Connection, port: int, late_s: float, nice: int) -> None:
    """Child process: receive RTP on one socket until told to stop, then analyse."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    sock, rtcp = open_sink(port)
    sock.settimeout(0.2)
    conn.send("ready")
    streams: dict[tuple[int, int], Stream] = {}
    packets = receive(sock, rtcp, streams, conn, SINK_SECONDS)
    window = conn.recv()
    drops = udp_socket_drops(port)
    result = analyse(streams, late_s, window)
    result["sink_kernel_drops"] = drops
    result["valid"] = drops == 0  # else the sink, not the server, lost packets
    result["packets"] = packets
    conn.send(result)
    sock.close()
    rtcp.close()


def analyse(
    streams: dict[tuple[int, int], Stream], late_s: float, window: tuple[float, float],
) -> dict[str, Any]:
    """Late and missing frames per stream, summed; lateness percentiles over all frames."""
    w0, w1 = window
    tot = {"all": Frames(), "steady": Frames()}
    lateness_steady: list[np.ndarray] = []
    worst_call = 0.0
    for stream in streams.values():
        t, ts_raw, sq_raw = as_arrays(stream)
        ts, sq = unwrap(ts_raw, 1 << 32), unwrap(sq_raw, 1 << 16)
        lat = lateness(t, ts)
        late = lat > late_s
        tot["all"].add(count_frames(ts, sq, late))
        sel = (t >= w0) & (t < w1)
        if sel.any():
            steady = count_frames(ts[sel], sq[sel], late[sel])
            tot["steady"].add(steady)
            lateness_steady.append(lat[sel])
            worst_call = max(worst_call, (steady.late + steady.missing) / max(steady.expected, 1))
    out: dict[str, Any] = {"streams": len(streams)}
    out.update({name: frames.summary() for name, frames in tot.items()})
    if lateness_steady:
        allv = np.concatenate(lateness_steady) * 1000
        out["steady"]["lateness_ms"] = {
            "p50": round(float(np.percentile(allv, 50)), 2),
            "p99": round(float(np.percentile(allv, 99)), 2),
            "p99.9": round(float(np.percentile(allv, 99.9)), 2),
            "max": round(float(allv.max()), 2),
        }
        out["steady"]["worst_call_pct"] = round(100 * worst_call, 3)
    return out


# -------------------------------------------------------------------------------- SIP UAC


@dataclass
class UacCall:
    n: int
    call_id: str
    from_tag: str
    to_tag: str | None = None
    answered: asyncio.Future[Response] | None = None
    bye_done: asyncio.Future[Response] | None = None
    invite_branch: str = ""
    dropped_by_server: bool = False
    failed: str = ""
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class Uac(asyncio.DatagramProtocol):
    def __init__(self, server: tuple[str, int], number: str, sink_port: int) -> None:
        self.server = server
        self.number = number
        self.sink_port = sink_port
        self.calls: dict[str, UacCall] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = (HOST, 0)
        self.loop = asyncio.get_event_loop()
        self.stats = {"sent": 0, "received": 0, "retransmissions": 0, "parse_errors": 0}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # selector's is not a subclass
        self.local = transport.get_extra_info("sockname")[:2]

    # ---- building
    def _request(self, call: UacCall, method: str, cseq: int, branch: str) -> Request:
        h = Headers()
        host, port = self.local
        h.add("Via", f"SIP/2.0/UDP {host}:{port};branch={branch};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:bench{call.n}@{host}:{port}>;tag={call.from_tag}")
        to = f"<sip:{self.number}@{self.server[0]}:{self.server[1]}>"
        h.add("To", to + (f";tag={call.to_tag}" if call.to_tag else ""))
        h.add("Call-ID", call.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:bench{call.n}@{host}:{port}>")
        return Request(method, f"sip:{self.number}@{self.server[0]}:{self.server[1]}", h)

    def _sdp(self, call: UacCall) -> bytes:
        return (
            f"v=0\r\no=bench {call.n} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {self.sink_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
        ).encode()

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.stats["sent"] += 1
        self.transport.sendto(data, self.server)

    def _send_with_retrans(self, call: UacCall, data: bytes, fut: asyncio.Future[Any]) -> None:
        """Send now and at T1, 2T1, 4T1... (capped at 4 s) until `fut` is done; 32 s max."""
        self._send(data)
        delays = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]

        def again(i: int) -> None:
            if fut.done():
                return
            if i >= len(delays):
                fut.set_exception(TimeoutError("no response"))
                return
            self.stats["retransmissions"] += 1
            self._send(data)
            call.timers.append(self.loop.call_later(delays[i], again, i + 1))

        call.timers.append(self.loop.call_later(delays[0], again, 1))

    # ---- call steps
    async def invite(self, n: int, timeout: float = 40.0) -> UacCall:
        call = UacCall(n, f"{uuid.uuid4().hex}@{HOST}", uuid.uuid4().hex[:10])
        self.calls[call.call_id] = call
        call.answered = self.loop.create_future()
        call.invite_branch = f"z9hG4bK{uuid.uuid4().hex[:16]}"
        req = self._request(call, "INVITE", 1, call.invite_branch)
        req.headers.add("Content-Type", "application/sdp")
        req.body = self._sdp(call)
        self._send_with_retrans(call, serialize(req), call.answered)
        try:
            await asyncio.wait_for(asyncio.shield(call.answered), timeout)
        except (TimeoutError, RuntimeError) as exc:
            call.failed = f"invite: {exc!r}"
        return call

    async def bye(self, call: UacCall, timeout: float = 40.0) -> None:
        if call.failed or call.dropped_by_server:
            return
        call.bye_done = self.loop.create_future()
        req = self._request(call, "BYE", 2, f"z9hG4bK{uuid.uuid4().hex[:16]}")
        self._send_with_retrans(call, serialize(req), call.bye_done)
        try:
            resp = await asyncio.wait_for(asyncio.shield(call.bye_done), timeout)
            if resp.status != 200:
                call.failed = f"bye: {resp.status}"
        except (TimeoutError, RuntimeError) as exc:
            call.failed = f"bye: {exc!r}"
        for t in call.timers:
            t.cancel()

    # ---- input
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.stats["received"] += 1
        try:
            msg = parse_message(data)
        except SipParseError:
            self.stats["parse_errors"] += 1
            return
        call = self.calls.get(msg.call_id)
        if call is None:
            return
        if isinstance(msg, Response):
            self._on_response(call, msg)
        else:
            self._on_request(call, msg)

    def _on_response(self, call: UacCall, resp: Response) -> None:
        _, method = resp.cseq
        if method == "INVITE":
            if resp.status < 200:
                return  # provisional: the server has it (retransmissions go on, harmless)
            fut = call.answered
            if 200 <= resp.status < 300:
                call.to_tag = resp.to_tag
                ack = self._request(call, "ACK", 1, f"z9hG4bK{uuid.uuid4().hex[:16]}")
                self._send(serialize(ack))  # also for each retransmitted 200
            else:
                ack = self._request(call, "ACK", 1, call.invite_branch)
                ack.headers.set("To", resp.headers.get("To") or "")
                self._send(serialize(ack))
                call.failed = f"invite: {resp.status}"
            if fut is not None and not fut.done():
                fut.set_result(resp)
        elif method == "BYE" and resp.status >= 200:
            if call.bye_done is not None and not call.bye_done.done():
                call.bye_done.set_result(resp)

    def _on_request(self, call: UacCall, req: Request) -> None:
        if req.method == "ACK":
            return
        resp = make_response(req, 200)
        if req.method == "INVITE":
            resp.headers.add("Contact", f"<sip:bench{call.n}@{self.local[0]}:{self.local[1]}>")
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = self._sdp(call)
        if req.method == "BYE":
            call.dropped_by_server = True
        self._send(serialize(resp))


# ------------------------------------------------------------------------------- the run


@dataclass
class ConcurrentResult:
    calls: int
    hold_s: float
    established: int
    failed_setup: int
    dropped_by_server: int
    failed_bye: int
    steady: dict[str, Any]
    whole_run: dict[str, Any]
    sink_kernel_drops: int
    valid: bool
    server_cpu_steady: dict[str, float]
    system_busy_steady_pct_of_machine: float
    server_nice: int
    uac_retransmissions: int


async def drive(
    args: argparse.Namespace, n_calls: int, sampler: CpuSampler
) -> tuple[list[UacCall], Uac, tuple[float, float], tuple[float, float]]:
    loop = asyncio.get_running_loop()
    uac = Uac((HOST, args.sip_port), args.number, args.sink_port)
    transport, _ = await loop.create_datagram_endpoint(lambda: uac, local_addr=(HOST, 0))
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tasks: list[asyncio.Task[UacCall]] = []
    t_setup = loop.time()
    for i in range(n_calls):
        tasks.append(asyncio.ensure_future(uac.invite(i)))
        await asyncio.sleep(max(0.0, t_setup + (i + 1) / args.setup_rate - loop.time()))
    calls = list(await asyncio.gather(*tasks))
    up = sum(1 for c in calls if not c.failed)
    print(f"  {up}/{n_calls} calls up after {loop.time() - t_setup:.1f} s; holding "
          f"{args.hold:.0f} s", flush=True)
    # steady window: from a settle delay after the last call is up until the first BYE
    w0_wall, w0_mono = time.time() + args.settle, time.monotonic() + args.settle
    profiler = None
    if args.profile:
        await asyncio.sleep(args.settle)
        profiler = py_spy(args.server_pid, min(args.profile_seconds, int(args.hold)),
                          Path(args.run_dir) / "profile.txt")
        await asyncio.sleep(max(0.0, args.hold - args.settle))
    else:
        await asyncio.sleep(args.hold)
    w1_wall, w1_mono = time.time(), time.monotonic()
    t_bye = loop.time()
    byes: list[asyncio.Task[None]] = []
    for i, call in enumerate(calls):
        byes.append(asyncio.ensure_future(uac.bye(call)))
        await asyncio.sleep(max(0.0, t_bye + (i + 1) / args.setup_rate - loop.time()))
    await asyncio.gather(*byes)
    if profiler is not None:
        await loop.run_in_executor(None, profiler.wait, 120)
    transport.close()
    _ = sampler
    return calls, uac, (w0_wall, w1_wall), (w0_mono, w1_mono)


def run_calls(args: argparse.Namespace, n_calls: int) -> ConcurrentResult:
    run_dir = Path(args.workdir) / f"c{n_calls}"
    run_dir.mkdir(parents=True, exist_ok=True)
    args.run_dir = str(run_dir)
    setup_time = n_calls / args.setup_rate
    config = prepare(run_dir, setup_time * 2 + args.hold + 30, args.workers)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sink_proc = ctx.Process(
        target=sink, args=(child, args.sink_port, args.late_ms / 1000, args.nice)
    )
    sink_proc.start()
    if not parent.poll(10) or parent.recv() != "ready":
        sink_proc.terminate()
        raise RuntimeError("sink did not start")
    server = Server(run_dir, config, args.sip_port, args.http_port, nice=args.nice)
    server.start()
    args.server_pid = server.pid
    sampler = CpuSampler(server.pid).start()
    t_start = time.monotonic()
    wall_window = (0.0, 0.0)
    try:
        calls, uac, wall_window, mono_window = asyncio.run(drive(args, n_calls, sampler))
    finally:
        sampler.stop()
        server.stop()
        parent.send("stop")
        parent.send(wall_window)
    if not parent.poll(300):
        sink_proc.terminate()
        raise RuntimeError("sink did not answer")
    rtp = parent.recv()
    sink_proc.join(10)
    m0, m1 = (mono_window[0] - t_start, mono_window[1] - t_start)
    res = ConcurrentResult(
        calls=n_calls, hold_s=args.hold,
        established=sum(1 for c in calls if not c.failed.startswith("invite")),
        failed_setup=sum(1 for c in calls if c.failed.startswith("invite")),
        dropped_by_server=sum(1 for c in calls if c.dropped_by_server),
        failed_bye=sum(1 for c in calls if c.failed.startswith("bye")),
        steady=rtp.get("steady", {}), whole_run=rtp.get("all", {}),
        sink_kernel_drops=rtp.get("sink_kernel_drops", -1), valid=rtp.get("valid", False),
        server_cpu_steady={k: round(v, 1) for k, v in sampler.summary(m0, m1).items()},
        system_busy_steady_pct_of_machine=round(sampler.system_summary(m0, m1), 1),
        uac_retransmissions=uac.stats["retransmissions"], server_nice=args.nice,
    )
    (run_dir / "result.json").write_text(json.dumps(asdict(res), indent=1))
    if args.profile and (run_dir / "profile.txt").exists():
        print(f"  hot spots ({run_dir / 'profile.txt'}):")
        for fn, own, incl in hot_spots(run_dir / "profile.txt", 15):
            print(f"    {own:5.1f}% own {incl:5.1f}% incl  {fn}")
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", default="1000", help="comma-separated concurrent call counts")
    p.add_argument("--hold", type=float, default=60.0, help="seconds all calls are held")
    p.add_argument("--workers", default="0", help="media.workers: auto or N (0 = in process)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds skipped after setup")
    p.add_argument("--setup-rate", type=float, default=50.0, help="INVITEs (and BYEs) per s")
    p.add_argument("--late-ms", type=float, default=40.0, help="late = this far behind its slot")
    p.add_argument("--number", default="0800000001")
    p.add_argument("--sip-port", type=int, default=25360)
    p.add_argument("--http-port", type=int, default=25380)
    p.add_argument("--sink-port", type=int, default=25364)
    p.add_argument("--workdir", default="/tmp/callcenter-bench/concurrent")
    p.add_argument("--nice", type=int, default=0,
                   help="server niceness (-10: ahead of other load on a shared machine)")
    p.add_argument("--profile", action="store_true", help="py-spy the server while calls hold")
    p.add_argument("--profile-seconds", type=int, default=20)
    args = p.parse_args()
    print(json.dumps(machine()))
    os.makedirs(args.workdir, exist_ok=True)
    for n in (int(x) for x in args.calls.split(",")):
        res = run_calls(args, n)
        print(json.dumps(asdict(res)), flush=True)
        time.sleep(2)


if __name__ == "__main__":
    main()
