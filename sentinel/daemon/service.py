"""The running daemon: pipeline in the main thread, helpers (watcher, metrics, retention) around it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sentinel.collect.watcher import ChangeWatcher
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import build_sources, database_path, plan_sources, require
from sentinel.daemon.pipeline import BatchProcessor, Pipeline
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database
from sentinel.store.sink import EventSink
from sentinel.store.sqlite_events import SqliteEventStore, enforce_retention

log = logging.getLogger(__name__)


class Worker(Protocol):
    """A background part (notifier, shipper, HTTP server) started and stopped with the daemon."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Daemon:
    """Owns the database, the pipeline and the workers for one configuration."""

    def __init__(self, cfg: LoadedConfig, metrics: Metrics | None = None, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.db: Database | None = None
        self.pipeline: Pipeline | None = None
        self.watcher: ChangeWatcher | None = None
        self.workers: list[Worker] = []
        self.processors: list[BatchProcessor] = []
        self.sink: EventSink | None = None
        self._last_retention = 0.0

    def open(self) -> Pipeline:
        """Validate config, open the store, restore checkpoints; raise on any config error."""
        cfg = self.cfg
        plans, _, errors = plan_sources(cfg)
        require(errors)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(database_path(cfg))
        self.sink = self.sink or SqliteEventStore()
        sources = build_sources(cfg, plans, self.metrics)
        self.pipeline = Pipeline(self.db, self.sink, sources, cfg.config.pipeline, self.metrics, self.processors,
                                 self.clock)
        self.pipeline.restore()
        return self.pipeline

    def start_workers(self) -> None:
        if self.pipeline is None:
            raise RuntimeError("open() first")
        if self.cfg.config.pipeline.use_watchdog:
            patterns = [p for src in self.pipeline.sources for p in src.tailer.patterns]
            self.watcher = ChangeWatcher(patterns, self.wake)
            if self.watcher.start():
                self.pipeline.structural_change = self.watcher.structural
        for worker in self.workers:
            worker.start()

    def idle(self) -> None:
        """Housekeeping between batches: retention."""
        now = self.clock()
        s = self.cfg.config.storage.sqlite
        if self.db is None or now - self._last_retention < s.retention_check_seconds:
            return
        self._last_retention = now
        if self.cfg.config.storage.backend == "sqlite":
            result = enforce_retention(self.db.lock, self.db.conn, s.retention_days, s.max_size_mb, now)
            self.metrics.retention_deleted.labels("age").inc(result.by_age)
            self.metrics.retention_deleted.labels("size").inc(result.by_size)
        self.metrics.store_bytes.set(self.db.path.stat().st_size if self.db.path.exists() else 0)

    def run(self) -> None:
        pipeline = self.pipeline or self.open()
        self.start_workers()
        log.info("sentinel running: %d sources, store %s", len(pipeline.sources), self.cfg.config.storage.backend)
        try:
            pipeline.run(self.stop_event, self.wake, self.idle)
        finally:
            self.close()

    def request_stop(self, *_: object) -> None:
        self.stop_event.set()
        self.wake.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for worker in reversed(self.workers):
            try:
                worker.stop()
            except Exception:
                log.exception("stopping a worker failed")
        if self.pipeline is not None:
            for src in self.pipeline.sources:
                src.tailer.close()
        if self.db is not None:
            self.db.close()
        log.info("sentinel stopped")
