"""Calls per second: SIPp places calls to the benchmark line at a fixed rate for a fixed time.

Each call: INVITE (PCMU) -> 200 -> ACK -> the server plays its prompt for --hold seconds ->
BYE -> 200 (benchmarks/scenarios/uac_cps.xml), over UDP or, with --transports udp,tls, also
over one TLS connection (`-t l1`: the SIPp of tests/install_sipp_tls.sh, the server's
certificate from a throw-away CA checked) in the same run. A rate passes when every call of the run
succeeded (SIPp's stat CSV: SuccessfulCall == calls placed, FailedCall == 0). A fresh server
is started for each rate; its CPU is sampled once a second and can be profiled with py-spy.

    python benchmarks/bench_cps.py --rates 50,100,150,200 --duration 60
    python benchmarks/bench_cps.py --search 100 400 --duration 60     # bisect to --resolution
    python benchmarks/bench_cps.py --rates 150 --duration 60 --profile
    python benchmarks/bench_cps.py --rates 60,100 --duration 60 --transports udp,tls

The line: ``--line prompt`` (default) is the benchmark line, which answers and plays its
welcome prompt; ``--line queue`` answers into queue ``sales`` with no agents, so every caller
hears the queue's music on hold, as a call center under churn does (issue 17's case).

Frames at the callers: every INVITE's SDP points at one RTP socket on --media-port + 4, read
by a sink in its own process (benchmarks/rtp_frames.py: kernel receive times, streams told
apart by the server's source port and SSRC, counted with bench_concurrent.py's rule: late =
more than --late-ms behind the stream's 20 ms grid, missing = timestamp or sequence gaps).
Reported as ``frames`` next to the server's own media clock figures (``clock``); the sink is
independent of those. ``--no-frames`` leaves the media port unread as before.

    python benchmarks/bench_cps.py --rates 60,150 --duration 600 --hold 3 --line queue --workers 2

Every run is bounded: SIPp gets -m rate*duration and a global -timeout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    BENCH,
    HOST,
    CpuSampler,
    Server,
    count,
    finish_sipp,
    hot_spots,
    inclusive,
    machine,
    py_spy,
    sipp_row,
    start_sipp,
    udp_errors,
    udp_socket_drops,
)
from rtp_frames import churn_sink

from tests.helpers.certs import Certs, make_certs
from tests.helpers.sipp import sipp_tls_path

SCENARIO = BENCH / "scenarios" / "uac_cps.xml"


@dataclass
class RunResult:
    rate: int
    duration: int
    placed: int
    successful: int
    failed: int
    retransmissions: int
    unexpected: int
    timeouts_recv: int
    max_udp_retrans: int
    dead_call_msgs: int
    sipp_rc: int
    wall_s: float
    cpu_mean: float
    cpu_p90: float
    cpu_max: float
    system_busy_pct: float
    udp_rcvbuf_errors: int
    """Datagrams dropped machine-wide because a socket buffer was full (SIP or RTP; with
    --no-frames nothing reads the callers' RTP, so this counts all of it)."""
    server_sip_drops: int
    sip_rcvbuf: int
    """Datagrams dropped at the server's SIP UDP socket (its receive buffer was full)."""
    nice: int
    rt_invite_ms: float
    passed: bool
    workers: str = "0"
    transport: str = "udp"
    clock: dict[str, float] | None = None
    """The server's media clocks over the run (summed over workers): ticks, late, missed,
    worst lateness, and the worst event loop lag."""
    line: str = "prompt"
    frames: dict[str, Any] | None = None
    """Frames the callers received (the sink's count, not the server's): streams, expected,
    received, late, missing, late_or_missing_pct; valid = the sink's socket dropped none."""


def _ms(value: str) -> float:
    """SIPp's response time 'HH:MM:SS:mmmuuu' (or '...:mmm') in milliseconds."""
    parts = value.split(":")
    if len(parts) < 4:
        return 0.0
    h, m, s, frac = parts[0], parts[1], parts[2], parts[3]
    ms = float(frac[:3]) + (float(frac[3:]) / 1000 if len(frac) > 3 else 0.0)
    return (int(h) * 3600 + int(m) * 60 + int(s)) * 1000 + ms


def clock_figures(http_port: int) -> dict[str, float]:
    """The media clock's counters, the loop lag and the garbage collector's figures from the
    server's /metrics."""
    names = {"callcenter_rtp_ticks_total": "ticks", "callcenter_rtp_late_ticks_total": "late",
             "callcenter_rtp_missed_ticks_total": "missed",
             "callcenter_rtp_tick_lateness_max_seconds": "lateness_max_s",
             "callcenter_event_loop_lag_max_seconds": "loop_lag_max_s",
             'python_gc_collections_total{generation="2"}': "full_gcs",
             "callcenter_gc_seconds_total": "gc_s", "callcenter_gc_pause_max_seconds": "gc_pause_max_s"}
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    out = {names[k]: float(v) for k, _, v in (ln.partition(" ") for ln in lines) if k in names}
    if out.get("ticks"):  # a missed tick never ran: it is not among the ticks counted
        due = out["ticks"] + out["missed"]
        out["late_or_missed_pct"] = round(100 * (out["late"] + out["missed"]) / due, 3)
    return out


def with_workers(config: Path, workers: str, workdir: Path,
                 tls: tuple[Certs, int] | None = None, queue_line: str | None = None) -> Path:
    """A copy of the config with ``media.workers`` set (paths made absolute), with ``tls``
    (certificates, port) SIP over TLS as well, and with ``queue_line`` the only line, going
    straight into queue ``sales`` with no agents (callers hear its music on hold)."""
    cfg = yaml.safe_load(config.read_text())
    for key in ("sounds", "dialplans"):
        cfg[key] = str((config.parent / cfg[key]).resolve())
    if queue_line:
        plans = workdir / "dialplans"
        plans.mkdir(parents=True, exist_ok=True)
        (plans / "queue.yaml").write_text(yaml.safe_dump({"lines": [{
            "number": queue_line, "name": "Churn into a queue", "kind": "toll-free",
            "accept": ["pstn"], "language": "pl", "queue": "sales"}]}))
        cfg.update(dialplans=str(plans), queues=[{"name": "sales", "members": []}])
    cfg.setdefault("media", {})["workers"] = workers if workers == "auto" else int(workers)
    if tls:
        certs, port = tls
        cfg["sip"].update(transports=["udp", "tcp", "tls"], tls={
            "certificate": str(certs.certificate), "key": str(certs.key), "ca": str(certs.ca),
            "port": port})
    out = workdir / "config.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def run_rate(args: argparse.Namespace, rate: int, workdir: Path,
             transport: str = "udp") -> RunResult:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"CALLCENTER_BENCH_SIP_RCVBUF": str(args.sip_rcvbuf)} if args.sip_rcvbuf else {}
    certs = make_certs(workdir / "certs") if transport == "tls" else None
    config = with_workers(Path(args.config), args.workers, workdir,
                          (certs, args.tls_port) if certs else None,
                          args.number if args.line == "queue" else None)
    scenario = SCENARIO
    if not args.no_frames:
        scenario = workdir / SCENARIO.name  # the SDP names the sink's port, not SIPp's own
        scenario.write_text(SCENARIO.read_text().replace(
            "m=audio [media_port]", f"m=audio {args.media_port + 4}"))
    sink = None if args.no_frames else start_sink(args)  # first: a daemon, gone if we fail
    server = Server(workdir, config, args.sip_port, args.http_port, env=env, nice=args.nice)
    server.start()
    sampler = CpuSampler(server.pid).start()
    calls = rate * args.duration
    stat = workdir / "stat.csv"
    stat.unlink(missing_ok=True)
    profiler = None
    udp0 = udp_errors()
    t0 = time.monotonic()
    tls = (args.sipp_tls, args.tls_port, ["-tls_cert", str(certs.certificate), "-tls_key",
           str(certs.key), "-tls_ca", str(certs.ca)]) if certs else None
    sipp = start_sipp(args, scenario, args.number, rate, args.hold, workdir, stat, tls)
    if args.profile:
        time.sleep(args.hold + 5)
        profiler = py_spy(server.pid, args.profile_seconds, workdir / "profile.txt")
    finish_sipp(sipp, args.duration + args.hold + 60, workdir)
    wall = time.monotonic() - t0
    if profiler is not None:
        profiler.wait(args.profile_seconds + 30)
    sampler.stop()
    udp1 = udp_errors()
    sip_drops = udp_socket_drops(args.sip_port)
    try:
        clock: dict[str, float] | None = clock_figures(args.http_port)
    except OSError:
        clock = None
    server.stop()
    frames = stop_sink(*sink) if sink else None
    row = sipp_row(stat)
    # steady state: skip the first hold+2 s of ramp-up and the tail after the last INVITE
    cpu = sampler.summary(args.hold + 2, args.duration)
    ok = count(row, "SuccessfulCall(C)")
    failed = count(row, "FailedCall(C)")
    res = RunResult(
        rate=rate, duration=args.duration, placed=count(row, "OutgoingCall(C)"),
        successful=ok, failed=failed, retransmissions=count(row, "Retransmissions(C)"),
        unexpected=count(row, "FailedUnexpectedMessage(C)"),
        timeouts_recv=count(row, "FailedTimeoutOnRecv(C)"),
        max_udp_retrans=count(row, "FailedMaxUDPRetrans(C)"),
        dead_call_msgs=count(row, "DeadCallMsgs(C)"), sipp_rc=sipp.returncode,
        wall_s=round(wall, 1), cpu_mean=round(cpu["mean"], 1), cpu_p90=round(cpu["p90"], 1),
        cpu_max=round(cpu["max"], 1),
        system_busy_pct=round(sampler.system_summary(args.hold + 2, args.duration), 1),
        nice=args.nice,
        udp_rcvbuf_errors=udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0),
        server_sip_drops=sip_drops, sip_rcvbuf=args.sip_rcvbuf,
        rt_invite_ms=round(_ms(row.get("ResponseTime1(C)", "")), 2),
        passed=(ok == calls and failed == 0 and sipp.returncode == 0),
        workers=args.workers, transport=transport, clock=clock, line=args.line, frames=frames,
    )
    (workdir / "cpu.json").write_text(json.dumps(sampler.samples))
    if profiler is not None and (workdir / "profile.txt").exists():
        report_profile(workdir / "profile.txt")
    return res


def summary(res: RunResult) -> str:
    """One line: the calls, the server's ticks and the callers' frames, late or missed."""
    out = f"{res.rate} calls/s, {res.line} line, workers {res.workers}: {res.successful} ok / {res.failed} failed"
    if res.clock and "late_or_missed_pct" in res.clock:
        c = res.clock
        out += (f"; server ticks due {c['ticks'] + c['missed']:.0f}, late {c['late']:.0f}, "
                f"missed {c['missed']:.0f} ({c['late_or_missed_pct']} %)")
    if res.frames:
        f = res.frames
        out += (f"; callers' frames expected {f['expected']}, received {f['received']}, late "
                f"{f['late']}, missing {f['missing']} ({f['late_or_missing_pct']} %) in "
                f"{f['streams']} streams{'' if f['valid'] else ', INVALID: sink dropped packets'}")
    return out


def start_sink(args: argparse.Namespace) -> tuple[Any, Any]:
    """The callers' RTP sink (rtp_frames.churn_sink) in its own process, bound and ready."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    bound = args.duration + args.hold + 300  # the sink's own deadline; "stop" comes first
    proc = ctx.Process(target=churn_sink, args=(child, args.media_port + 4, args.late_ms / 1000,
                                                bound, 10.0, args.nice), daemon=True)
    proc.start()
    if not parent.poll(30) or parent.recv() != "ready":
        proc.terminate()
        raise RuntimeError("RTP sink did not start")
    return proc, parent


def stop_sink(proc: Any, conn: Any) -> dict[str, Any] | None:
    """Tell the sink to stop; its totals (None if it did not answer in time)."""
    conn.send("stop")
    frames = conn.recv() if conn.poll(120) else None
    proc.join(10)
    if proc.is_alive():
        proc.terminate()
    return frames


def report_profile(path: Path) -> None:
    print(f"\nhot spots by own time ({path}):")
    for fn, own, incl in hot_spots(path, 20):
        print(f"  {own:5.1f}% own {incl:5.1f}% incl  {fn}")
    areas = inclusive(path, [
        "parse_message", "serialize", "TransactionLayer", "_tick (callcenter/media/engine.py",
        "structlog", "sqlite", "store/db.py", "on_invite", "sdp.py", "_run_once",
        "datagram_received", "_on_readable",
    ])
    print("share of samples by area (inclusive):")
    for name, pct in areas.items():
        print(f"  {pct:5.1f}%  {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", help="comma-separated call rates to try, in order")
    p.add_argument("--search", nargs=2, type=int, metavar=("PASS", "FAIL"),
                   help="bisect between a passing and a failing rate")
    p.add_argument("--resolution", type=int, default=10, help="bisection stops at this step")
    p.add_argument("--duration", type=int, default=60, help="seconds of new calls per rate")
    p.add_argument("--hold", type=float, default=3.0, help="seconds between ACK and BYE")
    p.add_argument("--number", default="0800000001")
    p.add_argument("--workers", default="0", help="media.workers: auto or N (0 = in process)")
    p.add_argument("--line", choices=["prompt", "queue"], default="prompt",
                   help="prompt: the benchmark line's welcome prompt; queue: queue sales, no agents")
    p.add_argument("--no-frames", action="store_true",
                   help="do not count the frames the callers receive (no RTP sink)")
    p.add_argument("--late-ms", type=float, default=40.0,
                   help="a caller's frame is late this far behind its slot")
    p.add_argument("--config", default=str(BENCH / "bench-config.yaml"))
    p.add_argument("--sip-port", type=int, default=25260)
    p.add_argument("--http-port", type=int, default=25280)
    p.add_argument("--sipp-port", type=int, default=25262)
    p.add_argument("--media-port", type=int, default=25264,
                   help="SIPp's RTP port; the callers' RTP sink takes this + 4 and + 5")
    p.add_argument("--sipp", default=shutil.which("sipp") or "sipp")
    p.add_argument("--transports", default="udp",
                   help="comma-separated, each rate in turn: udp, tls (SIPp -t l1)")
    p.add_argument("--tls-port", type=int, default=25270)
    p.add_argument("--sipp-tls", default=sipp_tls_path(), help="SIPp built with TLS")
    p.add_argument("--workdir", default="/tmp/callcenter-bench/cps")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness of server and SIPp (-10: ahead of other load on a shared box)")
    p.add_argument("--sip-rcvbuf", type=int, default=0,
                   help="experiment: SIP UDP receive buffer of the server (bytes)")
    p.add_argument("--profile", action="store_true", help="py-spy the server during the run")
    p.add_argument("--profile-seconds", type=int, default=30)
    p.add_argument("--stop-on-fail", action="store_true", help="stop --rates at the first failure")
    args = p.parse_args()

    print(json.dumps(machine()))
    results: list[RunResult] = []

    transports = args.transports.split(",")
    if not set(transports) <= {"udp", "tls"}:
        p.error(f"--transports: udp and/or tls, not {args.transports}")

    def one(rate: int, transport: str) -> RunResult:
        suffix = "" if transport == "udp" else f"-{transport}"
        res = run_rate(args, rate, Path(args.workdir) / f"r{rate}{suffix}", transport)
        results.append(res)
        print(json.dumps(asdict(res)), flush=True)
        print(summary(res), flush=True)
        time.sleep(2)  # let sockets in TIME_WAIT / late retransmissions drain
        return res

    if args.rates:
        for rate in (int(r) for r in args.rates.split(",")):
            if not all([one(rate, t).passed for t in transports]) and args.stop_on_fail:
                break
    for transport in transports if args.search else ():
        lo, hi = args.search
        while hi - lo > args.resolution:
            mid = (lo + hi) // 2
            if one(mid, transport).passed:
                lo = mid
            else:
                hi = mid
        print(f"{transport}: highest passing rate found: {lo} CPS (failing: {hi})")
    for transport in transports:
        ran = [r for r in results if r.transport == transport]
        print(f"{transport}: passed: {sorted(r.rate for r in ran if r.passed)}  "
              f"failed: {sorted(r.rate for r in ran if not r.passed)}")


if __name__ == "__main__":
    main()
