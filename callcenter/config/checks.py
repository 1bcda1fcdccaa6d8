"""Cross-checks over a validated configuration (what pydantic cannot express per field) and
warnings for settings that are valid but probably wrong."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.config.models import Config
from ivr.yamldoc import Loc

#: Passwords of the shipped demo accounts; a warning fires while they are exposed.
DEMO_PASSWORDS = frozenset({"agent1001", "agent1002", "agent1003", "agent1004", "super2001"})
DEMO_TOKENS = frozenset({"demo-admin-token", "demo-wallboard-token"})


def semantic_checks(cfg: Config, api_queues: Collection[str] = ()) -> list[tuple[Loc, str]]:
    """Cross-field rules pydantic cannot express per field; ``api_queues``: the queues the
    API added (in the database), which campaigns and supervisors may name too."""
    out: list[tuple[Loc, str]] = []
    reg = cfg.sip.registration
    if not reg.min_expires <= reg.default_expires <= reg.max_expires:
        out.append((("sip", "registration", "default_expires"),
                    f"expected min_expires <= default_expires <= max_expires, got "
                    f"{reg.min_expires} <= {reg.default_expires} <= {reg.max_expires}"))
    if "tls" in cfg.sip.transports and cfg.sip.tls is None:
        out.append((("sip", "transports"), "the tls transport needs sip.tls: {certificate, key}"))
    if "SHA-256" in cfg.sip.auth.algorithms:
        out += [(("users", i, "password"), "an ha1: password is an MD5 hash: it cannot answer "
                 "a SHA-256 challenge; take SHA-256 out of sip.auth.algorithms or give the "
                 "password") for i, u in enumerate(cfg.users) if u.password.startswith("ha1:")]
    media = cfg.media
    if media.rtp_port_min % 2:
        out.append((("media", "rtp_port_min"),
                    f"expected an even port (RTP uses even ports, RTCP the next odd one), "
                    f"got {media.rtp_port_min}; try {media.rtp_port_min - 1}"))
    if media.rtp_port_max < media.rtp_port_min + 1:
        out.append((("media", "rtp_port_max"),
                    f"expected at least rtp_port_min + 1 = {media.rtp_port_min + 1} "
                    f"(one RTP/RTCP pair), got {media.rtp_port_max}"))
    for name in ("transports", "codecs"):
        items = cfg.sip.transports if name == "transports" else media.codecs
        section = "sip" if name == "transports" else "media"
        for i, item in enumerate(items):
            if item in items[:i]:
                out.append(((section, name, i), f"{item!r} is listed twice; remove one"))
    out += _unique("users", "user", [u.user for u in cfg.users])
    out += _unique("trunks", "name", [t.name for t in cfg.trunks])
    out += _failover_checks(cfg)
    out += _inbound_checks(cfg)
    if zone_error := _zone_error(cfg.timezone):
        out.append((("timezone",), zone_error))
    queues = [q.name for q in cfg.queues] + [q for q in api_queues if cfg.queue(q) is None]
    out += _queue_checks(cfg, queues)
    out += _supervisor_checks(cfg, queues)
    out += _campaign_checks(cfg, queues)
    return out


def _unique(section: str, key: str, names: list[str]) -> list[tuple[Loc, str]]:
    """``users[3].user: user '1001' is already defined as users[0]; ...`` for each repeat."""
    kind = section.removesuffix("s")
    first: dict[str, int] = {}
    out: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in first:
            out.append(((section, i, key), f"{kind} {name!r} is already defined as "
                        f"{section}[{first[name]}]; {kind} names must be unique"))
        first.setdefault(name, i)
    return out


def _failover_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """Each ``trunks[].failover`` entry names another trunk, once."""
    out: list[tuple[Loc, str]] = []
    trunks = [t.name for t in cfg.trunks]
    for i, trunk in enumerate(cfg.trunks):
        for j, name in enumerate(trunk.failover):
            loc = ("trunks", i, "failover", j)
            if name == trunk.name:
                out.append((loc, f"trunk {name!r} cannot fail over to itself"))
            elif name in trunk.failover[:j]:
                out.append((loc, f"{name!r} is listed twice; remove one"))
            else:
                out += _known(loc, name, trunks, "a trunk")
    return out


def _inbound_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """A trunk taking calls by address has addresses; one taking them at its registered
    Contact registers."""
    out: list[tuple[Loc, str]] = []
    for i, trunk in enumerate(cfg.trunks):
        if trunk.inbound != "register" and not trunk.addresses:
            out.append((("trunks", i, "addresses"), f"expected at least one address (inbound: "
                        f"{trunk.inbound} takes calls from them), or set inbound: register"))
        if trunk.inbound != "ip" and trunk.registration is None:
            out.append((("trunks", i, "inbound"), f"inbound: {trunk.inbound} takes calls at "
                        "the registered Contact: add register: {user, password}"))
    return out


def _campaign_checks(cfg: Config, queues: list[str]) -> list[tuple[Loc, str]]:
    """Campaign names unique; queue and trunk exist; the time zone is known."""
    out: list[tuple[Loc, str]] = []
    trunks = [t.name for t in cfg.trunks]
    names: list[str] = []
    for i, c in enumerate(cfg.campaigns):
        if c.name in names:
            out.append((("campaigns", i, "name"), f"campaign {c.name!r} is defined twice"))
        names.append(c.name)
        out += _known(("campaigns", i, "queue"), c.queue, queues, "a queue")
        out += _known(("campaigns", i, "trunk"), c.trunk, trunks, "a trunk")
        if zone_error := _zone_error(c.timezone):
            out.append((("campaigns", i, "timezone"), zone_error))
    return out


def _known(loc: Loc, name: str | None, names: list[str], what: str) -> list[tuple[Loc, str]]:
    """``expected a trunk (pstn, backup), got 'x'`` unless ``name`` is None or one of ``names``."""
    if name is None or name in names:
        return []
    return [(loc, f"expected {what} ({', '.join(names)}), got {name!r}")]


def _zone_error(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"expected an IANA time zone (Europe/Warsaw), got {name!r}"
    return None


def _supervisor_checks(cfg: Config, names: list[str]) -> list[tuple[Loc, str]]:
    """supervisor.queues keys are supervisors, queue names (there and in recording) exist."""
    out: list[tuple[Loc, str]] = []
    supervisors = sorted(u.user for u in cfg.users if u.role == "supervisor")
    for user, queues in cfg.supervisor.queues.items():
        if user not in supervisors:
            out.append((("supervisor", "queues", user),
                        f"expected a user with role supervisor ({', '.join(supervisors)}), "
                        f"got {user!r}"))
        for j, name in enumerate(queues):
            out += _known(("supervisor", "queues", user, j), name, names, "a queue")
    for j, name in enumerate(cfg.recording.queues):
        out += _known(("recording", "queues", j), name, names, "a queue")
    return out


def _queue_checks(cfg: Config, queues: list[str]) -> list[tuple[Loc, str]]:
    """Queue names unique, members known users listed once, overflow to another queue (of
    ``queues``: the file's and the API's)."""
    out: list[tuple[Loc, str]] = []
    names = [q.name for q in cfg.queues]
    users = {u.user for u in cfg.users}
    for i, queue in enumerate(cfg.queues):
        if queue.name in names[:i]:
            out.append((("queues", i, "name"), f"queue {queue.name!r} is defined twice"))
        seen: set[str] = set()
        for j, member in enumerate(queue.members):
            loc: Loc = ("queues", i, "members", j)
            if member.user not in users:
                out.append((loc, f"expected one of the users ({', '.join(sorted(users))}), "
                                 f"got {member.user!r}"))
            elif member.user in seen:
                out.append((loc, f"user {member.user!r} is listed twice in this queue"))
            seen.add(member.user)
        if queue.overflow is not None and (
            queue.overflow == queue.name or queue.overflow not in queues
        ):
            out.append((("queues", i, "overflow"),
                        f"expected the name of another queue ({', '.join(queues)}), "
                        f"got {queue.overflow!r}"))
        out += _known(("queues", i, "callback", "trunk"), queue.callback.trunk,
                      [t.name for t in cfg.trunks], "a trunk")
    return out


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_warnings(cfg: Config) -> list[str]:
    """Things that are valid but probably wrong (e.g. demo passwords on a public address)."""
    warnings: list[str] = []
    demo = [u.user for u in cfg.users if u.password in DEMO_PASSWORDS]
    if demo:
        for listener in (cfg.sip, cfg.http):
            if not _is_loopback(listener.listen):
                warnings.append(
                    f"exposing demo passwords on {listener.listen}:{listener.port}; "
                    f"change users[].password before exposing (users {', '.join(demo)})"
                )
    demo_tokens = [t.name or t.role for t in cfg.http.tokens if t.token in DEMO_TOKENS]
    if demo_tokens and not _is_loopback(cfg.http.listen):
        warnings.append(
            f"exposing demo API tokens on {cfg.http.listen}:{cfg.http.port}; "
            "change http.tokens[].token before exposing"
        )
    if ipaddress.ip_address(cfg.sip.listen).is_unspecified and not cfg.sip.advertised_address:
        warnings.append(
            f"sip.listen is {cfg.sip.listen} and sip.advertised_address is not set; set it to the "
            "address phones reach this server on, or Via/Contact/SDP will carry "
            f"{cfg.sip.listen}"
        )
    if not cfg.users:
        warnings.append("no users configured: no agent or supervisor can register")
    return warnings
