"""The MQTT sink: every event to a broker through aiomqtt (``events.mqtt.url``).

Topic tree (``<p>`` is ``events.mqtt.topic_prefix``, default ``callcenter``)::

    <p>/events                 every event                                   qos 1
    <p>/calls/<call id>        the events of one call, in order              qos 1
    <p>/queues/<name>          queue.status: live figures                    qos 1, retained
    <p>/agents/<id>            agent.status: state, time in state, figures   qos 1, retained
    <p>/registrations/<user>   registration events                           qos 1
    <p>/campaigns/<name>       campaign.changed                              qos 1, retained
    <p>/status                 {"schema": 1, "online": true|false}           retained, and will

Payloads are ``Event.to_dict()`` as UTF-8 JSON (``"schema": 1``). The bus handler only appends
to a bounded backlog; one task connects, publishes in order, and on any broker trouble logs it,
keeps buffering (dropping the oldest message and counting drops when full), and reconnects with
exponential backoff. After a reconnect the latest retained state is sent again first, so a
broker that lost it (restart without persistence) is whole again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from callcenter.events.bus import (
    AgentStatus,
    CampaignChanged,
    Event,
    QueueStatus,
    RegistrationChanged,
)

log = structlog.get_logger("events.mqtt")  # "mqtt" is aiomqtt's own stdlib logger

PUBLISH_TIMEOUT = 10.0


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_url(url: str) -> BrokerUrl:
    """``mqtt://[user:pass@]host[:1883]`` or ``mqtts://...[:8883]``; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"expected mqtt:// or mqtts:// URL, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in MQTT URL {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerUrl(
        host=parts.hostname, port=parts.port or (8883 if tls else 1883), tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def topics_for(event: Event, prefix: str = "callcenter") -> list[tuple[str, bool]]:
    """(topic, retain) pairs an event goes to."""
    out = [(f"{prefix}/events", False)]
    call_id = getattr(event, "call_id", None)
    if call_id:
        out.append((f"{prefix}/calls/{call_id}", False))
    if isinstance(event, QueueStatus):
        out.append((f"{prefix}/queues/{event.queue}", True))
    elif isinstance(event, AgentStatus):
        out.append((f"{prefix}/agents/{event.agent}", True))
    elif isinstance(event, RegistrationChanged):
        out.append((f"{prefix}/registrations/{event.user}", False))
    elif isinstance(event, CampaignChanged):
        out.append((f"{prefix}/campaigns/{event.campaign}", True))
    return out


class MqttSink:
    """Subscribe ``sink.handle`` to the bus, ``await sink.start()``, ``await sink.close()``."""

    def __init__(
        self, url: str, *, username: str | None = None, password: str | None = None,
        client_id: str | None = None, topic_prefix: str = "callcenter", backlog: int = 10000,
        tls_ca: str | None = None, tls_insecure: bool = False, keepalive: int = 30,
        min_backoff: float = 0.5, max_backoff: float = 30.0,
    ) -> None:
        self.broker = parse_url(url)
        self.url = f"{'mqtts' if self.broker.tls else 'mqtt'}://{self.broker.host}:{self.broker.port}"
        self.username = username or self.broker.username
        self.password = password or self.broker.password
        self.client_id = client_id or f"callcenter-{socket.gethostname()}-{os.getpid()}"
        self.prefix = topic_prefix.rstrip("/")
        self.max_backlog = backlog
        self.tls_ca, self.tls_insecure = tls_ca, tls_insecure
        self.keepalive = keepalive
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.backlog: deque[tuple[str, bytes, bool]] = deque()
        self.retained: dict[str, bytes] = {}
        self.connected = False
        self.sent = 0
        self.dropped = 0
        self.connects = 0
        self._dropping_logged = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ bus side

    def handle(self, event: Event) -> None:
        """Bus handler: queue the event's messages (never blocks, never raises on I/O)."""
        payload = json.dumps(event.to_dict(), ensure_ascii=False, default=str).encode()
        for topic, retain in topics_for(event, self.prefix):
            if retain:
                self.retained[topic] = payload
            self._enqueue(topic, payload, retain)

    def _enqueue(self, topic: str, payload: bytes, retain: bool) -> None:
        if len(self.backlog) >= self.max_backlog:
            self.backlog.popleft()
            self.dropped += 1
            if not self._dropping_logged:
                self._dropping_logged = True
                log.warning("mqtt_backlog_full", backlog=self.max_backlog,
                            action="dropping the oldest messages until the broker is back")
        self.backlog.append((topic, payload, retain))
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def close(self, flush: float = 2.0) -> None:
        """Send what is buffered (up to ``flush`` seconds), say offline, disconnect."""
        self._closing = True
        if self._task is None:
            return
        if self.connected and flush > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush):
                    while self.backlog and self.connected:
                        await asyncio.sleep(0.02)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        log.info("mqtt_closed", sent=self.sent, dropped=self.dropped, unsent=len(self.backlog))

    def _client(self) -> Any:
        import aiomqtt

        tls_context = None
        if self.broker.tls:
            tls_context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_insecure:
                tls_context.check_hostname = False
                tls_context.verify_mode = ssl.CERT_NONE
        offline = json.dumps({"schema": 1, "online": False}).encode()
        return aiomqtt.Client(
            self.broker.host, self.broker.port, username=self.username, password=self.password,
            identifier=self.client_id, keepalive=self.keepalive, tls_context=tls_context,
            will=aiomqtt.Will(f"{self.prefix}/status", offline, qos=1, retain=True), timeout=10,
        )

    async def _run(self) -> None:
        import aiomqtt

        backoff = self.min_backoff
        while not self._closing:
            was_connected = False
            try:
                async with self._client() as client:
                    self.connected = was_connected = True
                    self.connects += 1
                    backoff = self.min_backoff
                    log.info("mqtt_connected", broker=self.url, client_id=self.client_id,
                             reconnect=self.connects > 1, backlog=len(self.backlog),
                             dropped=self.dropped)
                    self._dropping_logged = False
                    await self._pump(client)
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                if was_connected:
                    log.warning("mqtt_disconnected", broker=self.url, error=str(exc),
                                action="buffering events and reconnecting",
                                backlog=len(self.backlog))
                else:
                    log.warning("mqtt_connect_failed", broker=self.url, error=str(exc),
                                retry_in=round(backoff, 1), backlog=len(self.backlog),
                                dropped=self.dropped)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mqtt_sink_failed", broker=self.url)
            finally:
                self.connected = False
            if self._closing:
                return
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _pump(self, client: Any) -> None:
        """Retained state first, then the backlog in order, until the connection fails."""
        watch = asyncio.ensure_future(self._watch(client))
        try:
            online = json.dumps({"schema": 1, "online": True}).encode()
            await self._publish(client, f"{self.prefix}/status", online, True)
            for topic, payload in list(self.retained.items()):
                await self._publish(client, topic, payload, True)
            while True:
                if not self.backlog:
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waiter, watch}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if watch.done():
                        watch.result()  # raises the disconnect
                        return
                    continue
                item = self.backlog[0]
                await self._publish(client, *item)
                if self.backlog and self.backlog[0] is item:
                    self.backlog.popleft()
                self.sent += 1
        finally:
            watch.cancel()

    @staticmethod
    async def _publish(client: Any, topic: str, payload: bytes, retain: bool) -> None:
        await asyncio.wait_for(client.publish(topic, payload, qos=1, retain=retain),
                               PUBLISH_TIMEOUT)

    @staticmethod
    async def _watch(client: Any) -> None:
        """Returns/raises when the connection drops (we subscribe to nothing)."""
        async for _ in client.messages:
            pass
