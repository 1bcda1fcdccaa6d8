"""Loading: the file (or the embedded default.yaml) -> a validated Config with absolute paths."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from callcenter.config.checks import semantic_checks
from callcenter.config.models import ApiToken, Config
from ivr.yamldoc import ConfigError, load_yaml, validate_document

#: The embedded configuration (the same text as the repository's config.yaml).
DEFAULT_CONFIG_YAML = resources.files("callcenter.config").joinpath("default.yaml").read_text(
    encoding="utf-8"
)
DEFAULT_CONFIG_NAME = "<default config>"


def load_config(path: Path | None,
                api_queues: Callable[[Config], Collection[str]] = lambda cfg: ()) -> Config:
    """Load and validate ``path`` (None = the embedded defaults); relative paths are resolved.
    ``api_queues(cfg)``: the queues the API added to ``cfg``'s database, which the file may
    name too.

    Raises ConfigError (with every problem found) or FileNotFoundError.
    """
    if path is None:
        text, name, base = DEFAULT_CONFIG_YAML, DEFAULT_CONFIG_NAME, Path.cwd()
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}:1:1: not UTF-8 text ({exc.reason})"]) from None
        name, base = str(path), path.resolve().parent
    doc = load_yaml(text, name)
    cfg = _resolve_paths(validate_document(Config, doc), base)
    errors = doc.errors_at(semantic_checks(cfg, api_queues(cfg)))
    if errors:
        raise ConfigError(errors)
    return cfg


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def res(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    log, tls = cfg.logging, cfg.sip.tls
    if tls is not None:
        files = {"certificate": res(tls.certificate), "key": res(tls.key),
                 "ca": res(tls.ca) if tls.ca else None}
        cfg = cfg.model_copy(update={"sip": cfg.sip.model_copy(
            update={"tls": tls.model_copy(update=files)})})
    return cfg.model_copy(
        update={
            "database": res(cfg.database),
            "sounds": res(cfg.sounds),
            "dialplans": res(cfg.dialplans),
            "logging": log.model_copy(update={"file": res(log.file) if log.file else None}),
        }
    )


def apply_overrides(
    cfg: Config,
    *,
    sip_port: int | None = None,
    http_port: int | None = None,
    db: Path | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
) -> Config:
    """Return ``cfg`` with command-line overrides applied (relative ``db`` = relative to cwd)."""
    update: dict[str, Any] = {}
    if sip_port is not None:
        update["sip"] = cfg.sip.model_copy(update={"port": sip_port})
    if http_port is not None:
        update["http"] = cfg.http.model_copy(update={"port": http_port})
    if db is not None:
        update["database"] = db if db.is_absolute() else Path.cwd() / db
    if log_format is not None or log_level is not None:
        log_update: dict[str, Any] = {}
        if log_format is not None:
            log_update["format"] = log_format
        if log_level is not None:
            log_update["level"] = log_level.lower()
        update["logging"] = cfg.logging.model_copy(update=log_update)
    # Re-validate so an override cannot smuggle in an invalid value.
    return Config.model_validate(cfg.model_copy(update=update).model_dump(by_alias=True))


#: secrets that may come from the environment instead of the file (systemd's
#: EnvironmentFile=, a container's secrets): the variable replaces the file's value
ENV_TOKENS = "CALLCENTER_HTTP_TOKENS"  # token[:role[:name]], comma-separated
ENV_MQTT_PASSWORD = "CALLCENTER_MQTT_PASSWORD"
_ENV_USER_PASSWORD = re.compile(r"^CALLCENTER_USER_(.+)_PASSWORD$")  # ..._1001_PASSWORD


def apply_env(cfg: Config, env: Mapping[str, str]) -> Config:
    """Return ``cfg`` with the secrets of ``env`` (see ``ENV_*``) in place; a variable that
    names no user or holds a bad token raises ConfigError naming the variable."""
    errors: list[str] = []
    update: dict[str, Any] = {}
    if ENV_TOKENS in env:
        tokens = []
        for i, item in enumerate(filter(None, (x.strip() for x in env[ENV_TOKENS].split(",")))):
            token, _, rest = item.partition(":")
            role, _, name = rest.partition(":")
            try:
                tokens.append(ApiToken.model_validate(
                    {"token": token, "role": role or "read", "name": name}))
            except ValidationError as exc:
                errors.append(f"{ENV_TOKENS}: token {i + 1}: expected token[:admin|read[:name]]"
                              f" with a token of 8 characters or more ({exc.errors()[0]['msg']})")
        update["http"] = cfg.http.model_copy(update={"tokens": tokens})
    if ENV_MQTT_PASSWORD in env:
        mqtt = cfg.events.mqtt.model_copy(update={"password": env[ENV_MQTT_PASSWORD]})
        update["events"] = cfg.events.model_copy(update={"mqtt": mqtt})
    passwords = {m.group(1): value for key, value in env.items()
                 if (m := _ENV_USER_PASSWORD.match(key))}
    for user in sorted(set(passwords) - {u.user for u in cfg.users}):
        errors.append(f"CALLCENTER_USER_{user}_PASSWORD: no user {user!r} in the configuration")
    if any(not p for p in passwords.values()):
        errors.append("CALLCENTER_USER_*_PASSWORD: a password may not be empty")
    if errors:
        raise ConfigError(errors)
    if passwords:
        update["users"] = [u.model_copy(update={"password": passwords.get(u.user, u.password)})
                           for u in cfg.users]
    return cfg.model_copy(update=update) if update else cfg
