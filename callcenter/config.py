"""Configuration: typed, validated models loaded from YAML.

Every mistake is reported as ``FILE:LINE:COL: dotted.path: what was expected``. The YAML
loader here records the position of every node, and :func:`load_yaml` / :func:`validate_document`
are shared with the dialplan loader (``ivr.dialplan``) so both speak the same error language.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = [
    "DEFAULT_CONFIG_YAML",
    "DEMO_PASSWORDS",
    "AuthConfig",
    "Campaign",
    "Config",
    "ConfigError",
    "EventsConfig",
    "HttpConfig",
    "LoggingConfig",
    "Mark",
    "MediaConfig",
    "MqttConfig",
    "Queue",
    "QueueMember",
    "RecordingConfig",
    "RegistrationConfig",
    "SipConfig",
    "SupervisorConfig",
    "Trunk",
    "User",
    "YamlDocument",
    "apply_overrides",
    "check_warnings",
    "load_config",
    "load_yaml",
    "validate_document",
]

DEFAULT_CONFIG_YAML = """\
# callcenter configuration. `callcenter check --config FILE` validates a file.
# Relative paths (database, sounds, dialplans, logging.file) are relative to this file.
sip:
  listen: 127.0.0.1        # address to bind SIP UDP+TCP
  port: 5060
  transports: [udp, tcp]
  advertised_address: null # address put in Via/Contact/SDP; defaults to listen
  realm: callcenter
  user_agent: callcenter/0.1
  tcp_idle_timeout: 300
  udp_receive_buffer: 4194304 # bytes; absorbs bursts at high call rates (0 = OS default)
  session_refresh: 600       # re-INVITE answered calls this often; hang up if unanswered
  registration: {min_expires: 60, max_expires: 3600, default_expires: 600, qualify_interval: 30}
  auth: {nonce_ttl: 300, max_failures: 5, failure_window: 60, block_for: 300, algorithms: [MD5]}
http:
  listen: 127.0.0.1
  port: 8080
  tokens:                  # bearer tokens for /api/ (admin changes things, read only looks)
    - {token: demo-admin-token, role: admin, name: demo admin}
    - {token: demo-wallboard-token, role: read, name: wallboard}
media:
  address: 127.0.0.1
  rtp_port_min: 20000
  rtp_port_max: 29999
  codecs: [PCMU, PCMA]
database: var/callcenter.db
logging: {level: info, format: auto, file: null}   # format: auto|console|json (auto = console on a TTY, JSON lines otherwise)
sounds: sounds
dialplans: dialplans
timezone: Europe/Warsaw   # the server's clock: schedules, "today", reports, CDR times
# Events: every call, IVR, queue and agent change goes to the subscribers below (the web's
# live stream always). MQTT is used when url is set: mqtt://host:1883 or mqtts://host:8883.
events:
  log: false               # also log every event as a line (event_<type>)
  mqtt:
    url: null              # e.g. mqtt://127.0.0.1:1883; null = no MQTT
    username: null
    password: null
    client_id: null        # default callcenter-<hostname>-<pid>
    topic_prefix: callcenter
    backlog: 10000         # messages kept while the broker is away (then the oldest are dropped)
    tls_ca: null           # CA file for mqtts:// (null = the system's CAs)
    tls_insecure: false    # mqtts:// without certificate checks (testing only)
    keepalive: 30
# Demo accounts: change every password before SIP or HTTP listens on a public address.
users:
  - {user: "1001", password: "agent1001", role: agent, name: "Anna Nowak"}
  - {user: "1002", password: "agent1002", role: agent, name: "Piotr Kowalski"}
  - {user: "1003", password: "agent1003", role: agent, name: "Maria Wiśniewska"}
  - {user: "1004", password: "agent1004", role: agent, name: "Jan Wójcik"}
  - {user: "2001", password: "super2001", role: supervisor, name: "Ewa Supervisor"}
trunks:
  - name: pstn
    addresses: [127.0.0.1]   # calls from these addresses come from this trunk
    inband_dtmf: false
    host: 127.0.0.1          # outbound calls (the dialer) go to host:port
    port: 5080
    transport: udp
# ACD queues. members: user ids, or {user, tier, penalty, static, skills}; a static member is
# logged in from the start and takes calls once its phone registers (others log in with *41).
# Times in seconds; null turns max_wait / announce_every / auto_pause_after / callback_key off.
queues:
  - name: sales
    strategy: longest-idle-agent  # ring-all, round-robin, fewest-calls, least-talk-time, ...
    members: ["1001", "1002", "1003", "1004"]
    wrapup: 5              # agent not offered calls for this long after each call
    ring_timeout: 15       # an agent who does not answer in time is skipped for the call
    max_wait: 600          # then the call leaves the queue (outcome "timeout", or overflow)
    announce_every: 60     # position and estimated wait, music on hold between
    sl_seconds: 20         # service level: answered within this many seconds
    whisper: true          # the agent hears "queue_<name>" before the caller is connected
    join_empty: true
    leave_when_empty: false
    overflow: null         # queue a timed-out (or empty) call moves to
    auto_pause_after: 3    # missed rings in a row before an agent is paused (reason "auto")
    callback_key: "1"      # caller key that leaves a callback request, keeping the place
  - name: support
    members: ["1003", "1004"]
    wrapup: 5
    ring_timeout: 15
    max_wait: 600
    announce_every: 60
    whisper: true
# Supervisors dial *81<agent> listen, *82<agent> whisper, *83<agent> barge; keys 4/5/6 switch.
supervisor:
  wait_for_call: true      # agent not on a call: join their next call (false: say so, hang up)
  wait_timeout: 300        # seconds a waiting supervisor is kept on the line
  queues: {}               # supervisor -> queues whose agents they may supervise ({"2001": [sales]}); unlisted = all
# Call recording: a stereo WAV per call (caller left, agent right), its path in the CDR.
recording:
  calls: false             # record every call answered by an agent
  queues: []               # or only calls answered from these queues
  directory: recordings    # relative to the database's directory
# Outbound campaigns (the dialer). Load a list with
#   callcenter campaign import contacts.csv --campaign telesales
# then `callcenter campaign start telesales` (or POST /api/campaigns/telesales/start).
# Calls go out through the trunk's host:port; an answered call joins `queue` with `priority`;
# no agent within 2 s = abandoned: the caller hears sounds/<language>/abandon_message.wav.
campaigns:
  - name: telesales
    queue: sales
    list: telesales          # contact list name (default: the campaign's name)
    trunk: pstn
    caller_id: "+48221234567"
    caller_name: Telesales
    mode: predictive         # predictive | progressive | power | preview
    ratio: 2.0               # power mode: lines per free agent
    abandon_limit: 0.03      # abandoned / answered by a person, 24 h and 30 days
    autostart: false         # start dialing when the server starts (else start it by hand)
    ring_timeout: 25         # seconds; never under 15
    amd: false               # answering-machine detection on the first seconds of audio
    machine_message: null    # prompt left on a detected machine after its greeting (null = hang up)
    preview_seconds: 30      # preview mode: how long a contact stays reserved for its agent
    callback_grace: 3600     # a callback for one agent goes to anyone when they were not free this long after its time
    record: false            # record calls bridged to an agent (path on the attempt)
    priority: 10             # queue priority of answered campaign calls
    language: pl
    timezone: Europe/Warsaw  # contacts without a timezone column (else from the number)
    hours: {mon-fri: "09:00-20:00", sat: "10:00-14:00"}   # contact's local time
    holidays: []             # dates nobody is called, e.g. [2026-12-24]
    retries:                 # per outcome: how many more tries, after how many seconds
      busy: {max: 3, delay: 900}
      no-answer: {max: 3, delay: 7200}
      machine: {max: 2, delay: 14400}
      abandoned: {max: 1, delay: 259200}
      failed: {max: 1, delay: 3600}
    dispositions:            # agent dials *5<code> after the call (or POST .../dispositions)
      "1": {name: sale, final: true}
      "2": {name: not-interested, final: true}
      "3": {name: callback, final: false, retry: 3600, callback_to: same}   # same | anyone
      "9": {name: do-not-call, final: true, dnc: true}
"""

DEFAULT_CONFIG_NAME = "<default config>"

#: Passwords of the shipped demo accounts; a warning fires while they are exposed.
DEMO_PASSWORDS = frozenset({"agent1001", "agent1002", "agent1003", "agent1004", "super2001"})
DEMO_TOKENS = frozenset({"demo-admin-token", "demo-wallboard-token"})


class ConfigError(Exception):
    """Configuration (or dialplan) is invalid; ``errors`` holds one ``file:line:col: ...`` each."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


# --------------------------------------------------------------------------------------------
# YAML with positions

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a YAML file."""

    line: int
    col: int


@dataclass(slots=True)
class YamlDocument:
    """Parsed YAML plus the position of every node, keyed by its path (keys and indices)."""

    filename: str
    data: Any
    #: path -> position of the value (scalar, mapping or sequence item)
    values: dict[Loc, Mark] = field(default_factory=dict)
    #: path -> position of the mapping key naming it (for "unknown key" errors)
    keys: dict[Loc, Mark] = field(default_factory=dict)
    #: problems found while parsing (duplicate keys); reported by validate_document
    errors: list[str] = field(default_factory=list)

    def clean_loc(self, loc: Iterable[str | int]) -> Loc:
        """Drop the parts of a pydantic ``loc`` that are not real paths (union member tags)."""
        out: list[str | int] = []
        current: Any = self.data
        for part in loc:
            if isinstance(current, dict):
                out.append(part)
                current = current.get(part)
            elif isinstance(current, list) and isinstance(part, int):
                out.append(part)
                current = current[part] if 0 <= part < len(current) else None
            else:
                break
        return tuple(out)

    def mark(self, loc: Loc, *, key: bool = False) -> Mark:
        """Position of ``loc``, or of its closest existing ancestor."""
        if key and loc in self.keys:
            return self.keys[loc]
        for n in range(len(loc), -1, -1):
            found = self.values.get(loc[:n])
            if found is not None:
                return found
        return Mark(1, 1)

    def errors_at(self, problems: Iterable[tuple[Loc, str]]) -> list[str]:
        """Format ``(loc, message)`` pairs, sorted by position in the file."""
        marked = [(self.mark(loc), self.error(loc, msg)) for loc, msg in problems]
        marked.sort(key=lambda item: (item[0].line, item[0].col))
        return [text for _, text in marked]

    def error(self, loc: Loc, message: str, *, key: bool = False) -> str:
        """Format ``FILE:LINE:COL: path: message``."""
        m = self.mark(loc, key=key)
        path = dotted(loc)
        where = f"{self.filename}:{m.line}:{m.col}"
        return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def dotted(loc: Iterable[str | int]) -> str:
    """``("users", 2, "role")`` -> ``users[2].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, filename: str) -> YamlDocument:
    """Parse ``text`` safely, recording positions; raise ConfigError on syntax errors.

    Duplicate keys are collected in ``doc.errors`` (the last value wins, as in PyYAML).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(filename=filename, data=None)
        if node is not None:
            _walk(loader, node, (), doc, doc.errors)
            doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise ConfigError([f"{where}: YAML syntax error: {problem}{context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}:1:1: YAML error: {exc}"]) from None
    finally:
        loader.dispose()


def _walk(
    loader: yaml.SafeLoader, node: yaml.Node, path: Loc, doc: YamlDocument, errors: list[str]
) -> None:
    doc.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve "<<" merge keys like the constructor does
        seen: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                continue
            key_mark = _mark(key_node)
            if key in seen:
                first = seen[key]
                errors.append(
                    f"{doc.filename}:{key_mark.line}:{key_mark.col}: {dotted((*path, key))}: "
                    f"duplicate key (first defined at line {first.line}); remove one of them"
                )
                continue
            seen[key] = key_mark
            doc.keys[(*path, key)] = key_mark
            _walk(loader, value_node, (*path, key), doc, errors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(loader, item, (*path, index), doc, errors)


M = TypeVar("M", bound=BaseModel)


def validate_document(model: type[M], doc: YamlDocument, *, empty_ok: bool = True) -> M:
    """Validate ``doc.data`` against ``model``; raise ConfigError with positioned messages."""
    data = doc.data
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [*doc.errors, doc.error((), "expected a mapping of keys at the top level")]
        )
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(doc.errors + validation_messages(model, doc, exc)) from None
    if doc.errors:
        raise ConfigError(doc.errors)
    return result


def validation_messages(
    model: type[BaseModel], doc: YamlDocument, exc: ValidationError
) -> list[str]:
    """Turn pydantic errors into ``file:line:col: path: message`` lines, in file order."""
    found: list[tuple[Mark, str]] = []
    for err in exc.errors(include_url=False):
        loc = doc.clean_loc(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            msg = f"unknown key {loc[-1]!r}"
            if parent is not None:
                names = list(parent.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), names, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else ""
                msg += f" (allowed: {', '.join(names)})"
            found.append((doc.mark(loc, key=True), doc.error(loc, msg, key=True)))
            continue
        if kind == "missing":
            msg = "required key is missing"
        else:
            msg = _expected(err)
        found.append((doc.mark(loc), doc.error(loc, msg)))
    found.sort(key=lambda item: (item[0].line, item[0].col))
    return [text for _, text in found]


def _expected(err: Any) -> str:
    msg: str = err["msg"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "too_short" and isinstance(value, list):
        n = ctx.get("min_length", 1)
        return f"expected at least {n} item{'s' if n != 1 else ''}, got {len(value)}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')!s}, got {value!r}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be ") :]
    elif msg.startswith("Input "):
        msg = "expected valid input: " + msg[len("Input ") :]
    if not isinstance(value, dict | list):
        msg += f", got {value!r}"
    return msg


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for listing allowed keys)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            if get_origin(current) is not list or not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated / Optional wrappers."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        args = [a for a in get_args(tp) if a is not type(None)]
        if origin is not None and origin is not list and len(args) == 1:
            tp = args[0]
            continue
        return tp


# --------------------------------------------------------------------------------------------
# Field types


def _quoted_string(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(
            f"expected a quoted string, got the number {value!r}; write it in quotes "
            f'(e.g. "{value}") so YAML keeps leading zeros'
        )
    return value


def _ip_address(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address such as 127.0.0.1 or 0.0.0.0, got {value!r}")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"expected an IP address such as 127.0.0.1 or 0.0.0.0, got {value!r}"
        ) from None
    return value


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]{1,63})*$"
)


def _host(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            if _HOSTNAME.match(value):
                return value
    raise ValueError(f"expected an IP address or host name, got {value!r}")


def _ip_network(value: Any) -> Any:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ValueError(
            f"expected an IP address or network (e.g. 192.0.2.10 or 192.0.2.0/24), got {value!r}"
        ) from None
    return str(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


QuotedStr = Annotated[str, BeforeValidator(_quoted_string)]
IpAddress = Annotated[str, BeforeValidator(_ip_address)]
Host = Annotated[str | None, BeforeValidator(_host)]
Port = Annotated[int, Field(ge=0, le=65535, description="0 = any free port")]
PositiveSeconds = Annotated[float, Field(gt=0)]

_TOKEN = r"^[A-Za-z0-9._!~*'()%+-]+$"  # RFC 3261 user part without escapes, conservatively


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrationConfig(_Model):
    """REGISTER expiry bounds (seconds) and the OPTIONS keep-alive period (0 = off)."""

    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    default_expires: int = Field(default=600, ge=1)
    qualify_interval: int = Field(default=30, ge=0)


class AuthConfig(_Model):
    """Digest nonce lifetime and the brute-force limiter."""

    nonce_ttl: int = Field(default=300, ge=1)
    max_failures: int = Field(default=5, ge=1)
    failure_window: int = Field(default=60, ge=1)
    block_for: int = Field(default=300, ge=0)
    #: digest algorithms offered, in order; SHA-256 is opt-in because baresip 1.0 and SIPp 3.6
    #: give up on a SHA-256 challenge instead of skipping it (RFC 8760 clients take either)
    algorithms: list[Literal["MD5", "SHA-256"]] = Field(default=["MD5"], min_length=1)


class SipConfig(_Model):
    """SIP listener."""

    listen: IpAddress = "127.0.0.1"
    port: Port = 5060
    transports: list[Literal["udp", "tcp"]] = Field(default=["udp", "tcp"], min_length=1)
    advertised_address: Host = None
    realm: str = Field(default="callcenter", min_length=1)
    user_agent: str = "callcenter/0.1"
    tcp_idle_timeout: PositiveSeconds = 300
    #: bytes of kernel buffer on the SIP UDP socket: bursts (a slow media tick, a neighbour's
    #: load) then queue instead of being dropped and retransmitted; 0 keeps the OS default
    udp_receive_buffer: int = Field(default=4194304, ge=0)
    #: seconds between re-INVITEs that check an answered call's far end is still there
    #: (a phone that does not answer is hung up); 0 turns the check off
    session_refresh: int = Field(default=600, ge=0)
    registration: RegistrationConfig = RegistrationConfig()
    auth: AuthConfig = AuthConfig()

    @property
    def advertised(self) -> str:
        """Address to put in Via/Contact/SDP."""
        return self.advertised_address or self.listen


class ApiToken(_Model):
    """A bearer token for the HTTP API: ``admin`` may change things, ``read`` only look."""

    token: Annotated[str, Field(min_length=8)]
    role: Literal["admin", "read"] = "read"
    name: str = ""


class HttpConfig(_Model):
    """HTTP API / wallboard listener."""

    listen: IpAddress = "127.0.0.1"
    port: Port = 8080
    tokens: list[ApiToken] = []


class MediaConfig(_Model):
    """RTP address and port range; codecs in order of preference."""

    address: IpAddress = "127.0.0.1"
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535)
    rtp_port_max: int = Field(default=29999, ge=1024, le=65535)
    codecs: list[Literal["PCMU", "PCMA"]] = Field(default=["PCMU", "PCMA"], min_length=1)


class LoggingConfig(_Model):
    """Log level, format (auto = console on a TTY, JSON lines otherwise) and optional file."""

    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = "info"
    format: Literal["auto", "console", "json"] = "auto"
    file: Path | None = None


class MqttConfig(_Model):
    """The MQTT sink (``events.mqtt``); ``url`` null = off."""

    url: Annotated[str, Field(pattern=r"^(mqtts?|tcp|ssl)://[^/?#]+/?$")] | None = None
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    topic_prefix: Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")] = "callcenter"
    backlog: int = Field(default=10000, ge=1)
    tls_ca: Path | None = None
    tls_insecure: bool = False
    keepalive: int = Field(default=30, ge=5)


class EventsConfig(_Model):
    """Event sinks besides the web: the log and MQTT."""

    log: bool = False
    mqtt: MqttConfig = MqttConfig()


class User(_Model):
    """A SIP account: an agent or a supervisor."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    password: Annotated[QuotedStr, Field(min_length=1)]
    role: Literal["agent", "supervisor"]
    name: str = ""


class Trunk(_Model):
    """A SIP peer recognised by its source address (e.g. the PSTN gateway)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    addresses: list[Annotated[str, BeforeValidator(_ip_network)]] = Field(min_length=1)
    inband_dtmf: bool = False
    #: where outbound calls (the dialer) are sent
    host: Annotated[str, BeforeValidator(_host)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5080
    transport: Literal["udp", "tcp"] = "udp"


def _member(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"user": _quoted_string(value) if isinstance(value, str) else value}
    return value


def _strategy(value: Any) -> Any:
    from acd.strategies import STRATEGIES

    if value not in STRATEGIES:
        raise ValueError(f"expected one of {', '.join(sorted(STRATEGIES))}, got {value!r}")
    return value


class QueueMember(_Model):
    """An agent of a queue: tier 1 is offered calls first, lower penalty wins among equals;
    ``static`` members are logged in from the start; ``skills`` are the agent's levels."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    tier: int = Field(default=1, ge=1)
    penalty: int = Field(default=0, ge=0)
    static: bool = True
    skills: dict[str, Annotated[int, Field(ge=0, le=100)]] = {}


OptionalSeconds = Annotated[float, Field(gt=0)] | None


class Queue(_Model):
    """An ACD queue (``queues:``); see the comments of the shipped config.yaml."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    strategy: Annotated[str, BeforeValidator(_strategy)] = "longest-idle-agent"
    members: list[Annotated[QueueMember, BeforeValidator(_member)]] = []
    wrapup: float = Field(default=0, ge=0)
    ring_timeout: PositiveSeconds = 15
    retry: float = Field(default=5, ge=0)
    max_wait: OptionalSeconds = None
    announce_every: OptionalSeconds = 60
    announce_position: bool = True
    sl_seconds: float = Field(default=20, ge=0)
    whisper: bool = False
    join_empty: bool = True
    leave_when_empty: bool = False
    overflow: str | None = None
    auto_pause_after: int | None = Field(default=3, ge=1)
    callback_key: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = None
    tier_wait: OptionalSeconds = None
    required_skills: dict[str, Annotated[int, Field(ge=0, le=100)]] = {}
    weight: int = 0
    ring_in_use: bool = False


_DAYS = r"(mon|tue|wed|thu|fri|sat|sun)"
_HOURS = r"\d\d:\d\d-\d\d:\d\d"


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()}
    return value


class CampaignRetry(_Model):
    """After an outcome: at most ``max`` more tries, ``delay`` seconds apart."""

    max: int = Field(default=1, ge=0)
    delay: float = Field(default=3600, ge=0)


class Disposition(_Model):
    """An agent's verdict on a call: ``final`` takes the contact out, ``dnc`` adds the number
    to the campaign's do-not-call list, otherwise it is called again after ``retry`` s, by
    ``callback_to``: ``same`` (the agent who took the call) or ``anyone``."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    final: bool = True
    dnc: bool = False
    retry: float = Field(default=3600, ge=0)
    callback_to: Literal["same", "anyone"] = "anyone"


RetryOutcome = Literal["busy", "no-answer", "machine", "abandoned", "failed"]


def _default_retries() -> dict[RetryOutcome, CampaignRetry]:
    return {"busy": CampaignRetry(max=3, delay=900), "no-answer": CampaignRetry(max=3, delay=7200),
            "machine": CampaignRetry(max=2, delay=14400),
            "abandoned": CampaignRetry(max=1, delay=259200),
            "failed": CampaignRetry(max=1, delay=3600)}


def _default_dispositions() -> dict[str, Disposition]:
    return {"1": Disposition(name="sale"), "2": Disposition(name="not-interested"),
            "3": Disposition(name="callback", final=False),
            "9": Disposition(name="do-not-call", dnc=True)}


class Campaign(_Model):
    """An outbound dialer campaign (``campaigns:``); see the shipped config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    queue: str
    list_: str | None = Field(default=None, alias="list")
    trunk: str = "pstn"
    caller_id: Annotated[str, BeforeValidator(_quoted_string), Field(pattern=_TOKEN)] = "anonymous"
    caller_name: str = ""
    mode: Literal["predictive", "progressive", "power", "preview"] = "predictive"
    ratio: float = Field(default=2.0, ge=1.0)
    abandon_limit: float = Field(default=0.03, gt=0, le=1)
    autostart: bool = False
    ring_timeout: float = Field(default=25, gt=0)
    max_lines: int | None = Field(default=None, ge=1)
    amd: bool = False
    machine_message: str | None = None
    preview_seconds: float = Field(default=30, gt=0)
    #: seconds after its time a callback waits for its agent before anyone may take it
    callback_grace: float = Field(default=3600, ge=0)
    record: bool = False
    priority: int = 10
    language: str = "pl"
    timezone: str = "Europe/Warsaw"
    hours: dict[Annotated[str, Field(pattern=f"^{_DAYS}(-{_DAYS})?$")],
                Annotated[str, Field(pattern=f"^({_HOURS})?(, *{_HOURS})*$")]] = {
        "mon-fri": "09:00-20:00", "sat": "10:00-14:00"}
    holidays: list[date] = []
    retries: dict[RetryOutcome, CampaignRetry] = Field(default_factory=_default_retries)
    dispositions: Annotated[dict[Annotated[str, Field(pattern=r"^[0-9]{1,2}$")], Disposition],
                            BeforeValidator(_string_keys)] = Field(
        default_factory=_default_dispositions)

    @property
    def list_name(self) -> str:
        return self.list_ or self.name


class SupervisorConfig(_Model):
    """Listen / whisper / barge (``supervisor:``)."""

    wait_for_call: bool = True
    wait_timeout: PositiveSeconds = 300
    queues: dict[Annotated[str, BeforeValidator(_quoted_string)], list[str]] = {}


class RecordingConfig(_Model):
    """Call recording policy (``recording:``); ``directory`` is relative to the database's."""

    calls: bool = False
    queues: list[str] = []
    directory: Path = Path("recordings")


class Config(_Model):
    """The whole configuration file."""

    sip: SipConfig = SipConfig()
    http: HttpConfig = HttpConfig()
    media: MediaConfig = MediaConfig()
    database: Path = Path("var/callcenter.db")
    logging: LoggingConfig = LoggingConfig()
    events: EventsConfig = EventsConfig()
    sounds: Path = Path("sounds")
    dialplans: Path = Path("dialplans")
    timezone: str = "Europe/Warsaw"
    users: list[User] = []
    trunks: list[Trunk] = []
    queues: list[Queue] = []
    supervisor: SupervisorConfig = SupervisorConfig()
    recording: RecordingConfig = RecordingConfig()
    campaigns: list[Campaign] = []

    def campaign(self, name: str) -> Campaign | None:
        """The dialer campaign called ``name``, if any."""
        return next((c for c in self.campaigns if c.name == name), None)

    def queue(self, name: str) -> Queue | None:
        """The ACD queue called ``name``, if any."""
        return next((q for q in self.queues if q.name == name), None)

    def user(self, name: str) -> User | None:
        """The account called ``name``, if any."""
        return next((u for u in self.users if u.user == name), None)

    def trunk(self, name: str) -> Trunk | None:
        """The trunk called ``name``, if any."""
        return next((t for t in self.trunks if t.name == name), None)


# --------------------------------------------------------------------------------------------
# Loading


def load_config(path: Path | None) -> Config:
    """Load and validate ``path`` (None = the embedded defaults); relative paths are resolved.

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
    cfg = validate_document(Config, doc)
    errors = doc.errors_at(_semantic_checks(cfg))
    if errors:
        raise ConfigError(errors)
    return _resolve_paths(cfg, base)


def _semantic_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """Cross-field rules pydantic cannot express per field."""
    out: list[tuple[Loc, str]] = []
    reg = cfg.sip.registration
    if not reg.min_expires <= reg.default_expires <= reg.max_expires:
        out.append(
            (
                ("sip", "registration", "default_expires"),
                f"expected min_expires <= default_expires <= max_expires, got "
                f"{reg.min_expires} <= {reg.default_expires} <= {reg.max_expires}",
            )
        )
    media = cfg.media
    if media.rtp_port_min % 2:
        out.append(
            (
                ("media", "rtp_port_min"),
                f"expected an even port (RTP uses even ports, RTCP the next odd one), "
                f"got {media.rtp_port_min}; try {media.rtp_port_min - 1}",
            )
        )
    if media.rtp_port_max < media.rtp_port_min + 1:
        out.append(
            (
                ("media", "rtp_port_max"),
                f"expected at least rtp_port_min + 1 = {media.rtp_port_min + 1} "
                f"(one RTP/RTCP pair), got {media.rtp_port_max}",
            )
        )
    for name in ("transports", "codecs"):
        items = cfg.sip.transports if name == "transports" else media.codecs
        section = "sip" if name == "transports" else "media"
        for i, item in enumerate(items):
            if item in items[:i]:
                out.append(((section, name, i), f"{item!r} is listed twice; remove one"))
    seen_users: dict[str, int] = {}
    for i, user in enumerate(cfg.users):
        if user.user in seen_users:
            out.append(
                (
                    ("users", i, "user"),
                    f"user {user.user!r} is already defined as users[{seen_users[user.user]}]; "
                    "user names must be unique",
                )
            )
        seen_users.setdefault(user.user, i)
    seen_trunks: dict[str, int] = {}
    for i, trunk in enumerate(cfg.trunks):
        if trunk.name in seen_trunks:
            out.append(
                (
                    ("trunks", i, "name"),
                    f"trunk {trunk.name!r} is already defined as trunks[{seen_trunks[trunk.name]}]; "
                    "trunk names must be unique",
                )
            )
        seen_trunks.setdefault(trunk.name, i)
    if zone_error := _zone_error(cfg.timezone):
        out.append((("timezone",), zone_error))
    out += _queue_checks(cfg)
    out += _supervisor_checks(cfg)
    out += _campaign_checks(cfg)
    return out


def _campaign_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """Campaign names unique; queue and trunk exist; the time zone is known."""
    out: list[tuple[Loc, str]] = []
    queues = [q.name for q in cfg.queues]
    trunks = [t.name for t in cfg.trunks]
    names: list[str] = []
    for i, c in enumerate(cfg.campaigns):
        if c.name in names:
            out.append((("campaigns", i, "name"), f"campaign {c.name!r} is defined twice"))
        names.append(c.name)
        if c.queue not in queues:
            out.append((("campaigns", i, "queue"),
                        f"expected a queue ({', '.join(queues)}), got {c.queue!r}"))
        if c.trunk not in trunks:
            out.append((("campaigns", i, "trunk"),
                        f"expected a trunk ({', '.join(trunks)}), got {c.trunk!r}"))
        if zone_error := _zone_error(c.timezone):
            out.append((("campaigns", i, "timezone"), zone_error))
    return out


def _zone_error(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"expected an IANA time zone (Europe/Warsaw), got {name!r}"
    return None


def _supervisor_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """supervisor.queues keys are supervisors, queue names (there and in recording) exist."""
    out: list[tuple[Loc, str]] = []
    names = [q.name for q in cfg.queues]
    supervisors = sorted(u.user for u in cfg.users if u.role == "supervisor")
    for user, queues in cfg.supervisor.queues.items():
        if user not in supervisors:
            out.append((("supervisor", "queues", user),
                        f"expected a user with role supervisor ({', '.join(supervisors)}), "
                        f"got {user!r}"))
        for j, name in enumerate(queues):
            if name not in names:
                out.append((("supervisor", "queues", user, j),
                            f"expected a queue ({', '.join(names)}), got {name!r}"))
    for j, name in enumerate(cfg.recording.queues):
        if name not in names:
            out.append((("recording", "queues", j),
                        f"expected a queue ({', '.join(names)}), got {name!r}"))
    return out


def _queue_checks(cfg: Config) -> list[tuple[Loc, str]]:
    """Queue names unique, members known users listed once, overflow to another queue."""
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
            queue.overflow == queue.name or queue.overflow not in names
        ):
            out.append((("queues", i, "overflow"),
                        f"expected the name of another queue ({', '.join(names)}), "
                        f"got {queue.overflow!r}"))
    return out


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def res(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    log = cfg.logging
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
    return Config.model_validate(cfg.model_copy(update=update).model_dump())


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
