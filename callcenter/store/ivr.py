"""What the IVR stores and looks up: callbacks, voicemail, survey ratings, contact history.

``IvrStore`` implements ``ivr.engine.IvrServices`` over the same SQLite file as the CDRs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from callcenter.store.callbacks import CallbackStore
from callcenter.store.customers import CustomerStore
from callcenter.store.db import Store
from ivr.engine import CallbackRequest, ContactHistory, Customer, SurveyResult, VoicemailMessage

SCHEMA = {
    "voicemails": {
        "id": int, "call_id": str, "queue": str, "caller": str, "called": str,
        "language": str, "path": str, "seconds": float, "recorded_at": str, "heard": int,
    },
    "surveys": {
        "id": int, "call_id": str, "caller": str, "called": str, "rating": int,
        "queue": str, "rated_at": str,
    },
}


class IvrStore:
    def __init__(self, store: Store, voicemail_dir: Path,
                 customers: CustomerStore | None = None) -> None:
        self.store = store
        self.customers = customers
        #: awaited before a call's customer is read (the CRM lookup, bounded by its timeout)
        self.before_card: Callable[[str], Awaitable[None]] | None = None
        self.db = store.db
        self.voicemail_dir = voicemail_dir
        for table, columns in SCHEMA.items():
            if not self.db[table].exists():
                self.db.table(table).create(columns, pk="id")
        self.callbacks = CallbackStore(self.db)
        self.db.table("voicemails").create_index(["queue"], if_not_exists=True)

    async def contact_history(self, caller: str) -> ContactHistory:
        conn = self.db.conn
        (calls,) = conn.execute(
            "SELECT count(*) FROM calls WHERE caller = ? AND end IS NOT NULL", (caller,)
        ).fetchone()
        row = conn.execute(
            "SELECT json_extract(e.data, '$.agent') FROM call_events e JOIN calls c "
            "ON c.id = e.call_id WHERE c.caller = ? AND e.type = 'connected' "
            "ORDER BY e.ts DESC LIMIT 1", (caller,),
        ).fetchone()
        (open_callbacks,) = conn.execute(
            "SELECT count(*) FROM callbacks WHERE caller = ? AND status = 'open'", (caller,)
        ).fetchone()
        return ContactHistory(calls, row[0] if row else None, open_callbacks)

    async def customer(self, call_id: str, caller: str, now: datetime) -> Customer:
        if self.before_card is not None:
            await self.before_card(call_id)
        return self._customer(call_id, now) or Customer()

    async def identify(self, call_id: str, field: str, value: str,
                       now: datetime) -> Customer | None:
        if self.customers is None or self.customers.identify(
                call_id, field, value, now=now.timestamp()) is None:
            return None
        return self._customer(call_id, now)

    def _customer(self, call_id: str, now: datetime) -> Customer | None:
        card = self.customers.card(call_id, now.timestamp()) if self.customers else None
        if card is None:
            return None
        return Customer(known=card["known"], name=card["name"], last_agent=card["last_agent"],
                        fields={k: str(v) for k, v in card["fields"].items()},
                        open_callbacks=card["open_callbacks"],
                        last_contact_days=card["last_contact_days"])

    async def create_callback(self, request: CallbackRequest) -> None:
        self.callbacks.book(
            queue=request.queue, number=request.number, entered=request.requested_at.timestamp(),
            caller=request.caller, call_id=request.call_id, language=request.language,
            requested_at=request.requested_at.isoformat())

    def voicemail_path(self, queue: str, call_id: str) -> Path:
        folder = self.voicemail_dir / queue
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{call_id}.wav"

    async def save_voicemail(self, message: VoicemailMessage) -> None:
        self._insert("voicemails", {
            "call_id": message.call_id, "queue": message.queue, "caller": message.caller,
            "called": message.called, "language": message.language, "path": str(message.path),
            "seconds": message.seconds, "recorded_at": message.recorded_at.isoformat(),
            "heard": 0,
        })

    async def save_survey(self, result: SurveyResult) -> None:
        self._insert("surveys", {
            "call_id": result.call_id, "caller": result.caller, "called": result.called,
            "rating": result.rating, "queue": result.queue,
            "rated_at": result.rated_at.isoformat(),
        })

    def voicemails(self, queue: str | None = None) -> list[dict[str, Any]]:
        where, args = ("queue = ?", [queue]) if queue else (None, [])
        return list(self.db["voicemails"].rows_where(where, args, order_by="id DESC"))

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table(table).insert(row)
