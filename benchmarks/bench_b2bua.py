"""Call setups per second as a plain B2BUA, next to Sippy B2BUA (issue 17).

The same SIPp caller (`scenarios/uac_cps.xml`: INVITE, 200, ACK, --hold s, BYE) and the same
SIPp far end (`scenarios/uas_answer.xml`: 200 at once, no 180; `-aa` answers OPTIONS), one fresh B2BUA
per rate:

- callcenter: line 0800000001 (trunk `pstn`) whose flow is `{type: transfer, user: "7001"}`,
  an agent's direct number, the only way a trunk call reaches a registered phone. User 7001
  is registered (REGISTER with digest from the port the SIPp far end then binds). With
  `--answer through` (default; the line has `ring_through: true`), as a plain B2BUA: the
  server rings 7001, answers the caller when 7001 answers, bridges the two legs (RTP through
  the server: media stays anchored) and relays the BYE. With `--answer first` the line
  answers the caller at once and plays hold music while 7001 rings (an IVR's transfer).
- sippy: Sippy's `b2bua` (its own venv, see benchmarks/README.md) with `--static_route` to the
  same far end, no RTP proxy (it relays signalling only), logging at WARN (at its default INFO
  it writes every SIP message).

A rate passes when the caller SIPp counts every call placed as successful, none failed, exit
code 0, the far end got every call, failed none and completed each (the BYE relayed to it and
answered), and (ours) no far end answered after its
caller had hung up: our server answers the caller before it rings the far end, so a caller
can succeed without ever talking to the far end when the server falls behind. A rate is
clean when it passed and the caller never had to send a request again (no retransmission:
the B2BUA answered every request within T1, 500 ms, so it kept up); ``--rule clean`` makes
``--search`` and ``--stop-on-fail`` use that, and each side's last line names its highest
passing and highest clean rate of the rates tried.
The B2BUA's CPU (% of one core, children included) is sampled each second.

With ``--callgrind``, ours only, at a low rate: the main process runs under valgrind's
callgrind and the run reports the instructions it spent per call (counted from the first call
placed to the last one's end; its media workers run natively). Unlike CPU time, that count
does not depend on what else the machine does, so two trees compare in one run each.

    python3 benchmarks/bench_b2bua.py --rates 50,100,150 --duration 30 --hold 1
    python3 benchmarks/bench_b2bua.py --sides callcenter --callgrind --rates 5 --duration 40
    python3 benchmarks/bench_b2bua.py --sides sippy --search 100 400 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from benchmarks.bench_acd_latency import AGENT_BASE, NUMBER, PASSWORD_PREFIX, Agents
from benchmarks.bench_cps import clock_figures, report_profile
from benchmarks.benchlib import (
    BENCH,
    HOST,
    CpuSampler,
    Server,
    count,
    finish_sipp,
    machine,
    niceness,
    own_cpu_seconds,
    py_spy,
    sipp_row,
    start_sipp,
    terminate,
)
from tests.helpers.sip_probe import options_ping

SCENARIO = BENCH / "scenarios" / "uac_cps.xml"
USER = str(AGENT_BASE)


def write_config(args: argparse.Namespace, workdir: Path) -> Path:
    """The benchmark config with one user and one line ringing that user."""
    data = yaml.safe_load(Path(args.config).read_text())
    data["users"] = [{"user": USER, "password": PASSWORD_PREFIX + USER, "role": "agent"}]
    data["sounds"] = str((Path(args.config).parent / data.get("sounds", "../sounds")).resolve())
    data.setdefault("media", {})["workers"] = args.workers if args.workers == "auto" \
        else int(args.workers)
    plans = workdir / "dialplans"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "did.yaml").write_text(yaml.safe_dump({
        "lines": [{"number": NUMBER, "name": "DID", "kind": "other", "accept": ["pstn"],
                   "language": "pl", "flow": "ring",
                   "ring_through": args.answer == "through"}],
        "nodes": {"ring": {"type": "transfer", "user": USER}},
    }))
    data["dialplans"] = str(plans)
    path = workdir / "did-config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def register_far_end(sip_port: int) -> int:
    """REGISTER user 7001 from a fresh port and free it for SIPp: its port."""
    agents = Agents(sip_port, [USER], 0)
    agents.register_all()
    sock = agents.socks[USER]
    port: int = sock.getsockname()[1]
    agents.sel.close()
    sock.close()
    agents.rtp.close()
    return port


def start_uas(args: argparse.Namespace, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    cmd = [args.sipp, "-sf", str(BENCH / "scenarios" / "uas_answer.xml"), "-i", HOST, "-p", str(port), "-mi", HOST, "-mp",
           str(args.uas_media_port), "-bind_local", "-nostdin", "-aa",
           "-timeout", f"{args.duration + int(args.hold) + 90}s", "-trace_stat", "-stf",
           str(workdir / "uas-stat.csv"), "-fd", "1", "-trace_err",
           "-error_file", str(workdir / "uas_errors.log")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=workdir, preexec_fn=niceness(args.nice))


def start_sippy(args: argparse.Namespace, uas_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    cmd = [args.sippy, f"--sip_address={HOST}", f"--sip_port={args.sip_port}",
           f"--static_route={HOST}:{uas_port}", "--foreground=on", "--auth_enable=off",
           "--acct_enable=off",
           f"--logfile={workdir / 'sippy.log'}", f"--pidfile={workdir / 'sippy.pid'}",
           f"--b2bua_socket={workdir / 'sippy.sock'}"]
    env = {**os.environ, "SIPLOG_LVL": "WARN"}  # not every message, as our server
    proc = subprocess.Popen(cmd, stdout=open(workdir / "sippy.out", "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=niceness(args.nice))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # Sippy answers OPTIONS itself
        if proc.poll() is not None:
            raise RuntimeError(f"sippy exited: see {workdir / 'sippy.out'}")
        if options_ping(args.sip_port) is not None:
            return proc
        time.sleep(0.2)
    terminate(proc, 5)
    raise RuntimeError("sippy did not answer OPTIONS")


def run_rate(args: argparse.Namespace, side: str, rate: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    b2bua: subprocess.Popen[bytes] | None = None
    uas: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    gc: dict[str, float] = {}
    try:
        if side == "callcenter":
            server = Server(workdir, write_config(args, workdir), args.sip_port, args.http_port,
                            nice=args.nice, wrapper=[
                                "valgrind", "--tool=callgrind", "--callgrind-out-file="
                                + str(workdir / "callgrind.%p")] if args.callgrind else [])
            for old in workdir.glob("callgrind.*"):
                old.unlink()
            server.start(timeout=240 if args.callgrind else 15)
            pid, uas_port = server.pid, register_far_end(args.sip_port)
        else:
            uas_port = args.uas_port
            b2bua = start_sippy(args, uas_port, workdir)
            pid = b2bua.pid
        uas = start_uas(args, uas_port, workdir)
        time.sleep(1.0)
        stat = workdir / "stat.csv"
        stat.unlink(missing_ok=True)
        sampler = CpuSampler(pid).start()
        main_cpu0 = own_cpu_seconds(pid)
        if args.callgrind:
            subprocess.run(["callgrind_control", "--zero", str(pid)], check=True,
                           stdout=subprocess.DEVNULL)
        sipp = start_sipp(args, SCENARIO, NUMBER, rate, args.hold, workdir, stat)
        if args.profile:
            time.sleep(args.hold + 2)
            profiler = py_spy(pid, args.profile_seconds, workdir / "profile.txt")
        finish_sipp(sipp, args.duration + args.hold + 60, workdir)
        time.sleep(2.5)  # the last BYEs reach the far end, which writes its stats each second
        if args.callgrind:
            subprocess.run(["callgrind_control", "--dump", str(pid)], check=True,
                           stdout=subprocess.DEVNULL)
        user, system = (b - a for a, b in zip(main_cpu0, own_cpu_seconds(pid), strict=True))
        if profiler is not None:
            profiler.wait(args.profile_seconds + 30)
        sampler.stop()
        if server is not None:
            with contextlib.suppress(OSError):
                clock = clock_figures(args.http_port)
                gc = {k: clock[k] for k in ("gc_s", "full_gcs", "gc_pause_max_s") if k in clock}
    finally:
        for proc in (uas, b2bua):
            if proc is not None:
                terminate(proc, 10)
        if server is not None:
            server.stop()
    if profiler is not None and (workdir / "profile.txt").exists():
        report_profile(workdir / "profile.txt")
    row, far = sipp_row(stat), sipp_row(workdir / "uas-stat.csv")
    log = workdir / "server.log"  # ours: far ends answering after their caller had left
    late = log.read_text().count('"answered_while_cancelled"') if log.exists() else 0
    cpu = sampler.summary(args.hold + 2, args.duration)
    ok, failed = count(row, "SuccessfulCall(C)"), count(row, "FailedCall(C)")
    counted = _callgrind_instructions(workdir) if args.callgrind else None
    return {
        "side": side, "rate": rate, "duration": args.duration, "hold_s": args.hold,
        **({"answer": args.answer} if side == "callcenter" else {}),
        "placed": count(row, "OutgoingCall(C)"), "successful": ok, "failed": failed,
        "retransmissions": count(row, "Retransmissions(C)"),
        "uas_calls": count(far, "IncomingCall(C)"), "uas_failed": count(far, "FailedCall(C)"),
        "uas_completed": count(far, "SuccessfulCall(C)"),
        "answered_after_caller_left": late,
        "sipp_rc": sipp.returncode, "cpu_mean": round(cpu["mean"], 1),
        "cpu_p90": round(cpu["p90"], 1), "cpu_max": round(cpu["max"], 1),
        "main_cpu_ms_per_call": round(1000 * (user + system) / max(1, ok), 3),
        "main_system_pct": round(100 * system / max(1e-9, user + system), 1), **gc,
        **({"main_instructions_per_call": round(counted / max(1, ok))} if counted else {}),
        "machine_busy_pct": round(sampler.system_summary(args.hold + 2, args.duration), 1),
        "passed": ok == rate * args.duration and failed == 0 and sipp.returncode == 0
        and count(far, "IncomingCall(C)") >= ok and count(far, "FailedCall(C)") == 0
        and count(far, "SuccessfulCall(C)") >= ok
        and late == 0,
    } | {"clean": False}


def _callgrind_instructions(workdir: Path) -> int | None:
    """Instructions in the dump taken at the end of the calls (the one numbered 1: counted
    since the zeroing before the first call)."""
    dumps = sorted(workdir.glob("callgrind.*.1"))
    for line in dumps[0].read_text(errors="replace").splitlines() if dumps else []:
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None


def _judged(res: dict[str, Any]) -> dict[str, Any]:
    res["clean"] = bool(res["passed"]) and res["retransmissions"] == 0
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", help="comma-separated call rates to try, in order, on each side")
    p.add_argument("--search", nargs=2, type=int, metavar=("PASS", "FAIL"),
                   help="bisect each side between a passing and a failing rate")
    p.add_argument("--resolution", type=int, default=10)
    p.add_argument("--sides", default="callcenter,sippy")
    p.add_argument("--duration", type=int, default=30, help="seconds of new calls per rate")
    p.add_argument("--hold", type=float, default=1.0, help="seconds between ACK and BYE")
    p.add_argument("--workers", default="0", help="media.workers of the server: auto or N")
    p.add_argument("--answer", choices=["through", "first"], default="through",
                   help="ours: answer the caller when the far end answers (a plain B2BUA), "
                   "or at once with hold music while the far end rings")
    p.add_argument("--config", default=str(BENCH / "bench-config.yaml"))
    p.add_argument("--sip-port", type=int, default=27460)
    p.add_argument("--http-port", type=int, default=27480)
    p.add_argument("--sipp-port", type=int, default=27462)
    p.add_argument("--media-port", type=int, default=27464)
    p.add_argument("--uas-port", type=int, default=27472, help="the far end's port for Sippy")
    p.add_argument("--uas-media-port", type=int, default=27476)
    p.add_argument("--sipp", default=shutil.which("sipp") or "sipp")
    p.add_argument("--sippy", default="/tmp/sippy-venv/bin/b2bua", help="Sippy's b2bua")
    p.add_argument("--workdir", default="/tmp/callcenter-bench/b2bua")
    p.add_argument("--nice", type=int, default=0, help="niceness of the B2BUA and both SIPps")
    p.add_argument("--stop-on-fail", action="store_true")
    p.add_argument("--rule", choices=["passed", "clean"], default="passed",
                   help="what --search and --stop-on-fail count as a success")
    p.add_argument("--profile", action="store_true", help="py-spy the B2BUA during the run")
    p.add_argument("--profile-seconds", type=int, default=15)
    p.add_argument("--callgrind", action="store_true",
                   help="ours only: count the main process's instructions per call (valgrind); "
                   "use a low rate, such as 5")
    args = p.parse_args()
    args.duration = max(1, min(args.duration, 600))
    print(json.dumps(machine()), flush=True)
    for side in args.sides.split(","):
        tried: list[dict[str, Any]] = []

        def one(rate: int, side: str = side, tried: list[dict[str, Any]] = tried) -> bool:
            res = _judged(run_rate(args, side, max(1, min(rate, 2000)),
                                   Path(args.workdir) / side / f"r{rate}"))
            tried.append(res)
            print(json.dumps(res), flush=True)
            time.sleep(2)
            return bool(res[args.rule])

        if args.rates:
            for rate in (int(r) for r in args.rates.split(",")):
                if not one(rate) and args.stop_on_fail:
                    break
        if args.search:
            lo, hi = args.search
            while hi - lo > args.resolution:  # bounded: halves each time
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if one(mid) else (lo, mid)
            print(json.dumps({"side": side, "highest_passing": lo, "failing": hi}), flush=True)
        print(json.dumps({"side": side, "summary": {
            rule: max((r["rate"] for r in tried if r[rule]), default=None)
            for rule in ("passed", "clean")}, "rates": sorted({r["rate"] for r in tried})}),
            flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
