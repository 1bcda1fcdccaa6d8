"""Customers: one record per person or company, its numbers (E.164), e-mails and free fields,
and one timeline of every contact built from the tables the other components write.

Numbers are normalised by the ``normalize(raw, country)`` the owner hands in (``phonenumbers``
lives above the store), so ``0048 22 123 45 67``, ``+48221234567`` and ``221234567`` are one
person. An inbound call is linked to its customer when it starts (``customer_calls``); campaign
attempts and contacts are found by their E.164 number, callbacks by their call or number. A
merge moves everything to one record and leaves the other redirecting to it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

#: ``normalize(raw, country)``: the E.164 form of a number, None when it is not one
Normalize = Callable[[str, str], str | None]

#: what an erased number becomes in CDRs, events, logs and campaign rows
ERASED = "erased"
#: a free field's name that callers may identify by (an index is made for it)
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CustomerError(ValueError):
    """Bad input (a number that is none, an unknown field); the API answers 400."""


class CustomerConflict(CustomerError):
    """A number already belongs to another customer; the API answers 409."""


class CustomerStore:
    def __init__(self, db: sqlite_utils.Database, normalize: Normalize,
                 country: str = "PL", spellings: Callable[[str], Iterable[str]] = lambda n: ()
                 ) -> None:
        self.db = db
        self.normalize = normalize
        self.spellings = spellings  #: the other ways an E.164 number is written (erase)
        self.country = country  #: of national numbers given without a trunk (the API)
        self._indexed: set[str] = set()

    # -- numbers -----------------------------------------------------------------------------

    def e164(self, raw: str, country: str | None = None) -> str | None:
        return self.normalize(raw, country or self.country)

    def _numbers(self, raws: Iterable[Any]) -> list[str]:
        out = []
        for raw in raws:
            number = self.e164(str(raw)) if isinstance(raw, (str, int)) else None
            if number is None:
                raise CustomerError(f"not a phone number: {raw!r}")
            out.append(number)
        return list(dict.fromkeys(out))

    def _q(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.db.conn.execute(sql, list(args)).fetchall())

    def _has(self, table: str) -> bool:
        return bool(self.db[table].exists())

    # -- records -----------------------------------------------------------------------------

    def resolve(self, id: int) -> int | None:
        """The record ``id`` is now (following merges), or None."""
        for _ in range(64):  # merges form chains, never loops; the bound is a guard
            row = self._q("SELECT merged_into FROM customers WHERE id = ?", [id])
            if not row:
                return None
            if row[0][0] is None:
                return id
            id = int(row[0][0])
        return None

    def get(self, id: int) -> dict[str, Any] | None:
        """The record (merged ids give the record they became), or None."""
        found = self.resolve(id)
        if found is None:
            return None
        row = self.db.conn.execute(
            "SELECT id, name, crm_id, fields, created, updated FROM customers WHERE id = ?",
            [found]).fetchone()
        return {
            "id": row[0], "name": row[1], "crm_id": row[2], "fields": json.loads(row[3]),
            "numbers": [r[0] for r in self._q("SELECT number FROM customer_numbers WHERE "
                                              "customer_id = ? ORDER BY rowid", [found])],
            "emails": [r[0] for r in self._q("SELECT email FROM customer_emails WHERE "
                                             "customer_id = ? ORDER BY rowid", [found])],
            "merged": [r[0] for r in self._q(
                "SELECT id FROM customers WHERE merged_into = ? ORDER BY id", [found])],
            "created": row[4], "updated": row[5],
        }

    def by_number(self, raw: str, country: str | None = None) -> dict[str, Any] | None:
        number = self.e164(raw, country)
        row = self._q("SELECT customer_id FROM customer_numbers WHERE number = ?", [number])
        return self.get(row[0][0]) if row else None

    def search(self, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Records whose name, e-mail, CRM id or a field value contains ``q`` (any case)."""
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._q(
            "SELECT id FROM customers c WHERE merged_into IS NULL AND (lower(name) LIKE ?1 "
            "ESCAPE '\\' OR lower(crm_id) LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM "
            "json_each(c.fields) WHERE lower(json_each.value) LIKE ?1 ESCAPE '\\') OR EXISTS "
            "(SELECT 1 FROM customer_emails e WHERE e.customer_id = c.id AND e.email LIKE ?1 "
            "ESCAPE '\\')) ORDER BY updated DESC LIMIT ?2", [like, limit])
        return [c for (id,) in rows if (c := self.get(id)) is not None]

    def create(self, *, now: float, name: str = "", numbers: Iterable[Any] = (),
               emails: Iterable[Any] = (), crm_id: str | None = None,
               fields: dict[str, Any] | None = None) -> int:
        """A new record; CustomerConflict if one of ``numbers`` is someone else's."""
        e164 = self._numbers(numbers)
        with self.db.conn:
            cur = self.db.conn.execute(
                "INSERT INTO customers (name, crm_id, fields, created, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                [name, crm_id, json.dumps(_fields(fields or {}, {}), ensure_ascii=False), now, now])
            id = int(cur.lastrowid or 0)
            self._add_numbers(id, e164)
            self._set_emails(id, emails)
        return id

    def update(self, id: int, *, now: float, name: str | None = None,
               crm_id: str | None = None, numbers: Iterable[Any] | None = None,
               emails: Iterable[Any] | None = None, fields: dict[str, Any] | None = None) -> None:
        """Change what is given: ``numbers``/``emails`` replace the lists, ``fields`` are
        merged (a null value removes the field)."""
        e164 = None if numbers is None else self._numbers(numbers)
        with self.db.conn:
            (old,) = self.db.conn.execute("SELECT fields FROM customers WHERE id = ?",
                                          [id]).fetchone()
            sets: dict[str, Any] = {"updated": now}
            if name is not None:
                sets["name"] = name
            if crm_id is not None:
                sets["crm_id"] = crm_id or None
            if fields is not None:
                sets["fields"] = json.dumps(_fields(fields, json.loads(old)), ensure_ascii=False)
            self.db.conn.execute(
                "UPDATE customers SET " + ", ".join(f"{k} = ?" for k in sets) + " WHERE id = ?",
                [*sets.values(), id])
            if e164 is not None:
                self.db.conn.execute("DELETE FROM customer_numbers WHERE customer_id = ?", [id])
                self._add_numbers(id, e164)
            if emails is not None:
                self._set_emails(id, emails)

    def _add_numbers(self, id: int, numbers: list[str]) -> None:
        for number in numbers:
            row = self._q("SELECT customer_id FROM customer_numbers WHERE number = ?", [number])
            if row and row[0][0] != id:
                raise CustomerConflict(f"{number} belongs to customer {row[0][0]}")
            self.db.conn.execute("INSERT OR IGNORE INTO customer_numbers VALUES (?, ?)",
                                 [number, id])

    def _set_emails(self, id: int, emails: Iterable[Any]) -> None:
        self.db.conn.execute("DELETE FROM customer_emails WHERE customer_id = ?", [id])
        for email in emails:
            if not isinstance(email, str) or "@" not in email.strip(" @"):
                raise CustomerError(f"not an e-mail address: {email!r}")
            self.db.conn.execute("INSERT OR IGNORE INTO customer_emails VALUES (?, ?)",
                                 [email.strip().lower(), id])

    def merge(self, into: int, source: int, *, now: float) -> None:
        """Move ``source``'s numbers, e-mails, calls and notes to ``into``; its name, CRM id
        and fields fill what ``into`` lacks; ``source`` then redirects to ``into``."""
        a, b = self.get(into), self.get(source)
        if a is None or b is None or a["id"] == b["id"]:
            raise CustomerError("merge needs two different customers")
        into, source = a["id"], b["id"]
        with self.db.conn:
            for table in ("customer_numbers", "customer_calls", "customer_notes"):
                self.db.conn.execute(f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?",
                                     [into, source])
            self.db.conn.execute("UPDATE OR IGNORE customer_emails SET customer_id = ? "
                                 "WHERE customer_id = ?", [into, source])
            self.db.conn.execute("DELETE FROM customer_emails WHERE customer_id = ?", [source])
            self.db.conn.execute(
                "UPDATE customers SET name = ?, crm_id = ?, fields = ?, updated = ? WHERE id = ?",
                [a["name"] or b["name"], a["crm_id"] or b["crm_id"],
                 json.dumps(b["fields"] | a["fields"], ensure_ascii=False), now, into])
            self.db.conn.execute("UPDATE customers SET merged_into = ?, updated = ? "
                                 "WHERE id = ? OR merged_into = ?", [into, now, source, source])

    def import_csv(self, text: str, *, now: float) -> dict[str, Any]:
        """Create or enrich customers from CSV (comma or semicolon): columns ``name``,
        ``number``/``numbers`` and ``email``/``emails`` (several separated by ``|``),
        ``crm_id``, any other column a free field. A row updates the record of its CRM id,
        else of its first known number, else creates one. Bad rows are reported by line."""
        try:
            dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        report: dict[str, Any] = {"rows": 0, "created": 0, "updated": 0, "rejected": []}
        for row in reader:
            report["rows"] += 1
            cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()
                     if isinstance(v, str)}
            numbers, emails = ([x for x in f"{cells.pop(k + 's', '')}|{cells.pop(k, '')}"
                                .split("|") if x.strip()] for k in ("number", "email"))
            name, crm_id = cells.pop("name", ""), cells.pop("crm_id", "")
            fields = {k: v for k, v in cells.items() if k and v}
            try:
                e164 = self._numbers(numbers)
                if not (name or crm_id or e164):
                    raise CustomerError("no name, number or crm_id")
                found = self._q("SELECT id FROM customers WHERE crm_id = ? AND merged_into "
                                "IS NULL", [crm_id]) if crm_id else []
                found = found or [r for n in e164[:1] for r in self._q(
                    "SELECT customer_id FROM customer_numbers WHERE number = ?", [n])]
                if found:
                    id = int(found[0][0])
                    old = self.get(id)
                    assert old is not None
                    self.update(id, now=now, name=name or None, crm_id=crm_id or None,
                                fields=fields, numbers=list(dict.fromkeys(old["numbers"] + e164)),
                                emails=list(dict.fromkeys(old["emails"] + emails)))
                    report["updated"] += 1
                else:
                    self.create(now=now, name=name, numbers=e164, emails=emails,
                                crm_id=crm_id or None, fields=fields)
                    report["created"] += 1
            except CustomerError as exc:
                report["rejected"].append({"line": reader.line_num, "reason": str(exc)})
        return report

    # -- recognition -------------------------------------------------------------------------

    def recognise(self, call_id: str, caller: str, *, now: float,
                  country: str | None = None) -> tuple[int, bool] | None:
        """Link a call to the customer of its caller ID, creating the record on the first
        contact: (id, created). None when the caller ID is no phone number (anonymous)."""
        number = self.e164(caller, country)
        if number is None:
            return None
        row = self._q("SELECT customer_id FROM customer_numbers WHERE number = ?", [number])
        created = not row
        id = self.create(now=now, numbers=[number]) if created else int(row[0][0])
        with self.db.conn:
            self.db.conn.execute("INSERT OR IGNORE INTO customer_calls VALUES (?, ?, ?, ?)",
                                 [call_id, id, number, int(created)])
        return id, created

    def attach(self, call_id: str, id: int) -> None:
        """Link a call to a customer the caller identified as (e.g. by account number)."""
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO customer_calls VALUES (?, ?, '', 0) ON CONFLICT(call_id) DO UPDATE "
                "SET customer_id = excluded.customer_id, created = 0", [call_id, id])

    def identify(self, call_id: str, field: str, value: str, *, now: float) -> int | None:
        """The caller gave ``value`` of the free field ``field`` (e.g. an account number): the
        call joins that customer, and a record this call created (a new number) merges into
        it. None when no one (or more than one) has that value."""
        self.index_field(field)
        same = [value, int(value)] if value.isdigit() and str(int(value)) == value else [value]
        rows = self._q(
            f"SELECT id FROM customers WHERE json_extract(fields, '$.\"{field}\"') IN "
            f"({','.join('?' * len(same))}) AND +merged_into IS NULL LIMIT 2", same)  # the field's index
        if len(rows) != 1:
            return None
        id = int(rows[0][0])
        link = self.of_call(call_id)
        if link is not None and link[1] and link[0] != id:
            self.merge(id, link[0], now=now)  # the new number joins the customer
        self.attach(call_id, id)
        return id

    def index_field(self, field: str) -> None:
        """An index on the free field ``field`` (the server makes the dialplan's at start:
        with a million customers it takes a few seconds, once)."""
        if field in self._indexed:
            return
        if not FIELD_NAME.fullmatch(field):
            raise CustomerError(f"bad field name {field!r}")
        with self.db.conn:
            self.db.conn.execute(f'CREATE INDEX IF NOT EXISTS "customers_field_{field}" ON '
                                 f"customers(json_extract(fields, '$.\"{field}\"'))")
        self._indexed.add(field)

    def of_call(self, call_id: str) -> tuple[int, bool] | None:
        """The customer a call was linked to, and whether that call created the record."""
        row = self._q("SELECT customer_id, created FROM customer_calls WHERE call_id = ?",
                      [call_id])
        return (int(row[0][0]), bool(row[0][1])) if row else None

    def card(self, call_id: str, now: float, number: str = "") -> dict[str, Any] | None:
        """What the IVR and the agent see of a call's customer: the record, whether it was
        known before this call, open callbacks, the last agent and days since the last
        earlier contact (counted from the call's start in its CDR, the time base of the
        other contacts, else from ``now``). A call not linked is looked up by ``number``."""
        link = self.of_call(call_id)
        if link is None and number and (found := self.by_number(number)) is not None:
            link = (found["id"], False)
        start = self._q("SELECT start FROM calls WHERE id = ?", [call_id])
        now = start[0][0] if start else now
        customer = self.get(link[0]) if link else None
        if link is None or customer is None:
            return None
        id = customer["id"]
        earlier = self._q(
            "SELECT c.start, (SELECT agent FROM (SELECT ts, json_extract(data, '$.agent') AS "
            "agent FROM call_events WHERE call_id = c.id AND type = 'connected' UNION ALL "
            "SELECT ts, agent FROM queue_log WHERE call_id = c.id AND event = 'connect') "
            "ORDER BY ts DESC LIMIT 1) FROM calls c JOIN customer_calls l ON l.call_id = c.id "
            "WHERE l.customer_id = ? AND c.id != ? ORDER BY c.start DESC LIMIT 50", [id, call_id])
        contacts = [(at, agent) for at, agent in earlier]
        if self._has("attempts"):
            contacts += self._q(
                "SELECT started, agent FROM attempts WHERE number IN (SELECT number FROM "
                "customer_numbers WHERE customer_id = ?) ORDER BY started DESC LIMIT 50", [id])
        contacts.sort(key=lambda c: -c[0])
        last_at = contacts[0][0] if contacts else None
        return {
            **customer, "known": not link[1] or bool(contacts),
            "open_callbacks": self._open_callbacks(id),
            "last_agent": next((agent for _, agent in contacts if agent), ""),
            "last_contact_days": None if last_at is None else
            max(0, math.floor((now - last_at) / 86400)),
        }

    def pop(self, call_id: str, now: float, number: str = "") -> tuple[
            dict[str, Any] | None, list[dict[str, Any]]]:
        """The screen pop's card of a call's customer (see :meth:`card`) and their latest
        contacts, this call among them (its IVR path and typed digits) even when older."""
        card = self.card(call_id, now, number=number)
        if card is None:
            return None, []
        recent = self.timeline(card["id"], limit=5)
        if call_id and not any(i["call_id"] == call_id and i["kind"] in ("call", "outbound")
                               for i in recent):
            recent = [self._call_item(c) for c in self._rows(
                "SELECT * FROM calls WHERE id = ?", [call_id])] + recent
        return card, recent

    def _open_callbacks(self, id: int) -> int:
        if not self._has("callbacks"):
            return 0
        return int(self._q(
            f"SELECT count(*) FROM callbacks WHERE status IN ('open', 'dialing') AND {_CB}",
            [id, id])[0][0])

    # -- notes and the timeline --------------------------------------------------------------

    def add_note(self, id: int, *, text: str, author: str, now: float,
                 call_id: str | None = None) -> int:
        with self.db.conn:
            cur = self.db.conn.execute(
                "INSERT INTO customer_notes (customer_id, ts, author, text, call_id) "
                "VALUES (?, ?, ?, ?, ?)", [id, now, author, text, call_id])
        return int(cur.lastrowid or 0)

    def timeline(self, id: int, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Every contact, newest first: ``channel``, ``kind``, ``at`` (unix time),
        ``call_id`` where there is one, and what happened."""
        n = offset + limit  # each source gives its newest n; the merge is cut to the page
        items = [self._call_item(row) for row in self._rows(
            "SELECT c.* FROM calls c JOIN customer_calls l ON l.call_id = c.id "
            "WHERE l.customer_id = ? ORDER BY c.start DESC LIMIT ?", [id, n])]
        items += [{"channel": "agent", "kind": "note", "at": r["ts"], "call_id": r["call_id"],
                   "id": r["id"], "author": r["author"], "text": r["text"]}
                  for r in self._rows("SELECT * FROM customer_notes WHERE customer_id = ? "
                                      "ORDER BY ts DESC LIMIT ?", [id, n])]
        if self._has("callbacks"):
            for r in self._rows(f"SELECT * FROM callbacks WHERE {_CB} ORDER BY entered DESC "
                                "LIMIT ?", [id, id, n]):
                attempts = self._rows("SELECT agent, started, ended, outcome, sip_status FROM "
                                      "callback_attempts WHERE callback_id = ? ORDER BY id",
                                      [r["id"]]) if self._has("callback_attempts") else []
                items.append({"channel": "phone", "kind": "callback", "at": r["entered"],
                              "call_id": r["call_id"] or None, "id": r["id"], "queue": r["queue"],
                              "status": r["status"], "outcome": r["outcome"],
                              "agent": r["agent"], "attempts": attempts})
        if self._has("attempts"):
            items += [{"channel": "phone", "kind": "campaign", "at": r["started"],
                       "call_id": r["call_id"], "campaign": r["campaign"],
                       "outcome": r["outcome"], "agent": r["agent"],
                       "disposition": r["disposition"], "answered": r["answered"],
                       "ended": r["ended"]}
                      for r in self._rows(
                          "SELECT * FROM attempts WHERE number IN (SELECT number FROM "
                          "customer_numbers WHERE customer_id = ?) ORDER BY started DESC "
                          "LIMIT ?", [id, n])]
        items.sort(key=lambda item: -(item["at"] or 0))
        return items[offset:offset + limit]

    def _rows(self, sql: str, args: Iterable[Any]) -> list[dict[str, Any]]:
        cur = self.db.conn.execute(sql, list(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _call_item(self, c: dict[str, Any]) -> dict[str, Any]:
        """One call: the IVR path and what was typed, the queue, wait, agent and talk."""
        events = self._rows("SELECT type, data FROM call_events WHERE call_id = ? ORDER BY ts, id",
                            [c["id"]])
        data = [(e["type"], json.loads(e["data"])) for e in events]
        queue = self._rows("SELECT queue, event, agent, wait, talk FROM queue_log WHERE "
                           "call_id = ? ORDER BY ts, id", [c["id"]])
        done = next((q for q in reversed(queue) if q["event"] != "enter"), None)
        item = {
            "channel": "phone", "kind": "call" if c["direction"] != "outbound" else "outbound",
            "at": c["start"], "call_id": c["id"], "direction": c["direction"],
            "caller": c["caller"], "called": c["called"], "line": c["line"],
            "answer": c["answer"], "end": c["end"], "duration": c["duration"],
            "hangup_cause": c["hangup_cause"], "recording": c["recording"],
            "disposition": c["disposition"],
            "ivr_path": [d["node"] for t, d in data if t == "ivr_node"],
            "ivr_choices": [{"node": d["node"], "key": d["key"]} for t, d in data
                            if t == "ivr_choice"],
            "collected": {d["variable"]: d.get("value", "") for t, d in data
                          if t == "ivr_collected"},
            "agents": list(dict.fromkeys([d["agent"] for t, d in data if t == "connected"] + [
                q["agent"] for q in queue if q["event"] == "connect"])),
            "transfers": [d for t, d in data if t == "transferred"],
            "queue": done["queue"] if done else (queue[0]["queue"] if queue else None),
            "queue_result": done["event"] if done else None,
            "wait": done["wait"] if done else None,
            "agent": next((q["agent"] for q in queue if q["agent"]), None),
            "talk": next((q["talk"] for q in queue if q["talk"] is not None), None),
        }
        for table, column, key in (("surveys", "rating", "rating"),
                                   ("voicemails", "path", "voicemail")):
            if self._has(table):
                row = self._q(f"SELECT {column} FROM {table} WHERE call_id = ?", [c["id"]])
                item[key] = row[0][0] if row else None
        return item

    # -- GDPR: export and erase --------------------------------------------------------------

    def export(self, id: int) -> dict[str, Any] | None:
        """Everything about the customer as one document (files as paths)."""
        customer = self.get(id)
        if customer is None:
            return None
        id = customer["id"]
        tl = self.timeline(id, limit=1_000_000)
        calls = [i["call_id"] for i in tl if i["kind"] in ("call", "outbound")]
        return {
            "customer": customer, "timeline": tl,
            "call_events": {c: [{**e, "data": json.loads(e["data"])} for e in self._rows(
                "SELECT ts, type, data FROM call_events WHERE call_id = ? ORDER BY ts, id", [c])]
                for c in calls},
            "campaign_contacts": self._rows(
                "SELECT * FROM contacts WHERE number IN (SELECT number FROM customer_numbers "
                "WHERE customer_id = ?)", [id]) if self._has("contacts") else [],
            "files": self.files(id),
        }

    def _call_ids(self, id: int) -> list[str]:
        ids = [r[0] for r in self._q("SELECT call_id FROM customer_calls WHERE customer_id = ?",
                                     [id])]
        if self._has("attempts"):
            ids += [r[0] for r in self._q(
                "SELECT call_id FROM attempts WHERE call_id IS NOT NULL AND number IN (SELECT "
                "number FROM customer_numbers WHERE customer_id = ?)", [id])]
        return ids

    def files(self, id: int) -> list[str]:
        """Recordings and voicemails of the customer's calls."""
        calls = self._call_ids(id)
        marks = ",".join("?" * len(calls))
        files = [r[0] for r in self._q(
            f"SELECT recording FROM calls WHERE recording IS NOT NULL AND id IN ({marks})", calls)]
        for table, column in (("voicemails", "path"), ("attempts", "recording")):
            if self._has(table):
                files += [r[0] for r in self._q(
                    f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND "
                    f"call_id IN ({marks})", calls)]
        return list(dict.fromkeys(files))

    def number_forms(self, id: int) -> set[str]:
        """Every way the customer's numbers were written: E.164, its spellings and the raw
        caller IDs (or numbers called) of their calls."""
        customer = self.get(id)
        if customer is None:
            return set()
        calls = self._call_ids(customer["id"])
        marks = ",".join("?" * len(calls))
        forms = set(customer["numbers"]) | {r[0] for r in self._q(
            f"SELECT caller FROM calls WHERE direction != 'outbound' AND id IN ({marks}) UNION "
            f"SELECT called FROM calls WHERE direction = 'outbound' AND id IN ({marks})",
            calls + calls)}
        forms |= {f[1:] for f in forms if f.startswith("+")} | {"00" + f[1:] for f in forms
                                                                 if f.startswith("+")}
        forms |= {s for n in customer["numbers"] for s in self.spellings(n)}
        return {f for f in forms if len(f) >= 3 and f != ERASED}

    def erase(self, id: int) -> dict[str, int] | None:
        """Erase the customer: the record, notes and links go; their numbers (in every form
        the calls carried) become ``erased`` in CDRs, call events, the queue log, attempts,
        callbacks and campaign contacts; recordings and voicemails are deleted."""
        customer = self.get(id)
        if customer is None:
            return None
        id = customer["id"]
        calls = self._call_ids(id)
        marks = ",".join("?" * len(calls))
        files = self.files(id)
        forms = self.number_forms(id)
        with self.db.conn:
            ex = self.db.conn.execute
            for form in sorted(forms, key=len, reverse=True):  # +48.. before 48..
                ex(f"UPDATE calls SET caller = replace(caller, ?1, '{ERASED}'), called = "
                   f"replace(called, ?1, '{ERASED}') WHERE id IN ({marks})", [form, *calls])
                for table, column in (("call_events", "data"), ("queue_log", "detail")):
                    ex(f"UPDATE {table} SET {column} = replace({column}, ?1, '{ERASED}') WHERE "
                       f"call_id IN ({marks})", [form, *calls])
            ex(f"UPDATE calls SET recording = NULL WHERE id IN ({marks})", calls)
            numbers = customer["numbers"]
            nmarks = ",".join("?" * len(numbers))
            if self._has("attempts"):
                ex(f"UPDATE attempts SET number = '{ERASED}', recording = NULL, sip_call_id = "
                   f"NULL WHERE number IN ({nmarks})", numbers)
            if self._has("contacts"):
                ex(f"UPDATE contacts SET number = '{ERASED}-' || id, name = '', fields = '{{}}' "
                   f"WHERE number IN ({nmarks})", numbers)
            if self._has("callbacks"):
                ex(f"UPDATE callbacks SET caller = '{ERASED}', number = '{ERASED}' WHERE {_CB}",
                   [id, id])
            for table in ("voicemails", "surveys"):
                if self._has(table):
                    ex(f"UPDATE {table} SET caller = '{ERASED}' WHERE call_id IN ({marks})", calls)
            if self._has("voicemails"):
                ex(f"DELETE FROM voicemails WHERE call_id IN ({marks})", calls)
            for table in ("customer_numbers", "customer_emails", "customer_notes",
                          "customer_calls"):
                ex(f"DELETE FROM {table} WHERE customer_id = ?", [id])
            ex("DELETE FROM customers WHERE id = ? OR merged_into = ?", [id, id])
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()
        return {"calls": len(set(calls)), "files": len(files)}


#: callbacks of customer ?1/?2: booked from one of their calls or to one of their numbers
_CB = ("(call_id IN (SELECT call_id FROM customer_calls WHERE customer_id = ?) OR number IN "
       "(SELECT number FROM customer_numbers WHERE customer_id = ?))")


def _fields(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``old`` with ``new`` merged in: scalar values only, null removes."""
    out = dict(old)
    for key, value in new.items():
        if not isinstance(key, str) or not key or (
                value is not None and not isinstance(value, (str, int, float, bool))):
            raise CustomerError(f"field {key!r}: expected a text, number or true/false value")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
