"""SIP users and ACD queues added and removed through the API (``/api/users``,
``/api/queues``), kept in the ``users`` and ``queues`` tables and applied like a reload (a new
agent is called at once, a removed one finishes its call; a removed queue serves the callers
still in it).

The file is the source of truth for what it defines: its users and queues cannot be changed
here (but for the web password of a user it gives none: stored apart, forgotten when the file
drops the user), and a stored one the file now defines is not used. A password set here is stored as the digest
HA1 (``ha1:``, MD5 of user:realm:password): SIP digest needs it, and it is all that is kept
(the API login checks the password against it); a ``web_password`` for the API login only
is stored as a scrypt hash. Pause reasons added here live in the ``pause_reasons`` table.
Every change is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from callcenter.config.checks import semantic_checks
from callcenter.config.live import with_api_objects
from callcenter.config.models import CodeNames, Queue, User
from callcenter.config.web_password import hash_web_password
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

    def effective(self, cfg: Config | None = None, **rows: list[dict[str, Any]]) -> Config:
        """``cfg`` (default: the running file) with the stored users, queues and pause
        reasons (or the ``users``, ``queues``, ``reasons`` rows given instead)."""
        return with_stored(cfg or self.file_config(), self.store, **rows)

    def listing(self) -> list[dict[str, Any]]:
        stored = {r["user"]: r for r in self.store.api_users()}
        out = []
        for u in self.effective().users:
            row = stored.get(u.user)
            api = row is not None and self.file_config().user(u.user) is None
            out.append({"user": u.user, "role": u.role, "name": u.name,
                        "skills": u.skills, "web_password": u.web_password is not None,
                        "source": "api" if api else "file",
                        "added_by": row["added_by"] if api and row else None,
                        "added_at": row["added_at"] if api and row else None})
        return out

    def add(self, body: Any, *, who: str) -> dict[str, Any]:
        """DirectoryInvalid for a bad body, DirectoryConflict for a user that exists."""
        if not isinstance(body, dict):
            raise DirectoryInvalid(['expected {"user", "password", "role", "name"}'])
        stored = self._user({"name": ""} | body)
        if self.effective().user(stored.user) is not None:
            raise DirectoryConflict(f"user {stored.user} exists")
        _check(self.effective(users=[*self.store.api_users(), stored.model_dump()]))
        now = time.time()
        self.store.add_api_user(user=stored.user, password=stored.password, role=stored.role,
                                name=stored.name, added_by=who, added_at=now)
        if stored.skills or stored.web_password:
            self.store.change_api_user(stored.user, skills=stored.skills,
                                       web_password=stored.web_password)
        self._audit(now, who, "user.added", f"user/{stored.user}", {
            "user": stored.user, "role": stored.role, "name": stored.name,
            "skills": stored.skills})
        self.apply(self.effective())
        return next(u for u in self.listing() if u["user"] == stored.user)

    def reloaded(self, cfg: Config) -> Config:
        """A new file with the API's objects; the web passwords set for users it no longer
        defines are forgotten (a name given to someone else must not log in with them)."""
        self.store.keep_file_web_passwords([u.user for u in cfg.users])
        return self.effective(cfg)

    def change(self, name: str, body: Any, *, who: str) -> dict[str, Any]:
        """Change a stored user in place (``name``, ``password``, ``role``, ``skills``,
        ``web_password``; null removes the web password), or a file user's web password when
        the file gives none: KeyError for one not stored, DirectoryConflict for another
        change of a file user, DirectoryInvalid for a bad body."""
        filed = self.file_config().user(name)
        if filed is not None:
            return self._change_files(filed, body, who=who)
        row = next((r for r in self.store.api_users() if r["user"] == name), None)
        if row is None:
            raise KeyError(name)
        if not isinstance(body, dict) or not body or not body.keys() <= USER_FIELDS - {"user"}:
            raise DirectoryInvalid([f"expected some of {', '.join(sorted(USER_FIELDS - {'user'}))}"])
        current = {k: row[k] for k in ("user", "password", "role", "name", "skills",
                                       "web_password")}
        stored = self._user(current | body, hashed=current["web_password"])
        changed = {k: v for k, v in stored.model_dump(include=set(current)).items()
                   if v != current[k]}
        _check(self.effective(users=[stored.model_dump() if r["user"] == name else r
                                     for r in self.store.api_users()]))
        if changed:
            self.store.change_api_user(name, **changed)
            self._audit(time.time(), who, "user.changed", f"user/{name}", {
                "user": name, "changed": sorted(changed),
                **{k: v for k, v in changed.items() if "password" not in k}})
            self.apply(self.effective())
        return next(u for u in self.listing() if u["user"] == name)

    def _change_files(self, user: User, body: Any, *, who: str) -> dict[str, Any]:
        """The file wins for what it gives; the web password it does not give is the API's
        (stored apart, by user)."""
        if not isinstance(body, dict) or body.keys() != {"web_password"}:
            raise DirectoryConflict(f"user {user.user} is defined in the config file, which "
                                    "wins: only its web_password can be set here")
        if user.web_password is not None:
            raise DirectoryConflict(f"user {user.user} has its web_password in the config "
                                    "file, which wins: change it there")
        web = _web(body["web_password"])
        if web is None and user.user not in self.store.file_web_passwords():
            return next(u for u in self.listing() if u["user"] == user.user)  # none to remove
        now = time.time()
        self.store.set_file_web_password(
            user.user, None if web is None else hash_web_password(web), by=who, at=now)
        self._audit(now, who, "user.changed", f"user/{user.user}",
                    {"user": user.user, "changed": ["web_password"]})
        self.apply(self.effective())
        return next(u for u in self.listing() if u["user"] == user.user)

    def _user(self, body: dict[str, Any], hashed: str | None = None) -> User:
        """The user ``body`` gives, as stored: the SIP password as its HA1, the web password
        as its scrypt hash (``hashed``: the stored one, kept when ``body`` has it as is)."""
        unknown = body.keys() - USER_FIELDS - {"added_by", "added_at"}
        if unknown:
            raise DirectoryInvalid([f"{k}: not a field of a user" for k in sorted(unknown)])
        web = body.get("web_password")
        if web != hashed:
            _web(web)
        try:
            user = User.model_validate({k: v for k, v in body.items() if k in USER_FIELDS}
                                       | {"web_password": None,
                                          "name": str(body.get("name", ""))})
        except ValidationError as exc:
            raise DirectoryInvalid(_errors(exc)) from None
        realm = self.file_config().sip.realm
        password = user.password if user.password.startswith(HA1_PREFIX) else (
            HA1_PREFIX + ha1_of(user.user, realm, user.password))
        return user.model_copy(update={"password": password, "web_password": (
            web if web is None or web == hashed else hash_web_password(web))})

    def remove(self, user: str, *, who: str) -> None:
        """KeyError for a user not stored, DirectoryConflict for one of the file."""
        self._not_the_files(self.file_config().user(user), "user", user)
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
        _check(self.effective(queues=[*self.store.api_queues(), row]))
        now = time.time()
        self.store.add_api_queue(name=queue.name, settings=settings, added_by=who, added_at=now)
        self._audit(now, who, "queue.added", f"queue/{queue.name}", settings)
        self.apply(self.effective())
        return settings

    def change_queue(self, name: str, body: Any, *, who: str) -> dict[str, Any]:
        """Change a stored queue's settings in place (those ``body`` names; members have their
        own API): the callers waiting keep their places. KeyError for a queue not stored,
        DirectoryConflict for one of the file, DirectoryInvalid for bad settings."""
        self._not_the_files(self.file_config().queue(name), "queue", name)
        row = next((r for r in self.store.api_queues() if r["name"] == name), None)
        if row is None:
            raise KeyError(name)
        if not isinstance(body, dict) or not body or "members" in body \
                or body.get("name", name) != name:
            raise DirectoryInvalid(["expected some of a queue's settings as in config.yaml, "
                                    "without members or a new name"])
        try:
            queue = Queue.model_validate(row["settings"] | body)
        except ValidationError as exc:
            raise DirectoryInvalid(_errors(exc)) from None
        settings = queue.model_dump(mode="json", exclude_defaults=True) | {"name": name}
        _check(self.effective(queues=[{**r, "settings": settings} if r["name"] == name else r
                                      for r in self.store.api_queues()]))
        self.store.change_api_queue(name, settings)
        self._audit(time.time(), who, "queue.changed", f"queue/{name}", body)
        self.apply(self.effective())
        return settings

    def remove_queue(self, name: str, *, who: str) -> None:
        """KeyError for a queue not stored, DirectoryConflict for one of the file or one another
        API queue overflows to."""
        self._not_the_files(self.file_config().queue(name), "queue", name)
        rest = [r for r in self.store.api_queues() if r["name"] != name]
        if len(rest) == len(self.store.api_queues()):
            raise KeyError(name)
        try:
            _check(self.effective(queues=rest))
        except DirectoryInvalid as exc:
            raise DirectoryConflict(str(exc)) from None
        self.store.remove_api_queue(name)
        self._audit(time.time(), who, "queue.removed", f"queue/{name}", {"queue": name})
        self.apply(self.effective())

    def pause_reasons(self) -> list[dict[str, Any]]:
        """Every pause reason: the file's, then the API's."""
        stored = {r["code"]: r for r in self.store.pause_reasons()}
        filed = self.file_config().pause_reasons
        return [{"code": code, "name": name, "source": "file" if code in filed else "api",
                 "added_by": None if code in filed else stored[code]["added_by"],
                 "added_at": None if code in filed else stored[code]["added_at"]}
                for code, name in self.effective().pause_reasons.items()]

    def add_pause_reason(self, body: Any, *, who: str) -> dict[str, Any]:
        """``{"code": "5", "name": "training"}``: usable at once (``*435``, the API's pause);
        DirectoryInvalid for a bad one, DirectoryConflict for a code or name in use."""
        if not isinstance(body, dict) or body.keys() != {"code", "name"}:
            raise DirectoryInvalid(['expected {"code": "5", "name": "training"}'])
        try:
            code, name = next(iter(_CODE_NAMES.validate_python({body["code"]: body["name"]})
                                   .items()))
        except ValidationError as exc:
            raise DirectoryInvalid(_errors(exc)) from None
        reasons = self.effective().pause_reasons
        if code in reasons or name in reasons.values():
            raise DirectoryConflict(f"pause reason {code} or {name} exists")
        now = time.time()
        self.store.add_pause_reason(code=code, name=name, added_by=who, added_at=now)
        self._audit(now, who, "pause_reason.added", f"pause_reason/{code}",
                    {"code": code, "name": name})
        self.apply(self.effective())
        return next(r for r in self.pause_reasons() if r["code"] == code)

    def remove_pause_reason(self, code: str, *, who: str) -> None:
        """KeyError for one not stored, DirectoryConflict for one of the file."""
        self._not_the_files(self.file_config().pause_reasons.get(code), "pause reason", code)
        if not self.store.remove_pause_reason(code):
            raise KeyError(code)
        self._audit(time.time(), who, "pause_reason.removed", f"pause_reason/{code}",
                    {"code": code})
        self.apply(self.effective())

    @staticmethod
    def _not_the_files(found: object, what: str, name: str) -> None:
        if found is not None:
            raise DirectoryConflict(f"{what} {name} is defined in the config file, which wins: "
                                    "change it there")

    def _audit(self, now: float, who: str, action: str, object: str,
               detail: dict[str, Any]) -> None:
        self.publish(AuditChanged(ts=now, who=who, action=action, object=object, detail=detail))


USER_FIELDS = {"user", "password", "role", "name", "skills", "web_password"}
_CODE_NAMES: TypeAdapter[dict[str, str]] = TypeAdapter(CodeNames)


def with_stored(cfg: Config, store: Store, *, users: list[dict[str, Any]] | None = None,
                queues: list[dict[str, Any]] | None = None,
                reasons: list[dict[str, Any]] | None = None) -> Config:
    """``cfg`` with the users, queues and pause reasons the API stored (or those given)."""
    return with_api_objects(cfg, store.api_users() if users is None else users,
                            store.api_queues() if queues is None else queues,
                            store.pause_reasons() if reasons is None else reasons,
                            store.file_web_passwords())


def _web(value: Any) -> str | None:
    """A web password given in a body: a non-empty string, or null."""
    if value is not None and not isinstance(value, str) or value == "":
        raise DirectoryInvalid(["web_password: expected a non-empty string or null"])
    return value


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _check(cfg: Config) -> None:
    """The file's cross-checks on the configuration with the API's objects."""
    problems = semantic_checks(cfg)
    if problems:
        raise DirectoryInvalid([f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems])
