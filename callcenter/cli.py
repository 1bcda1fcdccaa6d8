"""The ``callcenter`` command: ``serve`` runs the server, ``check`` validates the setup,
``drain`` asks a running server to stop once its calls have ended.

Exit codes: 0 success, 1 invalid configuration or dialplan, 2 usage error (bad option,
config file not found).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from callcenter import config as config_mod
from callcenter.config import (
    Config,
    ConfigError,
    apply_env,
    apply_overrides,
    check_warnings,
    load_config,
)
from callcenter.log import LEVELS, configure_logging, get_logger
from callcenter.store.db import stored_queue_names
from ivr.clock import ServerClock, clock_arg
from ivr.dialplan import Dialplan, load_dialplans

PROG = "callcenter"

#: Where the shipped sounds/ and dialplans/ are: in the package (a wheel, see setup.py), or
#: next to it (a checkout or an editable install).
_SHIPPED_ROOTS = (Path(__file__).resolve().parent / "data", Path(__file__).resolve().parent.parent)


class UsageError(Exception):
    """The command line points at something that is not there (exit status 2)."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535 (0 = any free), got {value}")
    return value


#: modules with ``register(subparsers)`` adding a ``simulate`` sub-command whose parser sets
#: ``run=callable(args) -> int`` through ``set_defaults``
SIMULATORS = ("acd.simulate_cli", "callcenter.dialer.simulate_cli")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Call-center SIP server: IVR, ACD, predictive dialer."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    config_help = "configuration file (default: the built-in configuration, same as config.yaml)"
    serve = sub.add_parser("serve", help="run the server", description="Run the server.")
    serve.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    serve.add_argument("--sip-port", type=_port, metavar="N", help="override sip.port")
    serve.add_argument("--http-port", type=_port, metavar="N", help="override http.port")
    serve.add_argument("--db", type=Path, metavar="PATH", help="override database")
    serve.add_argument(
        "--log-format", choices=("auto", "console", "json"), help="override logging.format"
    )
    serve.add_argument("--log-level", choices=LEVELS, type=str.lower, help="override logging.level")
    serve.add_argument(
        "--clock", type=clock_arg, metavar="YYYY-MM-DDTHH:MM",
        help="start the server's clock (local time in the config's timezone) at this moment; "
        "it then runs on in real time",
    )

    check = sub.add_parser(
        "check",
        help="validate the configuration and dialplans",
        description="Validate the configuration and dialplans; exit 1 with file:line errors.",
    )
    check.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    drain = sub.add_parser(
        "drain", help="stop a running server once its calls have ended",
        description="As SIGTERM: the server answers new calls 503, lets the calls in progress "
        "end (at most drain_timeout), then exits. Uses POST /api/drain with an admin token.")
    drain.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    drain.add_argument("--http-port", type=_port, metavar="N", help="override http.port")
    reload = sub.add_parser(
        "reload", help="make a running server re-read its configuration",
        description="As SIGHUP: the server re-reads config.yaml and the dialplans, validates "
        "them whole and applies the changes without cutting a call; prints what changed and "
        "what needs a restart, or the errors (exit 1; the running configuration stays). Uses "
        "POST /api/config/reload with an admin token.")
    reload.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    reload.add_argument("--http-port", type=_port, metavar="N", help="override http.port")
    importlib.import_module("callcenter.report.cli").register(sub)
    importlib.import_module("callcenter.report.queue_log").register(sub)
    importlib.import_module("callcenter.dialer.importer").register(sub)

    simulate = sub.add_parser(
        "simulate", help="run a simulator (acd, dialer)",
        description="Drive the real ACD or dialer pacing code in a discrete-event simulation.",
    )
    simulators = simulate.add_subparsers(dest="simulator", metavar="WHAT", required=True)
    for module in SIMULATORS:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(simulators)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("callcenter")
    except PackageNotFoundError:  # not installed (running from a checkout)
        return "0.1.0"


def _read_config(path: Path | None, db: Path | None = None) -> Config:
    """The file (or the defaults) with the environment's secrets; it may name the queues the
    API added to its database (``db``, else its ``database``)."""
    if path is not None and not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise UsageError(
            f"config file {str(path)!r} {what}; pass an existing file to --config, "
            "or leave --config out to use the built-in defaults"
        )
    cfg = apply_env(load_config(path, lambda c: stored_queue_names(db or c.database)),
                    os.environ)
    if path is None:
        cfg = _shipped_data_fallback(cfg)
    return cfg


def _shipped_data_fallback(cfg: Config) -> Config:
    """Built-in defaults outside a checkout: use the shipped sounds/ and dialplans/."""
    update = {}
    for key in ("sounds", "dialplans"):
        current: Path = getattr(cfg, key)
        name = config_mod.Config.model_fields[key].default
        shipped = [root / name for root in _SHIPPED_ROOTS if (root / name).is_dir()]
        if not current.exists() and shipped:
            update[key] = shipped[0]
    return cfg.model_copy(update=update) if update else cfg


def load_setup(path: Path | None, db: Path | None = None) -> tuple[Config, Dialplan, list[str]]:
    """Load and validate config and dialplans (``db``: the database, when not the file's);
    return them with the warnings.

    Raises ConfigError (covers DialplanError) or UsageError.
    """
    cfg = _read_config(path, db)
    dialplan = load_dialplans(cfg.dialplans, cfg.sounds, trunks=[t.name for t in cfg.trunks])
    warnings = check_warnings(cfg)
    if not len(dialplan):
        warnings.append(f"no dialplan lines in {cfg.dialplans}: incoming calls will be refused")
    return cfg, dialplan, warnings


def _print_errors(errors: Sequence[str], out: TextIO) -> None:
    for error in errors:
        print(error, file=out)
    noun = "error" if len(errors) == 1 else "errors"
    print(f"{PROG}: {len(errors)} {noun}; fix them and run `{PROG} check` again", file=out)


def cmd_check(args: argparse.Namespace) -> int:
    """``callcenter check``."""
    try:
        cfg, dialplan, warnings = load_setup(args.config)
    except ConfigError as exc:
        _print_errors(exc.errors, sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"OK: {len(cfg.users)} users, {len(cfg.trunks)} trunks, {len(dialplan)} lines")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``callcenter serve``."""
    try:
        cfg, dialplan, warnings = load_setup(args.config, args.db)
        cfg = apply_overrides(
            cfg,
            sip_port=args.sip_port,
            http_port=args.http_port,
            db=args.db,
            log_format=args.log_format,
            log_level=args.log_level,
        )
    except ConfigError as exc:
        _print_errors(exc.errors, sys.stderr)
        return 1
    configure_logging(cfg.logging.level, cfg.logging.format, cfg.logging.file)
    log = get_logger("callcenter.cli")
    for warning in warnings:
        log.warning(warning)
    try:
        from callcenter.app import run_server
    except ModuleNotFoundError as exc:
        if exc.name != "callcenter.app":
            raise
        print(f"{PROG}: the server core (callcenter.app) is not available yet", file=sys.stderr)
        return 1
    log.info(
        "starting",
        config=str(args.config) if args.config else "<built-in>",
        sip=f"{cfg.sip.listen}:{cfg.sip.port}",
        http=f"{cfg.http.listen}:{cfg.http.port}",
        database=str(cfg.database),
        lines=len(dialplan),
    )
    def read_again() -> Config:
        try:
            fresh = _read_config(args.config, args.db)
        except UsageError as exc:
            raise ConfigError([str(exc)]) from None
        return apply_overrides(fresh, sip_port=args.sip_port, http_port=args.http_port,
                               db=args.db, log_format=args.log_format, log_level=args.log_level)

    try:
        run_server(cfg, dialplan, clock=ServerClock(args.clock, cfg.timezone),
                   read_config=read_again, config_path=args.config)
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130
    return 0


def _ask_server(args: argparse.Namespace, path: str) -> tuple[int, dict[str, Any]] | None:
    """POST ``path`` to the running server with the config's admin token (and the
    environment's ``CALLCENTER_HTTP_TOKENS``): (status, JSON answer), or None after printing
    why it could not be asked."""
    try:
        cfg = _read_config(args.config)
    except ConfigError as exc:
        _print_errors(exc.errors, sys.stderr)
        return None
    token = next((t.token for t in cfg.http.tokens if t.role == "admin"), None)
    if token is None:
        print(f"{PROG}: no admin token in http.tokens", file=sys.stderr)
        return None
    host = "127.0.0.1" if cfg.http.listen in ("0.0.0.0", "::") else cfg.http.listen
    url = f"http://{host}:{args.http_port or cfg.http.port}{path}"
    req = urllib.request.Request(url, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(exc.read())
        print(f"{PROG}: {url}: {exc}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{PROG}: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
    return None


def cmd_drain(args: argparse.Namespace) -> int:
    """``callcenter drain``."""
    asked = _ask_server(args, "/api/drain")
    if asked is None or asked[0] != 202:
        if asked is not None:
            print(f"{PROG}: HTTP {asked[0]}: {asked[1].get('error', '')}", file=sys.stderr)
        return 1
    answer = asked[1]
    print(f"draining: {answer['calls_in_progress']} calls in progress, the server stops when "
          f"they end (at most {answer['drain_timeout']:g} s)")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """``callcenter reload``: 0 when the configuration was applied (or unchanged)."""
    asked = _ask_server(args, "/api/config/reload")
    if asked is None:
        return 1
    status, answer = asked
    if status != 200:
        _print_errors(answer.get("errors") or [answer.get("error", f"HTTP {status}")],
                      sys.stderr)
        print(f"{PROG}: nothing changed: the running configuration stays", file=sys.stderr)
        return 1
    changed = ", ".join(answer["changed"]) or "nothing"
    print(f"{answer['status']}: {changed}")
    for key in answer["restart_required"]:
        print(f"restart required: {key} changed; a restart applies it", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callcenter`` console script and ``python -m callcenter``."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            return cmd_check(args)
        if args.command == "drain":
            return cmd_drain(args)
        if args.command == "reload":
            return cmd_reload(args)
        if args.command in ("simulate", "report", "queue-log", "campaign"):
            return int(args.run(args))
        return cmd_serve(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
