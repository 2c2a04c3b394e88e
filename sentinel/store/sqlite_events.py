"""The embedded event store: events in the local SQLite database, indexed for analysts' queries."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def event_row(ev: Event) -> tuple[Row, Keys]:
    """The stored form of an event (the indexed columns, its shape and its values) and the shape's keys."""
    f = ev.fields
    shape, keys, values = docs.encode(f)
    return (ev.id, ev.timestamp, ev.source, f.get("host.name"), f.get("user.name"), f.get("event.action"),
            f.get("event.outcome"), f.get("source.ip"), 1 if ev.parsed else 0, shape, values), keys


class SqliteEventStore:
    """Implements EventSink for the embedded backend, plus search and retention."""

    name = "sqlite"

    def __init__(self) -> None:
        self.shapes = docs.ShapeWriter()

    def write(self, tx: sqlite3.Connection, events: Sequence[Event]) -> int:
        rows: list[Row] = []
        shapes: dict[int, Keys] = {}
        for e in events:
            row, keys = event_row(e)
            rows.append(row)
            shapes[row[9]] = keys
        return self.write_rows(tx, rows, shapes)

    def write_rows(self, tx: sqlite3.Connection, rows: Sequence[Row], shapes: Mapping[int, Keys]) -> int:
        """Store rows built by :func:`event_row` (e.g. by a decode worker) with the shapes they use;
        returns how many were new."""
        self.shapes.ensure(tx, shapes)
        before = tx.total_changes
        tx.executemany(_INSERT, rows)
        return tx.total_changes - before


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
    """Delete events older than the age limit, then the oldest until the file is under the size limit."""
    now = time.time() if now is None else now
    result = RetentionResult()
    cutoff = now - max_age_days * 86400
    while True:
        with db_lock:
            cur = conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? ORDER BY ts LIMIT ?)",
                (cutoff, chunk))
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
            conn.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page per step
        # In WAL mode the file only shrinks once the WAL is checkpointed back into it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return result
