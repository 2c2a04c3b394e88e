"""The routing worker: outbox → groups → notification rows, auto-resolution and follow-ups, on a thread of its
own with its own SQLite connection. Delivery of the rows it makes is ``sentinel.notify``'s job; ``on_routed``
tells it there is work. All state is in the database, so a killed worker resumes where it stopped."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sentinel.conf.models import NotifySettings
from sentinel.metrics.registry import Metrics
from sentinel.route.escalation import follow_up
from sentinel.route.lifecycle import AUTO_RESOLVER, auto_resolve
from sentinel.route.loader import Routing
from sentinel.route.router import Router
from sentinel.route.state import ensure_schema
from sentinel.store.database import connect, immediate
from sentinel.store.polling import PollingThread

log = logging.getLogger("sentinel.notify.worker")  # the name routing's log lines always had
Clock = Callable[[], float]
# Drained in transactions of this many outbox rows; a shorter one means the outbox is empty.
CONSUME_BATCH = 500


class RoutingService:
    """Routing for one database. ``route_once`` is the step; ``start`` runs it on its thread."""

    def __init__(self, db_path: Path, routing: Routing, settings: NotifySettings, metrics: Metrics | None = None,
                 clock: Clock = time.time, resolve_after: Mapping[str, float] | None = None,
                 audit: Callable[..., Any] | None = None, on_routed: Callable[[], None] | None = None) -> None:
        self.db_path = db_path
        self.routing = routing
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        # Per rule id, the quiet period after which its alerts resolve by themselves (from the rule pack).
        self.resolve_after = dict(resolve_after or {})
        self.audit = audit or (lambda action, actor, **details: None)
        self.on_routed = on_routed or (lambda: None)
        self.router = Router(routing, self.metrics)
        self._poller = PollingThread(self.route_once, "routing", settings.poll_interval_ms / 1000.0, log)
        self._local = threading.local()
        self._last_followup = 0.0
        ensure_schema(self._conn())

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread (SQLite connections are not shared across threads here)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    def route_once(self, now: float | None = None) -> int:
        """Drain the outbox, flush due groups, and (every followup interval) resolve, escalate and remind."""
        conn = self._conn()
        now = self.clock() if now is None else now
        moved = 0
        while True:
            n = self.router.consume(conn, now, CONSUME_BATCH)
            moved += n
            if n < CONSUME_BATCH:
                break
        made = self.router.flush(conn, now)
        if now - self._last_followup >= self.settings.followup_interval_seconds or now < self._last_followup:
            self._last_followup = now
            made += self._auto_resolve(conn, now)
            made += follow_up(conn, self.routing, now, self.metrics)
        if made:
            self.on_routed()
        return moved + made

    def _auto_resolve(self, conn: sqlite3.Connection, now: float) -> int:
        """Resolve alerts whose rule's quiet period passed; their resolved messages commit with the status."""
        if not self.resolve_after:
            return 0
        with immediate(conn):
            views = auto_resolve(conn, self.resolve_after, now)
        for v in views:
            self.audit("resolve", actor=AUTO_RESOLVER, alert_id=v.alert.id, rule=v.alert.rule_id,
                       severity=v.alert.severity, how="auto")
        if views:
            log.info("%d alert(s) resolved after their rule's quiet period", len(views))
        return len(views)

    def outbox_written(self) -> None:
        """Called after a batch that queued alerts committed: route them now, not at the next poll."""
        self._poller.wake()

    def start(self) -> None:
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop(timeout=self.settings.request_timeout_seconds + 5)
