"""Telling receivers that alerts ended: a "resolved" message to every receiver that was told they began.

A group message went out under the group's dedup key, so the resolved message reuses that key; it closes the
incident at the channel (PagerDuty resolve, Opsgenie close) only when no alert of the group is still firing.
Escalations and deadline reminders went out under the alert's own key and are closed with it. The rows
are queued in the caller's transaction: the status change and its messages commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sentinel.events.alerts import SEVERITY_RANK, Alert
from sentinel.route.decisions import MAX_LISTED
from sentinel.route.store import RouteStore


def _payload(alerts: Sequence[Alert], how: str, disposition: str | None, by: str, now: float) -> dict[str, Any]:
    return {"kind": "resolved", "alert_ids": [a.id for a in alerts][:MAX_LISTED],
            "occurrences": {a.id: 1 for a in alerts[:MAX_LISTED]}, "alert_count": len(alerts),
            "distinct_count": len(alerts), "event_count": sum(a.count for a in alerts),
            "severity": max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 0)),
            "window": [min(a.first_seen for a in alerts), max(a.last_seen for a in alerts)],
            "detected_at": min(a.created for a in alerts), "resolved_at": now, "resolved_by": by, "how": how,
            "disposition": disposition}


def queue_resolved(tx: sqlite3.Connection, alerts: Sequence[Alert], how: str, disposition: str | None, by: str,
                   now: float) -> int:
    """Queue the resolved messages for ``alerts`` (all already marked resolved in ``tx``); returns how many.
    One message per group they were counted in, closing the group's incident when nothing in it still fires."""
    if not alerts:
        return 0
    made = 0
    store = RouteStore(tx)
    by_id = {a.id: a for a in alerts}
    groups: dict[str, tuple[str, dict[str, str], list[Alert]]] = {}
    for g in store.notified_groups(list(by_id)):
        groups.setdefault(g.group_id, (g.receiver, g.labels, []))[2].append(by_id[g.alert_id])
    for gid, (receiver, labels, members) in groups.items():
        still_firing = store.still_firing(gid)
        payload = {**_payload(members, how, disposition, by, now), "group_id": gid, "group": labels,
                   "closes_incident": still_firing == 0, "still_firing": int(still_firing)}
        if store.insert_notification(f"res:{gid}:{members[0].id}", f"sentinel-{gid}", receiver, "resolved", gid,
                                     payload, now) is not None:
            made += 1
    # Escalation and reminder receivers were paged under each alert's own key.
    for alert in alerts:
        own_key = f"sentinel-alert-{alert.id}"
        for receiver in store.paged_receivers(own_key):
            payload = {**_payload([alert], how, disposition, by, now), "closes_incident": True, "still_firing": 0}
            if store.insert_notification(f"res:{alert.id}", own_key, receiver, "resolved", None, payload,
                                         now) is not None:
                made += 1
    return made
