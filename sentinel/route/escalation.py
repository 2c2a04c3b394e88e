"""Follow-ups for alerts nobody acknowledged: escalation steps and incident-clock deadline reminders."""

from __future__ import annotations

import logging
import sqlite3

from sentinel.metrics.registry import Metrics
from sentinel.route.decisions import one_alert_facts, reminder_step
from sentinel.route.loader import Routing
from sentinel.route.silences import active_silences, silenced_by
from sentinel.route.store import RouteStore
from sentinel.route.tree import alert_labels, matches
from sentinel.store.database import immediate

log = logging.getLogger(__name__)

DEADLINES = (("ba", "business-associate notification window"), ("breach", "60-day breach-notification limit"))


def escalate(tx: sqlite3.Connection, routing: Routing, now: float, metrics: Metrics | None = None) -> int:
    """Notify the next step's receivers for every open alert older than the step's delay; each step once."""
    made = 0
    store = RouteStore(tx)
    silences = active_silences(tx, now)
    for esc in routing.spec.escalation:
        for k, step in enumerate(esc.steps, start=1):
            for alert in store.unescalated(now - step.after, k):
                labels = alert_labels(alert)
                if not matches(esc.match, labels) or silenced_by(silences, labels) is not None:
                    continue
                if not store.mark_followup(alert.id, "escalation", str(k), now):
                    continue
                payload = {"kind": "escalation", "step": k, **one_alert_facts(alert), "detected_at": alert.created}
                for receiver in step.receivers:
                    if store.insert_notification(f"esc:{alert.id}:{k}", f"sentinel-alert-{alert.id}", receiver,
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
    store = RouteStore(tx)
    pending: list[tuple[str, float, str, str, float, list[str]]] = []
    for open_incident in store.open_incidents(offsets[0] if offsets else 0.0, now):
        i = open_incident.incident
        for code, name in DEADLINES:
            deadline = i.ba_deadline if code == "ba" else i.breach_deadline
            due = reminder_step(code, deadline, offsets, now)
            if due is None:
                continue
            for step in due.superseded:
                store.mark_followup(i.alert_id, "reminder", step, now)
            if not store.mark_followup(i.alert_id, "reminder", due.step, now):
                continue
            receivers = list(inc.receivers) or list(open_incident.receivers)
            pending.append((i.alert_id, deadline, name, due.step, i.detected_at, receivers))
    if not pending:
        return 0
    alerts = store.alerts(p[0] for p in pending)
    for alert_id, deadline, name, step, detected, receivers in pending:
        found = alerts.get(alert_id)
        if found is None:
            continue
        alert = found.alert
        payload = {"kind": "reminder", **one_alert_facts(alert), "detected_at": detected,
                   "deadline": deadline, "deadline_name": name, "now": now}
        for receiver in receivers:
            if store.insert_notification(f"rem:{alert_id}:{step}", f"sentinel-alert-{alert_id}", receiver,
                                         "reminder", None, payload, now) is not None:
                made += 1
        if metrics is not None:
            metrics.escalations.labels(alert.severity).inc()
    return made


def follow_up(conn: sqlite3.Connection, routing: Routing, now: float, metrics: Metrics | None = None) -> int:
    """Escalations and reminders in one transaction."""
    with immediate(conn):
        made = escalate(conn, routing, now, metrics) + remind(conn, routing, now, metrics)
    return made
