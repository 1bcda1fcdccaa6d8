"""Dialer pacing benchmark: predictive vs VICIdial adaptive vs progressive, 5 seeds.

    python benchmarks/bench_dialer.py [--seeds 5] [--hours 8]

20 agents, 25 % answer rate, 3 min mean talk (exponential), 30 s wrap-up, 8 h day; prints a
markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

from callcenter.dialer.simulator import SimConfig, SimResult, simulate

MODES = ("predictive", "adaptive-baseline", "progressive")


def _run(job: tuple[str, int, float]) -> SimResult:
    mode, seed, hours = job
    return simulate(SimConfig(mode=mode, seed=seed, hours=hours))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--hours", type=float, default=8.0)
    args = ap.parse_args()
    jobs = [(m, s, args.hours) for m in MODES for s in range(1, args.seeds + 1)]
    with ProcessPoolExecutor() as pool:
        results = list(pool.map(_run, jobs))
    print("| mode | seed | occupancy | abandon rate | calls/agent-hour | dials |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in MODES:
        rows = [r for r in results if r.mode == mode]
        for r in rows:
            print(f"| {mode} | {r.seed} | {r.occupancy:.1%} | {r.abandon_rate:.2%} "
                  f"| {r.calls_per_agent_hour:.2f} | {r.dials} |")
        n = len(rows)
        print(f"| **{mode}** | mean | **{sum(r.occupancy for r in rows) / n:.1%}** "
              f"| **{sum(r.abandon_rate for r in rows) / n:.2%}** "
              f"| **{sum(r.calls_per_agent_hour for r in rows) / n:.2f}** "
              f"| **{sum(r.dials for r in rows) / n:.0f}** |")


if __name__ == "__main__":
    main()
