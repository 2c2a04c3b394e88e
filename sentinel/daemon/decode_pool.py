"""Decoding on the machine's other cores.

SQLite has one writer, so storing stays in the calling process; decoding is the other half of the
cost and is independent per record, so batches of records go to worker processes and come back, in
submission order, as ready-to-store rows. Workers are fresh interpreters running
:mod:`sentinel.daemon.decode_worker`: they import only the decoders and share nothing with the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from sentinel.daemon.worker_protocol import CorruptMessage, read_message, write_message
from sentinel.decode.engine import Decoder
from sentinel.decode.safely import decode_safely
from sentinel.events.model import Event
from sentinel.events.records import RawRecord
from sentinel.store.docs import Keys, decode
from sentinel.store.sink import EventSink
from sentinel.store.sqlite_events import Row, SqliteEventStore, event_row

# A RawRecord's fields in order: plain tuples pickle far faster than the class.
RecordTuple = tuple[str, str, str, int, int, bytes, bool, int, float]


@dataclass(slots=True)
class DecodedBatch:
    rows: list[Row]
    shapes: dict[int, Keys] = field(default_factory=dict)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, outcome) -> records
    invalid_utf8: Counter[str] = field(default_factory=Counter)  # source -> records
    # The events themselves when decoded in this process (never sent by a worker): rules read them as they
    # are, where rebuilding them from the rows cost as much CPU as storing them.
    decoded: list[Event] | None = None

    def events(self) -> list[Event]:
        """The rows as events, for rules and sinks that read fields (the store itself needs only rows)."""
        if self.decoded is not None:
            return self.decoded
        shapes = self.shapes
        return [Event(r[0], r[1], r[2], decode(shapes[r[9]], r[10]), bool(r[8])) for r in self.rows]

    def events_read_by(self, sink: EventSink, processors: Sequence[object]) -> list[Event]:
        """The events when a rule stage or a sink other than the embedded store reads fields, else none."""
        return self.events() if processors or not isinstance(sink, SqliteEventStore) else []

    def write(self, tx: sqlite3.Connection, sink: EventSink, events: list[Event]) -> int:
        """Store the batch: the embedded store takes the rows as built, any other sink the events."""
        return sum(self.insert(tx, sink, events, [True] * len(self.rows)))

    def insert(self, tx: sqlite3.Connection, sink: EventSink, events: list[Event], fresh: list[bool]) -> list[bool]:
        """Store the rows the ledger found ``fresh``; returns, per row, whether it is stored now for the
        first time (``events``, when given, line up with the rows)."""
        every = all(fresh)
        if isinstance(sink, SqliteEventStore):
            rows = self.rows if every else [r for r, f in zip(self.rows, fresh, strict=True) if f]
            stored = sink.insert_rows(tx, rows, self.shapes)
        else:
            stored = sink.insert(tx, events if every else [e for e, f in zip(events, fresh, strict=True) if f])
        if every:
            return stored
        it = iter(stored)
        return [f and next(it) for f in fresh]


def record_tuple(rec: RawRecord) -> RecordTuple:
    return (rec.source, rec.stream, rec.path, rec.offset, rec.end, rec.data, rec.truncated, rec.original_length,
            rec.reference_time)


def decode_records(decoders: Mapping[str, Decoder], records: Sequence[RecordTuple], now: float,
                   keep_events: bool = True) -> DecodedBatch:
    """Decode records (of any of ``decoders``' sources) into rows, and with ``keep_events`` keep the events too;
    what a worker does (without them: only the rows cross the pipe), done here."""
    batch = DecodedBatch([], decoded=[] if keep_events else None)
    rows, shapes, decoded = batch.rows, batch.shapes, batch.decoded
    for fields in records:
        rec = RawRecord(*fields)
        ev, outcome = decode_safely(decoders[rec.source], rec, now)
        batch.outcomes[(rec.source, outcome)] += 1
        tags = ev.fields.get("tags")
        if tags and "invalid_utf8" in tags:
            batch.invalid_utf8[rec.source] += 1
        row, keys = event_row(ev)
        rows.append(row)
        shapes[row[9]] = keys
        if decoded is not None:
            decoded.append(ev)
    return batch


def default_workers() -> int:
    """One core stays with the caller (reading, framing, storing); the rest decode, up to four."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - 1))


PIPE_BYTES = 1 << 20  # Linux's default ceiling for unprivileged processes (/proc/sys/fs/pipe-max-size)


class DecodeWorkerDied(RuntimeError):
    """A decode worker process exited, stopped answering, or sent an answer that cannot be read."""


class _Worker:
    """One ``python -m sentinel.daemon.decode_worker`` process and its pipes."""

    def __init__(self, decoders: Mapping[str, Decoder]) -> None:
        # Unbuffered: messages go through the descriptors themselves (see worker_protocol).
        self.proc = subprocess.Popen([sys.executable, "-m", "sentinel.daemon.decode_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        # A whole batch fits in the pipe, so handing it over never waits for the busy worker to read.
        for pipe in (self.stdin, self.stdout):
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.send({name: (d.spec, d.zone, d.host_name, d.source_type) for name, d in decoders.items()})

    used = False

    def send(self, message: object) -> None:
        try:
            write_message(self.stdin.fileno(), message)
        except (BrokenPipeError, OSError) as exc:
            raise DecodeWorkerDied(f"decode worker {self.proc.pid} exited ({self.proc.poll()})") from exc

    def receive(self) -> DecodedBatch:
        try:
            batch = read_message(self.stdout.fileno())
        except (CorruptMessage, OSError) as exc:
            # Its place in the stream is lost: it is stopped like a dead one, and its batches decoded here.
            raise DecodeWorkerDied(f"decode worker {self.proc.pid} sent {exc}") from exc
        if not isinstance(batch, DecodedBatch):
            raise DecodeWorkerDied(f"decode worker {self.proc.pid} exited ({self.proc.poll()})")
        return batch

    def close(self) -> None:
        if not self.used:
            self.proc.kill()  # still starting up, with nothing to finish
        # Both ends: a worker still writing an answer nobody will read gets EPIPE and exits at once.
        for pipe in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class DecodePool:
    """Decodes batches of records in ``workers`` processes, or in this one when ``workers`` is 0.

    Results come back in submission order. Each worker has at most two batches queued, which bounds
    memory and keeps it busy while the caller stores the previous batch.
    """

    def __init__(self, decoders: Mapping[str, Decoder], workers: int) -> None:
        self.decoders = dict(decoders)
        self._wanted = workers
        self._workers: list[_Worker] = []
        self._next = 0
        # In order: a batch decoded here, or the worker whose answer is the next batch.
        self._pending: deque[DecodedBatch | _Worker] = deque()

    @property
    def busy(self) -> bool:
        """Whether batches are still queued (submitted and not yet taken)."""
        return bool(self._pending)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for operators and tests)."""
        return [w.proc.pid for w in self._workers]

    def submit(self, records: Sequence[RecordTuple], now: float) -> Iterator[DecodedBatch]:
        """Queue a batch; yields every batch that is ready in order, or must be taken to stay within bounds."""
        inline = not self._wanted or not records
        if self._wanted and not self._workers and records:
            # Started on the first batch, which is decoded here while they start up: a replay of one
            # small file never waits for a worker to import, and a worker never used is just stopped.
            self._workers = [_Worker(self.decoders) for _ in range(self._wanted)]
            inline = True
        if inline:
            self._pending.append(decode_records(self.decoders, records, now))
        else:
            while len(self._pending) >= 2 * len(self._workers):
                yield self._take()
            worker = self._workers[self._next]
            self._next = (self._next + 1) % len(self._workers)
            worker.send((records, now))
            worker.used = True
            self._pending.append(worker)
        while self._pending and isinstance(self._pending[0], DecodedBatch):
            yield self._take()

    def drain(self) -> Iterator[DecodedBatch]:
        """Every batch still queued, in order."""
        while self._pending:
            yield self._take()

    def _take(self) -> DecodedBatch:
        head = self._pending.popleft()
        return head if isinstance(head, DecodedBatch) else head.receive()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        self._workers = []
        self._pending.clear()

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
