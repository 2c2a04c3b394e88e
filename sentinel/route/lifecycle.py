"""Alert lifecycle (open → acknowledged → resolved) and the queries the CLI and the API share."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sentinel.errors import SentinelError
from sentinel.events.alerts import SEVERITY_RANK, Alert
from sentinel.route import state as _state  # noqa: F401 - registers the incidents table read here
from sentinel.route.resolved import queue_resolved
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert

STATUSES = ("open", "acknowledged", "resolved")


class LifecycleError(SentinelError, ValueError):
    """The alert does not exist, is ambiguous, or is already past that state."""


@dataclass
class AlertView:
    """An alert with its lifecycle columns and incident clock, as the CLI and the API show it."""

    alert: Alert
    status: str
    acked_by: str | None
    acked_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    detected_at: float | None = None
    ba_deadline: float | None = None
    breach_deadline: float | None = None
    resolution: str | None = None  # manual or auto
    disposition: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        a = self.alert
        return {"id": a.id, "rule": a.rule_id, "title": a.title, "severity": a.severity, "status": self.status,
                "count": a.count, "first_seen": a.first_seen, "last_seen": a.last_seen, "created": a.created,
                "labels": a.labels, "tags": a.tags, "summary": a.summary, "runbook": a.runbook,
                "entity": a.details.get("entity", {}), "details": a.details, "event_ids": a.event_ids,
                "acked_by": self.acked_by, "acked_at": self.acked_at,
                "resolved_by": self.resolved_by, "resolved_at": self.resolved_at, "detected_at": self.detected_at,
                "ba_deadline": self.ba_deadline, "breach_deadline": self.breach_deadline,
                "resolution": self.resolution, "disposition": self.disposition, "note": self.note}


_VIEW = (f"SELECT {', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))}, a.status, a.acked_by, a.acked_at, "
         "a.resolved_by, a.resolved_at, i.detected_at, i.ba_deadline, i.breach_deadline, r.how, r.disposition, r.note "
         "FROM alerts a LEFT JOIN incidents i ON i.alert_id = a.id LEFT JOIN alert_resolutions r ON r.alert_id = a.id")


def _view(row: tuple[Any, ...]) -> AlertView:
    return AlertView(row_to_alert(row[:15]), *row[15:])


def list_alerts(conn: sqlite3.Connection, status: str | None = None, severity_at_least: str | None = None,
                since: float | None = None, until: float | None = None, limit: int = 100) -> list[AlertView]:
    """Newest first, filtered."""
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("a.status = ?")
        params.append(status)
    if severity_at_least:
        allowed = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[severity_at_least]]
        where.append(f"a.severity IN ({','.join('?' * len(allowed))})")
        params.extend(allowed)
    if since is not None:
        where.append("a.created >= ?")
        params.append(since)
    if until is not None:
        where.append("a.created < ?")
        params.append(until)
    sql = _VIEW + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.created DESC, a.id LIMIT ?"
    return [_view(r) for r in conn.execute(sql, [*params, limit])]


def count_alerts(conn: sqlite3.Connection, status: str | None = None, severity_at_least: str | None = None,
                 since: float | None = None) -> int:
    """How many alerts :func:`list_alerts` would show without its limit."""
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("status = ?")
        params.append(status)
    if severity_at_least:
        allowed = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[severity_at_least]]
        where.append(f"severity IN ({','.join('?' * len(allowed))})")
        params.extend(allowed)
    if since is not None:
        where.append("created >= ?")
        params.append(since)
    sql = "SELECT count(*) FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
    return int(conn.execute(sql, params).fetchone()[0])


MIN_PREFIX = 6


def get_alert(conn: sqlite3.Connection, alert_id: str) -> AlertView:
    """By full id or a unique prefix (at least 6 characters)."""
    rows = conn.execute(_VIEW + " WHERE a.id = ?", (alert_id,)).fetchall()
    if not rows and len(alert_id) < MIN_PREFIX:
        raise LifecycleError(f"alert id prefix {alert_id!r} is too short: give at least {MIN_PREFIX} characters "
                             "(the id column of 'sentinel alerts list' shows 12)")
    if not rows:
        rows = conn.execute(_VIEW + " WHERE a.id GLOB ? LIMIT 2", (_glob_escape(alert_id) + "*",)).fetchall()
    if not rows:
        raise LifecycleError(f"no alert {alert_id!r}")
    if len(rows) > 1:
        raise LifecycleError(f"alert id prefix {alert_id!r} is ambiguous; give more characters")
    return _view(rows[0])


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def acknowledge(tx: sqlite3.Connection, alert_id: str, by: str, now: float) -> AlertView:
    """open → acknowledged; stops repeats, escalation and deadline reminders."""
    view = get_alert(tx, alert_id)
    if view.status != "open":
        raise LifecycleError(f"alert {view.alert.id} is {view.status}, not open")
    tx.execute("UPDATE alerts SET status = 'acknowledged', acked_by = ?, acked_at = ? WHERE id = ? AND status = 'open'",
               (by, now, view.alert.id))
    return get_alert(tx, view.alert.id)


DISPOSITIONS = ("true_positive", "false_positive", "benign", "duplicate")


def resolve(tx: sqlite3.Connection, alert_id: str, by: str, now: float, disposition: str | None = None,
            note: str | None = None) -> AlertView:
    """open/acknowledged → resolved by a person (an unacknowledged alert counts as acknowledged at the same
    moment); records the disposition, ends silences bound to the alert and queues the resolved messages, all in
    the caller's transaction."""
    if disposition is not None and disposition not in DISPOSITIONS:
        raise LifecycleError(f"unknown disposition {disposition!r}; expected one of {', '.join(DISPOSITIONS)}")
    view = get_alert(tx, alert_id)
    if view.status == "resolved":
        raise LifecycleError(f"alert {view.alert.id} is already resolved")
    tx.execute("UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ?, "
               "acked_by = COALESCE(acked_by, ?), acked_at = COALESCE(acked_at, ?) WHERE id = ?",
               (by, now, by, now, view.alert.id))
    _closed(tx, view.alert, "manual", disposition, (note or "").strip() or None, by, now)
    queue_resolved(tx, [view.alert], "manual", disposition, by, now)
    return get_alert(tx, view.alert.id)


TRANSITIONS = ("ack", "resolve")


def transition(tx: sqlite3.Connection, action: str, alert_id: str, by: str, now: float,
               disposition: str | None = None, note: str | None = None) -> tuple[AlertView, dict[str, Any]]:
    """A responder's ``ack`` or ``resolve`` (the CLI's and the API's one path), in the caller's transaction:
    the alert afterwards and what the audit trail records about why."""
    if action == "ack":
        return acknowledge(tx, alert_id, by, now), {}
    if action != "resolve":
        raise LifecycleError(f"unknown action {action!r}; expected one of {', '.join(TRANSITIONS)}")
    view = resolve(tx, alert_id, by, now, disposition, note)
    return view, {"how": "manual", "disposition": view.disposition, "note": view.note}


AUTO_RESOLVER = "sentinel"


def auto_resolve(tx: sqlite3.Connection, quiet: Mapping[str, float], now: float) -> list[AlertView]:
    """Resolve every open or acknowledged alert whose key (rule + group key) raised nothing for its rule's
    ``resolve_after``. Nobody acknowledged it, so the acknowledgement columns stay empty."""
    closed: list[Alert] = []
    for rule_id, seconds in sorted(quiet.items()):
        rows = tx.execute(
            "SELECT a.id FROM alerts a WHERE a.rule_id = ? AND a.status != 'resolved' AND "
            "(SELECT MAX(b.created) FROM alerts b WHERE b.rule_id = a.rule_id AND b.group_key = a.group_key) <= ? "
            "ORDER BY a.created, a.id", (rule_id, now - seconds)).fetchall()
        for (alert_id,) in rows:
            view = get_alert(tx, alert_id)
            tx.execute("UPDATE alerts SET status = 'resolved', resolved_by = ?, resolved_at = ? WHERE id = ?",
                       (AUTO_RESOLVER, now, alert_id))
            _closed(tx, view.alert, "auto", None, None, AUTO_RESOLVER, now)
            closed.append(view.alert)
    # After every status change, so a group whose alerts all went quiet gets its incident closed.
    queue_resolved(tx, closed, "auto", None, AUTO_RESOLVER, now)
    return [get_alert(tx, a.id) for a in closed]


def _closed(tx: sqlite3.Connection, alert: Alert, how: str, disposition: str | None, note: str | None, by: str,
            now: float) -> None:
    tx.execute("INSERT OR REPLACE INTO alert_resolutions (alert_id, how, disposition, note, resolved_by, resolved_at) "
               "VALUES (?,?,?,?,?,?)", (alert.id, how, disposition, note, by, now))
    tx.execute("UPDATE silences SET expired_at = ? WHERE expired_at IS NULL AND ends_at > ? AND id IN "
               "(SELECT silence_id FROM silence_bindings WHERE alert_id = ?)", (now, now, alert.id))

