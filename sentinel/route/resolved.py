"""Telling receivers that an alert ended: one "resolved" message per receiver that was told it began.

A group message went out under the group's dedup key, so the resolved message reuses that key; it closes the
incident at the channel (PagerDuty resolve, Opsgenie close) only when no other alert of the group is still
firing. Escalations and deadline reminders went out under the alert's own key and are closed with it. The rows
are queued in the caller's transaction: the status change and its messages commit together.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from sentinel.events.alerts import Alert
from sentinel.route.router import insert_notification


def _payload(alert: Alert, how: str, disposition: str | None, by: str, now: float) -> dict[str, Any]:
    return {"kind": "resolved", "alert_ids": [alert.id], "occurrences": {alert.id: 1}, "alert_count": 1,
            "distinct_count": 1, "event_count": alert.count, "severity": alert.severity,
            "window": [alert.first_seen, alert.last_seen], "detected_at": alert.created, "resolved_at": now,
            "resolved_by": by, "how": how, "disposition": disposition}


def queue_resolved(tx: sqlite3.Connection, alert: Alert, how: str, disposition: str | None, by: str,
                   now: float) -> int:
    """Queue the resolved messages for ``alert`` (already marked resolved in ``tx``); returns how many."""
    made = 0
    groups = tx.execute(
        "SELECT DISTINCT g.id, g.receiver, g.labels FROM route_members rm JOIN route_groups g ON g.id = rm.group_id "
        "WHERE rm.alert_id = ? AND rm.state IN ('sent', 'duplicate') AND rm.notification_id IS NOT NULL",
        (alert.id,)).fetchall()
    for gid, receiver, labels in groups:
        still_firing = tx.execute(
            "SELECT COUNT(*) FROM route_members rm JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? "
            "AND rm.state IN ('sent', 'duplicate') AND a.status != 'resolved'", (gid,)).fetchone()[0]
        payload = {**_payload(alert, how, disposition, by, now), "group_id": gid, "group": orjson.loads(labels),
                   "closes_incident": still_firing == 0, "still_firing": int(still_firing)}
        if insert_notification(tx, f"res:{gid}:{alert.id}", f"sentinel-{gid}", receiver, "resolved", gid, payload,
                               now) is not None:
            made += 1
    # Escalation and reminder receivers were paged under the alert's own key.
    own_key = f"sentinel-alert-{alert.id}"
    receivers = [r[0] for r in tx.execute(
        "SELECT DISTINCT receiver FROM notifications WHERE dedup_key = ? AND kind IN ('escalation', 'reminder')",
        (own_key,))]
    for receiver in receivers:
        payload = {**_payload(alert, how, disposition, by, now), "closes_incident": True, "still_firing": 0}
        if insert_notification(tx, f"res:{alert.id}", own_key, receiver, "resolved", None, payload, now) is not None:
            made += 1
    return made
