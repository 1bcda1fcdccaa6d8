"""The process: wires the SIP stack, registrar, media engine, B2BUA, store and flows together.

``run_server(cfg, dialplan)`` is what ``callcenter serve`` calls. Everything runs in one
asyncio loop (uvloop when installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

import structlog

from callcenter.calls import flows, numbers
from callcenter.calls.b2bua import B2BUA
from callcenter.calls.call import Call, HangupCause, Leg, LegState
from callcenter.calls.callbacks import CallbackWorker
from callcenter.calls.crm import Crm
from callcenter.calls.directory import ApiDirectory, with_stored
from callcenter.calls.hold import Holds
from callcenter.calls.ivr_call import LiveCall
from callcenter.calls.members import QueueMembers
from callcenter.calls.queues import QueueRunner
from callcenter.calls.services import CallServices
from callcenter.calls.transfer import Transfers
from callcenter.calls.trunks import Registered, addresses_of, trunk_of
from callcenter.config import Config, Trunk
from callcenter.config.live import ConfigReloader, ReloadResult
from callcenter.config.models import SipTls
from callcenter.dialer.numbers import try_normalize
from callcenter.dialer.runner import CampaignRunner
from callcenter.events import bus as events
from callcenter.events.service import Events
from callcenter.gcwatch import tune as tune_gc
from callcenter.log import bind_call
from callcenter.loopwatch import StallSampler
from callcenter.media.engine import MediaEngine
from callcenter.media.prompts import PromptCache
from callcenter.media.proxy import MediaWorkers, WorkerChannel, worker_count
from callcenter.report.today import TodayFigures
from callcenter.sip.auth import DigestAuthenticator, FailureLimiter
from callcenter.sip.errors import (
    Forbidden,
    NotFound,
    ServiceUnavailable,
    SipError,
    UnsupportedMediaType,
)
from callcenter.sip.message import Request
from callcenter.sip.outbound_registration import Account, Change, OutboundRegistration
from callcenter.sip.registrar import Registrar
from callcenter.sip.registrar_service import BindingChanged, RegistrarService
from callcenter.sip.registration_client import RegistrationClient
from callcenter.sip.stack import ServerRequest, SipStack
from callcenter.sip.tls import client_context, server_context
from callcenter.sip.uri import SipUri
from callcenter.sip.useragent import Handlers, dispatch
from callcenter.store.customers import CustomerStore
from callcenter.store.db import Store
from callcenter.store.ivr import IvrStore
from callcenter.supervisor.service import SupervisorService
from callcenter.web.api import Api, Server
from callcenter.web.http import HttpServer
from callcenter.web.metrics import Load
from ivr.clock import ServerClock
from ivr.dialplan import Dialplan, DialplanError, Line, OutboundMatch, OutboundRule
from ivr.engine import run_flow
from ivr.nodes import CollectNode
from ivr.watcher import DialplanWatcher

log = structlog.get_logger("app")

#: Retry-After (seconds) of the 503 a draining server answers: about one restart
RETRY_AFTER = 10
#: CDR updates and call events are committed in batches, at most this long after the write
#: (a commit per write was the store's cost; the CDR's insert is still committed at once)
COMMIT_DELAY = 0.05



class Application:
    def __init__(
        self, cfg: Config, dialplan: Dialplan, *, clock: ServerClock | None = None,
        read_config: Callable[[], Config] | None = None, config_path: Path | None = None,
    ) -> None:
        """``read_config``: loads the configuration again as the command line did (a reload;
        None: nothing to re-read); ``config_path``: the file watched for changes."""
        self.cfg = cfg
        self.config = ConfigReloader(
            cfg, read=read_config or (lambda: self.config.current), path=config_path,
            apply=lambda new: self._apply_config(self.users.reloaded(new)))
        self.clock = clock or ServerClock(tz=cfg.timezone)
        self.watcher = DialplanWatcher(
            cfg.dialplans, cfg.sounds, trunks=[t.name for t in cfg.trunks], current=dialplan
        )
        sip = cfg.sip
        self.advertised = sip.advertised_address or sip.listen
        self.store = Store(cfg.database)
        self.store.keep_file_web_passwords([u.user for u in cfg.users])  # the file changed?
        cfg = self.cfg = with_stored(cfg, self.store)  # and the API's objects (the file wins)
        self.customers = CustomerStore(
            self.store.db, lambda raw, country: try_normalize(raw, country=country)[0],
            country=cfg.trunks[0].country if cfg.trunks else "PL", spellings=numbers.spellings)
        self.ivr_store = IvrStore(self.store, Path(cfg.database).parent / "voicemail",
                                  self.customers)
        for program in dialplan.programs.values():  # the fields callers identify by, indexed
            for node in program.nodes.values():
                if isinstance(node, CollectNode) and node.identify:
                    self.customers.index_field(node.identify)
        self.registrar = Registrar(
            min_expires=sip.registration.min_expires,
            max_expires=sip.registration.max_expires,
            default_expires=sip.registration.default_expires,
        )
        self.passwords = {u.user: u.password for u in cfg.users}
        self.names = {u.user: u.name for u in cfg.users}
        self.prompts = PromptCache(cfg.sounds)
        ports = (cfg.media.rtp_port_min, cfg.media.rtp_port_max)
        workers = worker_count(cfg.media.workers)
        proxy = MediaWorkers(cfg.media.address, ports, workers=workers,
                             realtime_priority=cfg.media.realtime_priority) if workers else None
        self.media = cast(MediaEngine, proxy) if proxy else MediaEngine(cfg.media.address, ports)
        """The media plane; with workers, a proxy offering the same interface."""
        if proxy is not None:
            proxy.on_failure.append(self._media_failed)
        self.media.rtp_timeout = cfg.media.rtp_timeout
        self.media.on_rtp_timeout.append(self._rtp_timeout)
        self.stack = SipStack(
            host=sip.listen, port=sip.port, advertised=self.advertised,
            transports=list(sip.transports), handler=self.handle,
            on_ack_timeout=lambda e: self.b2bua.on_ack_timeout(e),
            on_server_timeout=lambda e: self.b2bua.on_server_timeout(e),
            user_agent=sip.user_agent, tcp_idle_timeout=float(sip.tcp_idle_timeout),
            udp_receive_buffer=sip.udp_receive_buffer, **_tls_contexts(sip.tls),
        )
        self.registration = RegistrarService(
            stack=self.stack, registrar=self.registrar, passwords=self.passwords,
            auth=DigestAuthenticator(
                sip.realm, secret=os.urandom(32), nonce_ttl=sip.auth.nonce_ttl,
                algorithms=tuple(sip.auth.algorithms),
            ),
            limiter=FailureLimiter(
                max_failures=sip.auth.max_failures, window=sip.auth.failure_window,
                block_for=sip.auth.block_for,
            ),
            qualify_interval=sip.registration.qualify_interval,
            on_binding=self._binding_changed,
            on_user=lambda user, on: self.queues.registration_changed(user, on),
            on_reachability=lambda user, ok: self.queues.reachability_changed(user, ok),
        )
        self.b2bua = B2BUA(
            stack=self.stack, media=self.media, media_address=cfg.media.address,
            codecs=tuple(cfg.media.codecs), on_call_end=self._call_ended,
            session_refresh=float(sip.session_refresh),
        )
        self.handlers = Handlers(invite=self._new_call, in_dialog=self.b2bua.on_in_dialog,
                                 cancel=self.b2bua.on_cancel,
                                 register=self.registration.on_register)
        self.queues = QueueRunner(
            cfg=cfg, b2bua=self.b2bua, registrar=self.registrar, prompts=self.prompts,
            now=self.now,
        )
        self.events = Events(cfg.events, store=self.store)
        self.events.attach_acd(self.queues)
        self.queues.publish = self.events.publish
        self.events.subscribe(self._recognise)
        self.queues.on_offer = self._offer
        lookup = cfg.crm.lookup
        self.crm = Crm(lookup, self.customers, self.events.publish) if lookup else None
        if self.crm is not None:
            self.ivr_store.before_card = self.crm.wait
        self.offers: dict[str, dict[str, Any]] = {}  #: the last agent.offer per agent
        #: users' legs that answered (``call.answered`` with an agent) and have not ended
        self._talking: weakref.WeakSet[Leg] = weakref.WeakSet()
        self.b2bua.on_leg = self._leg_event
        self.services = CallServices(
            b2bua=self.b2bua, registrar=self.registrar, prompts=self.prompts, now=self.now,
            clock=self.clock, publish=self.events.publish, answered=self.answered,
            offer=self._offer, music=self.queues.music, trunks=lambda: self.cfg.trunks,
        )
        self.trunk_registrations = {
            t.name: self._trunk_registration(t) for t in cfg.trunks if t.registration is not None}
        self.registered = {name: Registered(c.core.account.user, addresses_of(c.dest[0]))
                           for name, c in self.trunk_registrations.items()}
        self.transfers = Transfers(self.services, queues=self.queues, users=self.passwords,
                                   lines=self._line_runner, outside=self._outside)
        self.b2bua.on_refer = self.transfers.on_refer
        self.b2bua.on_key = self.transfers.on_key
        self.b2bua.on_hold = Holds(self.services).on_hold
        self.b2bua.srtp_policy = self._srtp_policy
        self.load = Load()
        self.stalls = StallSampler()
        self.dialer = CampaignRunner(self.services, cfg=cfg, db=self.store.db, queues=self.queues)
        self.callbacks = CallbackWorker(
            self.services, cfg=cfg, store=self.ivr_store.callbacks, queues=self.queues,
            schedule=lambda name: next((p.schedules[name] for p in self.dialplan.programs.values()
                                        if name in p.schedules), None))
        self.members = QueueMembers(cfg=cfg, store=self.store, queues=self.queues,
                                    publish=self.events.publish)
        self.users = ApiDirectory(store=self.store, publish=self.events.publish,
                                   file_config=lambda: self.config.current,
                                   apply=self._apply_config)
        self.supervisor = SupervisorService(
            self.services, cfg=cfg, db=self.store.db, campaign_records=self.dialer.records)
        self.api = Api(Server(
            cfg=cfg, now=self.now, clock=self.clock, load=self.load, stack=self.stack,
            registrar=self.registrar, b2bua=self.b2bua, media=self.media, store=self.store, events=self.events,
            queues=self.queues, supervisor=self.supervisor, dialer=self.dialer,
            watcher=self.watcher, transfers=self.transfers, callbacks=self.callbacks,
            members=self.members, customers=self.customers, offers=self.offers,
            users=self.users,
            trunk_registrations=self.trunk_registrations,
            drain=self.drain, draining=lambda: self.draining,
            reload_config=lambda who: self.reload_config(who).to_json(),
        ))
        self.http = HttpServer(self.api.router, host=cfg.http.listen, port=cfg.http.port)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.draining = False  #: new INVITEs and OPTIONS get 503; calls in progress go on
        self._drain_asked = asyncio.Event()
        self._invites = 0  #: INVITE handlers running (a call's flow runs in its handler)
        self._idle = asyncio.Event()  #: set when the last call is over during a drain

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.store.commit_within(COMMIT_DELAY)
        await self.prompts.refresh()  # every prompt decoded before the first call
        await self.media.start()
        await self.stack.start()
        await self.http.start()
        await self.queues.start()
        self.members.start()  # the API's members, after the file's
        self.queues.restore(*self.store.agent_presence())  # log-ins and pauses survive
        self._load_today_figures()
        await self.dialer.start()
        await self.callbacks.start()
        await self.events.start()
        self._spawn(self.registration.run())
        for client in self.trunk_registrations.values():
            self._spawn(client.run())
        self._spawn(self._watch_dialplans())
        self._spawn(self.prompts.watch())  # a replaced sound file reaches the next call
        self.load.gc.install()
        self.stalls.start(asyncio.get_running_loop())
        self._spawn(self._watch_loop_lag())
        self._spawn(self.today.run())
        log.info(
            "server_started", sip=f"{self.cfg.sip.listen}:{self.cfg.sip.port}",
            http=f"{self.cfg.http.listen}:{self.http.port}",
            transports=list(self.cfg.sip.transports), database=str(self.cfg.database),
            tls_port=self.stack.transports.tls_port if "tls" in self.cfg.sip.transports else None,
            lines=[line.number for line in self.dialplan.lines], users=len(self.cfg.users),
            clock=self.clock.now().isoformat(timespec="seconds"),
        )

    def drain(self) -> None:
        """Take no new calls and place none; ``until_drained`` returns once those in progress
        have ended (or ``drain_timeout`` passed), and the process stops."""
        if self.draining:
            return
        self.draining = True
        self.dialer.stop_dialling()
        self._spawn(self.callbacks.close())  # no more callbacks queued
        log.info("server_draining", calls=len(self.b2bua.calls), timeout=self.cfg.drain_timeout)
        self._drain_asked.set()

    async def until_drained(self, stop_now: asyncio.Event) -> None:
        """Serve until a drain is asked, then until no call is left, ``drain_timeout`` has
        passed or ``stop_now`` is set (a second signal)."""
        await self._drain_asked.wait()
        if self.b2bua.calls or self._invites:
            waits = [asyncio.ensure_future(e.wait()) for e in (self._idle, stop_now)]
            await asyncio.wait(waits, timeout=self.cfg.drain_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        log.info("server_drained", calls_left=len(self.b2bua.calls))

    async def stop(self) -> None:
        log.info("server_stopping", calls=len(self.b2bua.calls))
        self.load.gc.remove()
        self.stalls.stop()
        await self.dialer.close()
        await self.callbacks.close()
        await self.queues.close()
        for call in list(self.b2bua.calls.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.b2bua.hangup_call(call, HangupCause.SHUTDOWN, "system"), 2.0
                )
        self.registration.close()
        await asyncio.gather(*(c.close() for c in self.trunk_registrations.values()))
        for task in list(self._tasks):
            task.cancel()
        await self.http.close()
        await self.events.close()
        await self.stack.close()
        await self.media.close()
        self.store.close()

    def _load_today_figures(self) -> None:
        """Today's figures: those of the store so far, reset at local midnight."""
        self.today = TodayFigures(runner=self.queues, con=self.store.db.conn, clock=self.clock,
                                  sl_seconds={q.name: q.sl_seconds for q in self.cfg.queues})
        self.today.load()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def now(self) -> float:
        return self.stack.now()

    @property
    def dialplan(self) -> Dialplan:
        """The dialplan new calls start on (calls in progress keep the one they started on)."""
        return self.watcher.current

    async def _watch_dialplans(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._reload_dialplans()
            try:
                result = self.config.poll()
            except Exception:  # a bug in applying must not end the watching
                log.exception("config_reload_crashed")
                continue
            if result is not None:
                self._reloaded(result, "file change")

    def _srtp_policy(self, leg: Leg) -> str:
        """``media.srtp``, unless the leg's user or trunk (the caller's, or the one at its
        address) says otherwise."""
        cfg = self.cfg
        user = cfg.user(leg.party)
        trunk = next((t for t in cfg.trunks if (t.host, t.port) == leg.peer or (
            leg.call.source == f"trunk:{t.name}" and leg is leg.call.caller_leg)), None)
        return (user and user.srtp) or (trunk and trunk.srtp) or cfg.media.srtp

    def reload(self) -> None:
        """SIGHUP, systemd's ExecReload: re-read the dialplans and config.yaml now."""
        self._reload_dialplans()
        self.reload_config("SIGHUP")

    def reload_config(self, who: str) -> ReloadResult:
        """``POST /api/config/reload``, ``callcenter reload``, SIGHUP (the file is also
        watched): validated whole, then applied as a diff; on error nothing changes."""
        return self._reloaded(self.config.reload(), who)

    def _reloaded(self, result: ReloadResult, who: str) -> ReloadResult:
        """Log the reload; an applied one goes to the audit trail (``config.reloaded``)."""
        if result.status == "error":
            log.error("config_reload_failed", who=who, errors=result.errors,
                      kept="the running configuration stays")
            return result
        log.info("config_reloaded", who=who, status=result.status, changed=result.changed,
                 restart_required=result.restart_required)
        if result.status == "applied":
            self.events.publish(events.AuditChanged(
                ts=time.time(), who=who, action="config.reloaded", object="config",
                detail={"changed": result.changed, "restart_required": result.restart_required}))
        return result

    def _apply_config(self, new: Config) -> None:
        """A valid new configuration, as a diff: calls in progress go on; passwords and
        trunks apply to the next call or registration."""
        old, self.cfg = self.cfg, new
        for mapping, values in ((self.passwords, {u.user: u.password for u in new.users}),
                                (self.names, {u.user: u.name for u in new.users})):
            mapping.clear()
            mapping.update(values)
        self.queues.reconfigure(new, keep=self.members.stored())
        self.members.reconfigure(new)
        self.dialer.reconfigure(new)
        self.callbacks.cfg = new
        self.supervisor.reconfigure(new)
        self.api.reconfigure(new)
        self.watcher.trunks = [t.name for t in new.trunks]
        self.today.sl_seconds = {q.name: q.sl_seconds for q in new.queues}
        self._reconfigure_trunks(old, new)

    def _reconfigure_trunks(self, old: Config, new: Config) -> None:
        """Our registrations at carriers: a changed trunk registers afresh, a removed one
        unregisters."""
        regs = self.trunk_registrations
        for trunk in old.trunks:
            if trunk.registration is not None and new.trunk(trunk.name) != trunk:
                self._spawn(regs.pop(trunk.name).close())
        for trunk in new.trunks:
            if trunk.registration is not None and trunk.name not in regs:
                regs[trunk.name] = client = self._trunk_registration(trunk)
                self._spawn(client.run())

    def _reload_dialplans(self) -> None:
        result = self.watcher.poll()
        if isinstance(result, DialplanError):
            log.error("dialplan_reload_failed", errors=result.errors,
                      kept="the previous dialplan stays active")
        elif result is not None:
            log.info("dialplan_reloaded", lines=[line.number for line in result.lines])

    async def _watch_loop_lag(self) -> None:
        """How late the loop wakes a sleeper: the delay every call and RTP tick also sees."""
        loop = asyncio.get_running_loop()
        load = self.load
        while True:
            before, gc_before = loop.time(), load.gc.seconds
            await asyncio.sleep(0.5)
            load.loop_lag = max(0.0, loop.time() - before - 0.5)
            load.loop_lag_max = max(load.loop_lag_max, load.loop_lag)
            for generation, seconds, collected in load.gc.take_slow():
                log.warning("gc_pause", seconds=round(seconds, 2), generation=generation,
                            collected=collected)
            sampled = self.stalls.take()  # what the loop's thread ran while it was late
            if load.loop_lag >= 1.0:  # every call and ring waited this long: say so
                stack, count, total = sampled or ("", 0, 0)
                log.warning("event_loop_stalled", seconds=round(load.loop_lag, 2),
                            gc_seconds=round(load.gc.seconds - gc_before, 2),
                            stack=stack, stack_samples=f"{count}/{total}")

    # ------------------------------------------------------------- dispatch
    def handle(self, sreq: ServerRequest) -> Coroutine[Any, Any, None] | None:
        """The stack's handler: what it returns to await runs as a task (an in-dialog ACK,
        one per call, needs none)."""
        req = sreq.request
        if self.draining and req.to_tag is None and req.method in ("INVITE", "OPTIONS"):
            # a load balancer that probes with OPTIONS stops sending here too (RFC 3261 §21.5.4)
            raise ServiceUnavailable("draining", headers={"Retry-After": str(RETRY_AFTER)})
        if req.method == "ACK" and req.to_tag is not None:
            return self.b2bua.on_ack(sreq)
        return dispatch(sreq, self.handlers)

    async def _new_call(self, sreq: ServerRequest) -> None:
        """An INVITE outside a dialog, counted while its call runs (a drain waits for it)."""
        self._invites += 1
        try:
            await self.on_invite(sreq)
        finally:
            self._invites -= 1
            self._check_drained()

    # ------------------------------------------------------------------ calls
    async def on_invite(self, sreq: ServerRequest) -> None:
        req = sreq.request
        trunk_cfg = trunk_of(self.cfg.trunks, self.registered, req.request_uri, sreq.source[0])
        trunk = trunk_cfg.name if trunk_cfg else None
        caller = numbers.caller_identity(req, trusted=bool(trunk_cfg and trunk_cfg.trusted))
        user: str | None = None
        if trunk_cfg is None or self.registration.is_user_signalling(req, sreq.source):
            user = caller = self.registration.authenticate(sreq, proxy=True)
        elif self.b2bua.trunk_full(trunk_cfg.name, trunk_cfg.max_channels):
            log.warning("trunk_full", trunk=trunk_cfg.name, caller=caller)
            raise ServiceUnavailable(f"trunk {trunk_cfg.name} at max_channels")
        if (replaces := req.headers.get("Replaces")) is not None:
            await self.transfers.take_over(sreq, replaces, user)  # RFC 3891
            return
        ruri = req.request_uri
        called = (ruri.user if isinstance(ruri, SipUri) else None) or ""
        if user is None and trunk_cfg is not None:
            called = numbers.national(numbers.called_number(req), trunk_cfg.country)
        source = f"user:{user}" if user else f"trunk:{trunk}"
        call = Call(caller=caller, called=called, source=source,
                    direction="internal" if user and called in self.passwords else "inbound")
        with bind_call(call.id):
            try:
                await self._route(call, sreq, user, trunk)
            except Exception:
                await self.b2bua.fail_call(call)
                raise  # logged by the stack

    async def _route(
        self, call: Call, sreq: ServerRequest, user: str | None, trunk: str | None
    ) -> None:
        req = sreq.request
        dialplan = self.dialplan  # this call keeps this version, whatever reloads meanwhile
        line = dialplan.match(call.called)
        leg = self.b2bua.new_inbound(call, sreq, call.caller, trunk="" if user else trunk or "")
        if leg.state is LegState.ENDED:
            return  # CANCELled before this handler ran (answered 487 by B2BUA.on_cancel)
        feature = user is not None and call.called.startswith("*")
        out = (dialplan.route_out(call.called, self._who(user)) if user and line is None
               and not feature and call.called not in self.passwords else None)
        try:
            self._admit(call, req, line, user=user, feature=feature, out=out)
            trunk_cfg = self.cfg.trunk(trunk) if trunk and not user else None
            self.b2bua.accept_offer(leg, inband_dtmf=bool(trunk_cfg and trunk_cfg.inband_dtmf))
        except SipError as exc:  # 415, 404, 403, 488, 400: the leg ends with that answer
            log.info("call_refused", status=exc.status, detail=exc.detail, called=call.called,
                     source=call.source)
            self.b2bua.reject(leg, exc)
            return
        call.line = line.number if line else None
        call.direction = "outbound" if out is not None else call.direction
        self._start_record(call, req)
        log.info("call_started", caller=call.caller, called=call.called, source=call.source,
                 line=call.line, codec=leg.codec, sip_call_id=req.call_id)
        if feature:
            assert user is not None
            await self._feature_code(leg, user, call.called)
        elif line is not None:
            await self._ivr(leg, line, dialplan)
        elif out is not None and out.rule is not None and user is not None:
            await self._dial_out(leg, out.rule, user)
        else:
            await flows.connect_user(
                self.b2bua, self.registrar, leg, user=call.called, caller=call.caller,
                caller_name=self.names.get(call.caller, ""), now=self.now,
                ring_timeout=30.0, on_answer=lambda callee: self.answered(call, callee),
            )

    def _admit(
        self, call: Call, req: Request, line: Line | None, *, user: str | None, feature: bool,
        out: OutboundMatch | None = None,
    ) -> None:
        """Raise the answer for a call that may not go on: a body other than SDP, no route, a
        line that does not take this source, an outside number the outbound rules refuse."""
        if req.body and req.content_type not in ("application/sdp", None):
            raise UnsupportedMediaType(detail=f"body of type {req.content_type}")
        # A trunk reaches the dialplan's lines only (a DID is a line whose flow rings a user):
        # an extension not exposed as a line gets the answer of an unknown number, so the
        # phone network can neither ring agents past the IVR nor learn which users exist.
        extension = user is not None and (call.called in self.passwords or feature)
        if out is not None and not out.allowed:
            raise Forbidden(f"outbound {call.called}", reason=f"Forbidden ({out.reason})")
        if line is None and not extension and out is None:
            raise NotFound("no route")
        if line is not None and not line.accepts(call.source):
            raise Forbidden(f"line {line.number}") if user else NotFound(f"line {line.number}")

    def _outside(self, number: str, user: str | None) -> tuple[Trunk, str] | None:
        """The trunk and caller ID for a transfer to ``number`` by ``user`` (the outbound
        rules, as for a call ``user`` dials); None: no rule, or no user (a caller's keys never
        dial out); Forbidden: refused."""
        match = self.dialplan.route_out(number, self._who(user)) if self.cfg.user(user or "") \
            else None
        if match is None:
            return None
        trunk = self.cfg.trunk(match.rule.trunk or "") if match.rule is not None else None
        if not match.allowed or match.rule is None or trunk is None:
            raise Forbidden(f"outbound {number}", reason=f"Forbidden ({match.reason})")
        return trunk, match.rule.caller_id or ""

    def _who(self, user: str | None) -> tuple[str, ...]:
        """What outbound rules' ``allow`` may name for a call: the user and its role, or ivr."""
        found = self.cfg.user(user) if user else None
        return (found.user, found.role) if found else ("ivr",)

    async def _dial_out(self, leg: Leg, rule: OutboundRule, user: str) -> None:
        """A registered user's call to an outside number (the ACD sees its leg: in use)."""
        trunk = self.cfg.trunk(rule.trunk or "")
        assert trunk is not None  # the dialplan's trunks were checked against the config
        await flows.dial_out(self.services, leg, trunk,
                             caller_id=self.cfg.caller_id(rule.caller_id, user))

    async def _ivr(self, leg: Leg, line: Line, dialplan: Dialplan) -> None:
        """Answer and run the line's IVR flow (or its queue) until the caller is done; a
        ring-through line's flow answers when it needs to (``LiveCall``)."""
        leg.call.flow_owned = True
        if line.ring_through and line.flow is not None:
            await self._run_line(leg, line, dialplan, answer=self._answer_caller)
        elif await self._answer_caller(leg):
            await self._run_line(leg, line, dialplan)

    async def _answer_caller(self, leg: Leg) -> bool:
        """Answer a line's caller; False if its ACK never came (or it left)."""
        if leg.state is LegState.ENDED:
            return False
        self.b2bua.answer(leg)
        self.answered(leg.call, None)
        if not await self.b2bua.confirmed(leg):
            return False
        self._watch_digits(leg)
        return True

    async def _run_line(
        self, leg: Leg, line: Line, dialplan: Dialplan, answer: flows.Answer | None = None,
    ) -> None:
        """The line's IVR flow for an answered caller (or one ``answer`` answers when the flow
        needs it); then hang up, unless a transfer took the call meanwhile."""
        call, transfers = leg.call, leg.call.transfers
        live = LiveCall(self.services, leg, queues=self.queues, trunks=self.cfg.trunk,
                        route_out=partial(dialplan.route_out, who=self._who(None)),
                        answer=answer)
        await run_flow(live, dialplan, services=self.ivr_store, sounds=self.cfg.sounds, line=line)
        if call.transfers == transfers and any(x.state is not LegState.ENDED for x in call.legs):
            await self.b2bua.hangup_call(call, HangupCause.NORMAL, "system")

    def _line_runner(self, number: str) -> Callable[[Leg], Coroutine[Any, Any, None]] | None:
        """What a transfer to the dialplan line ``number`` runs (None: no such line)."""
        dialplan = self.dialplan
        line = dialplan.match(number)
        return None if line is None else partial(self._run_line, line=line, dialplan=dialplan)

    def _watch_digits(self, leg: Leg) -> None:
        """Every key the caller presses is logged and kept in the CDR's digits."""
        call = leg.call
        channel = leg.channel
        assert channel is not None
        forward = channel.on_dtmf

        def on_dtmf(digit: str) -> None:
            call.digits += digit
            log.info("dtmf", digit=digit, digits=call.digits)
            self.events.publish(events.Dtmf(call_id=call.id, digit=digit, digits=call.digits))
            if forward is not None:
                forward(digit)

        channel.on_dtmf = on_dtmf

    async def _feature_code(self, leg: Leg, user: str, code: str) -> None:
        if code[:3] in ("*81", "*82", "*83") and await self.supervisor.feature_code(
                leg, user, code):
            return
        if await self.queues.feature_code(leg, user, code):  # *5: an inbound call's first
            return
        if code.startswith("*5") and await self.dialer.feature_code(leg, user, code):
            return
        log.info("unknown_feature_code", code=code, user=user)
        self.b2bua.reject(leg, NotFound(reason="Not Found (unknown feature code)"))

    def _start_record(self, call: Call, req: Request) -> None:
        start = time.time()
        self.events.publish(events.CallStarted(  # the store sink inserts the CDR here
            ts=start, call_id=call.id, caller=call.caller, called=call.called,
            source=call.source, direction=call.direction, line=call.line,
            sip_call_id=req.call_id, codec=call.legs[0].codec if call.legs else None))
        self.load.call_started(self.now())
        call.recorded = True
        call.started_at = start

    def _recognise(self, event: events.Event) -> None:
        """Every call from a trunk is linked to the customer of its caller ID when it starts
        (before its IVR runs), the record created on the first contact."""
        if isinstance(event, events.CallStarted) and event.source.startswith("trunk:") \
                and event.direction == "inbound":
            trunk = self.cfg.trunk(event.source[6:])
            country = trunk.country if trunk else None
            found = self.customers.recognise(event.call_id, event.caller, now=event.ts,
                                             country=country)
            number = self.customers.e164(event.caller, country)
            if found is not None and number is not None and self.crm is not None:
                self.crm.lookup(event.call_id, found[0], number)

    def _offer(self, call_id: str, agent: str, queue: str, number: str,
               why: Mapping[str, Any]) -> tuple[str, str]:
        """Screen pop: the customer card to the agent about to ring (``agent.offer``); the
        customer's name for the phone's display and the call's desk page (its Call-Info)."""
        card, recent = self.customers.pop(call_id, time.time(), number=number)
        offer = events.AgentOffer(call_id=call_id, agent=agent, queue=queue, caller=number,
                                  customer=card, recent=recent, why=why)
        self.offers[agent] = offer.to_dict()
        self.events.publish(offer)
        page = f"{self.cfg.http.public_url}/desk/call/{call_id}" if call_id else ""
        return (card["name"] if card else ""), page

    def answered(self, call: Call, agent: Leg | None) -> None:
        """The call was answered (by us, or ``agent`` took it: a trunk's leg, a number a call
        went out to, is nobody's phone, so no agent's call)."""
        if call.answered_at is None:
            call.answered_at = time.time()
            self.events.publish(events.CallAnswered(ts=call.answered_at, call_id=call.id))
        if agent is not None and not agent.trunk:
            self._talking.add(agent)
            self.events.publish(events.CallAnswered(call_id=call.id, agent=agent.party))

    def _media_failed(self, channels: list[WorkerChannel]) -> None:
        """A media worker died: the calls whose media it carried end (BYE, CDR cause
        media_failure); the other workers' calls go on."""
        lost = set(channels)
        for call in list(self.b2bua.calls.values()):
            if any(leg.channel in lost for leg in call.legs):
                log.warning("media_worker_lost_call", call_id=call.id)
                self._spawn(self.b2bua.hangup_call(call, HangupCause.MEDIA_FAILURE, "system"))

    def _rtp_timeout(self, channel: object) -> None:
        """A party sent no RTP for ``media.rtp_timeout``: its call ends (CDR cause
        rtp_timeout), unless its leg is not answered yet or the call is on hold (silence is allowed then)."""
        for call in list(self.b2bua.calls.values()):
            leg = next((x for x in call.legs if x.channel is channel), None)
            if leg is not None and leg.state is LegState.ANSWERED \
                    and all(x.held_since is None for x in call.legs):
                log.warning("rtp_timeout", call_id=call.id, party=leg.party)
                self._spawn(self.b2bua.hangup_call(call, HangupCause.RTP_TIMEOUT, "system"))

    def _check_drained(self) -> None:
        if self.draining and not self.b2bua.calls and not self._invites:
            self._idle.set()

    def _call_ended(self, call: Call) -> None:
        self._check_drained()
        if not call.recorded:
            return
        leg = call.caller_leg
        if leg is not None and leg.channel is not None and leg.channel.stats_pending:
            self._spawn(self._record_end_after(call, time.time(), leg.channel))
        else:
            self._record_end(call, time.time())

    async def _record_end_after(self, call: Call, end: float, channel: Any) -> None:
        """The CDR once a media worker answered the close of the caller's channel with its
        final figures (the ones it sends each second can miss the last second)."""
        try:
            await channel.closed_stats()
        finally:  # a server stopping cancels the wait, not the CDR
            self._record_end(call, end)

    def _record_end(self, call: Call, end: float) -> None:
        cause = call.hangup_cause or HangupCause.NORMAL
        side = call.hangup_side or "system"
        status = 200 if call.answered_at else None
        for leg in call.legs:
            if leg.direction == "outbound" and leg.sip_status:
                status = leg.sip_status
        started = call.started_at
        self.events.publish(events.CallEnded(  # the store sink closes the CDR
            end=end, call_id=call.id, cause=cause.value, side=side, digits=call.digits,
            sip_status=status, duration=None if started is None else round(end - started, 3),
            hold_seconds=round(call.held(self.now()), 3), agent=call.agent, queue=call.queue,
            **self._rtp_quality(call) | self._carrier(call)))
        log.info("call_ended", call_id=call.id, cause=cause.value, side=side,
                 digits=call.digits)

    @staticmethod
    def _carrier(call: Call) -> dict[str, Any]:
        """The CDR's trunk and trunk Call-ID: of the call's last leg on a trunk (the one that
        carried it: a failed-over leg is off the call), and the creating leg's Call-ID anew
        when that leg was one of ours (a dialer or callback call)."""
        leg = next((x for x in reversed(call.legs) if x.trunk), None)
        first = call.caller_leg
        out = {"sip_call_id": first.outbound_invite.call_id} if (
            first is not None and first.outbound_invite is not None) else {}
        sent = leg.outbound_invite if leg is not None else None
        received = leg.invite.request if leg is not None and leg.invite is not None else None
        if leg is not None and (message := sent or received) is not None:
            out |= {"trunk": leg.trunk, "trunk_call_id": message.call_id}
        return out

    @staticmethod
    def _rtp_quality(call: Call) -> dict[str, Any]:
        """The CDR's RTP figures from the caller leg's channel (closed by now, its stats kept):
        empty when no RTP came in."""
        leg = call.caller_leg
        stats = leg.channel.stats if leg is not None and leg.channel is not None else None
        if stats is None or stats.packets_expected <= 0:
            return {}
        lost = max(stats.packets_lost, 0)  # duplicates make it negative: not a gain
        return {"rtp_lost_pct": round(100.0 * lost / stats.packets_expected, 3),
                "rtp_jitter_ms": round(stats.jitter_ms, 3)}

    def _trunk_registration(self, trunk: Trunk) -> RegistrationClient:
        """Our registration at the trunk: to its ``register.proxy`` or its host and port."""
        reg = trunk.registration
        assert reg is not None
        dest = (trunk.host, trunk.port)
        if reg.proxy:
            host, _, port = reg.proxy.partition(":")
            dest = (host, int(port or 5060))
        core = OutboundRegistration(
            Account(user=reg.user, password=reg.password, domain=reg.domain or trunk.host,
                    contact=self.stack.contact(reg.user, trunk.transport), expires=reg.expires),
            retry_min=reg.retry_min, retry_max=reg.retry_max)
        return RegistrationClient(self.stack, core, name=trunk.name, dest=dest,
                                  transport=trunk.transport, on_change=self._trunk_changed)

    def _trunk_changed(self, trunk: str, change: Change) -> None:
        self.events.publish(events.TrunkRegistration(
            trunk=trunk, state=change.state.value, status=change.status, reason=change.reason,
            expires=change.expires, auth_failed=change.auth_failed))

    def _binding_changed(self, change: BindingChanged) -> None:
        """Registrar hook: a binding came, went or expired."""
        self.events.publish(events.RegistrationChanged(**dataclasses.asdict(change)))

    def _leg_event(self, what: str, leg: Leg) -> None:
        """B2BUA hook: a leg was added to or ended on a call."""
        self.queues.leg_changed(what, leg)  # an agent's phone in use
        if what == "added":
            self.events.publish(events.LegAdded(
                call_id=leg.call.id, party=leg.party, direction=leg.direction))
        else:
            talked = leg in self._talking
            self._talking.discard(leg)
            self.events.publish(events.LegEnded(
                call_id=leg.call.id, party=leg.party, direction=leg.direction,
                sip_status=leg.sip_status, agent=leg.party if talked else None))


def _tls_contexts(tls: SipTls | None) -> dict[str, Any]:
    """The SipStack's TLS arguments from ``sip.tls`` (none: trunks dialled over TLS are
    checked against the system's CA store)."""
    if tls is None:
        return {}
    ca = str(tls.ca) if tls.ca else None
    files = {"certificate": str(tls.certificate), "key": str(tls.key)}
    return {
        "tls_port": tls.port,
        "tls_server": server_context(**files, ca=ca, verify_peer=tls.verify_peer),
        "tls_client": client_context(**files, ca=ca, verify_peer=tls.verify_peer),
    }


async def serve(cfg: Config, dialplan: Dialplan, clock: ServerClock | None = None,
                **reload: Any) -> None:
    app = Application(cfg, dialplan, clock=clock, **reload)
    await app.start()
    tune_gc()  # once start-up's objects exist: none of them is scanned again
    loop = asyncio.get_running_loop()
    stop_now = asyncio.Event()

    def on_signal() -> None:  # the first drains, a second stops without waiting for calls
        if app.draining:
            stop_now.set()
        app.drain()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    with contextlib.suppress(NotImplementedError, AttributeError):  # no SIGHUP on Windows
        loop.add_signal_handler(signal.SIGHUP, app.reload)
    await app.until_drained(stop_now)
    await app.stop()
    log.info("server_stopped")


def run_server(cfg: Config, dialplan: Dialplan, *, clock: ServerClock | None = None,
               read_config: Callable[[], Config] | None = None,
               config_path: Path | None = None) -> None:
    """``read_config``/``config_path``: see ``Application`` (live configuration)."""
    main = serve(cfg, dialplan, clock, read_config=read_config, config_path=config_path)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)

