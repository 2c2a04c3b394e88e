"""The local database's tables. One file holds checkpoints, rule state, the outbox, the
Elasticsearch spool and (with the embedded backend) the events, so one transaction covers a batch."""

from __future__ import annotations

from sentinel.store.alerts import DDL as ALERTS_DDL

SCHEMA_VERSION = 1

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
    updated REAL NOT NULL
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
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_user_ts ON events(user, ts) WHERE user IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ip_ts ON events(ip, ts) WHERE ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_host_ts ON events(host, ts);
CREATE INDEX IF NOT EXISTS events_action_ts ON events(action, ts) WHERE action IS NOT NULL;

CREATE TABLE IF NOT EXISTS source_stats (
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, outcome)
);
"""

DDL += ALERTS_DDL
