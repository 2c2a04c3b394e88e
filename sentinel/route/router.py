"""The router: outbox → groups (one transaction per batch), due groups → notifications, then follow-ups.

It loads plain values through ``RouteStore``, asks ``route.decisions`` what to do (the timing, dedup,
silence and inhibition rules are described there) and writes the decisions back through the store.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from sentinel.events.alerts import Alert
from sentinel.metrics.registry import Metrics
from sentinel.route.decisions import (
    Inhibitor,
    alert_key,
    incident_for,
    inhibit_severities,
    inhibitors_of,
    member_state,
    next_flush_after,
    next_flush_on_join,
    plan_flush,
    repeats,
    triage,
    wants_repeat,
)
from sentinel.route.loader import Routing
from sentinel.route.silences import Silence, active_silences, count_suppressed
from sentinel.route.store import Group, RouteStore
from sentinel.route.tree import alert_labels
from sentinel.store.database import immediate

log = logging.getLogger(__name__)

class Router:
    """Consumes the outbox and turns due groups into notification rows; all state lives in the database."""

    def __init__(self, routing: Routing, metrics: Metrics | None = None) -> None:
        self.routing = routing
        self.metrics = metrics

    # --- outbox → groups -------------------------------------------------------------------------------------

    def consume(self, conn: sqlite3.Connection, now: float, limit: int = 500) -> int:
        """Route up to ``limit`` outbox rows in ONE transaction; returns how many left the outbox."""
        store = RouteStore(conn)
        with immediate(conn):
            entries = store.outbox(limit)
            for e in entries:
                if e.alert is not None:
                    self._route_one(store, e.alert, now)
                else:
                    log.warning("outbox row %s names no alert; dropped", e.seq)
            store.drop_outbox(e.seq for e in entries)
        return len(entries)

    def _route_one(self, store: RouteStore, alert: Alert, now: float) -> None:
        labels = alert_labels(alert)
        routes = self.routing.tree.match(alert, now)
        key = alert_key(alert)
        for m in routes:
            gid = m.group_id(labels)
            store.add_group(gid, m, m.group_labels(labels), now)
            state = member_state(store.key_notified(gid, key))
            store.add_member(gid, alert.id, key, now, state)
            if state == "pending":
                self._schedule(store, store.group(gid), now)
        store.record_routing(alert.id, [m.receiver for m in routes], now)
        incident = incident_for(alert, self.routing.spec.incident, now)
        if incident is not None:
            store.open_incident(incident)

    def _schedule(self, store: RouteStore, g: Group, now: float) -> None:
        digest_at = self.routing.tree.clock.next_digest(now) if g.digest else None
        at = next_flush_on_join(g, now, digest_at)
        if at is not None:
            store.set_next_flush(g.id, at)

    # --- due groups → notifications ----------------------------------------------------------------------------

    def flush(self, conn: sqlite3.Connection, now: float, limit: int = 200) -> int:
        """Send what is due; returns the number of notifications created."""
        created = 0
        store = RouteStore(conn)
        with immediate(conn):
            due = store.due_groups(now, limit)
            if due:
                silences = active_silences(conn, now)
                inhibitors = self._inhibitors(store, now)
                for g in due:
                    created += self._flush_group(store, g, now, silences, inhibitors)
        return created

    def _inhibitors(self, store: RouteStore, now: float) -> list[Inhibitor]:
        """Every open alert that matches an inhibit rule's source."""
        out: list[Inhibitor] = []
        for i, rule in enumerate(self.routing.spec.inhibit):
            out += inhibitors_of(i, rule, store.unresolved_since(now - rule.within, inhibit_severities(rule)))
        return out

    def _flush_group(self, store: RouteStore, g: Group, now: float, silences: Sequence[Silence],
                     inhibitors: Sequence[Inhibitor]) -> int:
        members = store.unsent_members(g.id)
        alerts = store.alerts(m.alert_id for m in members)
        fresh: list[Alert] = []
        dups: list[Alert] = []
        for m in members:
            found = alerts.get(m.alert_id)
            verdict = triage(found, silences, inhibitors, self.routing.spec.inhibit)
            if verdict.silence is not None:
                count_suppressed(store.conn, verdict.silence.id)
                if self.metrics is not None:
                    self.metrics.silenced.labels(g.receiver).inc()
            if verdict.state is not None:
                store.set_member_state(g.id, m.alert_id, verdict.state)
                continue
            assert found is not None  # triage sends only alerts it found
            (fresh if m.state == "pending" else dups).append(found.alert)

        firing = store.firing(g.id) if wants_repeat(g, fresh, now) else []
        plan = plan_flush(g, fresh, dups, firing, now)
        made = 0
        flushed_at = None
        if plan is not None:
            nid = store.insert_notification(plan.key, plan.dedup_key, g.receiver, plan.kind, g.id, plan.payload, now)
            store.mark_notified(nid, g.id, plan.members)
            made = 1 if nid is not None else 0
            store.record_flush(g.id, now, plan.seq)
            flushed_at = now
        still_firing = repeats(g) and bool(store.firing(g.id, limit=1))
        store.set_next_flush(g.id, next_flush_after(g, flushed_at, still_firing, now))
        return made
