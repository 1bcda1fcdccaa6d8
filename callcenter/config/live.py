"""Live configuration: ``config.yaml`` re-read while the server runs (file change, SIGHUP,
``callcenter reload``, ``POST /api/config/reload``).

The new file is validated whole first (the same loader as ``callcenter check``, and the
dialplans against its trunks); on any error the running configuration stays and the errors
come back as ``file:line:col`` lines. Otherwise ``apply`` gets it, to apply as a diff. Keys
that only a restart applies (listen addresses and ports, the database...) are reported, never
silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.config.models import Config, Queue, User
from ivr.dialplan import load_dialplans
from ivr.yamldoc import ConfigError

#: What a reload applies to the running server; every other key needs a restart.
LIVE_KEYS = ("users", "trunks", "queues", "campaigns", "supervisor", "recording",
             "drain_timeout", "http.tokens", "pause_reasons")


@dataclass(frozen=True)
class ReloadResult:
    """``status``: ``applied``, ``unchanged`` or ``error`` (nothing applied)."""

    status: str
    errors: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  #: live keys applied
    restart_required: list[str] = field(default_factory=list)  #: changed, not applied

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "errors": self.errors, "changed": self.changed,
                "restart_required": self.restart_required}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a dumped model down to the live keys (which are compared whole)."""
    if not isinstance(value, dict) or prefix in LIVE_KEYS:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, sub in value.items():
        out.update(_flatten(sub, f"{prefix}.{key}" if prefix else key))
    return out


def differences(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """(live keys that changed, other keys that changed: these need a restart)."""
    before = _flatten(old.model_dump(mode="json", by_alias=True))
    after = _flatten(new.model_dump(mode="json", by_alias=True))
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ([k for k in changed if k in LIVE_KEYS], [k for k in changed if k not in LIVE_KEYS])


def with_api_objects(cfg: Config, rows: list[dict[str, Any]],
                     queues: Sequence[dict[str, Any]] = (),
                     pause_reasons: Sequence[dict[str, Any]] = (),
                     web_passwords: Mapping[str, str] | None = None) -> Config:
    """The file's configuration plus the users, queues (``settings`` of the stored rows) and
    pause reasons the API added; the file wins: what it defines is not taken from the
    database (a pause reason by its code or its name). ``web_passwords``: those the API set
    for users of the file, used where the file gives none."""
    mine = {u.user for u in cfg.users}
    web = web_passwords or {}
    if any(u.web_password is None and u.user in web for u in cfg.users):
        cfg = cfg.model_copy(update={"users": [
            u.model_copy(update={"web_password": web[u.user]})
            if u.web_password is None and u.user in web else u for u in cfg.users]})
    users = [User(user=r["user"], password=r["password"], role=r["role"], name=r["name"],
                  skills=r.get("skills") or {}, web_password=r.get("web_password"))
             for r in rows if r["user"] not in mine]
    names = {q.name for q in cfg.queues}
    extra = [Queue.model_validate(r["settings"]) for r in queues if r["name"] not in names]
    reasons = {r["code"]: r["name"] for r in pause_reasons if r["code"] not in
               cfg.pause_reasons and r["name"] not in cfg.pause_reasons.values()}
    if not users and not extra and not reasons:
        return cfg
    return cfg.model_copy(update={"users": [*cfg.users, *users],
                                  "queues": [*cfg.queues, *extra],
                                  "pause_reasons": {**cfg.pause_reasons, **reasons}})


def _live_part(old: Config, new: Config) -> Config:
    """``old`` with the live keys of ``new``: what the server runs until a restart."""
    update: dict[str, Any] = {k: getattr(new, k) for k in LIVE_KEYS if "." not in k}
    update["http"] = old.http.model_copy(update={"tokens": new.http.tokens})
    return old.model_copy(update=update)


class ConfigReloader:
    """``read()`` loads the file as ``callcenter serve`` did (environment and command-line
    overrides included); ``apply(new)`` carries a valid new configuration out."""

    def __init__(self, current: Config, *, read: Callable[[], Config],
                 apply: Callable[[Config], None], path: Path | None = None) -> None:
        self.current = current
        self.read = read
        self.apply = apply
        self.path = path
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self) -> ReloadResult | None:
        """Reload when the file changed since the last look (None: it did not)."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return None
        return self.reload()

    def reload(self) -> ReloadResult:
        self._stamp = self._file_stamp()
        try:
            new = self.read()
            load_dialplans(new.dialplans, new.sounds, trunks=[t.name for t in new.trunks])
        except ConfigError as exc:
            return ReloadResult("error", errors=list(exc.errors))
        except (OSError, ValueError) as exc:
            return ReloadResult("error", errors=[str(exc)])
        live, restart = differences(self.current, new)
        if not live:
            return ReloadResult("unchanged", restart_required=restart)
        running = _live_part(self.current, new)
        self.apply(running)
        self.current = running
        return ReloadResult("applied", changed=live, restart_required=restart)
