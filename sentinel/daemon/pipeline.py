"""The ingest loop: read → decode → one transaction per batch (events, checkpoints, processors)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sentinel.collect.tailer import SourceTailer
from sentinel.conf.models import PipelineSettings
from sentinel.decode.engine import Decoder
from sentinel.decode.safely import decode_safely
from sentinel.events.model import Event
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database
from sentinel.store.sink import EventSink


class BatchProcessor(Protocol):
    """Something that must see every batch inside its transaction (rule engine, outbox)."""

    def process(self, tx: sqlite3.Connection, events: Sequence[Event], now: float) -> None: ...


@dataclass
class SourceRuntime:
    name: str
    tailer: SourceTailer
    decoder: Decoder


@dataclass
class BatchResult:
    events: int = 0
    new: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


class Pipeline:
    """Runs the sources into the store; everything in a batch commits together or not at all."""

    def __init__(
        self,
        db: Database,
        sink: EventSink,
        sources: list[SourceRuntime],
        settings: PipelineSettings,
        metrics: Metrics,
        processors: Sequence[BatchProcessor] = (),
        clock: Callable[[], float] = time.time,
        accepting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.db = db
        self.sink = sink
        self.sources = sources
        self.settings = settings
        self.metrics = metrics
        # The caller's list itself, so parts added after the pipeline is built (assemble, reload) take part.
        self.processors = processors if isinstance(processors, list) else list(processors)
        self.clock = clock
        self.accepting = accepting
        self.last_discovery = 0.0
        self.discovery_interval = 1.0
        self.structural_change = threading.Event()
        self.after_commit: list[Callable[[BatchResult], None]] = []

    def restore(self) -> None:
        checkpoints = self.db.load_checkpoints()
        for src in self.sources:
            src.tailer.restore(checkpoints)
        self.discover()

    def discover(self) -> None:
        for src in self.sources:
            src.tailer.discover()
            self.metrics.files_open.labels(src.name).set(len(src.tailer.active))
        self.last_discovery = self.clock()

    def step(self) -> BatchResult:
        """Read and commit one batch; returns what it committed (zero events when idle)."""
        now = self.clock()
        if self.structural_change.is_set() or now - self.last_discovery >= self.discovery_interval:
            self.structural_change.clear()
            self.discover()
        result = BatchResult()
        if not self.accepting():
            self.metrics.paused.set(1)
            return result
        self.metrics.paused.set(0)
        limit = self.settings.batch_max_lines
        deadline = now + self.settings.batch_max_wait_ms / 1000.0
        events: list[Event] = []
        while len(events) < limit:
            got = 0
            for src in self.sources:
                records = src.tailer.read(limit - len(events))
                got += len(records)
                decoder = src.decoder
                for rec in records:
                    ev, outcome = decode_safely(decoder, rec, now)
                    events.append(ev)
                    result.outcomes[(src.name, outcome)] += 1
            if got == 0 or self.clock() >= deadline:
                break
        checkpoints = [cp for src in self.sources for cp in src.tailer.checkpoints()]
        if not events and not checkpoints:
            return result
        # Committed here, synchronously: a writer thread was measured to give no overlap (sqlite3 takes
        # the GIL back for every row of executemany), and in-order commits are then trivially true.
        self._commit(events, checkpoints, result, now)
        result.events = len(events)
        return result

    def _commit(self, events: list[Event], checkpoints: list, result: BatchResult, now: float) -> None:
        started = time.perf_counter()
        with self.db.transaction() as tx:
            result.new = self.sink.write(tx, events) if events else 0
            if events:
                for proc in self.processors:
                    proc.process(tx, events, now)
                _count_outcomes(tx, result.outcomes)
            self.db.save_checkpoints(tx, checkpoints)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if events:
            self.metrics.batch_events.observe(len(events))
            self._count(result, events, now)
        for hook in self.after_commit:
            hook(result)

    def _count(self, result: BatchResult, events: list[Event], now: float) -> None:
        m = self.metrics
        for (source, outcome), n in result.outcomes.items():
            m.events.labels(source, outcome).inc(n)
            m.last_event_time.labels(source).set(now)
        bad = Counter(e.source for e in events if "invalid_utf8" in (e.fields.get("tags") or ()))
        for source, n in bad.items():
            m.invalid_utf8.labels(source).inc(n)

    def update_lag(self) -> None:
        for src in self.sources:
            lag = src.tailer.lag()
            self.metrics.lag_bytes.labels(src.name).set(sum(b for _, b, _ in lag))
            self.metrics.lag_seconds.labels(src.name).set(max((s for _, _, s in lag), default=0.0))

    def run(self, stop: threading.Event, wake: threading.Event, idle_hook: Callable[[], None] | None = None) -> None:
        """Loop until ``stop``; sleeps on ``wake`` (set by file notifications) when idle."""
        poll = self.settings.poll_interval_ms / 1000.0
        last_lag = 0.0
        while not stop.is_set():
            result = self.step()
            now = self.clock()
            if now - last_lag >= 1.0:
                self.update_lag()
                last_lag = now
            if result.events == 0:
                if idle_hook is not None:
                    idle_hook()
                wake.wait(poll)
                wake.clear()


def _count_outcomes(tx: sqlite3.Connection, outcomes: Counter[tuple[str, str]]) -> None:
    tx.executemany(
        "INSERT INTO source_stats VALUES (?,?,?) ON CONFLICT(source, outcome) DO UPDATE SET count = count + ?",
        [(s, o, n, n) for (s, o), n in outcomes.items()],
    )
