"""Replay's commits: on a thread of their own, a few batches a transaction, in order.

Replay's thread frames the files and takes the decoded batches from the workers; the commit thread stores each
batch and has the rules judge it, as the daemon does, but commits every ``per_transaction`` batches. A key a
storm touches in every batch is then packed and written once a transaction, and the store's indexes take
several batches' rows between commits. Replay is safe to stop at any point: what was not committed is stored
by replaying again, once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Protocol, runtime_checkable

from sentinel.daemon.decode_pool import DecodedBatch
from sentinel.store.database import Database


@runtime_checkable
class HoldsState(Protocol):
    """A processor that can write its state once for several batches of one transaction (the rule engine)."""

    holding: bool

    def write_state(self, tx: sqlite3.Connection, now: float) -> None: ...


# Stores one batch and has the processors see it, inside the open transaction (tx, batch, the transaction's time).
CommitBatch = Callable[[sqlite3.Connection, DecodedBatch, float], None]


class Committer:
    """Commits batches on a thread of its own, in submission order, ``per_transaction`` to a transaction.

    A failed commit is raised by the next call from this side, and nothing is committed after it. Leaving the
    ``with`` block on an error rolls back the transaction still open."""

    def __init__(self, db: Database, commit: CommitBatch, processors: Sequence[object], per_transaction: int,
                 before_transaction: Callable[[], None] | None = None) -> None:
        self._db = db
        self._commit = commit
        # Called with no transaction open (it may wait for another connection to write: the spool's shipper).
        self._before_transaction = before_transaction
        self._holders = [p for p in processors if isinstance(p, HoldsState)]
        self._per_transaction = per_transaction
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sentinel-commit")
        self._last: Future[None] | None = None
        # Touched on the commit thread only: the open transaction, its time and how many batches it holds.
        self._open: ExitStack | None = None
        self._tx: sqlite3.Connection | None = None
        self._now = 0.0
        self._batches = 0

    def submit(self, batch: DecodedBatch) -> None:
        """Hand a batch over (after the previous one is stored: one batch in flight)."""
        self._wait()
        self._last = self._thread.submit(self._store, batch)

    def settle(self) -> None:
        """Commit everything submitted and wait for it; raises what a commit raised."""
        self._wait()
        self._last = self._thread.submit(self._finish)
        self._wait()

    def _wait(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            last.result()

    # --- on the commit thread ---------------------------------------------------------------------------

    def _store(self, batch: DecodedBatch) -> None:
        if self._open is None:
            if self._before_transaction is not None:
                self._before_transaction()
            self._open = ExitStack()
            self._tx = self._open.enter_context(self._db.transaction())
            self._now = time.time()
            for holder in self._holders:
                holder.holding = True
        assert self._tx is not None
        try:
            self._commit(self._tx, batch, self._now)
        except BaseException:
            self._abandon()
            raise
        self._batches += 1
        if self._batches >= self._per_transaction:
            self._finish()

    def _finish(self) -> None:
        """Write the held state and commit the open transaction, if any."""
        if self._open is None:
            return
        assert self._tx is not None
        try:
            for holder in self._holders:
                holder.holding = False
                holder.write_state(self._tx, self._now)
        except BaseException:
            self._abandon()
            raise
        opened, self._open, self._tx, self._batches = self._open, None, None, 0
        opened.close()  # COMMIT; a failed one rolls back and raises

    def _abandon(self) -> None:
        """Roll the open transaction back (a batch failed, or replay is leaving early)."""
        for holder in self._holders:
            holder.holding = False
        opened, self._open, self._tx, self._batches = self._open, None, None, 0
        if opened is not None:
            # Any exception makes the transaction roll back; which one does not matter to it.
            stopped = RuntimeError("replay stopped before this transaction's commit")
            opened.__exit__(RuntimeError, stopped, None)

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever happens here, the batch in flight finishes (or fails) before the database is closed, and a
        # transaction left open by an early exit is rolled back: its batches are stored by replaying again.
        with contextlib.suppress(BaseException):  # already raised to the caller, or the reason it is leaving
            self._wait()
        self._thread.submit(self._abandon).result()
        self._thread.shutdown(wait=True)
