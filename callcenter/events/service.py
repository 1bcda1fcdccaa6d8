"""The events of one server: the bus, its sinks, and the bridge from the live ACD.

``Application`` owns one :class:`Events`: ``events.publish(event)`` from anywhere,
``await events.start()`` / ``await events.close()`` with the server. Sinks: the SQLite store
(:class:`~callcenter.events.store_sink.StoreSink`, first, so a row exists before anyone hears of
it), the log (when ``events.log`` is on), MQTT (when ``events.mqtt.url`` is set), and
:class:`StreamHub` for the web's live stream (``GET /api/events/stream``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from callcenter.events.bus import (
    AcdWatchdog,
    AgentStateChanged,
    AgentStatus,
    Event,
    EventBus,
    QueueConnected,
    QueueEntered,
    QueueLeft,
    QueueMember,
    QueueRingNoAnswer,
    QueueStatus,
)
from callcenter.events.store_sink import StoreSink

if TYPE_CHECKING:
    from acd import AcdEngine
    from callcenter.config import EventsConfig
    from callcenter.events.mqtt import MqttSink
    from callcenter.store.db import Store

log = structlog.get_logger("events")


class LogSink:
    """Every event as one structured log line ``event_<type>``."""

    def __call__(self, event: Event) -> None:
        data = event.to_dict()
        data.pop("schema", None)
        kind = data.pop("type")
        log.info(f"event_{kind}", **data)


class StreamHub:
    """Fan-out to live web clients: each gets a bounded queue; a slow client loses events
    (counted), never slows the bus."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self.clients: set[asyncio.Queue[Event]] = set()
        self.dropped = 0

    def __call__(self, event: Event) -> None:
        for queue in self.clients:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1

    def open(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self.maxsize)
        self.clients.add(queue)
        return queue

    def close(self, queue: asyncio.Queue[Event]) -> None:
        self.clients.discard(queue)


class LiveAcd(Protocol):
    """What the bridge reads of the live ACD (the ``QueueRunner``, above this layer)."""

    engine: AcdEngine | None
    listeners: list[Callable[[Any], None]]

    def wall_time(self, t: float) -> float: ...
    def call_id_of(self, engine_call: str) -> str: ...
    def queue_of(self, engine_call: str) -> str: ...
    def queue_stats(self, queue: str | None = None) -> list[dict[str, Any]]: ...
    def agent_stats(self, agent_id: str | None = None) -> list[dict[str, Any]]: ...


_LEAVE = {"complete", "transfer", "attendedtransfer", "abandon", "timeout", "exit_empty", "callback"}


class Events:
    """The bus with the configured sinks."""

    def __init__(self, cfg: EventsConfig | None = None, *, store: Store | None = None) -> None:
        self.bus = EventBus()
        if store is not None:
            self.bus.subscribe(StoreSink(store))
        self.stream = StreamHub()
        self.bus.subscribe(self.stream)
        self.mqtt: MqttSink | None = None
        if cfg is not None and cfg.log:
            self.bus.subscribe(LogSink())
        if cfg is not None and cfg.mqtt.url:
            from callcenter.events.mqtt import MqttSink

            m = cfg.mqtt
            self.mqtt = MqttSink(
                cfg.mqtt.url, username=m.username, password=m.password, client_id=m.client_id,
                topic_prefix=m.topic_prefix, backlog=m.backlog,
                tls_ca=str(m.tls_ca) if m.tls_ca else None, tls_insecure=m.tls_insecure,
                keepalive=m.keepalive,
            )
            self.bus.subscribe(self.mqtt.handle)
        self._acd: LiveAcd | None = None

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def subscribe(self, handler: Callable[[Event], None]) -> Callable[[], None]:
        return self.bus.subscribe(handler)

    async def start(self) -> None:
        if self.mqtt is not None:
            await self.mqtt.start()
        self.publish_acd_state()

    async def close(self) -> None:
        if self.mqtt is not None:
            await self.mqtt.close()

    # ------------------------------------------------------------------ the live ACD

    def attach_acd(self, runner: LiveAcd) -> None:
        """Turn the runner's queue log entries, watchdog firings and agent state changes into
        events."""
        self._acd = runner
        listeners: list[Callable[[Any], None]] | None = getattr(runner, "listeners", None)
        if listeners is not None:
            listeners.append(self._on_acd_action)

    def publish_acd_state(self) -> None:
        """The current status of every queue and agent (retained on MQTT)."""
        runner = self._acd
        if runner is None or runner.engine is None:
            return
        for stats in runner.queue_stats():
            self.publish(QueueStatus(queue=stats["name"], stats=stats))
        for status in runner.agent_stats():
            self.publish(AgentStatus(agent=status["id"], status=status))

    def _on_acd_action(self, a: Any) -> None:
        from acd import actions as act

        runner = self._acd
        assert runner is not None
        if isinstance(a, act.QueueLogEntry):
            ts = runner.wall_time(a.time)
            call_id = runner.call_id_of(a.call)
            verb = a.event.value
            event: Event | None = None
            if verb == "enter":
                event = QueueEntered(ts=ts, call_id=call_id, queue=a.queue, position=a.position)
            elif verb == "connect":
                event = QueueConnected(ts=ts, call_id=call_id, queue=a.queue, agent=a.agent,
                                       wait=_r(a.wait))
            elif verb == "ringnoanswer":
                event = QueueRingNoAnswer(ts=ts, call_id=call_id, queue=a.queue, agent=a.agent,
                                          detail=a.detail)
            elif a.call == "NONE" and a.agent is not None:
                event = QueueMember(ts=ts, queue=a.queue, agent=a.agent, verb=verb,
                                    reason=a.detail)
            elif verb in _LEAVE:
                event = QueueLeft(ts=ts, call_id=call_id, queue=a.queue, reason=verb,
                                  agent=a.agent, wait=_r(a.wait), talk=_r(a.talk),
                                  hung_up_by=a.hung_up_by, position=a.position,
                                  detail=a.detail)
            if event is not None:
                self.publish(event)
            for stats in runner.queue_stats(a.queue):  # this queue only, not all
                if stats["name"] == a.queue:
                    self.publish(QueueStatus(ts=ts, queue=a.queue, stats=stats))
        elif isinstance(a, act.AgentStateChanged | act.AgentInUse):  # in use: agent.status only
            ts = runner.wall_time(a.time)
            if isinstance(a, act.AgentStateChanged):
                self.publish(AgentStateChanged(ts=ts, agent=a.agent, old=a.old.value,
                                               new=a.new.value, reason=a.reason))
            for status in runner.agent_stats(a.agent):
                if status["id"] == a.agent:
                    self.publish(AgentStatus(ts=ts, agent=a.agent, status=status))
        elif isinstance(a, act.WatchdogFired):
            self.publish(AcdWatchdog(ts=runner.wall_time(a.time), call_id=runner.call_id_of(a.call),
                                     queue=runner.queue_of(a.call), agent=a.agent,
                                     what=a.what, stuck_for=a.stuck_for))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
