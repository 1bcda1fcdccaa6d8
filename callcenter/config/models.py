"""The configuration file's typed models (pydantic): one class per section of config.yaml."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from acd.strategies import canonical_strategy
from callcenter.config import web_password
from ivr.yamldoc import QuotedStr


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


IpAddress = Annotated[str, BeforeValidator(_ip_address)]
Host = Annotated[str | None, BeforeValidator(_host)]
Port = Annotated[int, Field(ge=0, le=65535, description="0 = any free port")]
PositiveSeconds = Annotated[float, Field(gt=0)]

SrtpPolicy = Literal["off", "optional", "required"]
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


class SipTls(_Model):
    """SIP over TLS (RFC 3261 §26): our certificate chain and key (PEM files), the CA file
    peers' certificates must chain to (the system's store when null), whether to check them,
    and the TLS port (enabled by ``tls`` in ``sip.transports``)."""

    certificate: Path
    key: Path
    ca: Path | None = None
    verify_peer: bool = True
    port: Port = 5061


class SipConfig(_Model):
    """SIP listener."""

    listen: IpAddress = "127.0.0.1"
    port: Port = 5060
    transports: list[Literal["udp", "tcp", "tls"]] = Field(default=["udp", "tcp"], min_length=1)
    tls: SipTls | None = None
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
    #: how phones and browsers reach this listener (the desk's links in Call-Info); default
    #: ``http://<listen>:<port>``
    base_url: str | None = None

    @property
    def public_url(self) -> str:
        host = f"[{self.listen}]" if ":" in str(self.listen) else self.listen
        return (self.base_url or f"http://{host}:{self.port}").rstrip("/")


class MediaConfig(_Model):
    """RTP address and port range; codecs in order of preference."""

    address: IpAddress = "127.0.0.1"
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535)
    rtp_port_max: int = Field(default=29999, ge=1024, le=65535)
    codecs: list[Literal["PCMU", "PCMA"]] = Field(default=["PCMU", "PCMA"], min_length=1)
    #: SRTP with SDES keys: ``optional`` on TLS legs, ``required`` on every leg, or ``off``;
    #: ``users[].srtp`` and ``trunks[].srtp`` override it for their legs
    srtp: SrtpPolicy = "optional"
    workers: Literal["auto"] | Annotated[int, Field(ge=0, le=64)] = "auto"
    """Media worker processes: ``auto`` = one per core, 0 = media in the signalling process."""
    rtp_timeout: float = Field(default=0, ge=0)
    """Seconds without RTP from an answered call's party (not on hold) before the call ends
    with cause ``rtp_timeout``; 0 = never."""
    realtime_priority: int = Field(default=0, ge=0, le=99)
    """Run the media workers under the real-time round-robin policy (SCHED_RR) at this
    priority (1-99), so a packet is relayed as soon as it arrives however busy the box is;
    0 = the normal policy. Needs root, CAP_SYS_NICE or a real-time limit at least this high
    (systemd ``LimitRTPRIO=``, set in deploy/callcenter.service); without, the server logs
    a warning and runs on."""


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


class CrmLookup(_Model):
    """Ask an outside CRM about each recognised caller; the JSON object it answers (scalar
    values) joins the customer's free fields. A slow or broken CRM costs a call at most
    ``timeout_ms`` (the IVR waits for it no longer) and is counted in the metrics."""

    #: ``{number}`` is replaced by the caller's E.164 number (URL-encoded)
    url: Annotated[str, Field(pattern=r"^https?://.*\{number\}")]
    timeout_ms: int = Field(default=300, ge=1, le=10000)
    #: seconds an answer is reused for the same number (0: ask every time)
    cache_s: float = Field(default=60, ge=0)
    headers: dict[str, str] = {}


class CrmConfig(_Model):
    lookup: CrmLookup | None = None


def _password(value: str) -> str:
    if value.startswith("ha1:") and not re.fullmatch(r"ha1:[0-9a-fA-F]{32}", value):
        raise ValueError("expected ha1: and 32 hex digits, the MD5 of user:realm:password")
    return value


def _web_password(value: str | None) -> str | None:
    if value is not None and not web_password.valid(value):
        raise ValueError("expected scrypt:N:r:p:<32 hex salt>:<64 hex key> (set by the API)")
    return value


Skills = dict[str, Annotated[int, Field(ge=0, le=100)]]


class User(_Model):
    """A SIP account: an agent or a supervisor. ``password``: the password, or
    ``ha1:`` and the 32 hex digits of MD5(user:realm:password) (digest MD5 only);
    ``web_password``: a second password for the API login only, as a scrypt hash;
    ``skills``: the agent's levels (with those its queue memberships give)."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    password: Annotated[QuotedStr, Field(min_length=1), AfterValidator(_password)]
    role: Literal["agent", "supervisor"]
    name: str = ""
    srtp: SrtpPolicy | None = None  #: null: ``media.srtp``
    web_password: Annotated[str | None, AfterValidator(_web_password)] = None
    skills: Skills = {}


class TrunkRegister(_Model):
    """Register at the carrier as ``user`` (outbound REGISTER with digest, kept alive)."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    password: Annotated[QuotedStr, Field(min_length=1)]
    #: the registrar's domain (the Request-URI and AOR host); default the trunk's host
    domain: Annotated[str | None, BeforeValidator(_host)] = None
    expires: int = Field(default=600, ge=10, le=86400)
    #: send REGISTERs here ("host" or "host:port") instead of the trunk's host and port
    proxy: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    retry_min: PositiveSeconds = 5.0
    retry_max: PositiveSeconds = 300.0


class TrunkAuth(_Model):
    """Credentials answering the carrier's 401/407 on our outbound INVITEs."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    password: Annotated[QuotedStr, Field(min_length=1)]


class TrunkCallerId(_Model):
    """Who outbound calls through the trunk come from when the call names no number (an
    agent's extension, an IVR caller): ``number`` (sent in the trunk's ``number_format``)
    and the display ``name``."""

    number: Annotated[str, Field(pattern=r"^\+?[0-9]+$")] | None = None
    name: str = ""


class Trunk(_Model):
    """A SIP peer recognised by its source address (e.g. the PSTN gateway)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    #: where its calls come from (required unless ``inbound: register``)
    addresses: list[Annotated[str, BeforeValidator(_ip_network)]] = []
    #: which INVITEs are this trunk's: from ``addresses`` (ip), sent to the Contact it
    #: registered from the registrar it registered at (register), or either (both)
    inbound: Literal["ip", "register", "both"] = "ip"
    #: take the caller from P-Asserted-Identity (RFC 3325; the carrier vouches for it) and
    #: send it ours; else the caller is the From's
    trusted: bool = False
    #: calls through the trunk at once, both ways (null: no limit): one more inbound gets
    #: 503, one more outbound tries the ``failover`` trunks
    max_channels: int | None = Field(default=None, ge=1)
    caller_id: TrunkCallerId = TrunkCallerId()
    inband_dtmf: bool = False
    #: where outbound calls (the dialer) are sent
    host: Annotated[str, BeforeValidator(_host)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5080
    transport: Literal["udp", "tcp", "tls"] = "udp"
    registration: TrunkRegister | None = Field(default=None, alias="register")
    auth: TrunkAuth | None = None
    #: the country (ISO 3166) of the national numbers the carrier sends: a called number from
    #: the trunk is matched to the lines in that country's national form
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "PL"
    #: how called numbers go out to the carrier (Request-URI and To): +48221234567,
    #: 0048221234567 or 221234567 (the national form of ``country``)
    number_format: Literal["e164", "international", "national"] = "e164"
    #: trunks to try in this order when this one answers 503, never answers or is unreachable
    failover: list[str] = []
    srtp: SrtpPolicy | None = None  #: null: ``media.srtp``


def _member(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"user": value}
    return value


class QueueMember(_Model):
    """An agent of a queue: tier 1 is offered calls first, lower penalty wins among equals;
    ``static`` members are logged in from the start; ``skills`` are the agent's levels."""

    user: Annotated[QuotedStr, Field(min_length=1, pattern=_TOKEN)]
    tier: int = Field(default=1, ge=1)
    penalty: int = Field(default=0, ge=0)
    static: bool = True
    skills: Skills = {}


OptionalSeconds = Annotated[float, Field(gt=0)] | None


class QueueCallback(_Model):
    """How the server works a queue's callback requests: dialled out through ``trunk`` (the
    first trunk when null) from ``caller_id``, only while ``schedule`` (a dialplan schedule's
    name; null: any time) is open; a customer not reached is tried ``retries`` more times,
    ``retry_delay`` seconds apart."""

    trunk: str | None = None
    caller_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9+*#._-]*$")] = ""
    schedule: str | None = None
    retries: int = Field(default=2, ge=0)
    retry_delay: float = Field(default=600, ge=0)
    ring_timeout: PositiveSeconds = 40


#: ``{code: name}`` maps (pause reasons, inbound dispositions): 1-2 digit codes, plain names
CodeNames = Annotated[
    dict[Annotated[str, Field(pattern=r"^[0-9]{1,2}$")],
         Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]],
    BeforeValidator(lambda v: _string_keys(v))]


class Queue(_Model):
    """An ACD queue (``queues:``); see the comments of the shipped config.yaml."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    strategy: Annotated[str, BeforeValidator(canonical_strategy)] = "longest-idle-agent"
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
    callback: QueueCallback = QueueCallback()
    tier_wait: OptionalSeconds = None
    required_skills: dict[str, Annotated[int, Field(ge=0, le=100)]] = {}
    weight: int = 0
    ring_in_use: bool = False
    #: inbound dispositions (wrap-up codes): code -> name, set by ``*5<code>`` or the API
    dispositions: CodeNames = {}
    #: the music its callers hear waiting and on hold: a sound's name or a .wav path
    music: Annotated[str, Field(min_length=1)] = "hold_music"
    #: presented when a member dials out and the outbound rule sets no caller ID
    caller_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9+*#._-]*$")] = ""


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
    caller_id: Annotated[QuotedStr, Field(pattern=_TOKEN)] = "anonymous"
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
    queues: dict[QuotedStr, list[str]] = {}


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
    #: seconds a drain (SIGTERM, ``callcenter drain``) lets calls in progress go on before
    #: the server stops and hangs up the rest; 0 = stop at once
    drain_timeout: float = Field(default=300, ge=0)
    users: list[User] = []
    trunks: list[Trunk] = []
    queues: list[Queue] = []
    supervisor: SupervisorConfig = SupervisorConfig()
    recording: RecordingConfig = RecordingConfig()
    campaigns: list[Campaign] = []
    #: named pause reasons: ``*43<code>`` or the API's ``reason`` (code or name) pauses with it
    pause_reasons: CodeNames = {}
    crm: CrmConfig = CrmConfig()

    def campaign(self, name: str) -> Campaign | None:
        """The dialer campaign called ``name``, if any."""
        return next((c for c in self.campaigns if c.name == name), None)

    def queue(self, name: str) -> Queue | None:
        """The ACD queue called ``name``, if any."""
        return next((q for q in self.queues if q.name == name), None)

    def user(self, name: str) -> User | None:
        """The account called ``name``, if any."""
        return next((u for u in self.users if u.user == name), None)

    def caller_id(self, rule_caller_id: str | None, user: str) -> str:
        """What ``user`` presents dialling out: the outbound rule's caller ID, else that of the
        first queue (in file order) listing ``user`` as a member, else ``user``'s own number."""
        queue = next((q.caller_id for q in self.queues
                      if q.caller_id and any(m.user == user for m in q.members)), "")
        return rule_caller_id or queue or user

    def trunk(self, name: str) -> Trunk | None:
        """The trunk called ``name``, if any."""
        return next((t for t in self.trunks if t.name == name), None)
