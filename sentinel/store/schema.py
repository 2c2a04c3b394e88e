"""The local database's tables. One file holds checkpoints, rule state, the outbox, the
Elasticsearch spool and (with the embedded backend) the events, so one transaction covers a batch."""

from __future__ import annotations

import sqlite3

from sentinel.store.alerts import DDL as ALERTS_DDL
from sentinel.store.docs import DDL as DOCS_DDL
from sentinel.store.docs import VIEW as DOCS_VIEW
from sentinel.store.ledger import DDL as LEDGER_DDL
from sentinel.store.route_tables import DDL as ROUTE_DDL

SCHEMA_VERSION = 2  # 2: events.shape + doc_shapes (documents stored as value arrays)

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS checkpoints (
    stream TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    fp_len INTEGER NOT NULL,
    fp_hash TEXT NOT NULL,
    offset INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    cursor TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    host TEXT,
    user TEXT,
    action TEXT,
    outcome TEXT,
    ip TEXT,
    parsed INTEGER NOT NULL,
    doc TEXT NOT NULL,
    shape INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_user_ts ON events(user, ts) WHERE user IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ip_ts ON events(ip, ts) WHERE ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_host_ts ON events(host, ts);
CREATE INDEX IF NOT EXISTS events_action_ts ON events(action, ts) WHERE action IS NOT NULL;

-- When events arrived, by ranges of seq (seq grows with arrival): retention needs an event to be old by
-- its own time AND by its arrival, so a backdated line cannot be made to vanish at the next pass.
CREATE TABLE IF NOT EXISTS ingest_marks (
    last_seq INTEGER PRIMARY KEY,
    first_ingested REAL NOT NULL,
    last_ingested REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS source_stats (
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, outcome)
);
"""

DDL += DOCS_DDL + ALERTS_DDL + LEDGER_DDL + ROUTE_DDL


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database written by an older sentinel up to this schema (before DDL creates what is new)."""
    checkpoint_columns = {row[1] for row in conn.execute("PRAGMA table_info(checkpoints)")}
    if checkpoint_columns and "cursor" not in checkpoint_columns:
        # Non-file sources (the journal) resume from a cursor; file checkpoints keep it empty.
        conn.execute("ALTER TABLE checkpoints ADD COLUMN cursor TEXT NOT NULL DEFAULT ''")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if columns and "shape" not in columns:
        # Version 1 stored whole JSON objects: they stay readable as shape 0.
        conn.execute("ALTER TABLE events ADD COLUMN shape INTEGER NOT NULL DEFAULT 0")
    view = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'event_docs'").fetchone()
    if view is not None and view[0] != DOCS_VIEW:
        conn.execute("DROP VIEW event_docs")  # an older definition: DDL creates the current one
