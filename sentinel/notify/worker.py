"""The delivery worker: due notification rows → apprise, with retries, deferral and fallback, on a thread of its
own (and a pool per receiver) with its own SQLite connections. The rows are made by ``sentinel.route``'s routing
worker. All state is in the database, so a killed worker resumes where it stopped.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sentinel.conf.models import NotifySettings
from sentinel.credentials import mask
from sentinel.metrics.registry import Metrics
from sentinel.notify.delivery import AppriseSender, Backoff, Sender
from sentinel.notify.render import Renderer
from sentinel.route.loader import Routing
from sentinel.route.state import ensure_schema
from sentinel.store.database import connect, immediate
from sentinel.store.polling import PollingThread

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass
class _Due:
    id: int
    key: str
    dedup_key: str
    receiver: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    created: float


class NotifyService:
    """Delivery for one database. ``deliver_once`` is the step; ``start`` runs it on its thread."""

    def __init__(self, db_path: Path, routing: Routing, renderer: Renderer, settings: NotifySettings,
                 metrics: Metrics | None = None, clock: Clock = time.time, sender: Sender | None = None,
                 rng: random.Random | None = None) -> None:
        self.db_path = db_path
        self.routing = routing
        self.renderer = renderer
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.sender = sender or AppriseSender(settings.request_timeout_seconds)
        self.rng = rng or random.Random()
        self.backoff = Backoff(settings.retry_base_seconds, settings.retry_max_seconds, settings.retry_jitter)
        self._poller = PollingThread(self.deliver_once, "delivery", settings.poll_interval_ms / 1000.0, log)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._rng_lock = threading.Lock()
        ensure_schema(self._conn())

    # --- connections -------------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread (SQLite connections are not shared across threads here)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            self._local.conn = conn
        return conn

    def _recover(self, conn: sqlite3.Connection) -> None:
        """Attempts cut off by a crash have no outcome: record that; their notifications are still pending."""
        n = conn.execute("UPDATE notification_attempts SET outcome = 'interrupted', finished = ? "
                         "WHERE outcome IS NULL", (self.clock(),)).rowcount
        if n:
            log.warning("%d delivery attempt(s) were interrupted by a restart; they will be retried", n)

    # --- delivery ----------------------------------------------------------------------------------------------

    def due(self, now: float, limit: int = 500) -> list[_Due]:
        rows = self._conn().execute(
            "SELECT id, key, dedup_key, receiver, kind, payload, attempts, created FROM notifications "
            "WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?", (now, limit)).fetchall()
        return [_Due(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6], r[7]) for r in rows]

    def deliver_once(self, now: float | None = None) -> int:
        """Attempt every due notification; per receiver in order, stopping at its first failure. Returns successes."""
        now = self.clock() if now is None else now
        by_receiver: dict[str, list[_Due]] = defaultdict(list)
        for n in self.due(now):
            by_receiver[n.receiver].append(n)
        if not by_receiver:
            self._gauge(now)
            return 0
        if self._pool is None or len(by_receiver) == 1:
            ok = sum(self._deliver_receiver(items) for items in by_receiver.values())
        else:
            ok = sum(self._pool.map(self._deliver_receiver, by_receiver.values()))
        self._gauge(self.clock())
        return ok

    def _deliver_receiver(self, items: Sequence[_Due]) -> int:
        ok = 0
        for i, n in enumerate(items):
            if self._deliver(n):
                ok += 1
                continue
            # The receiver is failing: rather than a timeout per message, the rest of its due messages record a
            # deferred attempt (it counts towards max_attempts, so the fallback takes them all in step).
            conn = self._conn()
            for other in items[i + 1:]:
                receiver = self.routing.receivers.get(other.receiver)
                self._failed(conn, other, other.attempts + 1, self.clock(),
                             f"deferred: receiver failing (notification {n.id})",
                             receiver.fallback if receiver else None, outcome="deferred")
            break
        return ok

    def _deliver(self, n: _Due) -> bool:
        conn = self._conn()
        receiver = self.routing.receivers.get(n.receiver)
        now = self.clock()
        attempt = n.attempts + 1
        if receiver is None:
            self._failed(conn, n, attempt, now, f"receiver {n.receiver!r} is no longer configured", None)
            return False
        try:
            rendered = self.renderer.render(conn, receiver.template, n.kind, n.payload, n.key, n.dedup_key, now)
        except Exception as exc:  # never drop: record and retry (a template or DB problem may be fixed)
            log.exception("rendering notification %d failed", n.id)
            self._failed(conn, n, attempt, now, mask(f"rendering failed: {type(exc).__name__}"), receiver.fallback)
            return False
        # The attempt row is committed before sending, so a crash mid-send leaves a visible interrupted attempt.
        cur = conn.execute("INSERT INTO notification_attempts (notification_id, receiver, attempt, started) "
                           "VALUES (?,?,?,?)", (n.id, n.receiver, attempt, now))
        attempt_id = cur.lastrowid
        result = self.sender.send(receiver, rendered.title, rendered.body, n.dedup_key, n.key,
                                  str(n.payload.get("severity", "info")),
                                  resolve=n.kind == "resolved" and bool(n.payload.get("closes_incident")))
        done = self.clock()
        if result.ok:
            with immediate(conn):
                conn.execute("UPDATE notification_attempts SET finished = ?, outcome = 'delivered' WHERE id = ?",
                             (done, attempt_id))
                conn.execute("UPDATE notifications SET status = 'delivered', delivered_at = ?, attempts = ?, "
                             "last_error = NULL WHERE id = ?", (done, attempt, n.id))
            self.metrics.notifications.labels(n.receiver, "delivered").inc()
            first = n.payload.get("detected_at") or n.created
            self.metrics.notification_seconds.labels(n.receiver).observe(max(0.0, done - float(first)))
            return True
        self._failed(conn, n, attempt, done, result.error or "failed", receiver.fallback, attempt_id)
        return False

    def _failed(self, conn: sqlite3.Connection, n: _Due, attempt: int, now: float, error: str,
                fallback: str | None, attempt_id: int | None = None, outcome: str = "failed") -> None:
        receiver = self.routing.receivers.get(n.receiver)
        max_attempts = (receiver.max_attempts if receiver and receiver.max_attempts else None) \
            or self.settings.max_attempts
        with self._rng_lock:
            delay = self.backoff.delay(attempt, self.rng)
        reroute = attempt >= max_attempts and fallback is not None and fallback in self.routing.receivers
        with immediate(conn):
            if attempt_id is None:
                conn.execute("INSERT INTO notification_attempts (notification_id, receiver, attempt, started, "
                             "finished, outcome, error) VALUES (?,?,?,?,?,?,?)",
                             (n.id, n.receiver, attempt, now, now, outcome, error))
            else:
                conn.execute("UPDATE notification_attempts SET finished = ?, outcome = 'failed', error = ? "
                             "WHERE id = ?", (now, error, attempt_id))
            if reroute:
                conn.execute("UPDATE notifications SET status = 'rerouted', attempts = ?, last_error = ? WHERE id = ?",
                             (attempt, error, n.id))
                conn.execute(
                    "INSERT OR IGNORE INTO notifications (key, dedup_key, receiver, kind, group_id, payload, created, "
                    "next_attempt, fallback_of) SELECT key, dedup_key, ?, kind, group_id, payload, created, ?, id "
                    "FROM notifications WHERE id = ?", (fallback, now, n.id))
            else:
                # Never dropped: past max_attempts without a fallback it keeps retrying at the capped delay.
                conn.execute("UPDATE notifications SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
                             (attempt, now + delay, error, n.id))
        self.metrics.notifications.labels(n.receiver, outcome).inc()
        if outcome == "deferred" and not reroute:
            return
        if reroute:
            self.metrics.notifications.labels(n.receiver, "rerouted").inc()
            log.warning("notification %d to %s failed %d times; handed to fallback %s: %s", n.id, n.receiver,
                        attempt, fallback, error)
        else:
            log.warning("notification %d to %s failed (attempt %d, retry in %.1fs): %s", n.id, n.receiver, attempt,
                        delay, error)
        self._poller.wake()

    def _gauge(self, now: float) -> None:
        depth, oldest = self._conn().execute(
            "SELECT COUNT(*), MIN(created) FROM notifications WHERE status = 'pending'").fetchone()
        self.metrics.outbox_depth.set(depth)
        self.metrics.outbox_oldest.set(max(0.0, now - oldest) if oldest is not None else 0.0)

    # --- threads -----------------------------------------------------------------------------------------------

    def notifications_made(self) -> None:
        """Called when routing made notification rows: deliver them now, not at the next poll."""
        self._poller.wake()

    def start(self) -> None:
        # Recovery runs at start, not construction: a reload builds the new service while the old one still runs.
        self._recover(self._conn())
        if self.settings.delivery_threads > 1:
            self._pool = ThreadPoolExecutor(self.settings.delivery_threads, thread_name_prefix="sentinel-send")
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop(timeout=self.settings.request_timeout_seconds + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
