"""``callcenter simulate dialer``: one simulated campaign day, as JSON or a table."""

from __future__ import annotations

import argparse
import json
from typing import Any

from callcenter.dialer.pacing import PACERS
from callcenter.dialer.simulator import SimConfig, SimResult, simulate


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number 0-1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number 0-1, got {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``dialer`` simulator to ``callcenter simulate``."""
    p = subparsers.add_parser(
        "dialer",
        help="simulate a predictive dialer campaign day",
        description="Simulate one campaign day driving the real pacing code.",
    )
    p.add_argument("--agents", type=int, default=20, metavar="N")
    p.add_argument("--answer-rate", type=_fraction, default=0.25, metavar="F",
                   help="share of dials answered by a person (default 0.25)")
    p.add_argument("--talk", type=_positive, default=180.0, metavar="SECONDS",
                   help="mean talk time (default 180)")
    p.add_argument("--wrapup", type=_positive, default=30.0, metavar="SECONDS",
                   help="wrap-up time (default 30)")
    p.add_argument("--hours", type=_positive, default=8.0, metavar="H")
    p.add_argument("--mode", choices=sorted(PACERS), default="predictive")
    p.add_argument("--abandon-limit", type=_fraction, default=0.03, metavar="F")
    p.add_argument("--seed", type=int, default=1, metavar="N")
    p.add_argument("--ring-mean", type=_positive, default=8.0, metavar="SECONDS",
                   help="mean time to answer (log-normal, default 8)")
    p.add_argument("--max-ring", type=_positive, default=30.0, metavar="SECONDS")
    p.add_argument("--talk-dist", choices=("exponential", "lognormal"), default="exponential")
    p.add_argument("--machine-rate", type=_fraction, default=0.0, metavar="F",
                   help="share of dials answered by a machine (enables AMD)")
    p.add_argument("--amd-accuracy", type=_fraction, default=0.9, metavar="F")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the simulation the arguments describe and print the result."""
    if args.agents < 1:
        print("callcenter: --agents must be at least 1")
        return 2
    cfg = SimConfig(
        agents=args.agents,
        answer_rate=args.answer_rate,
        talk=args.talk,
        wrapup=args.wrapup,
        hours=args.hours,
        mode=args.mode,
        abandon_limit=args.abandon_limit,
        seed=args.seed,
        ring_mean=args.ring_mean,
        max_ring=args.max_ring,
        talk_dist=args.talk_dist,
        machine_rate=args.machine_rate,
        amd_accuracy=args.amd_accuracy,
    )
    result = simulate(cfg)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(format_table(result))
    return 0


def format_table(r: SimResult) -> str:
    """A readable two-column table of one result."""
    rows = [
        ("mode", r.mode),
        ("seed", str(r.seed)),
        ("agents x hours", f"{r.agents} x {r.hours:g}"),
        ("occupancy", f"{r.occupancy:.1%}"),
        ("abandon rate", f"{r.abandon_rate:.2%}"),
        ("calls per agent-hour", f"{r.calls_per_agent_hour:.2f}"),
        ("dials", str(r.dials)),
        ("answered by a person", str(r.answered)),
        ("connected", str(r.connected)),
        ("abandoned", str(r.abandoned)),
        ("no answer", str(r.no_answer)),
        ("machines (to agent)", f"{r.machines} ({r.machines_to_agent})"),
        ("agent wait per call", f"{r.mean_agent_wait:.1f} s"),
        ("most lines ringing", str(r.max_lines)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
