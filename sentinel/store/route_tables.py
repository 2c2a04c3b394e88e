"""Routing and delivery tables in the one database: created with the store's own (store/schema.py), so every
connection to a sentinel database finds them, whichever parts the process loaded."""

from __future__ import annotations

DDL = """
-- A group collects the alerts one receiver gets in one message (route + receiver + group_by label values).
CREATE TABLE IF NOT EXISTS route_groups (
    id TEXT PRIMARY KEY,
    route_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    labels TEXT NOT NULL,
    digest INTEGER NOT NULL DEFAULT 0,
    group_wait REAL NOT NULL,
    group_interval REAL NOT NULL,
    repeat_interval REAL NOT NULL,
    created REAL NOT NULL,
    next_flush REAL,
    last_flush REAL,
    flushes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS route_groups_next ON route_groups(next_flush) WHERE next_flush IS NOT NULL;

-- state: pending (waits for the group's flush), sent, duplicate (same alert key already notified),
-- silenced, inhibited, resolved (closed before it was sent).
CREATE TABLE IF NOT EXISTS route_members (
    group_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    added REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    notification_id INTEGER,
    PRIMARY KEY (group_id, alert_id)
);
CREATE INDEX IF NOT EXISTS route_members_state ON route_members(group_id, state);
CREATE INDEX IF NOT EXISTS route_members_key ON route_members(group_id, alert_key);

-- Which receivers an alert went to (escalation and reminders follow from here).
CREATE TABLE IF NOT EXISTS alert_routing (
    alert_id TEXT PRIMARY KEY,
    receivers TEXT NOT NULL,
    routed_at REAL NOT NULL
);

-- One row per message to one receiver. key is unique per receiver, so a retry never makes a second row.
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    kind TEXT NOT NULL,
    group_id TEXT,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    delivered_at REAL,
    last_error TEXT,
    fallback_of INTEGER,
    UNIQUE (receiver, key)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(status, next_attempt);

CREATE TABLE IF NOT EXISTS notification_attempts (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    outcome TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS notification_attempts_n ON notification_attempts(notification_id);

CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    expired_at REAL,
    suppressed INTEGER NOT NULL DEFAULT 0
);

-- The incident clock of every high/critical alert.
CREATE TABLE IF NOT EXISTS incidents (
    alert_id TEXT PRIMARY KEY,
    detected_at REAL NOT NULL,
    ba_deadline REAL NOT NULL,
    breach_deadline REAL NOT NULL
);

-- Why and how an alert was resolved (one row per resolved alert, written with the status change).
-- how: manual (CLI/API) or auto (the rule's resolve_after quiet period passed).
CREATE TABLE IF NOT EXISTS alert_resolutions (
    alert_id TEXT PRIMARY KEY,
    how TEXT NOT NULL,
    disposition TEXT,
    note TEXT,
    resolved_by TEXT NOT NULL,
    resolved_at REAL NOT NULL
);

-- A silence bound to an alert ends when that alert resolves.
CREATE TABLE IF NOT EXISTS silence_bindings (
    silence_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS silence_bindings_alert ON silence_bindings(alert_id);

-- Escalations and deadline reminders already raised, so each happens once.
CREATE TABLE IF NOT EXISTS alert_followups (
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (alert_id, kind, step)
);
"""
