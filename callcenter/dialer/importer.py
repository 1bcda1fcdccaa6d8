"""Contact lists from CSV, and the ``callcenter campaign`` command.

``callcenter campaign import FILE.csv --campaign NAME`` reads a CSV (comma or semicolon,
UTF-8 with or without BOM), normalises every number to E.164 (Polish national numbers
understood), merges duplicates, reports each rejected row with its line and reason, and keeps
every extra column as a contact field shown to the agent. A progress bar goes to stderr.

Recognised columns (case-insensitive): ``number`` (or phone, telefon, numer, msisdn, tel),
``name`` (or imie_nazwisko, full_name, nazwa), ``timezone`` (or tz, strefa).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.dialer.campaigns import CampaignStore
from callcenter.dialer.numbers import try_normalize

NUMBER_COLUMNS = ("number", "phone", "telefon", "numer", "msisdn", "tel", "phone_number")
NAME_COLUMNS = ("name", "full_name", "imie_nazwisko", "nazwa", "contact")
TZ_COLUMNS = ("timezone", "tz", "strefa", "time_zone")


@dataclass
class ImportReport:
    """What an import did: rows read, contacts added and merged, rejected rows and why."""

    rows: int = 0
    added: int = 0
    merged: int = 0
    duplicates: int = 0  #: rows merged into an earlier row of the same file
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  #: (line, value, why)

    def text(self) -> str:
        lines = [f"{self.rows} rows: {self.added} contacts added, {self.merged} merged into "
                 f"existing contacts, {self.duplicates} duplicate rows merged, "
                 f"{len(self.rejected)} rejected"]
        for line, value, why in self.rejected:
            lines.append(f"  line {line}: {value!r}: {why}")
        return "\n".join(lines)


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    return next((lowered[n] for n in names if n in lowered), None)


def parse_contacts(
    text: str, report: ImportReport, *, country: str = "PL",
) -> Iterator[dict[str, Any]]:
    """Contacts of one CSV text, duplicates within it merged; rejects go to ``report``."""
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = list(reader.fieldnames or [])
    number_col = _pick(header, NUMBER_COLUMNS)
    if number_col is None:
        raise ValueError(f"no number column (one of {', '.join(NUMBER_COLUMNS)}) in {header}")
    name_col, tz_col = _pick(header, NAME_COLUMNS), _pick(header, TZ_COLUMNS)
    seen: dict[str, dict[str, Any]] = {}
    for row in reader:
        report.rows += 1
        line = reader.line_num
        raw = (row.get(number_col) or "").strip()
        number, why = try_normalize(raw, country=country)
        if number is None:
            report.rejected.append((line, raw, f"invalid number: {why}"))
            continue
        tz = (row.get(tz_col) or "").strip() if tz_col else ""
        if tz:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                report.rejected.append((line, raw, f"unknown time zone {tz!r}"))
                continue
        fields = {k.strip(): (v or "").strip() for k, v in row.items()
                  if k is not None and k not in (number_col, name_col, tz_col) and v}
        name = (row.get(name_col) or "").strip() if name_col else ""
        earlier = seen.get(number)
        if earlier is not None:
            report.duplicates += 1
            earlier["fields"] = {**fields, **earlier["fields"]}
            earlier["name"] = earlier["name"] or name
            earlier["timezone"] = earlier["timezone"] or tz or None
            continue
        seen[number] = {"number": number, "name": name, "timezone": tz or None, "fields": fields}
    yield from seen.values()


def _progress(done: int, total: int, out: TextIO) -> None:
    width = 30
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} contacts")
    if done >= total:
        out.write("\n")
    out.flush()


def import_csv(
    store: CampaignStore, campaign: str, path: Path, *, progress: TextIO | None = None,
    batch: int = 200,
) -> ImportReport:
    """Import ``path`` into ``campaign``; contacts already there are merged."""
    report = ImportReport()
    text = path.read_text(encoding="utf-8-sig")
    contacts = list(parse_contacts(text, report))
    for start in range(0, len(contacts), batch):
        chunk = contacts[start:start + batch]
        added, merged = store.upsert_contacts(campaign, chunk)
        report.added += added
        report.merged += merged
        if progress is not None:
            _progress(start + len(chunk), len(contacts), progress)
    if progress is not None and not contacts:
        _progress(0, 0, progress)
    return report


# ------------------------------------------------------------------ the command


def register(sub: Any) -> None:
    """Add ``campaign import|list|start|pause|dnc`` to the ``callcenter`` sub-commands."""
    p = sub.add_parser("campaign", help="dialer campaigns: import lists, list, start, pause",
                       description="Manage outbound dialer campaigns (see config.yaml).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--config", type=Path, metavar="FILE",
                       help="configuration file (default: the built-in configuration)")
        q.add_argument("--db", type=Path, metavar="PATH", help="override database")

    imp = verbs.add_parser("import", help="import contacts from a CSV file")
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--campaign", required=True, metavar="NAME")
    common(imp)
    lst = verbs.add_parser("list", help="campaigns with their state and progress")
    common(lst)
    for verb in ("start", "pause"):
        q = verbs.add_parser(verb, help=f"{verb} a campaign (a running server follows within 1 s)")
        q.add_argument("name", metavar="NAME")
        common(q)
    dnc = verbs.add_parser("dnc", help="add numbers to the do-not-call list")
    dnc.add_argument("numbers", nargs="+", metavar="NUMBER")
    dnc.add_argument("--campaign", metavar="NAME", help="only for this campaign (default: all)")
    common(dnc)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``callcenter campaign ...``; exit status 0, 1 (bad input) or 2 (usage)."""
    from callcenter.config import ConfigError, load_config
    from callcenter.dialer.numbers import normalize

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2
    db = args.db or cfg.database
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    store = CampaignStore.open(str(db))
    names = [c.name for c in cfg.campaigns]
    wanted = getattr(args, "campaign", None) or getattr(args, "name", None)
    if wanted is not None and wanted not in names:
        print(f"callcenter: no campaign {wanted!r} in the configuration (campaigns: "
              f"{', '.join(names) or 'none'})", file=sys.stderr)
        return 2
    if args.verb == "import":
        if not args.file.is_file():
            print(f"callcenter: {args.file}: no such file", file=sys.stderr)
            return 2
        try:
            report = import_csv(store, args.campaign, args.file, progress=sys.stderr)
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"callcenter: {args.file}: {exc}", file=sys.stderr)
            return 1
        print(report.text())
        return 0
    if args.verb in ("start", "pause"):
        store.set_state(args.name, "running" if args.verb == "start" else "paused")
        print(f"{args.name}: {'running' if args.verb == 'start' else 'paused'}")
        return 0
    if args.verb == "dnc":
        for raw in args.numbers:
            try:
                store.add_dnc(normalize(raw), args.campaign or "", "cli")
            except ValueError as exc:
                print(f"callcenter: {exc}", file=sys.stderr)
                return 1
        print(f"{len(args.numbers)} numbers on the do-not-call list")
        return 0
    for c in cfg.campaigns:
        prog = store.progress(c.name)
        states = ", ".join(f"{k} {v}" for k, v in prog["contacts"].items())
        print(f"{c.name}: {store.state(c.name) or ('running' if c.autostart else 'paused')}, "
              f"mode {c.mode}, queue {c.queue}; {prog['total']} contacts ({states}); "
              f"{prog['dials']} dials")
    return 0
