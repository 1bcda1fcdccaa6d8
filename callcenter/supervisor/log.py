"""The ``supervisor_sessions`` table (sqlite-utils): who supervised whom, when, in which modes."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

TABLE = "supervisor_sessions"
COLUMNS: dict[str, Any] = {
    "id": str,  # session id
    "supervisor": str,  # user id
    "agent": str,  # agent user id (may be empty for a session on a call id)
    "call_id": str,  # the supervised call (calls.id); empty until joined
    "queue": str,  # the queue the call came from, if known
    "origin": str,  # feature_code | api
    "start": float,  # unix time the session was asked for
    "joined": float,  # unix time the supervisor joined the call
    "end": float,
    "modes": str,  # JSON: [{"mode": "listen", "at": unix time}, ...]
    "result": str,  # ended | refused | not_on_call | timeout | failed | ...
    "ended_by": str,  # supervisor | caller | agent | api | system
}


class SessionLog:
    """Writes one row per session into the call-center database (table created if missing)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        if TABLE not in db.table_names():
            db.table(TABLE).create(COLUMNS, pk="id", not_null={"id", "supervisor", "start"},
                             if_not_exists=True)
            db.table(TABLE).create_index(["supervisor", "start"], if_not_exists=True)
            db.table(TABLE).create_index(["agent", "start"], if_not_exists=True)

    def started(self, row: dict[str, Any]) -> None:
        data = dict(row)
        data["modes"] = json.dumps(data.get("modes", []))
        with self.db.conn:
            self.db.table(TABLE).insert(data, replace=True)

    def update(self, session_id: str, **fields: Any) -> None:
        if "modes" in fields:
            fields["modes"] = json.dumps(fields["modes"])
        with self.db.conn:
            self.db.table(TABLE).update(session_id, fields)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = list(self.db[TABLE].rows_where(order_by="start DESC", limit=limit))
        for row in rows:
            row["modes"] = json.loads(row["modes"] or "[]")
        return rows
