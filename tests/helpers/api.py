"""Small clients of a running server for integration tests: its HTTP API and its SQLite file."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .server import ServerProcess

ADMIN_TOKEN = "demo-admin-token"


def http(server: ServerProcess, method: str, path: str, body: Any = None,
         token: str = ADMIN_TOKEN) -> tuple[int, Any]:
    """``(status, decoded JSON body)`` of one API request; HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def rows(db: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a read-only query on the server's database ([] while a table does not exist)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()
