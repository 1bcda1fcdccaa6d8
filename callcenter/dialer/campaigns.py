"""Campaigns, contacts, attempts and the do-not-call list, kept in SQLite (sqlite-utils).

A contact moves ``new -> dialing -> retry_at | done | dnc`` (``retry_at -> dialing`` again).
A contact with an ``owner`` (an agent-scheduled callback, see :mod:`callbacks`) is not offered
to the pooled dial modes (:meth:`CampaignStore.due`) but to its owner
(:meth:`CampaignStore.owned_due`) until the owner is released.
``dialing`` is set in the same transaction that inserts the attempt row, before the INVITE
leaves, so a crash leaves evidence: on the next start :meth:`CampaignStore.recover` closes
such attempts as ``interrupted`` and schedules the contact by the ``failed`` retry rule.
The decision after an attempt is the pure :func:`after_outcome`.

Tables (created if missing): ``campaigns`` (run state), ``contacts``, ``attempts``, ``dnc``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlite_utils

from callcenter.dialer.callbacks import Callback
from callcenter.dialer.compliance import CallingWindow, Outcome, RetryPolicy, RetryRule

if TYPE_CHECKING:
    from callcenter.config import Campaign

CONTACT_STATES = ("new", "dialing", "retry_at", "done", "dnc")
#: how an attempt ended; ``answered`` = a person reached an agent
OUTCOMES = ("answered", "busy", "no-answer", "machine", "abandoned", "failed", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,              -- running | paused
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    number TEXT NOT NULL,             -- E.164
    name TEXT NOT NULL DEFAULT '',
    timezone TEXT,                    -- IANA; NULL = from the number's country
    fields TEXT NOT NULL DEFAULT '{}',-- JSON: extra CSV columns, shown to the agent
    state TEXT NOT NULL DEFAULT 'new',-- new | dialing | retry_at | done | dnc
    next_at REAL,                     -- retry_at: unix time of the next try
    attempts INTEGER NOT NULL DEFAULT 0,
    retries TEXT NOT NULL DEFAULT '{}',-- JSON: retries used per outcome
    disposition TEXT,                 -- final outcome or the agent's disposition
    owner TEXT,                       -- callback for this agent only (NULL = anyone)
    callback_at REAL,                 -- the time an agent's disposition asked for
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (campaign, number)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts(campaign, state, next_at);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    contact_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    state TEXT NOT NULL,              -- dialing | done
    started REAL NOT NULL,            -- written before the INVITE leaves
    answered REAL,
    ended REAL,
    outcome TEXT,                     -- answered busy no-answer machine abandoned failed interrupted
    sip_status INTEGER,
    sip_call_id TEXT,
    call_id TEXT,                     -- calls.id
    agent TEXT,
    disposition TEXT,
    amd TEXT,                         -- human | machine | notsure
    amd_confidence REAL,
    message_left INTEGER,             -- 1: a message was left on the machine
    recording TEXT,                   -- path of the call's recording (campaign record: true)
    trunk TEXT                        -- the trunk that carried the call (after any failover)
);
CREATE INDEX IF NOT EXISTS attempts_contact ON attempts(contact_id);
CREATE INDEX IF NOT EXISTS attempts_campaign ON attempts(campaign, started);
CREATE INDEX IF NOT EXISTS attempts_agent ON attempts(agent, ended);
CREATE TABLE IF NOT EXISTS dnc (
    number TEXT NOT NULL,
    campaign TEXT NOT NULL DEFAULT '',-- '' = every campaign
    added REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (number, campaign)
);
"""

_DAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


# ------------------------------------------------------------------ pure rules


@dataclass(frozen=True, slots=True)
class Transition:
    """Where a contact goes after an attempt."""

    state: str  #: retry_at | done
    next_at: float | None
    disposition: str | None
    retries: dict[str, int]


def retry_policy(campaign: Campaign) -> RetryPolicy:
    """The campaign's retry rules as a :class:`RetryPolicy`."""
    return RetryPolicy({Outcome(k): RetryRule(v.max, v.delay) for k, v in campaign.retries.items()})


def after_outcome(
    outcome: str, retries: Mapping[str, int], policy: RetryPolicy, now: float
) -> Transition:
    """The contact's next state after an attempt ended with ``outcome`` (pure).

    ``answered`` is done (the agent's disposition may change it); ``interrupted`` (a restart
    cut the attempt) is retried like ``failed``, never at once.
    """
    if outcome == "answered":
        return Transition("done", None, "answered", dict(retries))
    rule = "failed" if outcome == "interrupted" else outcome
    used = int(retries.get(rule, 0))
    when = policy.next_attempt(Outcome(rule), used, now)
    if when is None:
        return Transition("done", None, outcome, dict(retries))
    return Transition("retry_at", when, None, {**retries, rule: used + 1})


def calling_window(campaign: Campaign) -> CallingWindow:
    """``hours`` (``{"mon-fri": "09:00-20:00"}``) and ``holidays`` as a :class:`CallingWindow`."""
    hours: dict[int, tuple[tuple[dt.time, dt.time], ...]] = {}
    for days, spans in campaign.hours.items():
        first, _, last = days.partition("-")
        a, b = _DAY_INDEX[first], _DAY_INDEX[last or first]
        ranges = tuple(
            (dt.time.fromisoformat(s.split("-")[0].strip()),
             _end_time(s.split("-")[1].strip()))
            for s in spans.split(",") if s.strip()
        )
        day = a
        while True:
            hours[day] = hours.get(day, ()) + ranges
            if day == b:
                break
            day = (day + 1) % 7
    return CallingWindow(hours=hours, holidays=frozenset(campaign.holidays))


def _end_time(text: str) -> dt.time:
    return dt.time.max if text == "24:00" else dt.time.fromisoformat(text)


# ------------------------------------------------------------------ the store


class CampaignStore:
    """The dialer's tables on a sqlite-utils database (the server's, or the CLI's)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.conn = db.conn
        self.conn.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a database from before them lacks."""
        added = {"attempts": (("message_left", "INTEGER"), ("recording", "TEXT"),
                              ("trunk", "TEXT")),
                 "contacts": (("owner", "TEXT"), ("callback_at", "REAL"))}
        for table, columns in added.items():
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns:
                if name not in have:
                    with self.conn:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @classmethod
    def open(cls, path: str) -> CampaignStore:
        db = sqlite_utils.Database(path)
        db.enable_wal()
        db.execute("PRAGMA busy_timeout=5000")
        return cls(db)

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- campaigns ------------------------------------------------------------------------

    def state(self, campaign: str) -> str | None:
        row = self.conn.execute("SELECT state FROM campaigns WHERE name = ?", (campaign,)).fetchone()
        return row[0] if row else None

    def set_state(self, campaign: str, state: str, *, only_if_new: bool = False) -> None:
        """``running`` or ``paused``; ``only_if_new`` keeps a state already stored."""
        verb = "INSERT OR IGNORE" if only_if_new else "INSERT OR REPLACE"
        with self.conn:
            self.conn.execute(f"{verb} INTO campaigns (name, state, updated) VALUES (?, ?, ?)",
                              (campaign, state, time.time()))

    # -- contacts -------------------------------------------------------------------------

    def upsert_contacts(self, campaign: str, contacts: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Insert contacts (number, name, timezone, fields); a number already in the campaign is
        merged (fields added, name/timezone filled). Returns (added, merged)."""
        added = merged = 0
        now = time.time()
        with self.conn:
            for c in contacts:
                row = self.conn.execute(
                    "SELECT id, name, timezone, fields FROM contacts WHERE campaign = ? AND "
                    "number = ?", (campaign, c["number"])).fetchone()
                if row is None:
                    self.conn.execute(
                        "INSERT INTO contacts (campaign, number, name, timezone, fields, state, "
                        "created, updated) VALUES (?, ?, ?, ?, ?, 'new', ?, ?)",
                        (campaign, c["number"], c.get("name") or "", c.get("timezone"),
                         json.dumps(c.get("fields") or {}, ensure_ascii=False), now, now))
                    added += 1
                else:
                    fields = {**json.loads(row[3]), **(c.get("fields") or {})}
                    self.conn.execute(
                        "UPDATE contacts SET name = ?, timezone = ?, fields = ?, updated = ? "
                        "WHERE id = ?",
                        (row[1] or c.get("name") or "", row[2] or c.get("timezone"),
                         json.dumps(fields, ensure_ascii=False), now, row[0]))
                    merged += 1
        return added, merged

    def contact(self, contact_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM contacts WHERE id = ?", contact_id)
        return rows[0] if rows else None

    def contacts(self, campaign: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM contacts WHERE campaign = ? ORDER BY id", campaign)

    def due(self, campaign: str, now: float, limit: int) -> list[dict[str, Any]]:
        """Contacts anyone may be dialled for now (before the window and DNC checks): due
        callbacks an agent scheduled first (they are appointments), then oldest first;
        callbacks owned by one agent are not among them."""
        return self._rows(
            "SELECT * FROM contacts WHERE campaign = ? AND owner IS NULL AND (state = 'new' OR "
            "(state = 'retry_at' AND next_at <= ?)) ORDER BY callback_at IS NULL, "
            "coalesce(next_at, 0), id LIMIT ?", campaign, now, limit)

    def owned_due(self, campaign: str, now: float) -> list[dict[str, Any]]:
        """Callbacks for one agent whose time has come, oldest first."""
        return self._rows(
            "SELECT * FROM contacts WHERE campaign = ? AND owner IS NOT NULL AND state IN "
            "('new', 'retry_at') AND coalesce(next_at, 0) <= ? ORDER BY coalesce(next_at, 0), "
            "id", campaign, now)

    def callbacks(self, campaign: str) -> list[dict[str, Any]]:
        """Callbacks scheduled by agents and not yet dialled (with or without an owner)."""
        return self._rows(
            "SELECT id, number, name, owner, callback_at, next_at FROM contacts WHERE "
            "campaign = ? AND callback_at IS NOT NULL AND state IN ('new', 'retry_at') "
            "ORDER BY next_at, id", campaign)

    def release_owner(self, contact_id: int, now: float | None = None) -> bool:
        """The owner did not come in time: anyone may take the callback. False if it had none
        (or is being dialled)."""
        now = time.time() if now is None else now
        with self.conn:
            cur = self.conn.execute(
                "UPDATE contacts SET owner = NULL, updated = ? WHERE id = ? AND owner IS NOT NULL "
                "AND state != 'dialing'", (now, contact_id))
        return cur.rowcount == 1

    def mark_dnc(self, contact_id: int, reason: str = "dnc") -> None:
        with self.conn:
            self.conn.execute("UPDATE contacts SET state = 'dnc', disposition = ?, next_at = NULL, "
                              "updated = ? WHERE id = ?", (reason, time.time(), contact_id))

    # -- attempts -------------------------------------------------------------------------

    def begin_attempt(self, contact: dict[str, Any], now: float | None = None) -> int:
        """Write the attempt and set the contact ``dialing``: call before the INVITE leaves."""
        now = time.time() if now is None else now
        with self.conn:
            cur = self.conn.execute(
                "UPDATE contacts SET state = 'dialing', attempts = attempts + 1, next_at = NULL, "
                "updated = ? WHERE id = ? AND state IN ('new', 'retry_at')", (now, contact["id"]))
            if cur.rowcount != 1:
                raise ValueError(f"contact {contact['id']} is not dialable")
            cur = self.conn.execute(
                "INSERT INTO attempts (campaign, contact_id, number, state, started) "
                "VALUES (?, ?, ?, 'dialing', ?)",
                (contact["campaign"], contact["id"], contact["number"], now))
            return int(cur.lastrowid or 0)

    def set_call_ids(self, attempt_id: int, sip_call_id: str, call_id: str,
                     trunk: str | None = None) -> None:
        with self.conn:
            self.conn.execute("UPDATE attempts SET sip_call_id = ?, call_id = ?, trunk = ? "
                              "WHERE id = ?", (sip_call_id, call_id, trunk, attempt_id))

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.conn:
            self.conn.execute(f"UPDATE attempts SET {cols} WHERE id = ?",
                              (*fields.values(), attempt_id))

    def attempt(self, attempt_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM attempts WHERE id = ?", attempt_id)
        return rows[0] if rows else None

    def attempts(self, campaign: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM attempts WHERE campaign = ? ORDER BY id", campaign)

    def recent_attempts(self, campaign: str, contact_id: int | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """Attempts of ``campaign`` (of one contact), newest first."""
        if contact_id is None:
            return self._rows("SELECT * FROM attempts WHERE campaign = ? ORDER BY id DESC "
                              "LIMIT ?", campaign, limit)
        return self._rows("SELECT * FROM attempts WHERE campaign = ? AND contact_id = ? "
                          "ORDER BY id DESC LIMIT ?", campaign, contact_id, limit)

    def finish_attempt(
        self, attempt_id: int, outcome: str, policy: RetryPolicy, now: float | None = None,
        **fields: Any,
    ) -> Transition:
        """Close the attempt with ``outcome`` and move its contact by :func:`after_outcome`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = time.time() if now is None else now
        attempt = self.attempt(attempt_id)
        if attempt is None:
            raise KeyError(attempt_id)
        contact = self.contact(attempt["contact_id"])
        assert contact is not None
        move = after_outcome(outcome, json.loads(contact["retries"]), policy, now)
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.conn:
            self.conn.execute(
                f"UPDATE attempts SET state = 'done', outcome = ?, ended = ?{', ' if cols else ''}"
                f"{cols} WHERE id = ?", (outcome, now, *fields.values(), attempt_id))
            if contact["state"] == "dialing":  # the owner stays for a retry, not when done
                self.conn.execute(
                    "UPDATE contacts SET state = ?, next_at = ?, disposition = ?, retries = ?, "
                    "owner = CASE WHEN ? = 'done' THEN NULL ELSE owner END, "
                    "callback_at = CASE WHEN ? = 'done' THEN NULL ELSE callback_at END, "
                    "updated = ? WHERE id = ?",
                    (move.state, move.next_at, move.disposition, json.dumps(move.retries),
                     move.state, move.state, now, contact["id"]))
        return move

    def recover(self, campaign: Campaign, now: float | None = None) -> list[int]:
        """After a crash: attempts left ``dialing`` become ``interrupted``; their contacts are
        scheduled by the retry rules (never redialled at once). Returns the attempt ids."""
        now = time.time() if now is None else now
        policy = retry_policy(campaign)
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM attempts WHERE campaign = ? AND state = 'dialing'", (campaign.name,))]
        for attempt_id in ids:
            self.finish_attempt(attempt_id, "interrupted", policy, now)
        with self.conn:  # a contact left dialing without an open attempt (cannot happen)
            self.conn.execute(
                "UPDATE contacts SET state = 'retry_at', next_at = ? WHERE campaign = ? AND "
                "state = 'dialing' AND id NOT IN (SELECT contact_id FROM attempts WHERE "
                "state = 'dialing')", (now + 60, campaign.name))
        return ids

    def last_attempt_of_agent(self, agent: str, since: float) -> dict[str, Any] | None:
        """The latest answered campaign attempt the agent took (for ``*5<code>``)."""
        rows = self._rows("SELECT * FROM attempts WHERE agent = ? AND coalesce(ended, started) >= ?"
                          " ORDER BY id DESC LIMIT 1", agent, since)
        return rows[0] if rows else None

    def dispose(
        self, attempt_id: int, code: str, name: str, *, final: bool, dnc: bool, retry: float,
        callback: Callback | None = None, now: float | None = None,
    ) -> dict[str, Any]:
        """The agent's disposition: stored with the attempt; final ones close the contact,
        ``dnc`` adds the number to the campaign's do-not-call list; others call again after
        ``retry`` seconds, or at ``callback.at`` for ``callback.owner`` (None: anyone).
        Returns the contact."""
        now = time.time() if now is None else now
        attempt = self.attempt(attempt_id)
        if attempt is None:
            raise KeyError(attempt_id)
        with self.conn:
            self.conn.execute("UPDATE attempts SET disposition = ? WHERE id = ?",
                              (name, attempt_id))
            owner = callback_at = None
            if dnc:
                state, next_at = "dnc", None
                self.conn.execute("INSERT OR REPLACE INTO dnc (number, campaign, added, reason) "
                                  "VALUES (?, ?, ?, ?)",
                                  (attempt["number"], attempt["campaign"], now,
                                   f"disposition {code}"))
            elif final:
                state, next_at = "done", None
            elif callback is not None:
                state, next_at = "retry_at", callback.at
                owner, callback_at = callback.owner, callback.at
            else:
                state, next_at = "retry_at", now + retry
            self.conn.execute(
                "UPDATE contacts SET state = ?, next_at = ?, disposition = ?, owner = ?, "
                "callback_at = ?, updated = ? WHERE id = ? AND state != 'dialing'",
                (state, next_at, name, owner, callback_at, now, attempt["contact_id"]))
        contact = self.contact(attempt["contact_id"])
        assert contact is not None
        return contact

    # -- do not call ----------------------------------------------------------------------

    def add_dnc(self, number: str, campaign: str = "", reason: str = "") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO dnc (number, campaign, added, reason) "
                              "VALUES (?, ?, ?, ?)", (number, campaign, time.time(), reason))

    def is_dnc(self, number: str, campaign: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM dnc WHERE number = ? AND campaign IN ('', ?)",
                                (number, campaign)).fetchone()
        return row is not None

    # -- figures --------------------------------------------------------------------------

    def person_answers(self, campaign: str, since: float) -> list[tuple[float, bool, str]]:
        """(time, abandoned, number) of calls a person answered since ``since``."""
        return [(float(r[0]), r[1] == "abandoned", r[2]) for r in self.conn.execute(
            "SELECT coalesce(answered, ended), outcome, number FROM attempts WHERE campaign = ? "
            "AND outcome IN ('answered', 'abandoned') AND coalesce(answered, ended) >= ?",
            (campaign, since))]

    def progress(self, campaign: str) -> dict[str, Any]:
        """Contacts by state, dials and outcomes of one campaign."""
        states = dict.fromkeys(CONTACT_STATES, 0)
        for state, n in self.conn.execute(
                "SELECT state, count(*) FROM contacts WHERE campaign = ? GROUP BY state",
                (campaign,)):
            states[state] = n
        outcomes = dict.fromkeys(OUTCOMES, 0)
        dials = 0
        for outcome, n in self.conn.execute(
                "SELECT outcome, count(*) FROM attempts WHERE campaign = ? GROUP BY outcome",
                (campaign,)):
            dials += n
            if outcome is not None:
                outcomes[outcome] = n
        dispositions = dict(self.conn.execute(
            "SELECT disposition, count(*) FROM contacts WHERE campaign = ? AND disposition IS "
            "NOT NULL GROUP BY disposition", (campaign,)).fetchall())
        return {"contacts": states, "total": sum(states.values()), "dials": dials,
                "outcomes": outcomes, "dispositions": dispositions}
