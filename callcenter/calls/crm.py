"""The optional CRM lookup (``crm.lookup`` in config): each recognised caller's number is sent
to the CRM once, in the background, as the call starts; the JSON object it answers joins the
customer's free fields. The IVR's ``customer.*`` wait for the answer no longer than
``timeout_ms`` after the call started: a slow, hanging or broken CRM costs the call at most
that, and each lookup's outcome is an event (``crm.lookup``, counted in the metrics).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.config.models import CrmLookup
from callcenter.events.bus import CrmLooked, Event
from callcenter.store.customers import CustomerError, CustomerStore

log = structlog.get_logger("crm")
CACHE_MAX = 100_000  #: numbers whose answers are kept


def _get(url: str, headers: dict[str, str], timeout: float) -> Any:
    """GET ``url`` and decode its JSON (blocking: run in a thread)."""
    req = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read(1 << 20) or b"null")


class Crm:
    def __init__(self, cfg: CrmLookup, customers: CustomerStore,
                 publish: Callable[[Event], None]) -> None:
        self.cfg = cfg
        self.customers = customers
        self.publish = publish
        self.timeout = cfg.timeout_ms / 1000
        self._pending: dict[str, asyncio.Task[None]] = {}  #: call id -> its lookup
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}  #: number -> (until, fields)

    def lookup(self, call_id: str, customer: int, number: str) -> None:
        """Start asking about ``number`` (a call's customer, just recognised)."""
        task = asyncio.ensure_future(self._lookup(call_id, customer, number))
        self._pending[call_id] = task
        task.add_done_callback(lambda _: self._pending.pop(call_id, None))

    async def wait(self, call_id: str) -> None:
        """Until the call's lookup is done (it gives up after the timeout by itself)."""
        task = self._pending.get(call_id)
        if task is not None:
            await asyncio.wait({task})

    async def _lookup(self, call_id: str, customer: int, number: str) -> None:
        began = time.monotonic()
        cached = self._cache.get(number)
        outcome = "cached"
        if cached is not None and cached[0] > began:
            fields = cached[1]
        else:
            url = self.cfg.url.replace("{number}", urllib.parse.quote(number))
            fields, outcome = {}, "ok"
            try:
                answer = await asyncio.wait_for(asyncio.to_thread(
                    _get, url, dict(self.cfg.headers), self.timeout), self.timeout)
            except TimeoutError:
                outcome = "timeout"
            except Exception as exc:  # noqa: BLE001 - the CRM's trouble is never the call's
                outcome = "not_found" if getattr(exc, "code", 0) == 404 else "error"
                log.info("crm_failed", number=number, error=repr(exc)[:200])
            else:
                if isinstance(answer, dict):
                    fields = {k: v for k, v in answer.items()
                              if isinstance(k, str) and isinstance(v, str | int | float | bool)}
                else:
                    outcome = "error"
            if outcome in ("ok", "not_found") and self.cfg.cache_s > 0:
                if len(self._cache) >= CACHE_MAX:  # bounded: start over rather than grow
                    self._cache.clear()
                self._cache[number] = (began + self.cfg.cache_s, fields)
        if fields:
            try:
                self.customers.update(customer, now=time.time(), fields=fields)
            except (CustomerError, KeyError, TypeError) as exc:
                log.info("crm_fields_refused", error=str(exc))
        self.publish(CrmLooked(call_id=call_id, outcome=outcome,
                               seconds=round(time.monotonic() - began, 3)))
