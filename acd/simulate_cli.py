"""``callcenter simulate acd``: run the ACD simulator from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from acd.erlang import ErlangResult, erlang_a, erlang_c_result
from acd.simulator import SimConfig, SimResult, simulate
from acd.strategies import STRATEGIES


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add the ``acd`` parser to ``callcenter simulate``."""
    p = subparsers.add_parser(
        "acd", help="simulate an ACD queue (Erlang C/A check)",
        description="Simulate one queue through the real ACD engine: Poisson arrivals, "
        "exponential or log-normal handle times, exponential patience.",
    )
    p.add_argument("--agents", type=_positive(int), required=True, metavar="N")
    p.add_argument("--arrival-rate", type=_positive(float), required=True,
                   metavar="CALLS_PER_HOUR")
    p.add_argument("--aht", type=_positive(float), required=True, metavar="SECONDS",
                   help="mean handle time")
    p.add_argument("--patience", type=_positive(float), metavar="SECONDS",
                   help="mean patience (exponential); default: callers never abandon")
    p.add_argument("--calls", type=_positive(int), default=100_000, metavar="N")
    p.add_argument("--strategy", default="longest-idle-agent", choices=sorted(STRATEGIES))
    p.add_argument("--sl-seconds", type=float, default=20.0, metavar="SECONDS")
    p.add_argument("--seed", type=int, default=1, metavar="N")
    p.add_argument("--handle-dist", choices=("exponential", "lognormal"), default="exponential")
    p.add_argument("--handle-cv", type=_positive(float), default=1.0, metavar="CV",
                   help="coefficient of variation of the log-normal handle time")
    p.add_argument("--wrap-up", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--warmup", type=int, default=0, metavar="N",
                   help="arrivals before the statistics start")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for 100,000+ calls on a terminal)")
    p.set_defaults(run=run)


def _theory(cfg: SimConfig) -> ErlangResult | None:
    """Erlang C or A for the configuration, when the model applies."""
    if cfg.handle_dist != "exponential" or cfg.wrap_up or cfg.answer_delay:
        return None
    lam, mu = cfg.arrival_rate / 3600.0, 1.0 / cfg.aht
    try:
        if cfg.patience:
            return erlang_a(cfg.agents, lam, mu, 1.0 / cfg.patience, cfg.sl_seconds)
        return erlang_c_result(cfg.agents, lam, mu, cfg.sl_seconds)
    except ValueError:
        return None


def _bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} calls")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    try:
        cfg = SimConfig(
            agents=args.agents, arrival_rate=args.arrival_rate, aht=args.aht,
            patience=args.patience, calls=args.calls, strategy=args.strategy,
            sl_seconds=args.sl_seconds, seed=args.seed, handle_dist=args.handle_dist,
            handle_cv=args.handle_cv, wrap_up=args.wrap_up, warmup=args.warmup,
        )
    except ValueError as exc:
        print(f"callcenter simulate acd: {exc}", file=sys.stderr)
        return 2
    show = args.progress if args.progress is not None else (
        cfg.calls >= 100_000 and sys.stderr.isatty())
    result = simulate(cfg, progress=_bar if show else None)
    theory = _theory(cfg)
    if args.json:
        out = result.to_dict()
        out["theory"] = None if theory is None else {
            "model": "erlang_a" if cfg.patience else "erlang_c",
            "service_level": theory.service_level, "asa": theory.asa,
            "abandon_rate": theory.abandon_rate, "occupancy": theory.occupancy,
            "p_wait": theory.p_wait,
        }
        print(json.dumps(out))
    else:
        print(_table(cfg, result, theory))
    return 0


def _table(cfg: SimConfig, r: SimResult, theory: ErlangResult | None) -> str:
    model = "Erlang A" if cfg.patience else "Erlang C"
    rows = [
        ("service level", f"{r.service_level:.4f} ±{r.service_level_stderr:.4f}",
         theory and f"{theory.service_level:.4f}", f"answered within {cfg.sl_seconds:g} s"),
        ("ASA", f"{r.asa:.2f} ±{r.asa_stderr:.2f} s", theory and f"{theory.asa:.2f} s", "mean wait, answered"),
        ("abandon rate", f"{r.abandon_rate:.4f} ±{r.abandon_rate_stderr:.4f}", theory and f"{theory.abandon_rate:.4f}", ""),
        ("occupancy", f"{r.occupancy:.4f}", theory and f"{theory.occupancy:.4f}", "mean"),
    ]
    lines = [
        f"{cfg.agents} agents, {cfg.arrival_rate:g} calls/h, AHT {cfg.aht:g} s, "
        f"patience {cfg.patience if cfg.patience else 'none'}, {cfg.strategy}, seed {cfg.seed}",
        f"{r.calls:,} calls offered, {r.answered:,} answered, {r.abandoned:,} abandoned, "
        f"{r.simulated_seconds / 3600:,.1f} simulated hours",
        "",
        f"{'':<15}{'simulated (±1 s.e.)':>22}{model if theory else '':>12}  ",
    ]
    for name, sim, th, note in rows:
        lines.append(f"{name:<15}{sim:>22}{th or '':>12}  {note}")
    calls = r.calls_per_agent
    talk = r.talk_time_per_agent
    lines += [
        "",
        f"calls per agent  min {min(calls):,}  max {max(calls):,}  "
        f"spread {max(calls) - min(calls):,}",
        f"talk per agent   min {min(talk) / 3600:,.1f} h  max {max(talk) / 3600:,.1f} h",
        f"{r.wall_seconds:.2f} s wall, {r.calls_per_second:,.0f} simulated calls/s",
    ]
    return "\n".join(lines)
