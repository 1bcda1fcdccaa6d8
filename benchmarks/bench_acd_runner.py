"""CPU per queued call of the live ACD (QueueRunner + engine + events), in-process.

    python3 benchmarks/bench_acd_runner.py [--calls 3000] [--agents 10,130,310] [--profile]

Drives :class:`callcenter.calls.queues.QueueRunner` with fakes (no sockets, no media): a
B2BUA whose agent legs answer at once, a registrar where every agent is registered, and the
event bus with a sink that serialises each event to JSON as the MQTT sink does. Each call is
queued, rung, bridged and hung up by the caller; the figure is CPU time per call. Logging is
off, so this is the ACD's own cost, not a whole server's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import time
from dataclasses import dataclass
from typing import Any

import structlog

from callcenter.calls.call import Call, Leg, LegState
from callcenter.calls.queues import QueueRunner
from callcenter.config import Config
from callcenter.events.bus import Event
from callcenter.events.service import Events


@dataclass
class _Binding:
    contact: str
    source: tuple[str, int]
    transport: str = "udp"
    reachable: bool = True


class _Registrar:
    def __init__(self) -> None:
        self.bindings: dict[str, list[_Binding]] = {}

    def contacts(self, user: str, now: float, *, reachable_only: bool = False) -> list[_Binding]:
        return self.bindings.get(user, [])


class _Channel:
    closed = False
    playing = False

    def stop_playing(self) -> None:
        pass


class _Media:
    def bridge(self, a: Any, b: Any) -> None:
        caller = a.owner
        asyncio.get_running_loop().call_soon(_end, caller)

    def unbridge(self, ch: Any) -> None:
        pass


def _end(leg: Leg) -> None:
    leg.state = LegState.ENDED
    leg.ended.set()


class _B2BUA:
    def __init__(self) -> None:
        self.media = _Media()

    async def dial(self, call: Call, **kw: Any) -> Leg:
        leg = _leg(call, kw["party"], "outbound")
        return leg

    async def hangup(self, leg: Leg) -> None:
        _end(leg)


def _leg(call: Call, party: str, direction: str) -> Leg:
    leg = Leg(call=call, direction=direction, peer=("127.0.0.1", 5060), transport="udp",
              party=party, state=LegState.ANSWERED)
    ch = _Channel()
    ch.owner = leg  # type: ignore[attr-defined]
    leg.channel = ch
    return leg


def _config(agents: int) -> Config:
    users = [str(2000 + i) for i in range(agents)]
    return Config.model_validate({
        "users": [{"user": u, "password": "secret" + u, "role": "agent"} for u in users],
        "queues": [{"name": "sales", "members": users, "wrapup": 0, "ring_timeout": 5,
                    "retry": 0, "max_wait": 60, "announce_every": None, "whisper": False,
                    "auto_pause_after": None}],
    })


async def run(agents: int, calls: int, profile: bool) -> float:
    """CPU seconds per call."""
    cfg = _config(agents)
    registrar = _Registrar()
    for u in cfg.users:
        registrar.bindings[u.user] = [_Binding(f"sip:{u.user}@127.0.0.1:7000",
                                               ("127.0.0.1", 7000))]
    loop = asyncio.get_running_loop()
    runner = QueueRunner(cfg=cfg, b2bua=_B2BUA(), registrar=registrar,  # type: ignore[arg-type]
                         prompts=None, now=loop.time)  # type: ignore[arg-type]
    events = Events()
    sent = [0]

    def mqtt_like(event: Event) -> None:
        sent[0] += len(json.dumps(event.to_dict()))

    events.subscribe(mqtt_like)
    events.attach_acd(runner)
    await runner.start()
    await asyncio.sleep(0)

    async def one(i: int) -> None:
        call = Call(caller=f"48500{i:06d}", called="0800000001", source="trunk:pstn")
        leg = _leg(call, call.caller, "inbound")
        call.legs.append(leg)
        outcome = await runner.enqueue(leg, "sales")
        assert outcome in ("answered", "hangup"), outcome

    prof = cProfile.Profile() if profile else None
    t0 = time.process_time()
    if prof:
        prof.enable()
    batch = 20
    for start in range(0, calls, batch):
        await asyncio.gather(*(one(i) for i in range(start, min(calls, start + batch))))
    if prof:
        prof.disable()
    cpu = time.process_time() - t0
    await runner.close()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return cpu / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--agents", default="10,130,310")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    for n in (int(x) for x in args.agents.split(",")):
        per_call = asyncio.run(run(n, args.calls, args.profile))
        print(f"agents {n:4d}: {per_call * 1e6:8.1f} µs CPU per queued call")


if __name__ == "__main__":
    main()
