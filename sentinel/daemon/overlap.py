"""A batch's store and rules, overlapped: SQLite writes the events on a thread while the rules judge them here.

sqlite3 releases the GIL for the whole of a statement, and the embedded store inserts a batch in statements of
a thousand rows (``store.sqlite_events.insert_many``), so SQLite's index work runs on the other core while the
rule engine, which needs no database until it writes, holds the interpreter. The rules judge the events the
ledger found fresh before the store has said which of them are new; the rare batch where some were not (their
ids were stored before under another stream) is judged again, from the committed state, on the new ones only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, wait
from typing import Protocol, runtime_checkable

from sentinel.events.model import Event

# Smaller batches (a live tail's few lines) are stored and judged in turn: handing a statement to a thread
# and taking the GIL back costs more than it saves on them.
OVERLAP_MIN_EVENTS = 512

# The batch's writes, run in its transaction once its events are known to be new.
Writes = Callable[[sqlite3.Connection], None]


class BatchProcessor(Protocol):
    """Something that must see every batch inside its transaction (rule engine, outbox)."""

    def process(self, tx: sqlite3.Connection, events: Sequence[Event], now: float) -> None: ...


@runtime_checkable
class JudgesAhead(Protocol):
    """A processor that can judge a batch in memory while the store writes it on the same connection."""

    def begin(self, tx: sqlite3.Connection) -> None:
        """Read what judging needs from the database, before the store starts writing."""

    def evaluate(self, events: Sequence[Event], now: float) -> Writes:
        """Judge the events without touching the database; returns the batch's writes."""

    def discard(self, tx: sqlite3.Connection) -> None:
        """Forget a judgement whose writes will not run, and begin again."""


def store_and_process(tx: sqlite3.Connection, store: Callable[[], list[bool]], events: Sequence[Event],
                      fresh: Sequence[bool], processors: Sequence[BatchProcessor], now: float,
                      writer: Executor) -> list[bool]:
    """Store a batch (``store`` returns, per record, whether it is stored now for the first time) and have
    ``processors`` see the events stored now, in the caller's transaction; returns what ``store`` returned.

    ``events`` line up with ``fresh`` (the ledger's verdict per record), or are empty when no processor reads
    them. ``writer`` runs the store when the batch is large enough to gain from it (one thread: in order)."""
    ahead = [p for p in processors if isinstance(p, JudgesAhead)]
    if not ahead or len(events) < OVERLAP_MIN_EVENTS:
        stored = store()
        new = _stored_events(events, stored)
        for proc in processors:
            proc.process(tx, new, now)
        return stored
    candidates = events if all(fresh) else [e for e, f in zip(events, fresh, strict=True) if f]
    for proc in ahead:
        proc.begin(tx)
    storing = writer.submit(store)
    try:
        writes = [proc.evaluate(candidates, now) for proc in ahead]
    finally:
        wait([storing])  # the connection is the store's until it is done, whatever happened here
    stored = storing.result()
    new = _stored_events(events, stored)
    if len(new) != len(candidates):
        # Judged on events of which some were stored before: judged again, from the committed state.
        for proc in ahead:
            proc.discard(tx)
        writes = [proc.evaluate(new, now) for proc in ahead]
    pending = iter(writes)
    for proc in processors:
        if isinstance(proc, JudgesAhead):
            next(pending)(tx)
        else:
            proc.process(tx, new, now)
    return stored


def _stored_events(events: Sequence[Event], stored: Sequence[bool]) -> Sequence[Event]:
    if not events or all(stored):
        return events
    return [e for e, s in zip(events, stored, strict=True) if s]
