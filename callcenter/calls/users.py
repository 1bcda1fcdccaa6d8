"""SIP users added and removed through the API (``/api/users``), kept in the ``users`` table
and applied like a reload (a new agent is called at once, a removed one finishes its call).

The file is the source of truth for what it defines: its users cannot be changed here, and
a stored user the file now defines is not used. A password set here is stored as the digest
HA1 (``ha1:``, MD5 of user:realm:password): SIP digest needs it, and it is all that is kept
(the API login checks the password against it). Every change is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from callcenter.config.checks import semantic_checks
from callcenter.config.live import with_api_users
from callcenter.config.models import User
from callcenter.events.bus import AuditChanged, Event
from callcenter.sip.auth import HA1_PREFIX, ha1_of

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.store.db import Store

__all__ = ["UserConflict", "UserDirectory", "UserInvalid"]


class UserConflict(ValueError):
    """The user exists (in the file or stored), or is the file's to change."""


class UserInvalid(ValueError):
    """The body does not make a valid user; ``errors`` as ``path: what was expected``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class UserDirectory:
    """``file_config()``: the running file configuration; ``apply(cfg)``: run the
    configuration with the stored users (the reload's diff)."""

    def __init__(self, *, store: Store, publish: Callable[[Event], None],
                 file_config: Callable[[], Config], apply: Callable[[Config], None]) -> None:
        self.store = store
        self.publish = publish
        self.file_config = file_config
        self.apply = apply

    def effective(self, cfg: Config | None = None) -> Config:
        """``cfg`` (default: the running file) with the stored users."""
        return with_api_users(cfg or self.file_config(), self.store.api_users())

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
        """UserInvalid for a bad body, UserConflict for a user that exists."""
        if not isinstance(body, dict):
            raise UserInvalid(['expected {"user", "password", "role", "name"}'])
        try:
            user = User.model_validate({k: body.get(k) for k in ("user", "password", "role")
                                        if k in body} | {"name": str(body.get("name", ""))})
        except ValidationError as exc:
            raise UserInvalid([f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors()]) from None
        if self.effective().user(user.user) is not None:
            raise UserConflict(f"user {user.user} exists")
        cfg = self.file_config()
        password = user.password if user.password.startswith(HA1_PREFIX) else (
            HA1_PREFIX + ha1_of(user.user, cfg.sip.realm, user.password))
        stored = user.model_copy(update={"password": password})
        problems = semantic_checks(with_api_users(cfg, [*self.store.api_users(), {
            **stored.model_dump(), "added_by": who, "added_at": 0.0}]))
        if problems:
            raise UserInvalid([f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems])
        now = time.time()
        self.store.add_api_user(user=stored.user, password=password, role=stored.role,
                                name=stored.name, added_by=who, added_at=now)
        self._audit(now, who, "user.added", stored.user, {"role": stored.role,
                                                           "name": stored.name})
        self.apply(self.effective())
        return next(u for u in self.listing() if u["user"] == stored.user)

    def remove(self, user: str, *, who: str) -> None:
        """KeyError for a user not stored, UserConflict for one of the file."""
        if self.file_config().user(user) is not None:
            raise UserConflict(f"{user} is defined in the config file, which wins: remove it "
                               "there")
        if not self.store.remove_api_user(user):
            raise KeyError(user)
        self._audit(time.time(), who, "user.removed", user, {})
        self.apply(self.effective())

    def _audit(self, now: float, who: str, action: str, user: str,
               detail: dict[str, Any]) -> None:
        self.publish(AuditChanged(ts=now, who=who, action=action, object=f"user/{user}",
                                  detail={"user": user, **detail}))
