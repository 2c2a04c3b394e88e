"""Alert history and the outbox, written inside the batch transaction that raised them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from sentinel.events.alerts import Alert

DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    group_key TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL,
    event_ids TEXT NOT NULL,
    summary TEXT NOT NULL,
    runbook TEXT NOT NULL,
    tags TEXT NOT NULL,
    labels TEXT NOT NULL,
    details TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    acked_by TEXT,
    acked_at REAL,
    resolved_by TEXT,
    resolved_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts(rule_id, created);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status, severity);

-- Alerts waiting for routing; a row leaves only when routing has committed its notifications.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
"""


def write_alerts(tx: sqlite3.Connection, alerts: Sequence[Alert]) -> int:
    """Insert alerts and queue them in the outbox; an alert id already present is not queued again.

    A storm raises thousands of alerts a batch: which are new is one query per 500, the rows two executemany."""
    present: set[str] = set()
    ids = [a.id for a in alerts]
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        present.update(r[0] for r in tx.execute(f"SELECT id FROM alerts WHERE id IN ({','.join('?' * len(chunk))})",
                                                chunk))
    new: list[Alert] = []
    for a in alerts:
        if a.id not in present:
            present.add(a.id)
            new.append(a)
    tx.executemany(
        "INSERT OR IGNORE INTO alerts (id, rule_id, title, severity, group_key, first_seen, last_seen, count, "
        "event_ids, summary, runbook, tags, labels, details, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(a.id, a.rule_id, a.title, a.severity, a.group_key, a.first_seen, a.last_seen, a.count,
          orjson.dumps(a.event_ids).decode(), a.summary, a.runbook, orjson.dumps(a.tags).decode(),
          orjson.dumps(a.labels).decode(), orjson.dumps(a.details, default=str).decode(), a.created) for a in new])
    tx.executemany("INSERT OR IGNORE INTO outbox (alert_id, created) VALUES (?, ?)", [(a.id, a.created) for a in new])
    return len(new)


def revise_digest(tx: sqlite3.Connection, a: Alert) -> bool:
    """Rewrite a scheduled listing's figures in place (late data changed them); whether the row changed."""
    details = orjson.dumps(a.details, default=str).decode()
    cur = tx.execute("UPDATE alerts SET count = ?, summary = ?, details = ? WHERE id = ? AND "
                     "(count != ? OR details != ?)", (a.count, a.summary, details, a.id, a.count, details))
    return cur.rowcount > 0


def row_to_alert(row: sqlite3.Row | tuple[Any, ...]) -> Alert:
    """Rebuild an Alert from ``SELECT id, rule_id, title, severity, group_key, first_seen, last_seen, count,
    event_ids, summary, runbook, tags, labels, details, created FROM alerts``."""
    r = tuple(row)
    return Alert(id=r[0], rule_id=r[1], title=r[2], severity=r[3], group_key=r[4], first_seen=r[5], last_seen=r[6],
                 count=r[7], event_ids=orjson.loads(r[8]), summary=r[9], runbook=r[10], tags=orjson.loads(r[11]),
                 labels=orjson.loads(r[12]), details=orjson.loads(r[13]), created=r[14])


ALERT_COLUMNS = ("id, rule_id, title, severity, group_key, first_seen, last_seen, count, event_ids, summary, "
                 "runbook, tags, labels, details, created")
