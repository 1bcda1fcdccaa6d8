"""``GET /metrics``: Prometheus text through ``prometheus_client``.

Gauges and counters are read from the running server at each scrape (a collector); the
histograms are fed as things happen: queue wait from ``queue.leave`` events, ring time from
an agent's ``agent.state`` leaving ``ringing``, the time our SIP requests took to get a
final answer and the time our handlers took to answer theirs (both from the stack), and the
time the ACD engine took per event. The process collector adds CPU, memory and file descriptors.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from acd.states import AgentState
from callcenter.events.bus import AgentStateChanged, CrmLooked, Event, QueueLeft
from callcenter.gcwatch import GcWatch

if TYPE_CHECKING:
    from callcenter.calls.b2bua import B2BUA
    from callcenter.calls.queues import QueueRunner
    from callcenter.media.engine import MediaEngine
    from callcenter.sip.registrar import Registrar
    from callcenter.sip.registration_client import RegistrationClient
    from callcenter.sip.stack import SipStack

#: the text format every Prometheus since 2.0 reads (newer clients announce 1.0.0, same text)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: seconds: a queue wait is seconds to minutes; a ring a few seconds; a SIP transaction ms to 32 s
WAIT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
RING_BUCKETS = (0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60)
ACD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
SIP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10, 30, 60)  # a REGISTER in a millisecond, an INVITE until the IVR answers
#: the methods a server-side histogram names (any other is "other": peers choose methods)
SIP_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO",
                         "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
                         "PUBLISH"})


@dataclass
class Load:
    """How busy the process is: app.py counts calls and samples the loop."""

    calls_started: int = 0
    loop_lag: float = 0.0  #: how late the loop last woke a 0.5 s sleeper
    loop_lag_max: float = 0.0
    gc: GcWatch = field(default_factory=GcWatch)  #: the garbage collector's pauses
    starts: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=100_000))

    def call_started(self, now: float) -> None:
        self.calls_started += 1
        self.starts.append(now)

    def calls_per_second(self, now: float, window: float = 60.0) -> float:
        """New calls per second over the last ``window`` seconds."""
        since = now - window
        while self.starts and self.starts[0] < since:
            self.starts.popleft()
        return len(self.starts) / window


@dataclass(frozen=True, kw_only=True)
class Sources:
    """What the gauges read (handed in by ``web.api``)."""

    now: Callable[[], float]
    load: Load
    stack: SipStack
    registrar: Registrar
    b2bua: B2BUA
    media: MediaEngine
    queues: QueueRunner
    trunk_registrations: Mapping[str, RegistrationClient]  #: ours at carriers, by trunk


class Metrics:
    """One registry per server (tests build several servers in one process)."""

    def __init__(self, sources: Sources) -> None:
        self.registry = r = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        r.register(_Live(sources))
        self.queue_wait = Histogram(
            "callcenter_queue_wait_seconds", "time a call waited in a queue, by how it left",
            ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=r)
        self.ring_time = Histogram(
            "callcenter_agent_ring_seconds", "time an agent's phone rang for a queue call, "
            "by what came of it (on_call: answered)", ["outcome"], buckets=RING_BUCKETS,
            registry=r)
        self.sip_transaction = Histogram(
            "callcenter_sip_transaction_seconds", "time a request we sent took to get its "
            "final answer (outcome: 2xx..6xx or timeout)", ["method", "outcome"],
            buckets=SIP_BUCKETS, registry=r)
        self.sip_server_transaction = Histogram(
            "callcenter_sip_server_transaction_seconds", "time our handlers took to answer a "
            "request: an INVITE to its first response (after the stack's 100 Trying), others "
            "to the final one (outcome: 1xx..6xx)", ["method", "outcome"],
            buckets=HANDLER_BUCKETS, registry=r)
        self.acd_decision = Histogram(
            "callcenter_acd_decision_seconds", "time the ACD engine took to decide on one "
            "event (which agent, which call), by event", ["event"], buckets=ACD_BUCKETS,
            registry=r)
        self.crm = Counter("callcenter_crm_lookups", "CRM lookups of callers, by outcome (ok, "
                           "cached, not_found, error, timeout)", ["outcome"], registry=r)
        self._ringing: dict[str, float] = {}  #: agent -> when it started ringing (event ts)
        sources.stack.on_transaction = self.sip_transaction_done
        sources.stack.on_server_transaction = self.sip_server_transaction_done
        sources.queues.on_decision = self.acd_decision_done

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def on_event(self, event: Event) -> None:
        """Bus subscriber: the queue and agent events the histograms need."""
        if type(event) not in _MEASURED:  # most events: one test
            return
        if isinstance(event, CrmLooked):
            self.crm.labels(event.outcome).inc()
        elif isinstance(event, QueueLeft) and event.wait is not None:
            self.queue_wait.labels(event.queue, event.reason).observe(event.wait)
        elif isinstance(event, AgentStateChanged):
            if event.new == AgentState.RINGING.value:
                self._ringing[event.agent] = event.ts
            elif event.agent in self._ringing:
                rang = event.ts - self._ringing.pop(event.agent)
                self.ring_time.labels(event.new).observe(max(0.0, rang))

    def sip_transaction_done(self, method: str, outcome: str, seconds: float) -> None:
        self.sip_transaction.labels(method, outcome).observe(seconds)

    def sip_server_transaction_done(self, method: str, outcome: str, seconds: float) -> None:
        method = method if method in SIP_METHODS else "other"  # peers choose methods
        self.sip_server_transaction.labels(method, outcome).observe(seconds)

    def acd_decision_done(self, event: str, seconds: float) -> None:
        self.acd_decision.labels(event).observe(seconds)


_MEASURED = frozenset((CrmLooked, QueueLeft, AgentStateChanged))


class _Live(Collector):
    """The figures of the moment, read at each scrape."""

    def __init__(self, src: Sources) -> None:
        self.src = src

    def collect(self) -> Iterator[Metric]:
        src, load, media = self.src, self.src.load, self.src.media.stats
        yield _gauge("callcenter_calls_in_progress", "calls up now", len(src.b2bua.calls))
        yield _gauge("callcenter_registrations", "registered contacts",
                     len(src.registrar.all_bindings()))
        yield CounterMetricFamily("callcenter_sip_messages_received", "SIP messages received",
                                  src.stack.stats["received"])
        yield CounterMetricFamily("callcenter_sip_parse_errors", "SIP messages that did not "
                                  "parse", src.stack.stats["parse_errors"])
        yield CounterMetricFamily("callcenter_calls", "calls started", load.calls_started)
        yield _gauge("callcenter_calls_per_second", "new calls per second over the last "
                     "minute", round(load.calls_per_second(src.now()), 3))
        yield _gauge("callcenter_event_loop_lag_seconds", "how late the loop woke a 0.5 s "
                     "sleeper", round(load.loop_lag, 4))
        yield _gauge("callcenter_event_loop_lag_max_seconds", "the worst loop lag so far",
                     round(load.loop_lag_max, 4))
        yield _gauge("callcenter_gc_pause_max_seconds", "the longest garbage collection so far "
                     "(the loop stands still meanwhile)", round(load.gc.pause_max, 4))
        yield CounterMetricFamily("callcenter_gc_seconds", "time spent in garbage collection",
                                  round(load.gc.seconds, 4))
        yield from self._queues()
        yield from self._trunks()
        for name in ("ticks", "late_ticks", "missed_ticks", "srtp_failed", "srtp_plain"):
            yield CounterMetricFamily(f"callcenter_rtp_{name}", f"media clock {name}",
                                      getattr(media, name))
        yield _gauge("callcenter_rtp_channels", "RTP channels open", media.channels)
        yield CounterMetricFamily("callcenter_media_worker_restarts", "media worker processes "
                                  "that died and were restarted", media.worker_restarts)
        yield _gauge("callcenter_rtp_tick_lateness_max_seconds", "worst media clock tick so "
                     "far", round(media.max_lateness, 4))

    def _queues(self) -> Iterator[Metric]:
        engine = self.src.queues.engine
        if engine is None:
            return
        now = self.src.now()
        rows = [engine.stats(q, now) for q in engine.queue_names]
        for metric, attr, kind, text in (
            ("queue_waiting", "waiting", "gauge", "calls waiting"),
            ("queue_longest_wait_seconds", "longest_wait", "gauge", "the longest wait now"),
            ("queue_offered", "offered", "counter", "calls offered today"),
            ("queue_answered", "answered", "counter", "calls answered today"),
            ("queue_abandoned", "abandoned", "counter", "calls abandoned today"),
            ("queue_service_level", "service_level", "gauge", "answered within sl_seconds, "
             "of those offered today"),
        ):
            family: GaugeMetricFamily | CounterMetricFamily = (
                GaugeMetricFamily if kind == "gauge" else CounterMetricFamily)(
                f"callcenter_{metric}", text, labels=["queue"])
            for st in rows:
                value = getattr(st, attr)
                if value is not None:
                    family.add_metric([st.queue], value)
            yield family
        agents = GaugeMetricFamily("callcenter_queue_agents", "members of a queue by ACD state",
                                   labels=["queue", "state"])
        for queue in engine.queue_names:
            states = [engine.agent_state(a) for a in engine.members(queue)]
            for state in AgentState:
                agents.add_metric([queue, state.value], states.count(state))
        yield agents

    def _trunks(self) -> Iterator[Metric]:
        """Per trunk: registered or not, REGISTERs sent, failed attempts, refused credentials."""
        regs = self.src.trunk_registrations
        if not regs:
            return
        up = GaugeMetricFamily("callcenter_trunk_registered", "1 while our registration at "
                               "the carrier holds", labels=["trunk"])
        for name, c in regs.items():
            up.add_metric([name], int(c.core.state.value == "registered"))
        yield up
        for key, metric, text in (
            ("attempts", "register_attempts", "REGISTERs sent"),
            ("failures", "register_failures", "registrations that failed"),
            ("auth_failures", "register_auth_failures", "registrations refused credentials")):
            family = CounterMetricFamily(f"callcenter_trunk_{metric}", text, labels=["trunk"])
            for name, c in regs.items():
                family.add_metric([name], c.counts[key])
            yield family


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)
