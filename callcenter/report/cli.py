"""``callcenter report``: queue intervals, agents, IVR exits and dialer results for dates.

    callcenter report --from 2026-11-23 --to 2026-11-29 [--format table|csv|png] [--out FILE]
                      [--interval MINUTES] [--config FILE] [--db PATH]
"""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.report import stats

if TYPE_CHECKING:
    from callcenter.config import Config


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def register(sub: Any) -> None:
    """Add the ``report`` sub-command to an argparse sub-parsers object."""
    p = sub.add_parser(
        "report", help="queue, agent, IVR and dialer report for a date range",
        description="Interval report from the database: per queue (offered, answered, "
        "abandoned, SL%%, ASA, AHT), per agent (calls, talk, wrap-up, pauses, occupancy), "
        "IVR exit points and dialer results.",
    )
    p.add_argument("--from", dest="date_from", type=_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=_date, metavar="DATE",
                   help="last day included (default: --from)")
    p.add_argument("--format", choices=("table", "csv", "png"), default="table")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout; "
                   "png needs --out)")
    p.add_argument("--interval", type=int, default=60, choices=(15, 30, 60, 1440),
                   metavar="MINUTES", help="interval length: 15, 30, 60 (default) or 1440")
    p.add_argument("--config", type=Path, metavar="FILE", help="configuration (database, "
                   "service level targets); default: the built-in one")
    p.add_argument("--db", type=Path, metavar="PATH", help="database (overrides the config)")
    p.set_defaults(run=run)


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def build(con: sqlite3.Connection, t0: float, t1: float, minutes: int,
          sl: dict[str, float], local: stats.LocalTime) -> dict[str, Any]:
    """Every section of the report."""
    queues = stats.queue_intervals(con, t0, t1, local=local, minutes=minutes, sl_seconds=sl)
    return {
        "queues": queues, "totals": stats.interval_totals(queues),
        "agents": stats.agent_summary(con, t0, t1), "ivr": stats.ivr_exits(con, t0, t1),
        "dialer": stats.dialer_results(con, t0, t1),
    }


QUEUE_COLUMNS = [("queue", "queue", ""), ("interval", "interval", ""), ("offered", "offered", ""),
                 ("answered", "answered", ""), ("abandoned", "abandoned", ""),
                 ("service_level", "SL%", "pct"), ("asa", "ASA s", ""), ("aht", "AHT s", "")]
AGENT_COLUMNS = [("agent", "agent", ""), ("calls", "calls", ""), ("talk", "talk s", ""),
                 ("wrap_up", "wrap-up s", ""), ("paused", "paused s", ""),
                 ("pauses", "pause by reason", ""), ("occupancy", "occupancy%", "pct")]


def _rows(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(section title, headers, rows) for the text and CSV forms."""
    out = []
    out.append(("Queues", [h for _, h, _ in QUEUE_COLUMNS],
                [[_fmt(r.get(k), kind) for k, _, kind in QUEUE_COLUMNS] for r in data["queues"]]))
    agents = []
    for a in data["agents"]:
        pauses = ", ".join(f"{k}={v:g}s" for k, v in a["pause_by_reason"].items()) or "-"
        agents.append([_fmt({**a, "pauses": pauses}.get(k), kind) for k, _, kind in AGENT_COLUMNS])
    out.append(("Agents", [h for _, h, _ in AGENT_COLUMNS], agents))
    out.append(("IVR exit points", ["node", "reason", "calls", "share%"],
                [[r["node"], r["reason"], str(r["calls"]), _fmt(r["share"], "pct")]
                 for r in data["ivr"]]))
    out.append(("Dialer results", ["campaign", "result", "attempts"],
                [[r["campaign"], r["result"], str(r["attempts"])] for r in data["dialer"]]))
    return out


def render_table(data: dict[str, Any], title: str) -> str:
    lines = [title, ""]
    for name, headers, rows in _rows(data):
        lines.append(f"{name}:")
        if not rows:
            lines += ["  (no data)", ""]
            continue
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        lines.append("  " + "  ".join("-" * w for w in widths))
        for r in rows:
            lines.append("  " + "  ".join(
                c.rjust(w) if c[:1].isdigit() or c == "-" else c.ljust(w)
                for c, w in zip(r, widths, strict=True)))
        lines.append("")
    return "\n".join(lines)


def render_csv(data: dict[str, Any]) -> str:
    """One CSV with a leading ``section`` column, so every table fits one file."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for name, headers, rows in _rows(data):
        w.writerow(["section", *headers])
        for r in rows:
            w.writerow([name, *r])
    return buf.getvalue()


def render_png(data: dict[str, Any], title: str) -> bytes:
    from callcenter.report.png import bar_chart

    totals = data["totals"]
    labels = [t["interval"][5:] if len(totals) > 24 else t["interval"][11:] for t in totals]
    return bar_chart(
        labels,
        [("offered", [t["offered"] for t in totals]), ("answered", [t["answered"] for t in totals]),
         ("abandoned", [t["abandoned"] for t in totals])],
        ("SL", [t["service_level"] for t in totals]), title=title,
    )


def open_days(args: argparse.Namespace, prog: str) -> tuple[Config, Path, date, date] | int:
    """The config, database and first and last day of a report command, or its exit status
    (after the message) when one of them is wrong."""
    from callcenter.config import ConfigError, load_config

    first, last = args.date_from, args.date_to or args.date_from
    if last < first:
        print(f"callcenter {prog}: --to is before --from", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"callcenter {prog}: {exc}", file=sys.stderr)
        return 1
    db = Path(args.db or cfg.database)
    if not db.is_file():
        print(f"callcenter {prog}: no database at {db}", file=sys.stderr)
        return 2
    return cfg, db, first, last


def run(args: argparse.Namespace) -> int:
    opened = open_days(args, "report")
    if isinstance(opened, int):
        return opened
    cfg, db, first, last = opened
    if args.format == "png" and args.out is None:
        print("callcenter report: --format png needs --out FILE", file=sys.stderr)
        return 2
    local = stats.LocalTime.zone(cfg.timezone)  # the server's days, whatever the host's TZ
    t0, t1 = local.day_range(first, last)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        data = build(con, t0, t1, args.interval, {q.name: q.sl_seconds for q in cfg.queues},
                     local)
    finally:
        con.close()
    span = first.isoformat() if first == last else f"{first.isoformat()} - {last.isoformat()}"
    title = f"callcenter report {span}, {args.interval} min intervals"
    if args.format == "png":
        args.out.write_bytes(render_png(data, f"calls and SL {span}"))
        print(f"wrote {args.out}")
        return 0
    return write_out(args, render_table(data, title) if args.format == "table"
                     else render_csv(data))


def write_out(args: argparse.Namespace, text: str) -> int:
    """``text`` to ``--out`` (saying so) or to stdout."""
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
