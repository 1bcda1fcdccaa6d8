"""SIP users and ACD queues added and removed through the API (``/api/users``,
``/api/queues``), kept in the ``users`` and ``queues`` tables and applied like a reload (a new
agent is called at once, a removed one finishes its call; a removed queue serves the callers
still in it).

The file is the source of truth for what it defines: its users and queues cannot be changed
here, and a stored one the file now defines is not used. A password set here is stored as the digest
HA1 (``ha1:``, MD5 of user:realm:password): SIP digest needs it, and it is all that is kept
(the API login checks the password against it). Every change is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from callcenter.config.checks import semantic_checks
from callcenter.config.live import with_api_objects
from callcenter.config.models import Queue, User
from callcenter.events.bus import AuditChanged, Event
from callcenter.sip.auth import HA1_PREFIX, ha1_of

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.store.db import Store


class DirectoryConflict(ValueError):
    """The user exists (in the file or stored), or is the file's to change."""


class DirectoryInvalid(ValueError):
    """The body does not make a valid user; ``errors`` as ``path: what was expected``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ApiDirectory:
    """``file_config()``: the running file configuration; ``apply(cfg)``: run the
    configuration with the stored users and queues (the reload's diff)."""

    def __init__(self, *, store: Store, publish: Callable[[Event], None],
                 file_config: Callable[[], Config], apply: Callable[[Config], None]) -> None:
        self.store = store
        self.publish = publish
        self.file_config = file_config
        self.apply = apply

    def effective(self, cfg: Config | None = None) -> Config:
        """``cfg`` (default: the running file) with the stored users and queues."""
        return with_api_objects(cfg or self.file_config(), self.store.api_users(),
                                self.store.api_queues())

    def listing(self) -> list[dict[str, Any]]:
        stored = {r["user"]: r for r in self.store.api_users()}
        out = []
        for u in self.effective().users:
            row = stored.get(u.user)
            api = row is not None and self.file_config().user(u.user) is None
            out.append({"user": u.user, "role": u.role, "name": u.name,
                        "source": "api" if api else "file",
                        "added_by": row["added_by"] if api and row else None,
                        "added_at": row["added_at"] if api and row else None})
        return out

    def add(self, body: Any, *, who: str) -> dict[str, Any]:
        """DirectoryInvalid for a bad body, DirectoryConflict for a user that exists."""
        if not isinstance(body, dict):
            raise DirectoryInvalid(['expected {"user", "password", "role", "name"}'])
        try:
            user = User.model_validate({k: body.get(k) for k in ("user", "password", "role")
                                        if k in body} | {"name": str(body.get("name", ""))})
        except ValidationError as exc:
            raise DirectoryInvalid(_errors(exc)) from None
        if self.effective().user(user.user) is not None:
            raise DirectoryConflict(f"user {user.user} exists")
        cfg = self.file_config()
        password = user.password if user.password.startswith(HA1_PREFIX) else (
            HA1_PREFIX + ha1_of(user.user, cfg.sip.realm, user.password))
        stored = user.model_copy(update={"password": password})
        _check(with_api_objects(cfg, [*self.store.api_users(), {
            **stored.model_dump(), "added_by": who, "added_at": 0.0}], self.store.api_queues()))
        now = time.time()
        self.store.add_api_user(user=stored.user, password=password, role=stored.role,
                                name=stored.name, added_by=who, added_at=now)
        self._audit(now, who, "user.added", f"user/{stored.user}", {
            "user": stored.user, "role": stored.role, "name": stored.name})
        self.apply(self.effective())
        return next(u for u in self.listing() if u["user"] == stored.user)

    def remove(self, user: str, *, who: str) -> None:
        """KeyError for a user not stored, DirectoryConflict for one of the file."""
        if self.file_config().user(user) is not None:
            raise DirectoryConflict(f"{user} is defined in the config file, which wins: remove it "
                               "there")
        if not self.store.remove_api_user(user):
            raise KeyError(user)
        self._audit(time.time(), who, "user.removed", f"user/{user}", {"user": user})
        self.apply(self.effective())

    def add_queue(self, body: Any, *, who: str) -> dict[str, Any]:
        """A queue as config.yaml gives one, without ``members`` (add those with the members
        API); DirectoryInvalid for a bad one, DirectoryConflict for a queue that exists."""
        if not isinstance(body, dict) or "members" in body:
            raise DirectoryInvalid(["expected a queue's settings as in config.yaml, without "
                                    "members (POST /api/queues/{name}/members adds them)"])
        try:
            queue = Queue.model_validate(body)
        except ValidationError as exc:
            raise DirectoryInvalid(_errors(exc)) from None
        if self.effective().queue(queue.name) is not None:
            raise DirectoryConflict(f"queue {queue.name} exists")
        settings = queue.model_dump(mode="json", exclude_defaults=True) | {"name": queue.name}
        row = {"name": queue.name, "settings": settings}
        _check(with_api_objects(self.file_config(), self.store.api_users(),
                                [*self.store.api_queues(), row]))
        now = time.time()
        self.store.add_api_queue(name=queue.name, settings=settings, added_by=who, added_at=now)
        self._audit(now, who, "queue.added", f"queue/{queue.name}", settings)
        self.apply(self.effective())
        return settings

    def remove_queue(self, name: str, *, who: str) -> None:
        """KeyError for a queue not stored, DirectoryConflict for one of the file or one another
        API queue overflows to."""
        if self.file_config().queue(name) is not None:
            raise DirectoryConflict(f"{name} is defined in the config file, which wins: remove "
                                    "it there")
        rest = [r for r in self.store.api_queues() if r["name"] != name]
        if len(rest) == len(self.store.api_queues()):
            raise KeyError(name)
        try:
            _check(with_api_objects(self.file_config(), self.store.api_users(), rest))
        except DirectoryInvalid as exc:
            raise DirectoryConflict(str(exc)) from None
        self.store.remove_api_queue(name)
        self._audit(time.time(), who, "queue.removed", f"queue/{name}", {"queue": name})
        self.apply(self.effective())

    def _audit(self, now: float, who: str, action: str, object: str,
               detail: dict[str, Any]) -> None:
        self.publish(AuditChanged(ts=now, who=who, action=action, object=object, detail=detail))


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _check(cfg: Config) -> None:
    """The file's cross-checks on the configuration with the API's objects."""
    problems = semantic_checks(cfg)
    if problems:
        raise DirectoryInvalid([f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems])
