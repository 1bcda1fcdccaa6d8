"""Callback requests and their attempts: written before anything is dialled, so a restart
loses none (``callbacks``: one row a request; ``callback_attempts``: one row a try)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils

SCHEMA: dict[str, dict[str, Any]] = {
    "callbacks": {
        "id": int, "call_id": str, "caller": str, "number": str, "queue": str,
        "language": str, "requested_at": str, "status": str,
        "entered": float,  # unix time the caller entered the queue (or booked): its place
        "next_at": float,  # not dialled before (a booked time, a retry)
        "attempts": int, "outcome": str, "agent": str, "updated": float,
        "booked_by": str,  # the agent whose login booked it ("": the IVR, the queue, a token)
    },
    "callback_attempts": {
        "id": int, "callback_id": int, "agent": str, "started": float, "ended": float,
        "outcome": str, "sip_status": int,
    },
}
OPEN_STATES = ("open", "dialing")


class CallbackStore:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        #: told each new request's id, whoever booked it (the IVR, the ACD, the API)
        self.on_book: Callable[[int], None] | None = None
        for table, columns in SCHEMA.items():
            if db[table].exists():
                db.table(table).add_missing_columns([columns])
            else:
                db.table(table).create(columns, pk="id")
        db.table("callbacks").create_index(["status", "queue"], if_not_exists=True)

    def book(self, *, queue: str, number: str, entered: float, at: float | None = None,
             caller: str = "", call_id: str = "", language: str = "pl",
             requested_at: str = "", booked_by: str = "") -> int:
        """A new open request; ``at`` (default: at once) is the earliest time to dial."""
        with self.db.conn:
            table = self.db.table("callbacks").insert({
                "call_id": call_id, "caller": caller or number, "number": number,
                "queue": queue, "language": language, "requested_at": requested_at,
                "status": "open", "entered": entered, "next_at": entered if at is None else at,
                "attempts": 0, "outcome": "", "agent": "", "updated": entered,
                "booked_by": booked_by,
            })
        id = int(table.last_pk or 0)
        if self.on_book is not None:
            self.on_book(id)
        return id

    def get(self, id: int) -> dict[str, Any] | None:
        rows = list(self.db["callbacks"].rows_where("id = ?", [id]))
        return rows[0] if rows else None

    def find(self, *, queue: str | None = None, status: str | None = None,
             limit: int = 500) -> list[dict[str, Any]]:
        where = [w for w, v in (("queue = ?", queue), ("status = ?", status)) if v]
        args = [v for v in (queue, status) if v]
        return list(self.db["callbacks"].rows_where(
            " AND ".join(where) or None, args, order_by="id", limit=limit))

    def pending(self) -> list[dict[str, Any]]:
        """Requests not finished (open, or dialling when the server stopped)."""
        return list(self.db["callbacks"].rows_where(
            "status IN (?, ?)", list(OPEN_STATES), order_by="entered"))

    def counts(self) -> dict[str, int]:
        """Open requests per queue."""
        return dict(self.db.execute(
            "SELECT queue, count(*) FROM callbacks WHERE status IN (?, ?) GROUP BY queue",
            OPEN_STATES).fetchall())

    def update(self, id: int, **fields: Any) -> None:
        with self.db.conn:
            self.db.table("callbacks").update(id, fields)

    def start_attempt(self, id: int, agent: str, now: float) -> int:
        """Mark the request dialling and write the attempt (before the INVITE leaves)."""
        with self.db.conn:
            self.db.execute("UPDATE callbacks SET status = 'dialing', agent = ?, updated = ?, "
                            "attempts = coalesce(attempts, 0) + 1 WHERE id = ?", [agent, now, id])
            table = self.db.table("callback_attempts").insert({
                "callback_id": id, "agent": agent, "started": now, "ended": None,
                "outcome": "", "sip_status": None})
        return int(table.last_pk or 0)

    def end_attempt(self, attempt: int, outcome: str, now: float, sip_status: int = 0) -> None:
        with self.db.conn:
            self.db.table("callback_attempts").update(
                attempt, {"ended": now, "outcome": outcome, "sip_status": sip_status})

    def open_attempts(self, id: int) -> list[int]:
        """Attempts of ``id`` without an end (the server stopped during them)."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM callback_attempts WHERE callback_id = ? AND ended IS NULL", [id])]

    def attempts(self, id: int) -> list[dict[str, Any]]:
        return list(self.db["callback_attempts"].rows_where(
            "callback_id = ?", [id], order_by="id"))
