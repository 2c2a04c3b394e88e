"""Decoding on the machine's other cores, for backfill.

SQLite has one writer, so storing stays in the calling process; decoding is the other half of the
cost and is independent per record, so batches of framed records go to worker processes and come
back, in submission order, as ready-to-store rows. Workers are fresh interpreters running
:mod:`sentinel.daemon.decode_worker`: they import only the decoder and share nothing with the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from sentinel.collect.framing import Frame
from sentinel.collect.records import RawRecord
from sentinel.daemon.worker_protocol import read_message, write_message
from sentinel.decode.engine import Decoder
from sentinel.decode.safely import decode_safely
from sentinel.events.model import Event
from sentinel.store.docs import Keys, decode
from sentinel.store.sqlite_events import Row, event_row

# (offset, end, data, truncated, original_length): a Frame without its class, cheap to pickle.
FrameTuple = tuple[int, int, bytes, bool, int]

@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Where a batch of frames comes from; the same for every frame of one file."""

    source: str
    stream: str
    path: str
    reference_time: float


@dataclass(slots=True)
class DecodedBatch:
    rows: list[Row]
    shapes: dict[int, Keys]
    outcomes: Counter[str]

    def events(self) -> list[Event]:
        """The rows as events, for rules and sinks that read fields (the store itself needs only rows)."""
        shapes = self.shapes
        return [Event(r[0], r[1], r[2], decode(shapes[r[9]], r[10]), bool(r[8])) for r in self.rows]


def decode_frames(decoder: Decoder, info: StreamInfo, frames: list[FrameTuple], now: float) -> DecodedBatch:
    """Decode a batch of one stream's frames into rows; the same work a worker does, done here."""
    rows: list[Row] = []
    shapes: dict[int, Keys] = {}
    outcomes: Counter[str] = Counter()
    source, stream, path, reference = info.source, info.stream, info.path, info.reference_time
    for offset, end, data, truncated, original_length in frames:
        rec = RawRecord(source, stream, path, offset, end, data, truncated, original_length, reference)
        ev, outcome = decode_safely(decoder, rec, now)
        outcomes[outcome] += 1
        row, keys = event_row(ev)
        rows.append(row)
        shapes[row[9]] = keys
    return DecodedBatch(rows, shapes, outcomes)


def frame_tuples(frames: list[Frame]) -> list[FrameTuple]:
    return [(f.offset, f.end, f.data, f.truncated, f.original_length) for f in frames]


def default_workers() -> int:
    """One core stays with the caller (reading, framing, storing); the rest decode, up to four."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - 1))


PIPE_BYTES = 1 << 20  # Linux's default ceiling for unprivileged processes (/proc/sys/fs/pipe-max-size)


class DecodeWorkerDied(RuntimeError):
    """A decode worker process exited or stopped answering."""


class _Worker:
    """One ``python -m sentinel.daemon.decode_worker`` process and its pipes."""

    def __init__(self, decoder: Decoder) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "sentinel.daemon.decode_worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        # A whole batch fits in the pipe, so handing it over never waits for the busy worker to read.
        for pipe in (self.stdin, self.stdout):
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.send((decoder.spec, decoder.zone, decoder.host_name))

    used = False

    def send(self, message: object) -> None:
        try:
            write_message(self.stdin, message)
        except (BrokenPipeError, OSError) as exc:
            raise DecodeWorkerDied(f"decode worker {self.proc.pid} exited ({self.proc.poll()})") from exc

    def receive(self) -> DecodedBatch:
        batch = read_message(self.stdout)
        if not isinstance(batch, DecodedBatch):
            raise DecodeWorkerDied(f"decode worker {self.proc.pid} exited ({self.proc.wait()})")
        return batch

    def close(self) -> None:
        if not self.used:
            self.proc.kill()  # still starting up, with nothing to finish
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()


class DecodePool:
    """Decodes batches in ``workers`` processes, or in this one when ``workers`` is 0.

    Results come back in submission order. Each worker has at most two batches queued, which bounds
    memory and keeps it busy while the caller stores the previous batch.
    """

    def __init__(self, decoder: Decoder, workers: int) -> None:
        self.decoder = decoder
        self._wanted = workers
        self._workers: list[_Worker] = []
        self._next = 0
        # In order: a batch decoded here, or the worker whose answer is the next batch.
        self._pending: deque[DecodedBatch | _Worker] = deque()

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for operators and tests)."""
        return [w.proc.pid for w in self._workers]

    def submit(self, info: StreamInfo, frames: list[FrameTuple], now: float) -> Iterator[DecodedBatch]:
        """Queue a batch; yields every batch that is ready in order, or must be taken to stay within bounds."""
        inline = not self._wanted
        if self._wanted and not self._workers:
            # Started on the first batch, which is decoded here while they start up: a replay of one
            # small file never waits for a worker to import, and a worker never used is just stopped.
            self._workers = [_Worker(self.decoder) for _ in range(self._wanted)]
            inline = True
        if inline:
            self._pending.append(decode_frames(self.decoder, info, frames, now))
        else:
            while len(self._pending) >= 2 * len(self._workers):
                yield self._take()
            worker = self._workers[self._next]
            self._next = (self._next + 1) % len(self._workers)
            worker.send((info, frames, now))
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
