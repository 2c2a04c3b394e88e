"""The running daemon: pipeline in the main thread, helpers (watcher, metrics, retention) around it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from sentinel.collect.watcher import ChangeWatcher
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import build_sources, database_path, plan_sources, require
from sentinel.daemon.gctune import tune_gc
from sentinel.daemon.overlap import BatchProcessor
from sentinel.daemon.parts import LifecycleHooks, Parts, Worker
from sentinel.daemon.pipeline import Pipeline
from sentinel.daemon.signals import SignalRelay
from sentinel.daemon.space_guard import SpaceGuard
from sentinel.daemon.tables import database_tables
from sentinel.errors import SentinelError
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database
from sentinel.store.identity import bind_state, check_state
from sentinel.store.sink import EventSink
from sentinel.store.space import SpaceReserve, is_disk_full
from sentinel.store.sqlite_events import SqliteEventStore, enforce_retention

log = logging.getLogger(__name__)


RESERVE_FILE = "space-reserve"  # in state_dir: see sentinel.store.space
DRAIN_SECONDS = 20.0  # SIGTERM: keep committing what is already written for at most this long (unit: 45 s)


class Daemon:
    """Owns the database, the pipeline and the workers for one configuration."""

    def __init__(
        self, cfg: LoadedConfig, metrics: Metrics | None = None, clock: Callable[[], float] = time.time, *,
        sink: EventSink | None = None, accepting: Callable[[], bool] | None = None, reset_state: bool = False,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.db: Database | None = None
        self.space: SpaceGuard | None = None
        self.reset_state = reset_state  # --reset-state: accept a state directory whose database is missing or swapped
        self.state_reset: dict[str, object] | None = None  # what a reset accepted, for the audit trail
        self.pipeline: Pipeline | None = None
        self.watcher: ChangeWatcher | None = None
        self.workers: list[Worker] = []
        self.processors: list[BatchProcessor] = []
        self.sink: EventSink | None = sink
        self.accepting: Callable[[], bool] = accepting or (lambda: True)
        self._last_retention = 0.0
        self.lifecycle: LifecycleHooks | None = None
        self.parts = Parts()  # what assemble built, by role (see install)
        self.reload_requested = threading.Event()
        self.ready = threading.Event()
        self.draining = False
        self.drain_seconds = DRAIN_SECONDS
        self.heartbeat = time.monotonic()  # advanced by the main loop; /healthz and the watchdog read it
        self._stop_reason = "stop requested"

    def open(self) -> Pipeline:
        """Validate config, open the store, restore checkpoints; raise on any config error."""
        cfg = self.cfg
        plans, _, errors = plan_sources(cfg)
        require(errors)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        db_path = database_path(cfg)
        self.state_reset = check_state(cfg.state_dir, db_path, self.reset_state)
        self.db = Database(db_path, database_tables(cfg))
        state_id = bind_state(self.db.conn, cfg.state_dir, renew=self.state_reset is not None)
        if self.state_reset is not None:
            self.state_reset["state_id"] = state_id
            log.warning("--reset-state: %s accepted as it is now (%s), new state id %s", db_path,
                        self.state_reset["reason"], state_id)
        self.sink = self.sink or SqliteEventStore(self.clock)
        storage = cfg.config.storage
        self.space = SpaceGuard(SpaceReserve(cfg.state_path(RESERVE_FILE), int(storage.reserve_mb * 1024 * 1024)),
                                self.metrics, storage.full_retry_seconds)
        self.space.start()
        sources = build_sources(cfg, plans, self.metrics, self.clock, self.wake)
        self.pipeline = Pipeline(self.db, self.sink, sources, cfg.config.pipeline, self.metrics, self.processors,
                                 self.clock, accepting=lambda: self.accepting(), space=self.space)
        self.pipeline.restore()
        return self.pipeline

    def install(self, parts: Parts) -> None:
        """Take the parts assemble built for this configuration (after ``open()``): their processors join the
        pipeline, their workers start with the daemon, the lifecycle hears of a full disk."""
        if self.pipeline is None:
            raise RuntimeError("open() first")
        self.parts = parts
        self.workers.extend(parts.workers())
        self.processors.extend(parts.processors())
        self.pipeline.after_commit.extend(parts.after_commit)
        self.lifecycle = parts.lifecycle
        if self.space is not None and parts.lifecycle is not None:
            self.space.on_full.append(parts.lifecycle.storage_full)
            self.space.on_recovered.append(parts.lifecycle.storage_recovered)

    def start_workers(self) -> None:
        if self.pipeline is None:
            raise RuntimeError("open() first")
        self.restart_watcher()
        for worker in self.workers:
            worker.start()

    def restart_watcher(self) -> None:
        """(Re)start file notifications for the current sources (again after a reload changed them)."""
        if self.pipeline is None:
            return
        patterns = [p for src in self.pipeline.sources for p in src.tailer.patterns]
        if self.watcher is not None:
            if self.watcher.directories == ChangeWatcher(patterns, self.wake).directories:
                return
            self.watcher.stop()
            self.watcher = None
        if self.cfg.config.pipeline.use_watchdog:
            self.watcher = ChangeWatcher(patterns, self.wake)
            if self.watcher.start():
                self.pipeline.structural_change = self.watcher.structural

    def beat(self, *_: object) -> None:
        """After each commit: the main loop is advancing."""
        self.heartbeat = time.monotonic()

    def tick(self) -> None:
        """When idle, in the pipeline thread with no batch in flight: heartbeat, and a pending reload.

        Reloads wait for this moment (the files read to their end, everything committed), so under a
        sustained backlog a reload takes effect once the backlog is read.
        """
        self.heartbeat = time.monotonic()
        if self.reload_requested.is_set() and not self.stop_event.is_set():
            self.reload_requested.clear()
            if self.lifecycle is not None:
                self.lifecycle.reload()
            self.heartbeat = time.monotonic()

    def idle(self) -> None:
        """Housekeeping between batches: heartbeat, pending reload, retention."""
        self.tick()
        now = self.clock()
        s = self.cfg.config.storage.sqlite
        if self.db is None or now - self._last_retention < s.retention_check_seconds:
            return
        self._last_retention = now
        if self.cfg.config.storage.backend == "sqlite":
            try:
                result = enforce_retention(self.db.lock, self.db.conn, s.retention_days, s.max_size_mb, now)
            except Exception as exc:
                # Deleting needs room in the WAL too; on a full disk the next pass tries again.
                if not is_disk_full(exc):
                    raise
                log.error("retention pass failed, the disk is full: %s", exc)
                return
            self.metrics.retention_deleted.labels("age").inc(result.by_age)
            self.metrics.retention_deleted.labels("size").inc(result.by_size)
        self.metrics.store_bytes.set(self.db.path.stat().st_size if self.db.path.exists() else 0)

    def run(self) -> None:
        pipeline = self.pipeline or self.open()
        tune_gc()
        self.start_workers()
        pipeline.after_commit.append(self.beat)
        log.info("sentinel running: %d sources, store %s", len(pipeline.sources), self.cfg.config.storage.backend)
        batches = events = 0
        complete = False
        try:
            if self.lifecycle is not None:
                self.lifecycle.started()
            self.ready.set()
            try:
                pipeline.run(self.stop_event, self.wake, self.idle)
            except SentinelError as exc:
                # No drain: a daemon that cannot trust its store must not write on (a deleted database).
                if self.lifecycle is not None:
                    self.lifecycle.failed(str(exc))
                raise
            batches, events, complete = self.drain()
        finally:
            self.close()
            if self.lifecycle is not None:
                self.lifecycle.stopped(batches, events, complete)

    def drain(self) -> tuple[int, int, bool]:
        """After a stop request: commit what the files already hold, bounded by ``drain_seconds``."""
        assert self.pipeline is not None
        self.ready.clear()
        self.draining = True
        self.metrics.draining.set(1)
        if self.lifecycle is not None:
            self.lifecycle.stopping(self._stop_reason)
        deadline = time.monotonic() + self.drain_seconds
        batches = events = 0
        while time.monotonic() < deadline:
            result = self.pipeline.step()
            if not result.busy:
                log.info("drained %d events in %d batches; checkpoints committed", events, batches)
                return batches, events, True
            batches += 1
            events += result.events
        log.warning("drain stopped after %.0f s with input left (%d events committed); it is read at the next start",
                    self.drain_seconds, events)
        return batches, events, False

    def request_stop(self, signum: int | None = None, *_: object) -> None:
        if signum is not None:
            self._stop_reason = signal.Signals(signum).name
        self.stop_event.set()
        self.wake.set()

    def request_reload(self, *_: object) -> None:
        """SIGHUP: only flag it; the reload itself runs in the pipeline thread between batches."""
        self.reload_requested.set()
        self.wake.set()

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads; the actions run on a relay thread (see ``signals``)."""
        SignalRelay({signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop,
                     signal.SIGHUP: self.request_reload}).install()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for worker in reversed(self.workers):
            try:
                worker.stop()
            except Exception:
                log.exception("stopping a worker failed")
        if self.pipeline is not None:
            try:
                self.pipeline.flush()
            except Exception:
                log.exception("committing the batches still being decoded failed; they are read again at start")
            self.pipeline.close()
            for src in self.pipeline.sources:
                src.tailer.close()
        if self.db is not None:
            self.db.close()
        log.info("sentinel stopped")
