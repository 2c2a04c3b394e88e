"""The alert queue in metrics: open and unacknowledged alerts, response times, the nearest incident deadline.

Acknowledgements and resolutions happen in other processes too (``sentinel alerts ack``, the alert API),
so they are read back from the alert table rather than counted where they happen: each refresh observes
the acknowledgements and resolutions committed since the previous one, each exactly once.
"""

from __future__ import annotations

import sqlite3

from sentinel.metrics.registry import INCIDENT_CLOCKS, Metrics
from sentinel.route import state as _state  # noqa: F401 - registers the incidents table read here

SEVERITIES = ("critical", "high", "medium", "low", "info")
# A transition is looked for this far behind the previous refresh: an ``ack`` stamps its time before it
# commits, so a row can appear with a time slightly older than the last look.
LOOK_BACK_SECONDS = 300.0


class AlertGauges:
    """Refreshes the alert-queue metrics from a connection to the alert table."""

    def __init__(self, metrics: Metrics, since: float) -> None:
        self.metrics = metrics
        # Transitions before ``since`` (the daemon's start) were counted by an earlier process, if at all.
        self.since = since
        self._last = since
        self._seen: dict[tuple[str, str], float] = {}
        for sev in SEVERITIES:
            metrics.alerts_open.labels(sev)
            metrics.alerts_unacknowledged.labels(sev)
            metrics.ack_seconds.labels(sev)
            metrics.resolve_seconds.labels(sev)

    def refresh(self, conn: sqlite3.Connection, now: float) -> None:
        self._queue(conn)
        self._transitions(conn, now)
        self._deadlines(conn, now)

    def _queue(self, conn: sqlite3.Connection) -> None:
        opened = dict.fromkeys(SEVERITIES, 0)
        unacked = dict.fromkeys(SEVERITIES, 0)
        for sev, status, n in conn.execute("SELECT severity, status, COUNT(*) FROM alerts WHERE status != 'resolved' "
                                           "GROUP BY severity, status"):
            if sev not in opened:
                continue  # severities are validated when rules load; a hand-edited row is not a new series
            opened[sev] += n
            if status == "open":
                unacked[sev] += n
        for sev in SEVERITIES:
            self.metrics.alerts_open.labels(sev).set(opened[sev])
            self.metrics.alerts_unacknowledged.labels(sev).set(unacked[sev])

    def _transitions(self, conn: sqlite3.Connection, now: float) -> None:
        start = max(self.since, self._last - LOOK_BACK_SECONDS)
        for column, histogram, kind in (("acked_at", self.metrics.ack_seconds, "ack"),
                                        ("resolved_at", self.metrics.resolve_seconds, "resolve")):
            for alert_id, sev, created, at in conn.execute(
                    f"SELECT id, severity, created, {column} FROM alerts WHERE {column} >= ?", (start,)):
                key = (kind, alert_id)
                if key in self._seen or sev not in SEVERITIES:
                    continue
                self._seen[key] = at
                histogram.labels(sev).observe(max(0.0, at - created))
        self._last = now
        # Only transitions inside the look-back window can be seen again: older keys are dropped.
        self._seen = {k: at for k, at in self._seen.items() if at >= now - 2 * LOOK_BACK_SECONDS}

    def _deadlines(self, conn: sqlite3.Connection, now: float) -> None:
        # The business-associate clock runs until someone acknowledges; the breach clock until resolution.
        ba, breach = conn.execute(
            "SELECT MIN(CASE WHEN a.acked_at IS NULL THEN i.ba_deadline END), "
            "MIN(CASE WHEN a.resolved_at IS NULL THEN i.breach_deadline END) "
            "FROM incidents i JOIN alerts a ON a.id = i.alert_id WHERE a.status != 'resolved'").fetchone()
        for clock, deadline in zip(INCIDENT_CLOCKS, (ba, breach), strict=True):
            if deadline is None:
                # Nothing running: the series goes away rather than reporting a deadline that does not exist.
                try:
                    self.metrics.incident_deadline.remove(clock)
                except KeyError:
                    pass
            else:
                self.metrics.incident_deadline.labels(clock).set(deadline - now)
