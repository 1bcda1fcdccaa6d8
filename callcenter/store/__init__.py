"""SQLite storage (through sqlite-utils): CDRs, call events, registrations."""

from callcenter.store.db import Store
from callcenter.store.records import CallRecord

__all__ = ["CallRecord", "Store"]
