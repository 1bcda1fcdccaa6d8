"""ACD engine decisions per second, in-process (no sockets).

    python3 benchmarks/bench_acd.py [--calls 200000] [--agents 50]

A "decision" is one ``AcdEngine.handle`` call. Each simulated call costs three (arrival,
answer, end). Scenarios: one queue with idle agents (every arrival rings someone at once), a
loaded queue (calls wait, each call end hands the agent the next caller), the same with log
records on, and eight queues with skills.
"""

from __future__ import annotations

import argparse
import random
import time

from acd import events as E
from acd.actions import RingAgent
from acd.config import AgentConfig, Membership, QueueConfig
from acd.engine import AcdEngine
from acd.simulator import SimConfig, simulate


def _engine(agents: int, queues: int, records: bool, skills: bool) -> AcdEngine:
    names = [f"q{i}" for i in range(queues)]
    qs = [QueueConfig(name=n, announce_every=None, announce_position=False) for n in names]
    ags = [AgentConfig(id=f"a{i}", queues=tuple(Membership(queue=n) for n in names),
                       skills={"s": 1 + i % 5} if skills else {}, logged_in=True,
                       registered=True) for i in range(agents)]
    return AcdEngine(queues=qs, agents=ags, rng=random.Random(1), records=records)


def bench_direct(calls: int, agents: int, queues: int, records: bool, skills: bool,
                 backlog: int) -> float:
    """Decisions per second with ``backlog`` calls kept waiting."""
    e = _engine(agents, queues, records, skills)
    rng = random.Random(2)
    names = e.queue_names
    handle = e.handle
    connected: list[str] = []
    now = 0.0
    decisions = 0
    started = time.perf_counter()
    for i in range(calls):
        now += 0.01
        call = f"c{i}"
        out = handle(E.CallArrived(call, names[i % len(names)],
                                   skills={"s": rng.randint(1, 3)} if skills else {}), now)
        decisions += 1
        for a in out:
            if isinstance(a, RingAgent):
                handle(E.RingAnswered(a.agent, a.call), now)
                decisions += 1
                connected.append(a.call)
        if len(connected) >= agents or (backlog == 0 and connected):
            # end the oldest call; the freed agent takes a waiting call, if any
            ended = connected.pop(0)
            for a in handle(E.CallEnded(ended), now):
                if isinstance(a, RingAgent):
                    handle(E.RingAnswered(a.agent, a.call), now)
                    decisions += 1
                    connected.append(a.call)
            decisions += 1
    return decisions / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200_000)
    p.add_argument("--agents", type=int, default=50)
    args = p.parse_args()
    n, k = args.calls, args.agents
    print(f"calls={n:,} agents={k}")
    rows = [
        ("1 queue, idle agents", dict(queues=1, records=False, skills=False, backlog=0)),
        ("1 queue, loaded", dict(queues=1, records=False, skills=False, backlog=1)),
        ("1 queue, loaded, records on", dict(queues=1, records=True, skills=False, backlog=1)),
        ("8 queues, skills, loaded", dict(queues=8, records=False, skills=True, backlog=1)),
    ]
    for name, kw in rows:
        rate = bench_direct(n, k, **kw)  # type: ignore[arg-type]
        print(f"{name:<32} {rate:>12,.0f} decisions/s")
    for agents, rate, patience in ((6, 100, None), (50, 900, 120)):
        r = simulate(SimConfig(agents=agents, arrival_rate=rate, aht=180, patience=patience,
                               calls=n, seed=1))
        print(f"simulator {agents} agents{' +patience' if patience else '':<10}"
              f" {r.calls_per_second:>12,.0f} calls/s "
              f"({r.engine_events / r.wall_seconds:,.0f} decisions/s)")


if __name__ == "__main__":
    main()
