"""The ingest loop: read → decode → one transaction per batch (events, checkpoints, processors)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from sentinel.collect.source import Source
from sentinel.conf.models import PipelineSettings
from sentinel.daemon.decode_pool import (
    DecodedBatch,
    DecodePool,
    DecodeWorkerDied,
    RecordTuple,
    decode_records,
    record_tuple,
)
from sentinel.daemon.overlap import BatchProcessor, store_and_process
from sentinel.decode.engine import Decoder
from sentinel.decode.safely import decode_safely
from sentinel.events.model import Event
from sentinel.events.records import Checkpoint, RawRecord
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database
from sentinel.store.ledger import Head, Ledger
from sentinel.store.sink import EventSink
from sentinel.store.space import is_disk_full

log = logging.getLogger(__name__)

# However little of it frames into records (a sparse hole, one huge line), a batch reads at most this
# much, so the loop comes back to commit, discover and serve the other files in time.
BATCH_MAX_BYTES = 32 << 20


class SpaceWatch(Protocol):
    """Decides when reading may go on after a batch failed for lack of space (see daemon.space_guard)."""

    def may_read(self) -> bool: ...
    def failed(self, exc: BaseException) -> None: ...
    def committed(self) -> None: ...


@dataclass
class SourceRuntime:
    name: str
    tailer: Source  # a file tailer, or any other source the pipeline drives the same way
    decoder: Decoder


@dataclass
class BatchResult:
    events: int = 0
    new: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    bytes_read: int = 0  # a read may move on without a record yet (the middle of a very long line)

    @property
    def busy(self) -> bool:
        """Did this step read anything? If not, the files hold nothing more for now."""
        return self.events > 0 or self.bytes_read > 0


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
        space: SpaceWatch | None = None,
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
        self.space = space
        self.last_discovery = 0.0
        self.discovery_interval = 1.0
        self.structural_change = threading.Event()
        self.after_commit: list[Callable[[BatchResult], None]] = []
        # With decode workers: the pool, what it was built for, and each queued batch's checkpoints.
        self._pool: DecodePool | None = None
        self._pool_key: tuple[object, ...] = ()
        # The records are kept until committed: if a worker dies, they are decoded here instead.
        self._queued: deque[tuple[list[RecordTuple], list[Checkpoint], float]] = deque()
        self._failed = False
        self._turn = 0
        self.ledger = Ledger()
        # The thread a large batch is stored on while the rules judge it (daemon.overlap); started at the first.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sentinel-store")

    def restore(self) -> None:
        checkpoints = self.db.load_checkpoints()
        for src in self.sources:
            src.tailer.restore(checkpoints)
        self.discover()
        # What was found at start is committed at once: a daemon stopped before its first batch still
        # knows next time which files it had seen, and so which rotations of them are new.
        with self.db.transaction() as tx:
            self.db.save_checkpoints(tx, [cp for src in self.sources for cp in src.tailer.checkpoints()])

    def discover(self) -> None:
        for src in self.sources:
            src.tailer.discover()
            self.metrics.files_open.labels(src.name).set(len(src.tailer.active))
        self.last_discovery = self.clock()

    def step(self) -> BatchResult:
        """Read one batch and commit it (or, with decode workers and a backlog, queue it and commit the
        batches that are ready, in order). ``events`` is how many records were read: zero when idle."""
        now = self.clock()
        self.db.verify()  # one stat: writing on into a deleted database would lose everything from here on
        if self.structural_change.is_set() or now - self.last_discovery >= self.discovery_interval:
            self.structural_change.clear()
            self.discover()
        result = BatchResult()
        if not self.accepting() or (self.space is not None and not self.space.may_read()):
            self.metrics.paused.set(1)
            return result
        self.metrics.paused.set(0)
        limit = self.settings.batch_max_lines
        deadline = now + self.settings.batch_max_wait_ms / 1000.0
        records: list[RawRecord] = []
        sources = self.sources
        while len(records) < limit:
            got = nbytes = 0
            # Each source its share of the batch, the first one in turn, so a backlog in one source
            # cannot keep another source's new lines waiting.
            self._turn = (self._turn + 1) % max(1, len(sources))
            ordered = sources[self._turn:] + sources[: self._turn]
            for i, src in enumerate(ordered):
                share = max(1, (limit - len(records)) // (len(ordered) - i))
                read = src.tailer.read(share)
                got += len(read)
                nbytes += src.tailer.bytes_read
                records += read
            result.bytes_read += nbytes
            if (got == 0 and nbytes == 0) or self.clock() >= deadline or result.bytes_read >= BATCH_MAX_BYTES:
                break
        # Taken right after the read: exactly the positions these records reach, whatever is read next.
        checkpoints = [cp for src in self.sources for cp in src.tailer.checkpoints()]
        result.events = len(records)
        try:
            if self.settings.decode_workers:
                self._step_with_workers(records, checkpoints, limit, result, now)
            elif records or checkpoints:
                self._step_here(records, checkpoints, result, now)
        except Exception as exc:
            if not self._out_of_space(exc):
                raise
            result.events = result.new = result.bytes_read = 0
        return result

    def _step_here(self, records: list[RawRecord], checkpoints: list[Checkpoint], result: BatchResult,
                   now: float) -> None:
        decoders = {src.name: src.decoder for src in self.sources}
        events: list[Event] = []
        for rec in records:
            ev, outcome = decode_safely(decoders[rec.source], rec, now)
            events.append(ev)
            result.outcomes[(rec.source, outcome)] += 1
        # Committed here, synchronously: a writer thread was measured to give no overlap (sqlite3 takes
        # the GIL back for every row of executemany), and in-order commits are then trivially true.
        invalid = Counter(e.source for e in events if "invalid_utf8" in (e.fields.get("tags") or ()))
        self._commit(events, None, [record_tuple(r) for r in records], checkpoints, result.outcomes, invalid,
                     result, now)

    def _out_of_space(self, exc: BaseException) -> bool:
        """A batch rolled back because the disk is full: rewind and let the space watch pause reading."""
        if self.space is None or not is_disk_full(exc):
            return False
        self.rewind()
        self.space.failed(exc)
        return True

    def rewind(self) -> None:
        """After a batch rolled back: forget everything read past the committed checkpoints, so that it is
        read again (and decoded, detected, stored) by a later batch. New tailers restored from the database
        are exactly what a restart would build."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._queued.clear()
        self._failed = False
        checkpoints = self.db.load_checkpoints()
        for src in self.sources:
            src.tailer.rewind(checkpoints)
        self.discover()

    def _step_with_workers(self, records: list[RawRecord], checkpoints: list[Checkpoint], limit: int,
                           result: BatchResult, now: float) -> None:
        try:
            pool = self._decode_pool()
            if records or checkpoints:
                tuples = [record_tuple(r) for r in records]
                self._queued.append((tuples, checkpoints, now))
                for batch in pool.submit(tuples, now):
                    self._commit_decoded(batch, result)
            if len(records) < limit:
                # Not behind: nothing is decoded ahead, so a line is committed as soon as it is read.
                for batch in pool.drain():
                    self._commit_decoded(batch, result)
        except DecodeWorkerDied as exc:
            self._recover(exc, result)

    def _recover(self, exc: DecodeWorkerDied, result: BatchResult) -> None:
        """A worker died (killed, out of memory). The tailers have moved past the records it held, so they
        are decoded here from the copies kept for this, and committed in order: nothing is skipped."""
        log.error("%s; decoding its batches in the daemon and starting new workers", exc)
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        decoders = {src.name: src.decoder for src in self.sources}
        while self._queued:
            records, _checkpoints, now = self._queued[0]
            self._commit_decoded(decode_records(decoders, records, now), result)

    def flush(self, result: BatchResult | None = None) -> None:
        """Commit every batch the decode workers still hold (before a reload, at shutdown)."""
        if self._pool is None or self._failed:
            return
        result = result if result is not None else BatchResult()
        try:
            for batch in self._pool.drain():
                self._commit_decoded(batch, result)
        except DecodeWorkerDied as exc:
            self._recover(exc, result)
        except Exception as exc:
            if not self._out_of_space(exc):
                raise

    def close(self) -> None:
        """Stop the decode workers (batches they still hold are not committed, so they are read again) and
        the store's thread."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            self._queued.clear()
        self._writer.shutdown()

    def _decode_pool(self) -> DecodePool:
        decoders = {src.name: src.decoder for src in self.sources}
        key = (*((name, id(d)) for name, d in decoders.items()), self.settings.decode_workers)
        if self._pool is None or key != self._pool_key:
            if self._pool is not None:  # the sources or decoders changed (a reload): finish with the old ones
                self.flush()
                self._pool.close()
            self._pool, self._pool_key = DecodePool(decoders, self.settings.decode_workers), key
        return self._pool

    def _commit_decoded(self, batch: DecodedBatch, result: BatchResult) -> None:
        if self._failed:
            raise RuntimeError("a batch failed to commit: later ones must not commit past it")
        records, checkpoints, now = self._queued[0]
        events = batch.events_read_by(self.sink, self.processors)
        try:
            self._commit(events, batch, records, checkpoints, batch.outcomes, batch.invalid_utf8, result, now)
        except BaseException:
            # Its lines are not stored and the tailers are past them: committing a later batch would move
            # the checkpoints over them. Nothing more commits in this process; a restart reads them again.
            self._failed = True
            raise
        self._queued.popleft()
        result.outcomes.update(batch.outcomes)

    def _commit(self, events: list[Event], batch: DecodedBatch | None, records: Sequence[RecordTuple],
                checkpoints: list[Checkpoint], outcomes: Counter[tuple[str, str]], invalid: Counter[str],
                result: BatchResult, now: float) -> None:
        """One transaction: the events (or the rows a worker built), the processors, the checkpoints.

        Only records whose bytes were never stored (the ledger) and whose ids are new (the store) are
        stored and reach the processors: a line read twice, or also replayed, is judged once."""
        started = time.perf_counter()
        count = len(batch.rows) if batch is not None else len(events)
        with self.db.transaction() as tx:
            if count:
                heads = {(c.source, c.stream): Head(c.fp_len, c.fp_hash) for c in checkpoints}
                fresh = self.ledger.fresh(tx, records, heads)
                stored = store_and_process(tx, partial(store_fresh, tx, self.sink, events, batch, fresh), events,
                                           fresh, self.processors, now, self._writer)
                result.new += sum(stored)
                _count_outcomes(tx, outcomes)
            self.db.save_checkpoints(tx, checkpoints)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if self.space is not None:
            self.space.committed()
        if count:
            self.metrics.batch_events.observe(count)
            self._count(outcomes, invalid, now)
        for hook in self.after_commit:
            hook(result)

    def _count(self, outcomes: Counter[tuple[str, str]], invalid: Counter[str], now: float) -> None:
        m = self.metrics
        for (source, outcome), n in outcomes.items():
            m.events.labels(source, outcome).inc(n)
            m.last_event_time.labels(source).set(now)
        for source, n in invalid.items():
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
            if not result.busy:
                if idle_hook is not None:
                    idle_hook()
                wake.wait(poll)
                wake.clear()


def store_fresh(tx: sqlite3.Connection, sink: EventSink, events: list[Event], batch: DecodedBatch | None,
                fresh: list[bool]) -> list[bool]:
    """Store what the ledger found fresh (the rows a worker built, else the events); per record, whether
    it is stored now for the first time."""
    if batch is not None:
        return batch.insert(tx, sink, events, fresh)
    if all(fresh):
        return sink.insert(tx, events)
    it = iter(sink.insert(tx, [e for e, f in zip(events, fresh, strict=True) if f]))
    return [f and next(it) for f in fresh]


def _count_outcomes(tx: sqlite3.Connection, outcomes: Counter[tuple[str, str]]) -> None:
    tx.executemany(
        "INSERT INTO source_stats VALUES (?,?,?) ON CONFLICT(source, outcome) DO UPDATE SET count = count + ?",
        [(s, o, n, n) for (s, o), n in outcomes.items()],
    )
