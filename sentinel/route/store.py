"""The routing tables as typed values: every SQL statement the router, escalation and resolved messages run.

The tables' DDL is in ``store/route_tables.py``. A ``RouteStore`` wraps one connection and works inside the
caller's transaction: it never commits, so a batch of routing decisions stays one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sentinel.events.alerts import Alert
from sentinel.route.tree import RouteMatch
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert

# SQLite's default limit on bound parameters is 999; stay well under it.
CHUNK = 500
_A_COLUMNS = ", ".join("a." + c.strip() for c in ALERT_COLUMNS.split(","))
_GROUP_COLUMNS = ("id, route_id, receiver, labels, digest, group_wait, group_interval, repeat_interval, next_flush, "
                  "last_flush, flushes")


@dataclass(frozen=True)
class Group:
    """One route_groups row: the alerts one receiver gets in one message, and when it is next flushed."""

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

    @classmethod
    def from_row(cls, r: sqlite3.Row | tuple[Any, ...]) -> Group:
        return cls(id=str(r[0]), route_id=str(r[1]), receiver=str(r[2]), labels=orjson.loads(r[3]),
                   digest=bool(r[4]), group_wait=float(r[5]), group_interval=float(r[6]),
                   repeat_interval=float(r[7]), next_flush=r[8], last_flush=r[9], flushes=int(r[10]))


@dataclass(frozen=True)
class Member:
    """A route_members row not yet in a message: ``state`` is pending or duplicate."""

    alert_id: str
    alert_key: str
    state: str


@dataclass(frozen=True)
class StatusedAlert:
    """An alert with its lifecycle status (open, acknowledged, resolved)."""

    alert: Alert
    status: str


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row; ``alert`` is None when the alert it names does not exist."""

    seq: int
    alert_id: str
    alert: Alert | None


@dataclass(frozen=True)
class Incident:
    """The incident clock of one alert."""

    alert_id: str
    detected_at: float
    ba_deadline: float
    breach_deadline: float


@dataclass(frozen=True)
class OpenIncident:
    """An open alert's incident clock with the receivers it was routed to (empty when never routed)."""

    incident: Incident
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class MemberGroup:
    """A group an alert was notified in: where its resolved message goes."""

    group_id: str
    receiver: str
    labels: dict[str, str]
    alert_id: str


class RouteStore:
    """The route tables over one connection, in the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- outbox ------------------------------------------------------------------------------------------------

    def outbox(self, limit: int) -> list[OutboxEntry]:
        rows = self.conn.execute(f"SELECT o.seq, o.alert_id, {_A_COLUMNS} FROM outbox o "
                                 "LEFT JOIN alerts a ON a.id = o.alert_id ORDER BY o.seq LIMIT ?", (limit,)).fetchall()
        return [OutboxEntry(int(r[0]), str(r[1]), row_to_alert(r[2:]) if r[2] is not None else None) for r in rows]

    def drop_outbox(self, seqs: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    # --- alerts ------------------------------------------------------------------------------------------------

    def alerts(self, ids: Iterable[str]) -> dict[str, StatusedAlert]:
        """Alerts and their status by id; a missing id is simply absent."""
        out: dict[str, StatusedAlert] = {}
        wanted = list(ids)
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i:i + CHUNK]
            rows = self.conn.execute(f"SELECT {ALERT_COLUMNS}, status FROM alerts "
                                     f"WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            for r in rows:
                out[r[0]] = StatusedAlert(row_to_alert(r[:15]), str(r[15]))
        return out

    def unresolved_since(self, since: float, severities: Sequence[str] | None) -> list[Alert]:
        """Alerts not resolved, created at or after ``since``, newest first (at most 10,000), optionally only
        of ``severities``: the candidates for inhibiting others."""
        sql = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE status != 'resolved' AND created >= ?"
        params: list[Any] = [since]
        if severities is not None:
            # Inhibiting sources are few (criticals); let the index skip the rest of a storm.
            sql += f" AND severity IN ({','.join('?' * len(severities))})"
            params += list(severities)
        return [row_to_alert(r) for r in self.conn.execute(sql + " ORDER BY created DESC LIMIT 10000", params)]

    # --- groups and their members ------------------------------------------------------------------------------

    def add_group(self, group_id: str, match: RouteMatch, labels: dict[str, str], now: float) -> None:
        """Create the group unless it exists (an existing group keeps its timing and history)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO route_groups (id, route_id, receiver, labels, digest, group_wait, "
            "group_interval, repeat_interval, created) VALUES (?,?,?,?,?,?,?,?,?)",
            (group_id, match.route_id, match.receiver, orjson.dumps(labels).decode(), int(match.digest),
             match.group_wait, match.group_interval, match.repeat_interval, now))

    def group(self, group_id: str) -> Group:
        return Group.from_row(self.conn.execute(f"SELECT {_GROUP_COLUMNS} FROM route_groups WHERE id = ?",
                                                (group_id,)).fetchone())

    def due_groups(self, now: float, limit: int) -> list[Group]:
        return [Group.from_row(r) for r in self.conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM route_groups WHERE next_flush IS NOT NULL AND next_flush <= ? "
            "ORDER BY next_flush LIMIT ?", (now, limit))]

    def set_next_flush(self, group_id: str, at: float | None) -> None:
        self.conn.execute("UPDATE route_groups SET next_flush = ? WHERE id = ?", (at, group_id))

    def record_flush(self, group_id: str, now: float, flushes: int) -> None:
        self.conn.execute("UPDATE route_groups SET last_flush = ?, flushes = ? WHERE id = ?", (now, flushes, group_id))

    def key_notified(self, group_id: str, alert_key: str) -> bool:
        """Whether an open alert with this key was already notified (sent, or counted as a duplicate) here."""
        return self.conn.execute(
            "SELECT 1 FROM route_members rm JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? "
            "AND rm.alert_key = ? AND rm.state IN ('sent', 'duplicate') AND a.status = 'open' LIMIT 1",
            (group_id, alert_key)).fetchone() is not None

    def add_member(self, group_id: str, alert_id: str, alert_key: str, now: float, state: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO route_members (group_id, alert_id, alert_key, added, state) "
                          "VALUES (?,?,?,?,?)", (group_id, alert_id, alert_key, now, state))

    def unsent_members(self, group_id: str) -> list[Member]:
        return [Member(str(r[0]), str(r[1]), str(r[2])) for r in self.conn.execute(
            "SELECT alert_id, alert_key, state FROM route_members WHERE group_id = ? "
            "AND notification_id IS NULL AND state IN ('pending', 'duplicate')", (group_id,))]

    def set_member_state(self, group_id: str, alert_id: str, state: str) -> None:
        self.conn.execute("UPDATE route_members SET state = ? WHERE group_id = ? AND alert_id = ?",
                          (state, group_id, alert_id))

    def mark_notified(self, notification_id: int | None, group_id: str, alert_ids: Iterable[str]) -> None:
        """The members went out in that notification: a pending one is now sent, a duplicate stays one."""
        self.conn.executemany("UPDATE route_members SET notification_id = ?, "
                              "state = CASE state WHEN 'pending' THEN 'sent' ELSE state END "
                              "WHERE group_id = ? AND alert_id = ?",
                              [(notification_id, group_id, a) for a in alert_ids])

    def firing(self, group_id: str, limit: int = 100_000) -> list[Alert]:
        """The group's open alerts that were already notified (sent, or counted as duplicates)."""
        rows = self.conn.execute(
            f"SELECT {_A_COLUMNS} FROM route_members rm JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? "
            "AND rm.state IN ('sent', 'duplicate') AND a.status = 'open' LIMIT ?", (group_id, limit)).fetchall()
        return [row_to_alert(r) for r in rows]

    def notified_groups(self, alert_ids: Sequence[str]) -> list[MemberGroup]:
        """Every group in which one of the alerts was notified, by group then by when the alert joined."""
        out: list[MemberGroup] = []
        for i in range(0, len(alert_ids), CHUNK):
            chunk = list(alert_ids[i:i + CHUNK])
            out += [MemberGroup(str(r[0]), str(r[1]), orjson.loads(r[2]), str(r[3])) for r in self.conn.execute(
                "SELECT g.id, g.receiver, g.labels, rm.alert_id FROM route_members rm "
                "JOIN route_groups g ON g.id = rm.group_id WHERE rm.state IN ('sent', 'duplicate') "
                f"AND rm.alert_id IN ({','.join('?' * len(chunk))}) ORDER BY g.id, rm.added", chunk)]
        return out

    def still_firing(self, group_id: str) -> int:
        """How many of the group's notified alerts are not resolved."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM route_members rm JOIN alerts a ON a.id = rm.alert_id WHERE rm.group_id = ? "
            "AND rm.state IN ('sent', 'duplicate') AND a.status != 'resolved'", (group_id,)).fetchone()[0])

    # --- routing record and incident clock ---------------------------------------------------------------------

    def record_routing(self, alert_id: str, receivers: Sequence[str], now: float) -> None:
        self.conn.execute("INSERT OR IGNORE INTO alert_routing (alert_id, receivers, routed_at) VALUES (?,?,?)",
                          (alert_id, orjson.dumps(list(receivers)).decode(), now))

    def open_incident(self, incident: Incident) -> None:
        """Start the alert's incident clock (once: a re-routed alert keeps its first one)."""
        self.conn.execute("INSERT OR IGNORE INTO incidents (alert_id, detected_at, ba_deadline, breach_deadline) "
                          "VALUES (?,?,?,?)", (incident.alert_id, incident.detected_at, incident.ba_deadline,
                                               incident.breach_deadline))

    def open_incidents(self, lead: float, now: float) -> list[OpenIncident]:
        """Incidents of open alerts whose business-associate deadline is at most ``lead`` seconds away."""
        return [OpenIncident(Incident(str(r[0]), float(r[1]), float(r[2]), float(r[3])),
                             tuple(orjson.loads(r[4] or "[]")))
                for r in self.conn.execute(
                    "SELECT i.alert_id, i.detected_at, i.ba_deadline, i.breach_deadline, r.receivers "
                    "FROM incidents i JOIN alerts a ON a.id = i.alert_id "
                    "LEFT JOIN alert_routing r ON r.alert_id = i.alert_id "
                    "WHERE a.status = 'open' AND i.ba_deadline - ? <= ?", (lead, now))]

    # --- follow-ups --------------------------------------------------------------------------------------------

    def unescalated(self, created_by: float, step: int) -> list[Alert]:
        """Open, routed alerts created at or before ``created_by`` that escalation step ``step`` has not reached."""
        return [row_to_alert(r) for r in self.conn.execute(
            f"SELECT {_A_COLUMNS} FROM alerts a "
            "JOIN alert_routing r ON r.alert_id = a.id WHERE a.status = 'open' AND a.created <= ? "
            "AND NOT EXISTS (SELECT 1 FROM alert_followups f WHERE f.alert_id = a.id AND f.kind = 'escalation' "
            "AND f.step = ?)", (created_by, str(step)))]

    def mark_followup(self, alert_id: str, kind: str, step: str, now: float) -> bool:
        """Record that a follow-up happened; False if it already had (each happens once)."""
        cur = self.conn.execute("INSERT OR IGNORE INTO alert_followups (alert_id, kind, step, created) "
                                "VALUES (?,?,?,?)", (alert_id, kind, step, now))
        return cur.rowcount > 0

    # --- notifications -----------------------------------------------------------------------------------------

    def insert_notification(self, key: str, dedup_key: str, receiver: str, kind: str, group_id: str | None,
                            payload: dict[str, Any], now: float) -> int | None:
        """Queue one message for one receiver; None if that (receiver, key) is already queued."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO notifications (key, dedup_key, receiver, kind, group_id, payload, created, "
            "next_attempt) VALUES (?,?,?,?,?,?,?,?)",
            (key, dedup_key, receiver, kind, group_id, orjson.dumps(payload).decode(), now, now))
        return cur.lastrowid if cur.rowcount else None

    def paged_receivers(self, dedup_key: str) -> list[str]:
        """Receivers an escalation or reminder went to under this dedup key."""
        return [str(r[0]) for r in self.conn.execute(
            "SELECT DISTINCT receiver FROM notifications WHERE dedup_key = ? AND kind IN ('escalation', 'reminder')",
            (dedup_key,))]
