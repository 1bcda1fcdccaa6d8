"""The SQLite store: plain tables any SQLite tool can open (sqlite-utils, Datasette).

Writes are small and synchronous; WAL with ``synchronous=NORMAL`` keeps them cheap enough to
run on the event loop: a commit appends to the WAL without fsync. The one fsync left, the WAL
checkpoint, runs in a thread of its own (``Checkpointer``): on a box busy writing other files an
fsync can take seconds, and on the loop it would hold up every call. A call's row is inserted
when the call starts, so a crash never loses it.
In the server (``commit_within``) a CDR's updates and its events are batched: run at once,
committed together at most ``delay`` seconds later, with the next call's insert, before any
other transaction on the connection, or at close (the commit was most of a write's cost:
about 27 µs against 2 for a statement in a batch).
Schema changes are numbered migrations recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import sqlite_utils
import structlog

from callcenter.store.records import CALL_FIELDS, CallRecord

log = structlog.get_logger("store")
_event_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""A call event's data as JSON: one encoder for all (``json.dumps`` with options builds one
each time)."""

#: Migration N (1-based) brings the schema from version N-1 to N. Append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        sip_call_id TEXT NOT NULL,
        direction TEXT NOT NULL,      -- inbound | outbound | internal
        caller TEXT NOT NULL,
        called TEXT NOT NULL,
        source TEXT NOT NULL,         -- trunk:<name> | user:<user>
        line TEXT,                    -- dialplan line that matched
        start REAL NOT NULL,          -- unix time
        answer REAL,
        "end" REAL,
        duration REAL,                -- end - start
        billsec REAL,                 -- end - answer
        hangup_cause TEXT,            -- normal_clearing, no_answer, busy, cancelled, ...
        hangup_side TEXT,             -- caller | callee | system
        sip_status INTEGER,
        digits TEXT NOT NULL DEFAULT '',
        codec TEXT,
        recording TEXT
    );
    CREATE INDEX calls_start ON calls(start);
    CREATE INDEX calls_sip_call_id ON calls(sip_call_id);
    CREATE TABLE call_events (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'  -- JSON
    );
    CREATE INDEX call_events_call_id ON call_events(call_id, ts);
    CREATE TABLE registrations (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        user TEXT NOT NULL,
        contact TEXT NOT NULL,
        source TEXT NOT NULL,         -- transport:host:port the REGISTER came from
        expires INTEGER NOT NULL,     -- 0 = unregister
        user_agent TEXT
    );
    CREATE INDEX registrations_user ON registrations(user, ts);
    """,
    """
    CREATE TABLE queue_log (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,             -- unix time
        queue TEXT NOT NULL,
        call_id TEXT NOT NULL,        -- the caller's call (calls.id)
        event TEXT NOT NULL,          -- enter, connect, complete, abandon, timeout, exit_empty,
                                      -- transfer, ringnoanswer, callback, watchdog
        agent TEXT,
        position INTEGER,             -- 1-based place in the queue
        wait REAL,                    -- seconds waited in this queue
        talk REAL,                    -- seconds connected (complete, transfer)
        hung_up_by TEXT,              -- caller | agent | system
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_log_queue ON queue_log(queue, ts);
    CREATE INDEX queue_log_call ON queue_log(call_id);
    CREATE TABLE agent_states (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        agent TEXT NOT NULL,
        old TEXT NOT NULL,            -- logged_out, available, ringing, on_call, wrap_up, paused
        new TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''  -- pause reason, "auto", or what caused the change
    );
    CREATE INDEX agent_states_agent ON agent_states(agent, ts);
    """,
    """
    ALTER TABLE calls ADD COLUMN rtp_lost_pct REAL;   -- caller leg: RTP lost / expected, in %
    ALTER TABLE calls ADD COLUMN rtp_jitter_ms REAL;  -- caller leg: RFC 3550 jitter at the end
    """,
    """
    ALTER TABLE calls ADD COLUMN hold_seconds REAL;   -- time on hold (re-INVITE sendonly/inactive)
    """,
    """
    CREATE TABLE queue_members (      -- dynamic members (API); the config file's are not here
        queue TEXT NOT NULL,
        agent TEXT NOT NULL,
        penalty INTEGER NOT NULL DEFAULT 0,
        tier INTEGER NOT NULL DEFAULT 1,
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL,       -- unix time
        PRIMARY KEY (queue, agent)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        who TEXT NOT NULL,            -- the API token's name (or its role)
        action TEXT NOT NULL,         -- member.added, member.removed
        object TEXT NOT NULL,         -- e.g. queue/support/member/1001
        detail TEXT NOT NULL DEFAULT '{}'  -- JSON
    );
    CREATE INDEX audit_ts ON audit(ts);
    """,
    """
    ALTER TABLE calls ADD COLUMN agent TEXT;        -- the queue agent who took the call
    ALTER TABLE calls ADD COLUMN queue TEXT;        -- the ACD queue it was last queued in
    ALTER TABLE calls ADD COLUMN disposition TEXT;  -- the agent's inbound disposition (name)
    """,
    """
    ALTER TABLE calls ADD COLUMN trunk TEXT;          -- the trunk that carried the call
    ALTER TABLE calls ADD COLUMN trunk_call_id TEXT;  -- the Call-ID of its leg on that trunk
    """,
    """
    CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        crm_id TEXT,                  -- the external CRM's id
        fields TEXT NOT NULL DEFAULT '{}',  -- JSON: plan, tier, language, consent flags...
        created REAL NOT NULL,        -- unix time
        updated REAL NOT NULL,
        merged_into INTEGER           -- set by a merge: the record that took this one's place
    );
    CREATE INDEX customers_crm_id ON customers(crm_id);
    CREATE INDEX customers_merged_into ON customers(merged_into);
    CREATE TABLE customer_numbers (   -- one number belongs to one customer
        number TEXT PRIMARY KEY,      -- E.164
        customer_id INTEGER NOT NULL
    );
    CREATE INDEX customer_numbers_customer ON customer_numbers(customer_id);
    CREATE TABLE customer_emails (
        email TEXT NOT NULL,          -- lower case
        customer_id INTEGER NOT NULL,
        PRIMARY KEY (email, customer_id)
    );
    CREATE TABLE customer_calls (     -- the calls recognised as the customer's
        call_id TEXT PRIMARY KEY,     -- calls.id
        customer_id INTEGER NOT NULL,
        number TEXT NOT NULL,         -- E.164 the caller ID became
        created INTEGER NOT NULL DEFAULT 0  -- 1: this call created the record
    );
    CREATE INDEX customer_calls_customer ON customer_calls(customer_id);
    CREATE TABLE customer_notes (
        id INTEGER PRIMARY KEY,
        customer_id INTEGER NOT NULL,
        ts REAL NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL,
        call_id TEXT
    );
    CREATE INDEX customer_notes_customer ON customer_notes(customer_id, ts);
    """,
    """
    CREATE TABLE users (              -- SIP users added by the API; the config file's are not here
        user TEXT PRIMARY KEY,
        password TEXT NOT NULL,       -- ha1:<MD5 of user:realm:password> (digest needs it)
        role TEXT NOT NULL,           -- agent | supervisor
        name TEXT NOT NULL DEFAULT '',
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL
    );
    CREATE TABLE queues (             -- queues added by the API; the config file's are not here
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,       -- JSON: the queue as config.yaml would give it
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL
    );
    """,
    """
    ALTER TABLE users ADD COLUMN skills TEXT NOT NULL DEFAULT '{}';  -- JSON: skill -> level
    ALTER TABLE users ADD COLUMN web_password TEXT;  -- scrypt:... for the API login (not SIP)
    CREATE TABLE pause_reasons (      -- added by the API; the config file's are not here
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE file_web_passwords (  -- set by the API for users of the config file
        user TEXT PRIMARY KEY,
        web_password TEXT NOT NULL,    -- scrypt:... for the API login (not SIP)
        set_by TEXT NOT NULL,
        set_at REAL NOT NULL
    );
    """,
]


#: Columns of ``calls`` in CallRecord order, and the INSERT of one record (a plain statement:
#: sqlite-utils' ``insert`` introspects the table on every call, ~5x the cost of the write).
_CALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclass_fields(CallRecord))
_INSERT_CALL = "INSERT INTO calls ({}) VALUES ({})".format(
    ", ".join(f'"{name}"' for name in _CALL_COLUMNS), ", ".join("?" for _ in _CALL_COLUMNS)
)


def stored_queue_names(path: Path) -> list[str]:
    """The queues the API added to the database at ``path``, read without changing it (none
    when it does not exist yet, or is too old to hold them): what ``config.yaml`` may name."""
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return []
    try:
        return [r[0] for r in conn.execute("SELECT name FROM queues")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


class Checkpointer(threading.Thread):
    """Copies the WAL into the database every ``interval`` seconds from its own connection
    (a PASSIVE checkpoint: it never waits for, nor blocks, the loop's writes)."""

    def __init__(self, path: Path, interval: float = 2.0) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self.path, self.interval = path, interval
        self._done = threading.Event()

    def checkpoint(self, conn: sqlite3.Connection) -> int:
        """One checkpoint; the number of WAL frames now in the database."""
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[2])

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0.5)
        try:
            while not self._done.wait(self.interval):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as exc:  # busy or gone: the next round tries again
                    log.warning("sqlite_checkpoint_failed", error=str(exc))
        finally:
            conn.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5.0)


class _Connection(sqlite3.Connection):
    """A ``with connection:`` block first commits the store's batched writes, so an error
    in the block rolls back the block's own statements, never a call's records."""

    def __enter__(self) -> _Connection:
        self.commit()
        return super().__enter__()


class Store:
    """The call-center database. ``Store(":memory:")`` works for tests."""

    def __init__(self, path: Path | str) -> None:
        if str(path) == ":memory:":
            self.db = sqlite_utils.Database(sqlite3.connect(":memory:", factory=_Connection))
        else:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(sqlite3.connect(str(path), factory=_Connection))
            self.db.enable_wal()
        self.path = path
        self._delay: float | None = None
        self._commit_at: asyncio.TimerHandle | None = None
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=2000")
        self.migrate()
        self.checkpointer: Checkpointer | None = None
        if str(path) != ":memory:":
            self.db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job
            self.checkpointer = Checkpointer(Path(path))
            self.checkpointer.start()

    # -- schema ------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """Number of migrations applied."""
        if "schema_migrations" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> None:
        """Apply the migrations this database has not seen yet."""
        conn = self.db.conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
        )
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} has schema version {current}, newer than this program "
                f"({len(MIGRATIONS)}); upgrade callcenter or use another --db"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            # executescript commits first and runs outside a transaction; wrap it explicitly.
            conn.executescript(
                "BEGIN;\n"
                + MIGRATIONS[version - 1]
                + f"\nINSERT INTO schema_migrations VALUES ({version}, {time.time()!r});\nCOMMIT;"
            )

    def commit_within(self, delay: float | None) -> None:
        """Batch the call records' writes, committed at most ``delay`` s later (call from the
        event loop that runs the writes); None: each committed at once."""
        self._delay = delay
        self.commit()

    def commit(self) -> None:
        """Commit the batched writes now."""
        if self._commit_at is not None:
            self._commit_at.cancel()
            self._commit_at = None
        self.db.conn.commit()

    def _write(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        """A CDR update or event: committed at once, or batched (``commit_within``).
        A failed statement undoes only itself (SQLite's statement atomicity): the batch
        stays."""
        conn = self.db.conn
        if self._delay is None:
            with conn:
                return conn.execute(sql, args)
        cursor = conn.execute(sql, args)
        if self._commit_at is None:
            try:
                self._commit_at = asyncio.get_running_loop().call_later(self._delay, self.commit)
            except RuntimeError:  # no loop to commit later
                self.commit()
        return cursor

    def close(self) -> None:
        """Commit and close the connection (the last one to close checkpoints what is left)."""
        self.commit()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.db.close()

    # -- calls -------------------------------------------------------------------------------

    def start_call(self, record: CallRecord) -> None:
        """Insert the CDR when the call starts, committed at once with whatever was batched
        (a crash never loses the call)."""
        self.db.conn.execute(_INSERT_CALL, [getattr(record, c) for c in _CALL_COLUMNS])
        self.commit()

    def update_call(self, call_id: str, **fields: Any) -> None:
        """Set columns of a call's CDR (names as in CallRecord); KeyError for unknown calls."""
        bad = (set(fields) - CALL_FIELDS) | (set(fields) & {"id"})
        if bad:
            raise TypeError(f"update_call: not updatable: {', '.join(sorted(bad))}")
        if not fields:
            return
        sets = ", ".join(f'"{name}" = ?' for name in fields)
        cursor = self._write(f"UPDATE calls SET {sets} WHERE id = ?", [*fields.values(), call_id])
        if cursor.rowcount != 1:
            raise KeyError(call_id)

    def finish_call(
        self,
        call_id: str,
        *,
        end: float,
        hangup_cause: str,
        hangup_side: str,
        sip_status: int | None = None,
        **fields: Any,
    ) -> None:
        """Close a CDR: sets end, duration (end - start) and billsec (end - answer, or 0).

        One UPDATE: duration and billsec are computed by SQLite from the stored start and
        answer (or the ``answer`` passed here), rounded to milliseconds. KeyError if the call
        has no CDR, TypeError for a column that cannot be set.
        """
        fields = {"hangup_cause": hangup_cause, "hangup_side": hangup_side, **fields}
        if sip_status is not None:
            fields["sip_status"] = sip_status
        bad = (set(fields) - CALL_FIELDS) | (set(fields) & {"id", "end", "duration", "billsec"})
        if bad:
            raise TypeError(f"finish_call: not settable: {', '.join(sorted(bad))}")
        answer = fields.get("answer")
        sets = ", ".join(f'"{name}" = ?' for name in fields)
        sql = (
            'UPDATE calls SET "end" = ?, duration = round(max(0.0, ? - start), 3), '
            "billsec = coalesce(round(max(0.0, ? - coalesce(?, answer)), 3), 0.0), "
            f"{sets} WHERE id = ?"
        )
        cursor = self._write(sql, [end, end, end, answer, *fields.values(), call_id])
        if cursor.rowcount != 1:
            raise KeyError(call_id)

    def get_call(self, call_id: str) -> CallRecord | None:
        """The CDR of ``call_id``, or None."""
        rows = list(self.db["calls"].rows_where("id = ?", [call_id]))
        return CallRecord.from_row(rows[0]) if rows else None

    def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        """The latest calls, newest first."""
        rows = self.db["calls"].rows_where(order_by="start DESC", limit=limit)
        return [CallRecord.from_row(row) for row in rows]

    # -- events ------------------------------------------------------------------------------

    def add_call_event(self, call_id: str, ts: float, type: str, data: dict[str, Any]) -> None:
        """Append an event to a call's timeline (``data`` is stored as JSON)."""
        self._write("INSERT INTO call_events (call_id, ts, type, data) VALUES (?, ?, ?, ?)",
                    (call_id, ts, type, _event_json(data)))

    def call_events(self, call_id: str) -> list[dict[str, Any]]:
        """A call's events in time order, ``data`` decoded."""
        rows = self.db["call_events"].rows_where(
            "call_id = ?", [call_id], order_by="ts, id", select="ts, type, data"
        )
        return [{**row, "data": json.loads(row["data"])} for row in rows]

    # -- registrations -----------------------------------------------------------------------

    def log_registration(
        self,
        *,
        ts: float,
        user: str,
        contact: str,
        source: str,
        expires: int,
        user_agent: str | None = None,
    ) -> None:
        """Record a REGISTER (``expires=0`` for an unregister)."""
        row = {"ts": ts, "user": user, "contact": contact, "source": source}
        row |= {"expires": expires, "user_agent": user_agent}
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO registrations (ts, user, contact, source, expires, user_agent) "
                "VALUES (:ts, :user, :contact, :source, :expires, :user_agent)",
                row,
            )

    def registrations(self, user: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest REGISTER log entries, newest first."""
        where, args = ("user = ?", [user]) if user is not None else (None, None)
        return list(
            self.db["registrations"].rows_where(
                where, args, order_by="ts DESC, id DESC", limit=limit
            )
        )

    # -- ACD ---------------------------------------------------------------------------------

    def log_queue(
        self,
        *,
        ts: float,
        queue: str,
        call_id: str,
        event: str,
        agent: str | None = None,
        position: int | None = None,
        wait: float | None = None,
        talk: float | None = None,
        hung_up_by: str | None = None,
        detail: str = "",
    ) -> None:
        """Append one queue log entry (times in seconds, rounded to milliseconds)."""
        row = (ts, queue, call_id, event, agent, position,
               None if wait is None else round(wait, 3), None if talk is None else round(talk, 3),
               hung_up_by, detail)
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO queue_log (ts, queue, call_id, event, agent, position, wait, talk, "
                "hung_up_by, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def log_agent_state(self, *, ts: float, agent: str, old: str, new: str, reason: str = "") -> None:
        """Append an agent state change."""
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO agent_states (ts, agent, old, new, reason) VALUES (?, ?, ?, ?, ?)",
                (ts, agent, old, new, reason),
            )

    def queue_log(
        self, *, queue: str | None = None, call_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Queue log entries in time order, optionally of one queue or one call."""
        clauses = [(c, v) for c, v in (("queue = ?", queue), ("call_id = ?", call_id)) if v]
        where = " AND ".join(c for c, _ in clauses) or None
        args = [v for _, v in clauses] or None
        return list(self.db["queue_log"].rows_where(where, args, order_by="ts, id", limit=limit))

    # -- dynamic queue members and the audit trail -------------------------------------------

    def queue_members(self) -> list[dict[str, Any]]:
        """The dynamic members, in the order they were added."""
        return list(self.db["queue_members"].rows_where(order_by="added_at, rowid"))

    def add_queue_member(self, *, queue: str, agent: str, penalty: int, tier: int,
                         added_by: str, added_at: float) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO queue_members (queue, agent, penalty, tier, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (queue, agent, penalty, tier, added_by, added_at))

    def remove_queue_member(self, queue: str, agent: str) -> bool:
        """False when it was not stored."""
        with self.db.conn:
            cursor = self.db.conn.execute(
                "DELETE FROM queue_members WHERE queue = ? AND agent = ?", (queue, agent))
        return cursor.rowcount > 0

    def api_users(self) -> list[dict[str, Any]]:
        """The users added by the API (``skills`` decoded), in the order they were added."""
        return [{**r, "skills": json.loads(r["skills"])}
                for r in self.db["users"].rows_where(order_by="added_at, rowid")]

    def add_api_user(self, *, user: str, password: str, role: str, name: str, added_by: str,
                     added_at: float) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO users (user, password, role, name, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (user, password, role, name, added_by, added_at))

    def change_api_user(self, user: str, **values: Any) -> None:
        """Replace the stored user's ``password``, ``role``, ``name``, ``skills`` (a dict) or
        ``web_password``."""
        if "skills" in values:
            values["skills"] = json.dumps(values["skills"], ensure_ascii=False)
        with self.db.conn:
            self.db.conn.execute(
                f"UPDATE users SET {', '.join(f'{k} = ?' for k in values)} WHERE user = ?",
                (*values.values(), user))

    def remove_api_user(self, user: str) -> bool:
        """False when it was not stored."""
        with self.db.conn:
            cursor = self.db.conn.execute("DELETE FROM users WHERE user = ?", (user,))
        return cursor.rowcount > 0

    def file_web_passwords(self) -> dict[str, str]:
        """The web passwords the API set for users of the config file, by user."""
        return dict(self.db.execute("SELECT user, web_password FROM file_web_passwords"))

    def set_file_web_password(self, user: str, web_password: str | None, *, by: str,
                              at: float) -> None:
        """Set (or with None forget) a file user's web password."""
        with self.db.conn:
            if web_password is None:
                self.db.conn.execute("DELETE FROM file_web_passwords WHERE user = ?", (user,))
            else:
                self.db.conn.execute(
                    "INSERT OR REPLACE INTO file_web_passwords (user, web_password, set_by, "
                    "set_at) VALUES (?, ?, ?, ?)", (user, web_password, by, at))

    def keep_file_web_passwords(self, users: Collection[str]) -> None:
        """Forget those of users the file no longer defines."""
        gone = self.file_web_passwords().keys() - set(users)
        with self.db.conn:
            self.db.conn.executemany("DELETE FROM file_web_passwords WHERE user = ?",
                                     [(u,) for u in gone])

    def api_queues(self) -> list[dict[str, Any]]:
        """The queues added by the API (``settings`` decoded), in the order they were added."""
        return [{**r, "settings": json.loads(r["settings"])}
                for r in self.db["queues"].rows_where(order_by="added_at, rowid")]

    def add_api_queue(self, *, name: str, settings: dict[str, Any], added_by: str,
                      added_at: float) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO queues (name, settings, added_by, added_at) VALUES (?, ?, ?, ?)",
                (name, json.dumps(settings, ensure_ascii=False), added_by, added_at))

    def change_api_queue(self, name: str, settings: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.conn.execute("UPDATE queues SET settings = ? WHERE name = ?",
                                 (json.dumps(settings, ensure_ascii=False), name))

    def change_queue_member(self, queue: str, agent: str, *, penalty: int, tier: int) -> bool:
        """False when it is not stored."""
        with self.db.conn:
            cursor = self.db.conn.execute(
                "UPDATE queue_members SET penalty = ?, tier = ? WHERE queue = ? AND agent = ?",
                (penalty, tier, queue, agent))
        return cursor.rowcount > 0

    def pause_reasons(self) -> list[dict[str, Any]]:
        """The pause reasons added by the API, in the order they were added."""
        return list(self.db["pause_reasons"].rows_where(order_by="added_at, rowid"))

    def add_pause_reason(self, *, code: str, name: str, added_by: str, added_at: float) -> None:
        with self.db.conn:
            self.db.conn.execute("INSERT INTO pause_reasons (code, name, added_by, added_at) "
                                 "VALUES (?, ?, ?, ?)", (code, name, added_by, added_at))

    def remove_pause_reason(self, code: str) -> bool:
        """False when it was not stored."""
        with self.db.conn:
            cursor = self.db.conn.execute("DELETE FROM pause_reasons WHERE code = ?", (code,))
        return cursor.rowcount > 0

    def remove_api_queue(self, name: str) -> bool:
        """False when it was not stored."""
        with self.db.conn:
            cursor = self.db.conn.execute("DELETE FROM queues WHERE name = ?", (name,))
        return cursor.rowcount > 0

    def log_audit(self, *, ts: float, who: str, action: str, object: str,
                  detail: dict[str, Any]) -> None:
        """Append who changed what, when."""
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO audit (ts, who, action, object, detail) VALUES (?, ?, ?, ?, ?)",
                (ts, who, action, object, json.dumps(detail, ensure_ascii=False)))

    def audit(self, limit: int = 1000, *, since: float | None = None) -> list[dict[str, Any]]:
        """The audit trail in time order (from ``since``, unix time), ``detail`` decoded."""
        where, args = ("ts >= ?", [since]) if since is not None else (None, None)
        rows = self.db["audit"].rows_where(where, args, order_by="ts, id", limit=limit)
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]

    def agent_presence(self) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, bool]]]:
        """What a restart restores: each agent's last state and its reason, and per queue
        whether the agent's last ``addmember``/``removemember`` row logged it in there."""
        last = {agent: (new, reason) for agent, new, reason in self.db.execute(
            "SELECT agent, new, reason FROM agent_states WHERE id IN "
            "(SELECT max(id) FROM agent_states GROUP BY agent)")}
        queues: dict[str, dict[str, bool]] = {}
        for agent, queue, event in self.db.execute(
                "SELECT agent, queue, event FROM queue_log WHERE id IN (SELECT max(id) FROM "
                "queue_log WHERE call_id = 'NONE' AND event IN ('addmember', 'removemember') "
                "GROUP BY agent, queue)"):
            queues.setdefault(agent, {})[queue] = event == "addmember"
        return last, queues

    def agent_states(self, agent: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Agent state changes in time order."""
        where, args = ("agent = ?", [agent]) if agent is not None else (None, None)
        return list(self.db["agent_states"].rows_where(where, args, order_by="ts, id",
                                                       limit=limit))
