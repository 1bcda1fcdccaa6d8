"""Bridged calls: N callers talking to N agents through the server, RTP both ways, next to
rtpengine relaying the same streams (issue 17).

Server side: a fresh server with N agents in queue `sales` (line 0800000001 goes straight
into the queue), the agents' phones (`bench_acd_latency.Agents`: REGISTER with digest,
answer at once) and N callers from one UDP socket of this process (INVITE with PCMU, ACK,
later BYE). Every caller's SDP names one socket C, every agent's answer one socket A; once
all N calls are bridged, `rtp_load.py` (its own processes, no `callcenter` import) sends a
20 ms PCMU stream from C to each call's caller-side server port and from A to each agent-side
port (2N streams, 100 N packets/s through the relay) for --seconds, and its sink reads C and
A. rtpengine side: `rtpengine` (userspace, no kernel module) started by this script, one
offer/answer per call over its ng control protocol (bencode over UDP) with the same SDPs,
and the same generator and sink.

Per side: loss (packets sent and never received), latency (kernel receive time at the sink
minus the send time in the payload) p50/p99/p99.9/max, the relay's CPU (% of one core,
sampled each second while the streams run), the generator's and sink's CPU, the generator's
own lateness (send time - slot), the sink's socket drops and the machine's busy %.

    python3 benchmarks/bench_bridged.py --calls 50 --seconds 10
    python3 benchmarks/bench_bridged.py --calls 600 --seconds 60 --nice -10 --workers 2
    python3 benchmarks/bench_bridged.py --calls 600 --seconds 60 --nice -10 --workers 2 --realtime 10

Everything on 127.0.0.1; every loop bounded (call count, deadlines, the generator's rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from benchmarks.bench_acd_latency import AGENT_BASE, NUMBER, Agents, media_port, write_config
from benchmarks.benchlib import (
    BENCH,
    HOST,
    CpuSampler,
    Server,
    machine,
    niceness,
    terminate,
    udp_drops,
    udp_socket_drops,
)
from callcenter.sip.message import Headers, Request, Response, parse_message, serialize

RTP_LOAD = BENCH / "rtp_load.py"
CALLER_BASE = 48500


def sdp(user: str, port: int) -> str:
    return (f"v=0\r\no={user} 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
            "a=sendrecv\r\n")


# ------------------------------------------------------------------------------ callers


@dataclass
class Dialog:
    number: str
    call_id: str
    tag: str
    remote_tag: str = ""
    target: str = ""
    media: int = 0
    """The server's RTP port for this caller (from its 200's SDP)."""
    ended: bool = False


@dataclass
class Callers:
    """N callers on one UDP socket: INVITE, ACK each 200 (again on a retransmission), BYE."""

    server_port: int
    media: int
    sock: socket.socket = field(default_factory=lambda: socket.socket(type=socket.SOCK_DGRAM))
    calls: dict[str, Dialog] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("invite", "answered", "failed", "bye_ok", "bye_from_server", "other"), 0))

    def __post_init__(self) -> None:
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.uri = f"sip:{NUMBER}@{HOST}:{self.server_port}"

    def _request(self, method: str, d: Dialog, cseq: int, body: str = "") -> bytes:
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:{d.number}@{HOST}>;tag={d.tag}")
        h.add("To", f"<{self.uri}>" + (f";tag={d.remote_tag}" if d.remote_tag else ""))
        h.add("Call-ID", d.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:{d.number}@{HOST}:{self.port}>")
        if body:
            h.add("Content-Type", "application/sdp")
        req = Request(method, d.target or self.uri, h)
        req.body = body.encode()
        return serialize(req)

    def invite(self, i: int) -> None:
        d = Dialog(str(CALLER_BASE + i), uuid.uuid4().hex, uuid.uuid4().hex[:10])
        self.calls[d.call_id] = d
        self.sock.sendto(self._request("INVITE", d, 1, sdp(d.number, self.media)),
                         (HOST, self.server_port))
        self.counts["invite"] += 1

    def bye_all(self) -> None:
        for d in self.calls.values():
            if d.remote_tag and not d.ended:
                self.sock.sendto(self._request("BYE", d, 2), (HOST, self.server_port))

    def on_readable(self) -> None:
        for _ in range(256):
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            msg = parse_message(data)
            d = self.calls.get(msg.call_id)
            if d is None:
                continue
            if isinstance(msg, Request):  # a BYE from the server, or OPTIONS
                self.counts["bye_from_server" if msg.method == "BYE" else "other"] += 1
                d.ended = d.ended or msg.method == "BYE"
                self.sock.sendto(serialize(_ok(msg)), addr)
            elif msg.cseq[1] == "INVITE" and msg.status >= 200:
                self._answered(d, msg)
            elif msg.cseq[1] == "BYE" and msg.status >= 200:
                self.counts["bye_ok"] += not d.ended
                d.ended = True

    def _answered(self, d: Dialog, msg: Response) -> None:
        if msg.status >= 300:
            self.counts["failed"] += not d.ended
            d.ended = True
            return
        if not d.remote_tag:
            self.counts["answered"] += 1
            d.remote_tag = msg.to_tag or ""
            contacts = msg.contacts
            d.target = str(contacts[0].uri) if contacts else self.uri
            d.media = media_port(msg.body)
        self.sock.sendto(self._request("ACK", d, 1), (HOST, self.server_port))


def _ok(req: Request) -> Response:
    from callcenter.sip.message import make_response

    return make_response(req, 200)


# ------------------------------------------------------------------------------ rtpengine


def bencode(v: Any) -> bytes:
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


def bdecode(data: bytes, i: int = 0) -> tuple[Any, int]:
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c in (b"l", b"d"):
        items: list[Any] = []
        i += 1
        while data[i:i + 1] != b"e":
            item, i = bdecode(data, i)
            items.append(item)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    colon = data.index(b":", i)
    size = int(data[i:colon])
    return data[colon + 1:colon + 1 + size], colon + 1 + size


class Rtpengine:
    """rtpengine in the foreground (userspace forwarding, no kernel table), driven over ng."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.ng = (HOST, args.ng_port)
        cmd = [args.rtpengine, "--config-file=none", "--foreground", "--log-stderr",
               "--table=-1", f"--interface={HOST}", f"--listen-ng={HOST}:{args.ng_port}",
               f"--port-min={args.rtpengine_ports[0]}", f"--port-max={args.rtpengine_ports[1]}",
               f"--num-threads={args.rtpengine_threads}", "--log-level=4", "--delete-delay=0"]
        if args.realtime:  # the same policy and priority as our media workers
            cmd += ["--scheduling=rr", f"--priority={args.realtime}"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=open(workdir / "rtpengine.log", "wb"),  # noqa: SIM115
            stdin=subprocess.DEVNULL, preexec_fn=niceness(args.nice))
        self.sock = socket.socket(type=socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtpengine exited: see {workdir / 'rtpengine.log'}")
            try:
                if self.command({"command": "ping"}, timeout=0.5).get("result") == b"pong":
                    return
            except TimeoutError:
                continue
        raise RuntimeError("rtpengine did not answer ping")

    def command(self, msg: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        cookie = uuid.uuid4().hex[:12].encode()
        self.sock.settimeout(timeout)
        self.sock.sendto(cookie + b" " + bencode(msg), self.ng)
        while True:  # bounded by the socket timeout
            data = self.sock.recv(65535)
            head, _, body = data.partition(b" ")
            if head == cookie:
                reply, _ = bdecode(body)
                assert isinstance(reply, dict)
                return reply

    def call(self, i: int, caller_port: int, agent_port: int) -> tuple[int, int]:
        """Offer/answer one call; (port the caller sends to, port the agent sends to)."""
        ids = {"call-id": f"bench-{i}", "from-tag": f"c{i}"}
        offer = self.command({"command": "offer", "sdp": sdp("caller", caller_port), **ids})
        answer = self.command({"command": "answer", "sdp": sdp("agent", agent_port),
                               "to-tag": f"a{i}", **ids})
        if offer.get("result") != b"ok" or answer.get("result") != b"ok":
            raise RuntimeError(f"rtpengine refused call {i}: {offer} {answer}")
        return media_port(answer["sdp"]), media_port(offer["sdp"])

    def stop(self) -> None:
        terminate(self.proc, 10)


# ------------------------------------------------------------------------------ the streams


def rtp_sockets(args: argparse.Namespace) -> list[socket.socket]:
    """The generator's sockets C (callers) and A (agents), with large receive buffers."""
    out = []
    for port in (args.caller_rtp_port, args.agent_rtp_port):
        s = socket.socket(type=socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        s.bind((HOST, port))
        out.append(s)
    return out


def stream(args: argparse.Namespace, socks: list[socket.socket], plan: list[tuple[int, int]],
           relay_pid: int, workdir: Path) -> dict[str, Any]:
    """Run the generator and sink over ``plan`` while sampling the relay's CPU."""
    sys.path.insert(0, str(BENCH))
    from rtp_load import analyse

    (workdir / "plan.json").write_text(json.dumps(plan))
    fds = ",".join(str(s.fileno()) for s in socks)
    start = time.time_ns() + 1_500_000_000
    until = start + int(args.seconds * 1e9) + 12_000_000_000
    common = {"pass_fds": [s.fileno() for s in socks], "stdin": subprocess.DEVNULL,
              "preexec_fn": niceness(args.nice)}
    for s in socks:  # what an earlier side left there
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(1_000_000):
                s.recv(2048)
    drops0 = [udp_socket_drops(s.getsockname()[1]) for s in socks]
    sink = subprocess.Popen([sys.executable, str(RTP_LOAD), "sink", "--fds", fds, "--until",
                             str(until), "--out", str(workdir / "recv.bin")], **common)
    send = subprocess.Popen([sys.executable, str(RTP_LOAD), "send", "--fds", fds, "--plan",
                             str(workdir / "plan.json"), "--start", str(start), "--seconds",
                             str(args.seconds), "--out", str(workdir / "sent.json")], **common)
    relay_ports = {port for _, port in plan}
    relay_drops0 = udp_drops(relay_ports)
    try:
        time.sleep(max(0.0, (start - time.time_ns()) / 1e9))
        relay = CpuSampler(relay_pid).start()
        send.wait(args.seconds + 30)  # it gives up by itself 10 s after its last slot
        relay.stop()
        time.sleep(2.0)  # the last packets through the relay
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
    finally:
        for proc in (send, sink):
            terminate(proc, 5)
    relay_drops = udp_drops(relay_ports) - relay_drops0
    sink_run = json.loads((workdir / "recv.bin.json").read_text())
    drops = [udp_socket_drops(s.getsockname()[1]) - d for s, d in zip(socks, drops0, strict=True)]
    sent = json.loads((workdir / "sent.json").read_text())
    got = analyse((workdir / "recv.bin").read_bytes(), sent["streams"], sent["per_stream"])
    cpu = relay.summary(1.0, args.seconds)
    return {
        **got, "relay_cpu_mean": round(cpu["mean"], 1), "relay_cpu_max": round(cpu["max"], 1),
        "generator_cpu_pct": round(100 * sent["cpu_s"] / args.seconds, 1),
        "sink_cpu_pct": round(100 * sink_run["cpu_s"] / sink_run["wall_s"], 1),
        "generator_lateness_ms": sent["lateness_ms"], "generator_late_over_5ms": sent["over_5ms"],
        "send_errors": sent["send_errors"], "sink_socket_drops": sum(drops),
        "relay_socket_drops": relay_drops, "generator_rounds": [sent["per_stream"],
                                                                sent["rounds_planned"]],
        "machine_busy_pct": round(relay.system_summary(1.0, args.seconds), 1),
        "packets_per_s_planned": len(plan) * 50,
    }


# ------------------------------------------------------------------------------ the sides


def run_server(args: argparse.Namespace, socks: list[socket.socket], workdir: Path) -> dict[str, Any]:
    a = argparse.Namespace(config=args.config, agents=args.calls)
    config = write_config(a, workdir)
    data = yaml.safe_load(config.read_text())
    data.setdefault("media", {})["workers"] = args.workers if args.workers == "auto" \
        else int(args.workers)
    data["media"]["realtime_priority"] = args.realtime
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    server = Server(workdir, config, args.sip_port, args.http_port, nice=args.nice)
    server.start()
    agents: Agents | None = None
    try:
        users = [str(AGENT_BASE + i) for i in range(args.calls)]
        agents = Agents(args.sip_port, users, 0, sdp_port=args.agent_rtp_port)
        agents.register_all()
        callers = Callers(args.sip_port, args.caller_rtp_port)
        sel = selectors.DefaultSelector()
        sel.register(callers.sock, selectors.EVENT_READ)

        def pump(seconds: float) -> None:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                agents.poll(0)
                for _ in sel.select(min(left, 0.005)):
                    callers.on_readable()

        time.sleep(1.0)  # registrations reach the ACD
        for i in range(args.calls):
            callers.invite(i)
            pump(1 / args.setup_rate)
        deadline = time.monotonic() + 30 + args.calls / 10
        while time.monotonic() < deadline and (
                callers.counts["answered"] + callers.counts["failed"] < args.calls
                or len(agents.invites) < callers.counts["answered"]):
            pump(0.1)
        pump(1.0)  # the last bridges
        by_caller = {inv["caller"]: inv["media"] for inv in agents.invites}
        plan: list[tuple[int, int]] = []
        for d in callers.calls.values():
            if d.media and by_caller.get(d.number):
                plan += [(0, d.media), (1, by_caller[d.number])]
        bridged = len(plan) // 2
        result: dict[str, Any] = {"side": "callcenter", "workers": args.workers, "realtime": args.realtime,
                                  "calls_bridged": bridged, "callers": dict(callers.counts)}
        if bridged:
            import threading

            stop = threading.Event()

            def keep_answering() -> None:  # OPTIONS and the like while the streams run
                while not stop.is_set():
                    pump(0.2)

            t = threading.Thread(target=keep_answering, daemon=True)
            t.start()
            result.update(stream(args, socks, plan, server.pid, workdir))
            stop.set()
            t.join(5)
        callers.bye_all()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and callers.counts["bye_ok"] + callers.counts[
                "bye_from_server"] < callers.counts["answered"]:
            pump(0.1)
        pump(1.0)  # the agents' BYEs
        result["callers"] = dict(callers.counts)
        result["agents"] = dict(agents.counts)
        return result
    finally:
        server.stop()


def run_rtpengine(args: argparse.Namespace, socks: list[socket.socket],
                  workdir: Path) -> dict[str, Any]:
    engine = Rtpengine(args, workdir)
    try:
        plan: list[tuple[int, int]] = []
        for i in range(args.calls):
            to_caller_side, to_agent_side = engine.call(i, args.caller_rtp_port,
                                                        args.agent_rtp_port)
            plan += [(0, to_caller_side), (1, to_agent_side)]
        result = {"side": "rtpengine", "threads": args.rtpengine_threads, "realtime": args.realtime,
                  "calls_bridged": len(plan) // 2}
        result.update(stream(args, socks, plan, engine.proc.pid, workdir))
        for i in range(args.calls):
            engine.command({"command": "delete", "call-id": f"bench-{i}", "from-tag": f"c{i}"})
        return result
    finally:
        engine.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of streaming")
    p.add_argument("--sides", default="callcenter,rtpengine", help="which relays, in order")
    p.add_argument("--workers", default="0", help="media.workers of the server: auto or N")
    p.add_argument("--realtime", type=int, default=0,
                   help="SCHED_RR priority of both relays (media.realtime_priority; rtpengine "
                        "--scheduling=rr --priority); 0 = normal")
    p.add_argument("--setup-rate", type=float, default=50.0, help="new calls per second")
    p.add_argument("--config", default=str(BENCH / "bench-config.yaml"))
    p.add_argument("--sip-port", type=int, default=27360)
    p.add_argument("--http-port", type=int, default=27380)
    p.add_argument("--caller-rtp-port", type=int, default=27364)
    p.add_argument("--agent-rtp-port", type=int, default=27366)
    p.add_argument("--ng-port", type=int, default=27368)
    p.add_argument("--rtpengine-ports", type=int, nargs=2, default=[52000, 59999])
    p.add_argument("--rtpengine-threads", type=int, default=2)
    p.add_argument("--rtpengine", default=shutil.which("rtpengine") or "rtpengine")
    p.add_argument("--workdir", default="/tmp/callcenter-bench/bridged")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness of the relays, the generator and the sink")
    args = p.parse_args()
    args.calls = max(1, min(args.calls, 2000))
    args.seconds = max(1.0, min(args.seconds, 600.0))
    print(json.dumps({**machine(), "load_avg": os.getloadavg()}), flush=True)
    socks = rtp_sockets(args)
    for side in args.sides.split(","):
        workdir = Path(args.workdir) / side
        workdir.mkdir(parents=True, exist_ok=True)
        run = run_server if side == "callcenter" else run_rtpengine
        res = {"calls": args.calls, "seconds": args.seconds, **run(args, socks, workdir)}
        print(json.dumps(res), flush=True)
        time.sleep(2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
