"""The local spool: events bound for Elasticsearch, written inside the batch transaction.

Rows leave the spool only when Elasticsearch has acknowledged them (or they were parked in the
dead-letter table with the reason), so a crash or an outage at any moment loses nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

import orjson

from sentinel.events.model import Event, nest
from sentinel.store.elasticsearch.mappings import events_alias

SPOOL_DDL = """
-- AUTOINCREMENT: seqs never reused, so everything committed later sorts after what was read before
CREATE TABLE IF NOT EXISTS es_spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    idx TEXT NOT NULL,
    doc BLOB NOT NULL
);
-- running totals kept in the same transactions as the rows, so they are never off after a crash
CREATE TABLE IF NOT EXISTS es_spool_stats (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO es_spool_stats VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS es_dead_letter (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    idx TEXT NOT NULL,
    doc BLOB NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS es_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- alerts acknowledged or resolved after they were shipped: shipped again (one row per alert, a version
-- counter so a change made while shipping is not lost), written by the same transaction as the change
CREATE TABLE IF NOT EXISTS es_alert_changes (alert_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS es_alert_status_changed AFTER UPDATE OF status, acked_by, resolved_by ON alerts
BEGIN
    INSERT INTO es_alert_changes VALUES (new.id, 1)
    ON CONFLICT(alert_id) DO UPDATE SET version = version + 1;
END;
"""


class SpoolGauge:
    """Spool size shared between the sink (pipeline thread) and the shipper, read for backpressure."""

    def __init__(self, max_bytes: float) -> None:
        self.max_bytes = max_bytes
        self.rows = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def set(self, rows: int, nbytes: int) -> None:
        with self._lock:
            self.rows, self.bytes = rows, nbytes

    def accepting(self) -> bool:
        """False while the spool is over its bound: the pipeline then stops reading (checkpoints stay)."""
        return self.bytes < self.max_bytes

    def refresh(self, conn: sqlite3.Connection) -> tuple[int, int]:
        rows, nbytes = conn.execute("SELECT rows, bytes FROM es_spool_stats WHERE one = 1").fetchone()
        self.set(int(rows), int(nbytes))
        return int(rows), int(nbytes)


class SpoolSink:
    """EventSink for the Elasticsearch backend: nested JSON documents appended to ``es_spool``."""

    name = "elasticsearch"

    def __init__(self, index_prefix: str, gauge: SpoolGauge, wake: threading.Event | None = None) -> None:
        self.prefix = index_prefix
        self.gauge = gauge
        self.wake = wake or threading.Event()
        self._aliases: dict[str, str] = {}

    def _alias(self, source: str) -> str:
        alias = self._aliases.get(source)
        if alias is None:
            alias = self._aliases[source] = events_alias(self.prefix, source)
        return alias

    def insert(self, tx: sqlite3.Connection, events: Sequence[Event]) -> list[bool]:
        """Spool every event. The spool cannot tell an event already shipped: the batch's ledger
        (store/ledger.py) has kept those out, so every event handed here counts as new."""
        self.write(tx, events)
        return [True] * len(events)

    def write(self, tx: sqlite3.Connection, events: Sequence[Event]) -> int:
        """Spool every event (the document is serialised once, here); returns how many were spooled."""
        rows = [(e.id, self._alias(e.source), orjson.dumps(nest(e.fields))) for e in events]
        tx.executemany("INSERT INTO es_spool (id, idx, doc) VALUES (?,?,?)", rows)
        nbytes = sum(len(r[2]) for r in rows)
        tx.execute("UPDATE es_spool_stats SET rows = rows + ?, bytes = bytes + ? WHERE one = 1", (len(rows), nbytes))
        self.gauge.refresh(tx)
        self.wake.set()
        return len(rows)

    def accepting(self) -> bool:
        return self.gauge.accepting()


def dead_letters(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """The parked documents with their reasons (for `sentinel` tooling and tests)."""
    rows = conn.execute(
        "SELECT id, idx, status, error_type, reason, attempts, created FROM es_dead_letter ORDER BY seq").fetchall()
    keys = ("id", "index", "status", "error_type", "reason", "attempts", "created")
    return [dict(zip(keys, r, strict=True)) for r in rows]
