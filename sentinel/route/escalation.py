"""Follow-ups for alerts nobody acknowledged: escalation steps and incident-clock deadline reminders."""

from __future__ import annotations

import logging
import sqlite3

import orjson

from sentinel.metrics.registry import Metrics
from sentinel.route.loader import Routing
from sentinel.route.router import insert_notification, load_alerts
from sentinel.route.silences import active_silences, silenced_by
from sentinel.route.tree import alert_labels, matches
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert
from sentinel.store.database import immediate

log = logging.getLogger(__name__)

DEADLINES = (("ba", "business-associate notification window"), ("breach", "60-day breach-notification limit"))


def _mark(tx: sqlite3.Connection, alert_id: str, kind: str, step: str, now: float) -> bool:
    cur = tx.execute("INSERT OR IGNORE INTO alert_followups (alert_id, kind, step, created) VALUES (?,?,?,?)",
                     (alert_id, kind, step, now))
    return cur.rowcount > 0


def escalate(tx: sqlite3.Connection, routing: Routing, now: float, metrics: Metrics | None = None) -> int:
    """Notify the next step's receivers for every open alert older than the step's delay; each step once."""
    made = 0
    silences = active_silences(tx, now)
    for esc in routing.spec.escalation:
        for k, step in enumerate(esc.steps, start=1):
            rows = tx.execute(
                f"SELECT {', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))} FROM alerts a "
                "JOIN alert_routing r ON r.alert_id = a.id WHERE a.status = 'open' AND a.created <= ? "
                "AND NOT EXISTS (SELECT 1 FROM alert_followups f WHERE f.alert_id = a.id AND f.kind = 'escalation' "
                "AND f.step = ?)", (now - step.after, str(k))).fetchall()
            for r in rows:
                alert = row_to_alert(r)
                labels = alert_labels(alert)
                if not matches(esc.match, labels) or silenced_by(silences, labels) is not None:
                    continue
                if not _mark(tx, alert.id, "escalation", str(k), now):
                    continue
                payload = {"kind": "escalation", "step": k, "alert_ids": [alert.id], "occurrences": {alert.id: 1},
                           "alert_count": 1, "distinct_count": 1, "event_count": alert.count,
                           "severity": alert.severity, "window": [alert.first_seen, alert.last_seen],
                           "detected_at": alert.created}
                for receiver in step.receivers:
                    if insert_notification(tx, f"esc:{alert.id}:{k}", f"sentinel-alert-{alert.id}", receiver,
                                           "escalation", None, payload, now) is not None:
                        made += 1
                if metrics is not None:
                    metrics.escalations.labels(alert.severity).inc()
                log.info("escalated alert %s (step %d) to %s", alert.id, k, ", ".join(step.receivers))
    return made


def remind(tx: sqlite3.Connection, routing: Routing, now: float, metrics: Metrics | None = None) -> int:
    """Before a deadline passes with the alert still unacknowledged, remind (and once more when it has passed)."""
    inc = routing.spec.incident
    offsets = sorted(inc.remind_before, reverse=True)
    made = 0
    rows = tx.execute("SELECT i.alert_id, i.detected_at, i.ba_deadline, i.breach_deadline, r.receivers "
                      "FROM incidents i JOIN alerts a ON a.id = i.alert_id "
                      "LEFT JOIN alert_routing r ON r.alert_id = i.alert_id "
                      "WHERE a.status = 'open' AND i.ba_deadline - ? <= ?",
                      (offsets[0] if offsets else 0.0, now)).fetchall()
    pending: list[tuple[str, float, str, str, float, list[str]]] = []
    for alert_id, detected, ba, breach, routed in rows:
        for code, name in DEADLINES:
            deadline = ba if code == "ba" else breach
            due = [off for off in offsets if deadline - off <= now]
            step = None
            if now >= deadline:
                step = f"{code}:passed"
            elif due:
                step = f"{code}:{int(min(due))}"
            if step is None:
                continue
            # A reminder skipped while the daemon was down is superseded by the closer one: mark earlier ones too.
            for off in due:
                if f"{code}:{int(off)}" != step:
                    _mark(tx, alert_id, "reminder", f"{code}:{int(off)}", now)
            if not _mark(tx, alert_id, "reminder", step, now):
                continue
            receivers = list(inc.receivers) or orjson.loads(routed or "[]")
            pending.append((alert_id, deadline, name, step, detected, receivers))
    if not pending:
        return 0
    alerts = load_alerts(tx, [p[0] for p in pending])
    for alert_id, deadline, name, step, detected, receivers in pending:
        found = alerts.get(alert_id)
        if found is None:
            continue
        alert = found[0]
        payload = {"kind": "reminder", "alert_ids": [alert_id], "occurrences": {alert_id: 1}, "alert_count": 1,
                   "distinct_count": 1, "event_count": alert.count, "severity": alert.severity,
                   "window": [alert.first_seen, alert.last_seen], "detected_at": detected,
                   "deadline": deadline, "deadline_name": name, "now": now}
        for receiver in receivers:
            if insert_notification(tx, f"rem:{alert_id}:{step}", f"sentinel-alert-{alert_id}", receiver, "reminder",
                                   None, payload, now) is not None:
                made += 1
        if metrics is not None:
            metrics.escalations.labels(alert.severity).inc()
    return made


def follow_up(conn: sqlite3.Connection, routing: Routing, now: float, metrics: Metrics | None = None) -> int:
    """Escalations and reminders in one transaction."""
    with immediate(conn):
        made = escalate(conn, routing, now, metrics) + remind(conn, routing, now, metrics)
    return made
