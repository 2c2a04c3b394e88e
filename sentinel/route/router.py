"""The router: outbox → groups (one transaction per batch), due groups → notifications, then follow-ups.

Timing follows Alertmanager: a new group waits ``group_wait``; later alerts join the next message no earlier
than ``group_interval`` after the last one; a group whose alerts are still open is re-sent every
``repeat_interval``. An alert whose key (rule + the rule's group key) was already notified and is still open
is a duplicate: it is counted in the next message but never triggers one by itself.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sentinel.events.alerts import SEVERITY_RANK, Alert
from sentinel.metrics.registry import Metrics
from sentinel.route.loader import Routing
from sentinel.route.silences import Silence, active_silences, count_suppressed, silenced_by
from sentinel.route.tree import alert_labels, matches
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert
from sentinel.store.database import immediate

log = logging.getLogger(__name__)

# A message lists at most this many distinct alerts; the counts always cover all of them.
MAX_LISTED = 50


def alert_key(alert: Alert) -> str:
    """What makes two alerts "the same" for deduplication: the rule and the rule's own group key."""
    return f"{alert.rule_id}|{alert.group_key}"


@dataclass
class _Group:
    id: str
    route_id: str
    receiver: str
    labels: dict[str, str]
    digest: bool
    group_wait: float
    group_interval: float
    repeat_interval: float
    next_flush: float | None
    last_flush: float | None
    flushes: int


_GROUP_COLS = ("id, route_id, receiver, labels, digest, group_wait, group_interval, repeat_interval, next_flush, "
               "last_flush, flushes")


def _group(r: Sequence[Any]) -> _Group:
    return _Group(r[0], r[1], r[2], orjson.loads(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10])


def insert_notification(tx: sqlite3.Connection, key: str, dedup_key: str, receiver: str, kind: str,
                        group_id: str | None, payload: dict[str, Any], now: float) -> int | None:
    """Queue one message for one receiver; None if that (receiver, key) is already queued."""
    cur = tx.execute(
        "INSERT OR IGNORE INTO notifications (key, dedup_key, receiver, kind, group_id, payload, created, "
        "next_attempt) VALUES (?,?,?,?,?,?,?,?)",
        (key, dedup_key, receiver, kind, group_id, orjson.dumps(payload).decode(), now, now))
    return cur.lastrowid if cur.rowcount else None


def load_alerts(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, tuple[Alert, str]]:
    """Alerts and their status by id (chunked to stay under SQLite's parameter limit)."""
    out: dict[str, tuple[Alert, str]] = {}
    ids = list(ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        rows = conn.execute(f"SELECT {ALERT_COLUMNS}, status FROM alerts WHERE id IN ({','.join('?' * len(chunk))})",
                            chunk).fetchall()
        for r in rows:
            out[r[0]] = (row_to_alert(r[:15]), r[15])
    return out


def summarize(alerts: Sequence[Alert], occurrences: Counter[str]) -> dict[str, Any]:
    """The PHI-free facts a message is rendered from: counts, time window, which alerts (ids only)."""
    by_key: dict[str, Alert] = {}
    for a in sorted(alerts, key=lambda a: (-SEVERITY_RANK.get(a.severity, 0), a.created)):
        by_key.setdefault(alert_key(a), a)
    listed = list(by_key.values())[:MAX_LISTED]
    return {
        "alert_ids": [a.id for a in listed],
        "occurrences": {a.id: occurrences.get(alert_key(a), 1) for a in listed},
        "alert_count": len(alerts),
        "distinct_count": len(by_key),
        "event_count": sum(a.count for a in alerts),
        "severity": max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 0)),
        "window": [min(a.first_seen for a in alerts), max(a.last_seen for a in alerts)],
    }


class Router:
    """Consumes the outbox and turns due groups into notification rows; all state lives in the database."""

    def __init__(self, routing: Routing, metrics: Metrics | None = None) -> None:
        self.routing = routing
        self.metrics = metrics

    # --- outbox → groups -------------------------------------------------------------------------------------

    def consume(self, conn: sqlite3.Connection, now: float, limit: int = 500) -> int:
        """Route up to ``limit`` outbox rows in ONE transaction; returns how many left the outbox."""
        with immediate(conn):
            rows = conn.execute(
                f"SELECT o.seq, o.alert_id, {', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))} "
                "FROM outbox o LEFT JOIN alerts a ON a.id = o.alert_id ORDER BY o.seq LIMIT ?", (limit,)).fetchall()
            for r in rows:
                if r[2] is not None:
                    self._route_one(conn, row_to_alert(r[2:]), now)
                else:
                    log.warning("outbox row %s names no alert; dropped", r[0])
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(r[0],) for r in rows])
        return len(rows)

    def _route_one(self, tx: sqlite3.Connection, alert: Alert, now: float) -> None:
        labels = alert_labels(alert)
        routes = self.routing.tree.match(alert, now)
        key = alert_key(alert)
        for m in routes:
            gid = m.group_id(labels)
            tx.execute(
                "INSERT OR IGNORE INTO route_groups (id, route_id, receiver, labels, digest, group_wait, "
                "group_interval, repeat_interval, created) VALUES (?,?,?,?,?,?,?,?,?)",
                (gid, m.route_id, m.receiver, orjson.dumps(m.group_labels(labels)).decode(), int(m.digest),
                 m.group_wait, m.group_interval, m.repeat_interval, now))
            already = tx.execute(
                "SELECT 1 FROM route_members rm JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? "
                "AND rm.alert_key = ? AND rm.state IN ('sent', 'duplicate') AND a.status = 'open' LIMIT 1",
                (gid, key)).fetchone()
            state = "duplicate" if already else "pending"
            tx.execute("INSERT OR IGNORE INTO route_members (group_id, alert_id, alert_key, added, state) "
                       "VALUES (?,?,?,?,?)", (gid, alert.id, key, now, state))
            if state == "pending":
                self._schedule(tx, gid, now)
        tx.execute("INSERT OR IGNORE INTO alert_routing (alert_id, receivers, routed_at) VALUES (?,?,?)",
                   (alert.id, orjson.dumps([m.receiver for m in routes]).decode(), now))
        inc = self.routing.spec.incident
        if alert.severity in inc.severities:
            detected = alert.created or now
            tx.execute("INSERT OR IGNORE INTO incidents (alert_id, detected_at, ba_deadline, breach_deadline) "
                       "VALUES (?,?,?,?)", (alert.id, detected, detected + inc.window, detected + inc.breach_limit))

    def _schedule(self, tx: sqlite3.Connection, gid: str, now: float) -> None:
        g = _group(tx.execute(f"SELECT {_GROUP_COLS} FROM route_groups WHERE id = ?", (gid,)).fetchone())
        if g.digest:
            candidate = self.routing.tree.clock.next_digest(now)
        elif g.last_flush is None:
            candidate = now + g.group_wait
        else:
            candidate = max(now, g.last_flush + g.group_interval)
        if g.next_flush is None or candidate < g.next_flush:
            tx.execute("UPDATE route_groups SET next_flush = ? WHERE id = ?", (candidate, gid))

    # --- due groups → notifications ----------------------------------------------------------------------------

    def flush(self, conn: sqlite3.Connection, now: float, limit: int = 200) -> int:
        """Send what is due; returns the number of notifications created."""
        created = 0
        with immediate(conn):
            due = [_group(r) for r in conn.execute(
                f"SELECT {_GROUP_COLS} FROM route_groups WHERE next_flush IS NOT NULL AND next_flush <= ? "
                "ORDER BY next_flush LIMIT ?", (now, limit))]
            if due:
                silences = active_silences(conn, now)
                inhibitors = self._inhibitors(conn, now)
                for g in due:
                    created += self._flush_group(conn, g, now, silences, inhibitors)
        return created

    def _inhibitors(self, conn: sqlite3.Connection, now: float) -> list[tuple[int, dict[str, str | list[str]], str]]:
        """(inhibit rule index, labels, alert id) of every open alert that matches an inhibit rule's source."""
        out: list[tuple[int, dict[str, str | list[str]], str]] = []
        for i, rule in enumerate(self.routing.spec.inhibit):
            sql = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE status != 'resolved' AND created >= ?"
            params: list[Any] = [now - rule.within]
            wanted = rule.source.get("severity")
            if wanted is not None:
                # Inhibiting sources are few (criticals); let the index skip the rest of a storm.
                options = wanted if isinstance(wanted, list) else [wanted]
                sql += f" AND severity IN ({','.join('?' * len(options))})"
                params += [str(o) for o in options]
            rows = conn.execute(sql + " ORDER BY created DESC LIMIT 10000", params).fetchall()
            for r in rows:
                a = row_to_alert(r)
                labels = alert_labels(a)
                if matches(rule.source, labels):
                    out.append((i, labels, a.id))
        return out

    def _inhibited(self, labels: dict[str, str | list[str]], alert_id: str,
                   inhibitors: list[tuple[int, dict[str, str | list[str]], str]]) -> bool:
        for i, src_labels, src_id in inhibitors:
            rule = self.routing.spec.inhibit[i]
            if src_id == alert_id or not matches(rule.target, labels):
                continue
            if all(labels.get(k) is not None and labels.get(k) == src_labels.get(k) for k in rule.equal):
                return True
        return False

    def _flush_group(self, tx: sqlite3.Connection, g: _Group, now: float, silences: list[Silence],
                     inhibitors: list[tuple[int, dict[str, str | list[str]], str]]) -> int:
        members = tx.execute("SELECT alert_id, alert_key, state FROM route_members WHERE group_id = ? "
                             "AND notification_id IS NULL AND state IN ('pending', 'duplicate')", (g.id,)).fetchall()
        alerts = load_alerts(tx, [m[0] for m in members])
        fresh: list[Alert] = []
        dups: list[Alert] = []
        for alert_id, _key, state in members:
            found = alerts.get(alert_id)
            if found is None:
                tx.execute("UPDATE route_members SET state = 'resolved' WHERE group_id = ? AND alert_id = ?",
                           (g.id, alert_id))
                continue
            alert, status = found
            new_state = None
            labels = alert_labels(alert)
            if status == "resolved":
                new_state = "resolved"
            elif (s := silenced_by(silences, labels)) is not None:
                new_state = "silenced"
                count_suppressed(tx, s.id)
                if self.metrics is not None:
                    self.metrics.silenced.labels(g.receiver).inc()
            elif self._inhibited(labels, alert.id, inhibitors):
                new_state = "inhibited"
            if new_state is not None:
                tx.execute("UPDATE route_members SET state = ? WHERE group_id = ? AND alert_id = ?",
                           (new_state, g.id, alert_id))
                continue
            (fresh if state == "pending" else dups).append(alert)

        kind = "digest" if g.digest else "alert"
        chosen: list[Alert] = fresh + dups
        repeat_due = g.last_flush is not None and now >= g.last_flush + g.repeat_interval and not g.digest
        if not fresh and repeat_due:
            firing = self._firing(tx, g.id)
            if firing:
                kind = "repeat"
                chosen = firing
        made = 0
        if fresh or (kind == "repeat" and chosen):
            occurrences = Counter(alert_key(a) for a in chosen)
            payload = {"kind": kind, "group_id": g.id, "route_id": g.route_id, "group": g.labels,
                       **summarize(chosen, occurrences)}
            seq = g.flushes + 1
            nid = insert_notification(tx, f"g:{g.id}:{seq}", f"sentinel-{g.id}", g.receiver, kind, g.id, payload, now)
            ids = [(nid, g.id, a.id) for a in fresh + dups]
            tx.executemany("UPDATE route_members SET notification_id = ?, "
                           "state = CASE state WHEN 'pending' THEN 'sent' ELSE state END "
                           "WHERE group_id = ? AND alert_id = ?", ids)
            made = 1 if nid is not None else 0
            tx.execute("UPDATE route_groups SET last_flush = ?, flushes = ? WHERE id = ?", (now, seq, g.id))
            g.last_flush = now
        still_firing = not g.digest and bool(self._firing(tx, g.id, limit=1))
        base = g.last_flush if g.last_flush is not None else now
        tx.execute("UPDATE route_groups SET next_flush = ? WHERE id = ?",
                   (base + g.repeat_interval if still_firing else None, g.id))
        return made

    @staticmethod
    def _firing(tx: sqlite3.Connection, gid: str, limit: int = 100_000) -> list[Alert]:
        rows = tx.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))} FROM route_members rm "
            "JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? AND rm.state IN ('sent', 'duplicate') "
            "AND a.status = 'open' LIMIT ?", (gid, limit)).fetchall()
        return [row_to_alert(r) for r in rows]
