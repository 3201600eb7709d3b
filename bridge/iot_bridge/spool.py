"""Bounded on-disk spool of API calls that Odoo could not take yet.

SQLite from the standard library, WAL journal and ``synchronous=FULL``: a row
is on disk when ``put`` returns, so the MQTT messages it holds can be
acknowledged to the broker. Rows are replayed oldest first and deleted once
Odoo has committed them.
"""

import json
import os
import sqlite3
import time


class SpoolFull(Exception):
    """The spool reached its size limit: stop acknowledging, let the broker queue."""


class Spool:
    def __init__(self, directory, max_bytes=1024 ** 3):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "spool.sqlite3")
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS call (
                   id INTEGER PRIMARY KEY AUTOINCREMENT,
                   method TEXT NOT NULL,
                   items TEXT NOT NULL,
                   count INTEGER NOT NULL,
                   size INTEGER NOT NULL,
                   received REAL NOT NULL,
                   attempts INTEGER NOT NULL DEFAULT 0,
                   last_error TEXT)"""
        )

    def close(self):
        self._db.close()

    def put(self, method, items, received=None, attempts=0, last_error=None, force=False):
        """Append one call; ``force`` ignores the bound (follow-ups of a call being replayed)."""
        text = json.dumps(items, separators=(",", ":"))
        size = len(text.encode("utf-8"))
        if not force and self.size() and self.size() + size > self.max_bytes:
            raise SpoolFull("spool %s holds %d bytes, limit %d" % (self.path, self.size(), self.max_bytes))
        self._db.execute(
            "INSERT INTO call (method, items, count, size, received, attempts, last_error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (method, text, len(items), size, received or time.time(), attempts, last_error),
        )

    def head(self):
        """The oldest call as a dict, or None."""
        row = self._db.execute(
            "SELECT id, method, items, received, attempts FROM call ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "method": row[1], "items": json.loads(row[2]),
                "received": row[3], "attempts": row[4]}

    def delete(self, call_id):
        self._db.execute("DELETE FROM call WHERE id = ?", (call_id,))

    def replace(self, call_id, parts):
        """Atomically swap one call for several [(method, items, attempts)] (bisection)."""
        row = self._db.execute("SELECT received FROM call WHERE id = ?", (call_id,)).fetchone()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM call WHERE id = ?", (call_id,))
            for method, items, attempts in parts:
                text = json.dumps(items, separators=(",", ":"))
                self._db.execute(
                    "INSERT INTO call (method, items, count, size, received, attempts) VALUES (?, ?, ?, ?, ?, ?)",
                    (method, text, len(items), len(text.encode("utf-8")), row[0] if row else time.time(), attempts),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def failed(self, call_id, error):
        self._db.execute(
            "UPDATE call SET attempts = attempts + 1, last_error = ? WHERE id = ?", (str(error)[:2000], call_id)
        )

    def size(self):
        return self._db.execute("SELECT COALESCE(SUM(size), 0) FROM call").fetchone()[0]

    def stats(self):
        """(calls, entries, oldest received time or None)."""
        return tuple(self._db.execute("SELECT COUNT(*), COALESCE(SUM(count), 0), MIN(received) FROM call").fetchone())

    def __bool__(self):
        return self._db.execute("SELECT 1 FROM call LIMIT 1").fetchone() is not None
