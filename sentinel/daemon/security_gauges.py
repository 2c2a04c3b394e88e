"""A background worker that keeps the alert-queue and coverage gauges current between batches."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from sentinel.route.gauges import AlertGauges
from sentinel.store.database import connect

log = logging.getLogger(__name__)


class SecurityGaugeWorker:
    """Every ``interval`` seconds: the alert queue from the database, and each coverage refresher."""

    def __init__(self, db_path: Path, gauges: AlertGauges, clock: Callable[[], float],
                 refreshers: Callable[[], Sequence[Callable[[float], None]]] = list, interval: float = 5.0) -> None:
        self.db_path = db_path
        self.gauges = gauges
        self.clock = clock
        # Asked at each refresh, so a reload that replaces the rule engine changes what is refreshed.
        self.refreshers = refreshers
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sentinel-security-gauges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh(self) -> None:
        now = self.clock()
        for refresh in self.refreshers():
            refresh(now)
        conn = connect(self.db_path, readonly=True, timeout=5)
        try:
            self.gauges.refresh(conn, now)
        finally:
            conn.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except sqlite3.Error as exc:  # a busy or still-empty database: the next round tries again
                log.warning("security gauges not refreshed: %s", exc)
            self._stop.wait(self.interval)
