"""ACD latency: from a call entering a queue with an idle agent to the INVITE leaving for that
agent, p50/p99, while callers keep arriving (issue 4).

Per rate: a fresh server (`python -m callcenter serve`, JSON logs at info, no debug) with a
generated configuration: N agents in queue `sales` (static members, no wrap-up, no whisper,
no auto-pause) and line 0800000001 going straight into the queue. One child process plays
all N agents' phones: it REGISTERs each (digest auth) from its own UDP socket, answers every
INVITE at once with 200 + SDP, answers BYE/OPTIONS/CANCEL, and takes the **kernel's receive
timestamp** (SO_TIMESTAMPNS) of each new INVITE. SIPp then places `rate` calls a second for
`--duration` seconds into 0800000001 (`scenarios/uac_acd.xml`); each caller is answered by
the line, queues, is bridged to an agent and hangs up after `--talk` seconds. There are
enough agents that one is idle whenever a call arrives (`--agents`, default rate * (talk + 1)
* 2 + 10); `no_idle_agent` counts entries whose first agent INVITE came more than 1 s later.

Measured, per call (all times are the same machine's CLOCK_REALTIME):

- `enter -> INVITE`: the agent socket's kernel receive time of the INVITE minus the
  queue_log `enter` timestamp the server recorded when the call joined the queue. On
  loopback, `sendto` puts the datagram in the receiver's socket within the call, so the
  receive time is the moment the server sent it. This is the ACD's own latency: the engine's
  decision, the ring task being scheduled, the registrar lookup, building and sending the
  INVITE, and any wait behind other work on the server's event loop.
- `start -> INVITE`: the same end point minus the CDR `start` of the caller's call (written
  when the server accepted the caller's INVITE, after routing and the SDP answer): adds
  answering the caller and starting the queue flow.

The caller's number (48500 + SIPp call number) is carried into the agent INVITE's From,
which is how an INVITE is matched to its queue entry (queue_log.call_id -> calls.caller).
Nothing is asserted; one JSON line per rate.

    python3 benchmarks/bench_acd_latency.py --rates 10,40,80 --duration 30 --nice -10
"""

from __future__ import annotations

import argparse
import json
import math
import selectors
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from benchmarks.benchlib import (
    BENCH,
    HOST,
    CpuSampler,
    Server,
    count,
    finish_sipp,
    machine,
    niceness,
    sipp_row,
    start_sipp,
    udp_socket_drops,
)
from callcenter.sip.auth import answerable, build_authorization
from callcenter.sip.message import (
    Headers,
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
    serialize,
)

SCENARIO = BENCH / "scenarios" / "uac_acd.xml"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")
AGENT_BASE = 7001
PASSWORD_PREFIX = "bench-agent-"
NUMBER = "0800000001"


# ------------------------------------------------------------------------------ the agents


class Agents:
    """N agent phones in one process: one UDP socket each, a selector loop, no threads."""

    def __init__(
        self, server_port: int, users: list[str], rtp_port: int, sdp_port: int = 0
    ) -> None:
        self.server = (HOST, server_port)
        self.users = users
        self.sel = selectors.DefaultSelector()
        self.socks: dict[str, socket.socket] = {}
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, rtp_port))  # the agents' media: read and thrown away
        self.rtp.setblocking(False)
        self.sel.register(self.rtp, selectors.EVENT_READ, None)
        self.sdp_port = sdp_port or self.rtp.getsockname()[1]
        """The port our answers offer (another process's socket in the bridged benchmark)."""
        self.answers: dict[str, bytes] = {}  # Call-ID -> our 200 to its INVITE (retransmits)
        self.invites: list[dict[str, Any]] = []
        self.counts = {"invite": 0, "reinvite": 0, "retrans": 0, "bye": 0, "cancel": 0,
                       "options": 0, "other": 0, "bad": 0}
        for user in users:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.bind((HOST, 0))
            self.socks[user] = s

    # ---- registration (synchronous, before the load)
    def register_all(self, timeout: float = 5.0) -> None:
        for user, s in self.socks.items():
            self._register(user, s, timeout)

    def _register(self, user: str, s: socket.socket, timeout: float) -> None:
        port = s.getsockname()[1]
        call_id = uuid.uuid4().hex
        uri = f"sip:{HOST}:{self.server[1]}"
        s.settimeout(timeout)
        auth: str | None = None
        for cseq in (1, 2):
            h = Headers()
            h.add("Via", f"SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport")
            h.add("Max-Forwards", "70")
            h.add("From", f"<sip:{user}@{HOST}>;tag={call_id[:8]}")
            h.add("To", f"<sip:{user}@{HOST}>")
            h.add("Call-ID", call_id)
            h.add("CSeq", f"{cseq} REGISTER")
            h.add("Contact", f"<sip:{user}@{HOST}:{port}>")
            h.add("Expires", "3600")
            if auth is not None:
                h.add("Authorization", auth)
            s.sendto(serialize(Request("REGISTER", uri, h)), self.server)
            resp = self._await_response(s, cseq)
            if resp.status == 200:
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, user)
                return
            if resp.status != 401 or auth is not None:
                raise RuntimeError(f"REGISTER {user}: {resp.status} {resp.reason}")
            auth = self._authorization(user, uri, resp)
        raise RuntimeError(f"REGISTER {user}: no 200")

    def _await_response(self, s: socket.socket, cseq: int) -> Response:
        while True:  # bounded by the socket timeout
            data = s.recv(65535)
            msg = parse_message(data)
            if isinstance(msg, Response) and msg.cseq == (cseq, "REGISTER"):
                if msg.status >= 200:
                    return msg
            elif isinstance(msg, Request):  # e.g. an OPTIONS qualify already
                s.sendto(serialize(make_response(msg, 200)), self.server)

    def _authorization(self, user: str, uri: str, resp: Response) -> str:
        challenge = answerable(resp.headers.get_all("WWW-Authenticate"))
        if challenge is None:
            raise RuntimeError("no usable digest challenge")
        return build_authorization(challenge, method="REGISTER", uri=uri, username=user,
                                   password=PASSWORD_PREFIX + user, cnonce=uuid.uuid4().hex[:16])

    # ---- the phones
    def run(self, until: float) -> None:
        """Answer until the monotonic deadline (or SIGTERM)."""
        stop = False

        def on_term(_sig: int, _frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_term)
        while not stop and time.monotonic() < until:
            self.poll(0.2)

    def poll(self, timeout: float) -> None:
        """Handle what arrived, waiting up to ``timeout`` s for something."""
        cspace = socket.CMSG_SPACE(TIMESPEC.size)
        for key, _ in self.sel.select(timeout=timeout):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if key.data is None:
                for _ in range(64):  # RTP: drain and drop
                    try:
                        s.recv(2048)
                    except BlockingIOError:
                        break
                continue
            for _ in range(64):
                try:
                    data, anc, _flags, addr = s.recvmsg(65535, cspace)
                except BlockingIOError:
                    break
                rx = time.time()
                for level, kind, cdata in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = TIMESPEC.unpack(cdata[: TIMESPEC.size])
                        rx = sec + nsec / 1e9
                self._on_datagram(key.data, s, data, addr, rx)

    def _on_datagram(
        self, user: str, s: socket.socket, data: bytes, addr: tuple[str, int], rx: float
    ) -> None:
        try:
            msg = parse_message(data)
        except SipParseError:
            self.counts["bad"] += 1
            return
        if isinstance(msg, Response):
            return
        method = msg.method
        if method == "INVITE":
            if msg.to_tag is not None:
                self.counts["reinvite"] += 1
                s.sendto(self._answer(user, s, msg), addr)
                return
            old = self.answers.get(msg.call_id)
            if old is not None:
                self.counts["retrans"] += 1
                s.sendto(old, addr)
                return
            self.counts["invite"] += 1
            self.invites.append({
                "agent": user, "rx": rx, "caller": _user_of(msg), "call_id": msg.call_id,
                "media": media_port(msg.body),
            })
            answer = self._answer(user, s, msg)
            self.answers[msg.call_id] = answer
            s.sendto(answer, addr)
        elif method == "ACK":
            return
        else:
            self.counts[{"BYE": "bye", "CANCEL": "cancel", "OPTIONS": "options"}.get(
                method, "other")] += 1
            if method == "BYE":
                self.answers.pop(msg.call_id, None)
            s.sendto(serialize(make_response(msg, 200)), addr)

    def _answer(self, user: str, s: socket.socket, req: Request) -> bytes:
        port = s.getsockname()[1]
        resp = make_response(req, 200, to_tag=req.to_tag or uuid.uuid4().hex[:10])
        resp.headers.add("Contact", f"<sip:{user}@{HOST}:{port}>")
        resp.headers.add("Content-Type", "application/sdp")
        rtp_port = self.sdp_port
        resp.body = (
            f"v=0\r\no={user} 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
            "a=sendrecv\r\n"
        ).encode()
        return serialize(resp)


def media_port(sdp: bytes) -> int:
    """The port of the first m= line of an SDP body (0 without one)."""
    for line in sdp.decode(errors="replace").splitlines():
        if line.startswith("m="):
            return int(line.split()[1])
    return 0


def _user_of(msg: Request) -> str:
    uri = msg.from_.uri
    return uri if isinstance(uri, str) else (uri.user or "")


def agents_main(args: argparse.Namespace) -> int:
    """Child process: register, print "ready", answer until the deadline, write the results."""
    users = [str(AGENT_BASE + i) for i in range(args.agents)]
    agents = Agents(args.sip_port, users, args.agent_rtp_port)
    agents.register_all()
    print("ready", flush=True)
    agents.run(time.monotonic() + args.agent_seconds)
    out = {"invites": agents.invites, "counts": agents.counts}
    Path(args.agent_out).write_text(json.dumps(out))
    return 0


# ------------------------------------------------------------------------------ the run


@dataclass
class RunResult:
    rate: int
    duration: int
    agents: int
    talk_s: float
    placed: int
    successful: int
    failed: int
    sipp_retransmissions: int
    queue_entries: int
    agent_invites: int
    matched: int
    no_idle_agent: int
    """Queue entries whose first agent INVITE came more than 1 s after the entry (no idle
    agent, or the server fell behind); they are in the percentiles too."""
    enter_to_invite_ms: dict[str, float]
    start_to_invite_ms: dict[str, float]
    cpu_mean: float
    cpu_p90: float
    system_busy_pct: float
    server_sip_drops: int
    nice: int
    agent_counts: dict[str, int]


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def q(p: float) -> float:  # nearest rank
        return round(v[max(0, math.ceil(p / 100 * len(v)) - 1)], 2)

    return {"n": len(v), "min": round(v[0], 2), "p50": q(50), "p90": q(90), "p99": q(99),
            "max": round(v[-1], 2),
            "mean": round(sum(v) / len(v), 2)}


def write_config(args: argparse.Namespace, workdir: Path) -> Path:
    """The benchmark config with N agents in queue sales and a queue-only dialplan."""
    data = yaml.safe_load(Path(args.config).read_text())
    users = [str(AGENT_BASE + i) for i in range(args.agents)]
    data["users"] = [{"user": u, "password": PASSWORD_PREFIX + u, "role": "agent"} for u in users]
    data["queues"] = [{
        "name": "sales", "members": users, "wrapup": 0, "ring_timeout": 5, "retry": 0,
        "max_wait": 60, "announce_every": None, "whisper": False, "auto_pause_after": None,
    }]
    data["sounds"] = str((Path(args.config).parent / data.get("sounds", "../sounds")).resolve())
    plans = workdir / "dialplans"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "acd.yaml").write_text(yaml.safe_dump({"lines": [{
        "number": NUMBER, "name": "ACD benchmark", "kind": "toll-free", "accept": ["pstn"],
        "language": "pl", "queue": "sales",
    }]}))
    data["dialplans"] = str(plans)
    path = workdir / "acd-config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def run_rate(args: argparse.Namespace, rate: int, workdir: Path) -> RunResult:
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(args, workdir)
    server = Server(workdir, config, args.sip_port, args.http_port, nice=args.nice)
    server.start()
    agent_out = workdir / "agents.json"
    agent_out.unlink(missing_ok=True)
    agent_seconds = args.duration + args.talk + 60
    agents = subprocess.Popen(
        [sys.executable, __file__, "_agents", "--agents", str(args.agents),
         "--sip-port", str(args.sip_port), "--agent-rtp-port", str(args.agent_rtp_port),
         "--agent-seconds", str(agent_seconds), "--agent-out", str(agent_out)],
        stdout=subprocess.PIPE, stderr=open(workdir / "agents.stderr", "wb"),  # noqa: SIM115
        stdin=subprocess.DEVNULL, preexec_fn=niceness(args.nice),
    )
    try:
        assert agents.stdout is not None
        line = agents.stdout.readline()  # bounded: the child registers with 5 s timeouts
        if line.strip() != b"ready":
            raise RuntimeError(f"agents did not register: see {workdir / 'agents.stderr'}")
        time.sleep(1.0)  # registrations reach the ACD
        sampler = CpuSampler(server.pid).start()
        stat = workdir / "stat.csv"
        stat.unlink(missing_ok=True)
        sipp = start_sipp(args, SCENARIO, NUMBER, rate, args.talk, workdir, stat)
        finish_sipp(sipp, args.duration + args.talk + 60, workdir)
        sampler.stop()
        sip_drops = udp_socket_drops(args.sip_port)
        time.sleep(1.0)  # last BYEs and CDR writes
    finally:
        if agents.poll() is None:
            agents.send_signal(signal.SIGTERM)
        try:
            agents.wait(15)
        except subprocess.TimeoutExpired:
            agents.kill()
            agents.wait(5)
        server.stop()
    row = sipp_row(stat)
    got = json.loads(agent_out.read_text()) if agent_out.exists() else {"invites": [], "counts": {}}
    con = sqlite3.connect(f"file:{workdir / 'bench.db'}?mode=ro", uri=True, timeout=10)
    try:
        entries = con.execute(
            "SELECT c.caller, q.ts, c.start FROM queue_log q JOIN calls c ON c.id = q.call_id "
            "WHERE q.event = 'enter' AND q.queue = 'sales' ORDER BY q.id"
        ).fetchall()
    finally:
        con.close()
    first_invite: dict[str, float] = {}
    for inv in got["invites"]:
        caller = inv["caller"]
        if caller not in first_invite or inv["rx"] < first_invite[caller]:
            first_invite[caller] = inv["rx"]
    enter_ms: list[float] = []
    start_ms: list[float] = []
    late = 0
    for caller, enter_ts, start_ts in entries:
        rx = first_invite.get(caller)
        if rx is None:
            continue
        enter_ms.append((rx - enter_ts) * 1000)
        start_ms.append((rx - start_ts) * 1000)
        late += (rx - enter_ts) > 1.0
    cpu = sampler.summary(args.talk + 2, args.duration)
    return RunResult(
        rate=rate, duration=args.duration, agents=args.agents, talk_s=args.talk,
        placed=count(row, "OutgoingCall(C)"), successful=count(row, "SuccessfulCall(C)"),
        failed=count(row, "FailedCall(C)"), sipp_retransmissions=count(row, "Retransmissions(C)"),
        queue_entries=len(entries), agent_invites=len(got["invites"]), matched=len(enter_ms),
        no_idle_agent=late, enter_to_invite_ms=percentiles(enter_ms),
        start_to_invite_ms=percentiles(start_ms), cpu_mean=round(cpu["mean"], 1),
        cpu_p90=round(cpu["p90"], 1),
        system_busy_pct=round(sampler.system_summary(args.talk + 2, args.duration), 1),
        server_sip_drops=sip_drops, nice=args.nice, agent_counts=got["counts"],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", default="10,40", help="comma-separated caller rates (calls/s)")
    p.add_argument("--duration", type=int, default=30, help="seconds of new calls per rate")
    p.add_argument("--talk", type=float, default=2.0,
                   help="seconds from the caller's answer to its BYE (queue + talk)")
    p.add_argument("--agents", type=int, default=0,
                   help="agents in the queue (default: enough to keep some idle: "
                        "rate * (talk + 1) * 2 + 10, at most 400)")
    p.add_argument("--config", default=str(BENCH / "bench-config.yaml"))
    p.add_argument("--sip-port", type=int, default=25260)
    p.add_argument("--http-port", type=int, default=25280)
    p.add_argument("--sipp-port", type=int, default=25262)
    p.add_argument("--media-port", type=int, default=25264)
    p.add_argument("--agent-rtp-port", type=int, default=25270)
    p.add_argument("--sipp", default=shutil.which("sipp") or "sipp")
    p.add_argument("--workdir", default="/tmp/callcenter-bench/acd")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness of server, SIPp and agents (-10: ahead of other load)")
    if argv[:1] == ["_agents"]:
        p.add_argument("--agent-seconds", type=float, required=True)
        p.add_argument("--agent-out", required=True)
        args = p.parse_args(argv[1:])
        args.agent_seconds = min(args.agent_seconds, 3600.0)
        return agents_main(args)
    args = p.parse_args(argv)
    print(json.dumps(machine()), flush=True)
    for rate in (int(r) for r in args.rates.split(",")):
        rate = max(1, min(rate, 500))
        one = argparse.Namespace(**vars(args))
        if not one.agents:
            one.agents = min(400, int(rate * (args.talk + 1) * 2) + 10)
        one.duration = max(1, min(args.duration, 600))
        res = run_rate(one, rate, Path(args.workdir) / f"r{rate}")
        print(json.dumps(asdict(res)), flush=True)
        time.sleep(2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
