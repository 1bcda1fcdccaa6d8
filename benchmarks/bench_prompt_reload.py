"""The media clock while a 48 kHz, 60 s studio prompt replaces the Polish welcome mid-call.

Starts the server on a copy of sounds/, places a call on the English line (its prompts keep
the 20 ms clock busy), replaces sounds/pl/welcome.wav with a 48 kHz 60 s file while that call
plays, waits for the server to log ``prompt_loaded`` (at most --wait s; a server without live
reload never does), then places a call on the Polish line, which plays the new file. The
figures are the server's own /metrics: worst tick lateness, late and missed ticks, loop lag,
read before the replacement and after the second call.

    python benchmarks/bench_prompt_reload.py [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import audio, ports
from tests.helpers.server import ServerProcess
from tests.helpers.sipp import SCENARIOS, Sipp, wait_until

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("rtp_tick_lateness_max_seconds", "rtp_late_ticks_total", "rtp_missed_ticks_total",
           "rtp_ticks_total", "event_loop_lag_max_seconds")


def metrics(srv: ServerProcess) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.removeprefix("callcenter_") in METRICS:
            out[name.removeprefix("callcenter_")] = float(value)
    return out


def caller(srv: ServerProcess, workdir: Path, line: str, seconds: float) -> Sipp:
    workdir.mkdir(parents=True, exist_ok=True)
    template = (SCENARIOS / "uac_ivr.xml").read_text(encoding="iso-8859-1")
    scenario = workdir / "uac_listen.xml"
    scenario.write_text(
        template.replace("<!-- STEPS -->", f'<pause milliseconds="{int(seconds * 1000)}"/>'),
        encoding="iso-8859-1")
    return Sipp(str(scenario), workdir=workdir, ports=ports.allocate(8), remote_port=srv.sip_port,
                service=line, timeout=seconds + 30, keys={"codec_pt": "0", "codec_name": "PCMU"})


def logged(srv: ServerProcess, event: str) -> bool:
    return f'"event": "{event}"' in srv.log_text() or f'"event":"{event}"' in srv.log_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the new file")
    ap.add_argument("--rate", type=int, default=48000, help="its sample rate")
    ap.add_argument("--wait", type=float, default=10.0, help="bound on waiting for the reload")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_prompt_reload_"))
    sounds = work / "sounds"
    shutil.copytree(ROOT / "sounds", sounds)
    studio = audio.make_tone_wav(work / "studio.wav", (440.0, 660.0), args.seconds, rate=args.rate)
    result: dict[str, object] = {"file": f"{args.rate} Hz, {args.seconds:g} s"}
    with ServerProcess(work / "server", overrides={"sounds": str(sounds)}) as srv:
        busy = caller(srv, work / "busy", "0800123457", 12.0).start()  # English line
        time.sleep(3.0)  # the call is up and playing
        result["before"] = metrics(srv)
        started = time.monotonic()
        studio.replace(sounds / "pl" / "welcome.wav")
        result["reloaded"] = wait_until(lambda: logged(srv, "prompt_loaded"), args.wait, 0.05)
        result["reload_seconds"] = round(time.monotonic() - started, 2)
        caller(srv, work / "next", "0800123456", 4.0).start().wait()  # plays the new file
        busy.wait()
        result["after"] = metrics(srv)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    before, after = result["before"], result["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    print(f"file {result['file']}; reloaded: {result['reloaded']} "
          f"(seen after {result['reload_seconds']} s)")
    for name in METRICS:
        print(f"  {name:32} before {before.get(name, 0):>10g}   after {after.get(name, 0):>10g}")


if __name__ == "__main__":
    main()
