"""The asyncio side of registering at a carrier: runs one :class:`OutboundRegistration`.

It sends what the core says is due, hands the answer back, and sleeps until the core's next
``wake_at``; it logs one line when the registration comes up and one when a streak of
failures starts (the rest at debug), and counts attempts and failures for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.sip.events import Address
from callcenter.sip.outbound_registration import Change, OutboundRegistration, RegState
from callcenter.sip.stack import RequestTimeout, SipStack

log = structlog.get_logger("sip")


class RegistrationClient:
    def __init__(
        self, stack: SipStack, core: OutboundRegistration, *, name: str, dest: Address,
        transport: str, on_change: Callable[[str, Change], None] | None = None,
    ) -> None:
        self.stack, self.core, self.name = stack, core, name
        self.dest, self.transport = dest, transport
        self.on_change = on_change
        self.counts = {"attempts": 0, "failures": 0, "auth_failures": 0}

    async def run(self) -> None:
        core = self.core
        while True:
            now = self.stack.now()
            req = core.poll(now, via=self.stack.via(self.transport))
            if req is None:
                wake = core.wake_at
                await asyncio.sleep(1.0 if wake is None else max(0.0, wake - now))
                continue
            self.counts["attempts"] += 1
            change = await self._send(req)
            if change is not None:
                self._report(change)

    async def _send(self, req: Any) -> Change | None:
        try:
            resp = await self.stack.request(req, self.dest, self.transport)
        except RequestTimeout:
            return self.core.on_error("no answer", self.stack.now())
        except OSError as exc:
            return self.core.on_error(f"transport: {exc}", self.stack.now())
        return self.core.on_response(resp, self.stack.now())

    def _report(self, change: Change) -> None:
        fields = {"trunk": self.name, "status": change.status, "reason": change.reason}
        if change.state is RegState.FAILED:
            self.counts["failures"] += 1
            self.counts["auth_failures"] += change.auth_failed
            wake = self.core.wake_at
            retry = round(wake - self.stack.now(), 1) if wake is not None else None
            first = self.core.failures == 1
            (log.warning if first else log.debug)(
                "trunk_register_failed", **fields, retry_in=retry, failures=self.core.failures,
                hint="check the trunk's register user and password" if change.auth_failed
                else None)
        else:
            previous = self.core.last
            (log.info if change.expires else log.debug)(
                "trunk_registered", **fields, expires=change.expires,
                registrar=f"{self.dest[0]}:{self.dest[1]}", previous=previous and previous.state)
        if self.on_change is not None:
            self.on_change(self.name, change)

    def state(self, now: float) -> dict[str, Any]:
        """What ``GET /api/trunks`` shows of this registration."""
        core, last = self.core, self.core.last
        until = core.registered_until
        return {
            "state": core.state.value, "registrar": f"{self.dest[0]}:{self.dest[1]}",
            "user": core.account.user, "domain": core.account.domain,
            "expires_in": None if until is None else max(0, round(until - now)),
            "last_status": last.status if last else None,
            "last_reason": last.reason if last else None,
            "failures": core.failures,
            "next_attempt_in": None if core.wake_at is None else max(0.0, round(core.wake_at - now, 1)),
            **self.counts,
        }

    async def close(self, timeout: float = 2.0) -> None:
        """Remove our binding (Expires 0), answering one challenge, within ``timeout``."""
        req = self.core.unregister(self.stack.via(self.transport))
        with contextlib.suppress(TimeoutError, RequestTimeout, OSError):
            async with asyncio.timeout(timeout):
                while req is not None:
                    await self._send(req)
                    req = self.core.poll(self.stack.now(), via=self.stack.via(self.transport))
