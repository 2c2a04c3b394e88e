"""The embedded event store: events in the local SQLite database, indexed for analysts' queries."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any

from sentinel.events.model import Event
from sentinel.store import docs
from sentinel.store.docs import Keys
from sentinel.store.query import Query

# Columns indexed for the fields analysts filter on most; everything else is in the JSON doc.
COLUMNS = {
    "@timestamp": "ts",
    "sentinel.source": "source",
    "host.name": "host",
    "user.name": "user",
    "event.action": "action",
    "event.outcome": "outcome",
    "source.ip": "ip",
}


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
Row = tuple[Any, ...]  # id, ts, source, host, user, action, outcome, ip, parsed, shape, doc
_INSERT = ("INSERT OR IGNORE INTO events (id, ts, source, host, user, action, outcome, ip, parsed, shape, doc) "
           "VALUES (?,?,?,?,?,?,?,?,?,?,?)")
# Rows per INSERT statement at most: 1,024 rows of 11 values stay under SQLite's 32,766 variables.
ROWS_PER_STATEMENT = 1024


@cache
def _insert_statement(n: int) -> str:
    """One INSERT of ``n`` rows (sizes are powers of two, so the connection's statement cache holds them all)."""
    return _INSERT + ",(?,?,?,?,?,?,?,?,?,?,?)" * (n - 1)


def insert_many(tx: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """INSERT OR IGNORE the rows, up to ``ROWS_PER_STATEMENT`` in one statement.

    Against executemany's statement per row: the binding is one C loop, and sqlite3 releases the GIL for a
    whole statement, not per row, so a thread storing a batch leaves the interpreter to the rule engine
    while SQLite updates the indexes."""
    at, total = 0, len(rows)
    while at < total:
        n = ROWS_PER_STATEMENT
        while n > total - at:
            n //= 2
        tx.execute(_insert_statement(n), list(chain.from_iterable(rows[at:at + n])))
        at += n


def event_row(ev: Event) -> tuple[Row, Keys]:
    """The stored form of an event (the indexed columns, its shape and its values) and the shape's keys."""
    f = ev.fields
    shape, keys, values = docs.encode(f)
    return (ev.id, ev.timestamp, ev.source, f.get("host.name"), f.get("user.name"), f.get("event.action"),
            f.get("event.outcome"), f.get("source.ip"), 1 if ev.parsed else 0, shape, values), keys


class SqliteEventStore:
    """Implements EventSink for the embedded backend, plus search and retention."""

    name = "sqlite"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.shapes = docs.ShapeWriter()
        self.clock = clock

    def write(self, tx: sqlite3.Connection, events: Sequence[Event]) -> int:
        return sum(self.insert(tx, events))

    def insert(self, tx: sqlite3.Connection, events: Sequence[Event]) -> list[bool]:
        rows: list[Row] = []
        shapes: dict[int, Keys] = {}
        for e in events:
            row, keys = event_row(e)
            rows.append(row)
            shapes[row[9]] = keys
        return self.insert_rows(tx, rows, shapes)

    def write_rows(self, tx: sqlite3.Connection, rows: Sequence[Row], shapes: Mapping[int, Keys]) -> int:
        """Store rows built by :func:`event_row` (e.g. by a decode worker) with the shapes they use;
        returns how many were new."""
        return sum(self.insert_rows(tx, rows, shapes))

    def insert_rows(self, tx: sqlite3.Connection, rows: Sequence[Row], shapes: Mapping[int, Keys]) -> list[bool]:
        """Store rows as :meth:`write_rows` does; returns, per row, whether it was new."""
        self.shapes.ensure(tx, shapes)
        # Rows inserted now get rowids above every existing one, so they are told apart by seq alone,
        # and only when the batch was partly known (all new or all known is the common case).
        top = tx.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        before = tx.total_changes
        insert_many(tx, rows)
        added = tx.total_changes - before
        if added:
            mark_ingested(tx, self.clock())
        if added == len(rows):
            return [True] * len(rows)
        if added == 0:
            return [False] * len(rows)
        new = {r[0] for r in tx.execute("SELECT id FROM events WHERE seq > ?", (top,))}
        out = []
        for row in rows:
            out.append(row[0] in new)
            new.discard(row[0])  # the same id twice in one batch: only its first row was stored
        return out


MARK_SECONDS = 3600.0  # one ingest mark per hour of arrivals: retention counts in days


def mark_ingested(tx: sqlite3.Connection, now: float) -> None:
    """Record that the events up to the newest seq arrived by ``now`` (extending the current hour's mark)."""
    newest = tx.execute("SELECT max(seq) FROM events").fetchone()[0]
    last = tx.execute("SELECT last_seq, first_ingested FROM ingest_marks ORDER BY last_seq DESC LIMIT 1").fetchone()
    if last is not None and last[0] >= newest:
        # Every event above some seq was deleted and seqs are being handed out again: those marks are void.
        tx.execute("DELETE FROM ingest_marks WHERE last_seq >= ?", (newest,))
        last = None
    if last is not None and now - last[1] < MARK_SECONDS:
        tx.execute("UPDATE ingest_marks SET last_seq = ?, last_ingested = max(last_ingested, ?) WHERE last_seq = ?",
                   (newest, now, last[0]))
    else:
        tx.execute("INSERT INTO ingest_marks VALUES (?, ?, ?)", (newest, now, now))


def arrived_before(conn: sqlite3.Connection, cutoff: float) -> int:
    """The highest seq of events known to have arrived before ``cutoff`` (0: none known)."""
    row = conn.execute("SELECT max(last_seq) FROM ingest_marks WHERE last_ingested < ?", (cutoff,)).fetchone()
    return int(row[0] or 0)


def search(conn: sqlite3.Connection, query: Query) -> list[dict[str, Any]]:
    """Run a field query against stored events, newest first."""
    where, params = _where(conn, query)
    sql = "SELECT shape, doc FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, seq DESC LIMIT ?"
    params.append(query.limit)
    reader = docs.ShapeReader(conn)
    return [reader.fields(shape, doc) for shape, doc in conn.execute(sql, params)]


def count(conn: sqlite3.Connection, query: Query) -> int:
    """How many events the query matches, whatever its limit (to say what a listing left out)."""
    where, params = _where(conn, query)
    sql = "SELECT count(*) FROM events" + (" WHERE " + " AND ".join(where) if where else "")
    return int(conn.execute(sql, params).fetchone()[0])


def _where(conn: sqlite3.Connection, query: Query) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for name, op, value in query.terms:
        column = COLUMNS.get(name)
        target = column if column and column != "ts" else docs.field_expression(conn, name)
        if op == "exists":
            where.append(f"{target} IS NOT NULL")
            continue
        if op == "=" and "*" in str(value):
            where.append(f"{target} GLOB ?")
            params.append(str(value))
            continue
        if op in ("=", "!=") and isinstance(value, str) and _NUMBER.fullmatch(value):
            # Numbers in documents are JSON numbers: port=22 must find 22 as well as "22".
            where.append(f"{target} IN (?, ?)" if op == "=" else f"({target} IS NULL OR {target} NOT IN (?, ?))")
            params += [value, float(value)]
            continue
        sql_op = {"=": "=", "!=": "IS NOT", ">": ">", ">=": ">=", "<": "<", "<=": "<="}[op]
        where.append(f"{target} {sql_op} ?")
        params.append(value)
    if query.since is not None:
        where.append("ts >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("ts < ?")
        params.append(query.until)
    if query.text:
        where.append("instr(doc, ?) > 0")
        params.append(query.text)
    return where, params


@dataclass
class RetentionResult:
    by_age: int = 0
    by_size: int = 0


def enforce_retention(db_lock: Any, conn: sqlite3.Connection, max_age_days: float, max_size_mb: float,
                      now: float | None = None, chunk: int = 20_000) -> RetentionResult:
    """Delete events older than the age limit by their own time and by their arrival, then the oldest until
    the file is under the size limit.

    An event's time is whatever its line says; the age limit alone would let anyone who can write a log
    line backdate it past the horizon and have it deleted at the next pass. Events stored before arrival
    times were kept count as arriving with the first mark.
    """
    now = time.time() if now is None else now
    result = RetentionResult()
    cutoff = now - max_age_days * 86400
    arrived = arrived_before(conn, cutoff)
    while arrived:
        with db_lock:
            cur = conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? AND seq <= ? ORDER BY ts "
                "LIMIT ?)", (cutoff, arrived, chunk))
        result.by_age += cur.rowcount
        if cur.rowcount < chunk:
            break
    limit = max_size_mb * 1024 * 1024
    for _ in range(1000):
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        used = (pages - free) * page_size
        if used <= limit:
            break
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if not total:
            break
        share = min(1.0, (used - limit) / used + 0.01)
        n = max(1, min(total, int(total * share)))
        with db_lock:
            cur = conn.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY ts LIMIT ?)", (n,))
        result.by_size += cur.rowcount
    if result.by_age or result.by_size:
        with db_lock:
            # Marks whose every event is gone (seqs below the oldest kept).
            conn.execute("DELETE FROM ingest_marks WHERE last_seq < (SELECT coalesce(min(seq), 0) FROM events)")
        with db_lock:
            conn.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page per step
        # In WAL mode the file only shrinks once the WAL is checkpointed back into it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return result
