"""Each visitor's last request cost, shared by every process serving the demo.

Why not keep it in the session itself: writing the record there would make every request
change the session, so every page would cost an UpdateItem, the very thing the demo
shows a read does not cost. Why not in a cookie: the cost is only known after the session
is saved, once the response headers are final. Why not in memory: under a multi-process
server (gunicorn with several workers) the next request of a visitor is often served by
another process. So the record goes to a small SQLite file next to the server, written
after each request, keyed by a hash of a random visitor cookie that is not the session id
(the session id never leaves the session machinery, and it changes at login and logout).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from .metering import RequestCost

#: Records older than this are dropped: the demo only ever shows the last one.
KEEP_SECONDS = 24 * 3600
#: How long a writer waits for another process's write to finish.
BUSY_TIMEOUT_SECONDS = 5.0


class CostLog:
    """``save(visitor, cost)`` and ``last(visitor)``, safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS last_request "
                "(visitor TEXT PRIMARY KEY, at REAL NOT NULL, cost TEXT NOT NULL)"
            )

    def save(self, visitor: str, cost: RequestCost) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO last_request (visitor, at, cost) VALUES (?, ?, ?)",
                (_key(visitor), now, json.dumps(cost.to_json())),
            )
            db.execute("DELETE FROM last_request WHERE at < ?", (now - KEEP_SECONDS,))

    def last(self, visitor: str) -> RequestCost | None:
        row = (
            self._connect()
            .execute("SELECT cost FROM last_request WHERE visitor = ?", (_key(visitor),))
            .fetchone()
        )
        return None if row is None else RequestCost.from_json(json.loads(row[0]))

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not be shared by
        # threads, nor survive a fork (a pre-forking server builds the app, then forks).
        pid = os.getpid()
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != pid:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
            # Readers do not block the writer of another process, nor it them.
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db, self._local.pid = db, pid
        return db


def _key(visitor: str) -> str:
    return hashlib.sha256(visitor.encode()).hexdigest()
