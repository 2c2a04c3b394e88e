"""The local SQLite database (WAL mode) and the batch transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sentinel.errors import StoreError
from sentinel.events.paths import path_from_db, path_to_db
from sentinel.events.records import Checkpoint
from sentinel.store.identity import FileIdentity
from sentinel.store.schema import DDL, SCHEMA_VERSION, migrate


def connect(path: Path, *, readonly: bool = False, timeout: float = 30.0) -> sqlite3.Connection:
    """Open the database with the pragmas every connection needs."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, isolation_level=None,
                               check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    if not readonly:
        # Must precede the first write: lets retention hand freed pages back to the file system.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a process crash (the case we promise); FULL would add power-loss
        # durability of the last transactions at the cost of an fsync per batch.
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # A larger page cache keeps the secondary indexes' hot pages in memory during bulk inserts.
    conn.execute("PRAGMA cache_size = -16384")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT on an autocommit connection; rolls back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk) may or may not have rolled back already: SQLite decides.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Database:
    """Owns the writer connection; others open their own connections with :func:`connect`.

    ``tables`` are the other parts' DDL (routing, the Elasticsearch spool), chosen by whoever wires the parts
    together, so which tables a database holds never depends on which modules were imported first.
    """

    def __init__(self, path: Path, tables: Sequence[str] = ()) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = connect(path)
            migrate(self.conn)
            self.conn.executescript(DDL)
            for ddl in tables:
                self.conn.executescript(ddl)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        self.file = FileIdentity(path)
        self.lock = threading.Lock()

    def verify(self) -> None:
        """Raise StoreError if the database file was deleted or replaced since it was opened."""
        self.file.verify()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT on the writer connection; rolls back on any exception."""
        with self.lock, immediate(self.conn) as conn:
            yield conn

    def load_checkpoints(self) -> list[Checkpoint]:
        rows = self.conn.execute(
            "SELECT stream, source, path, dev, ino, fp_len, fp_hash, offset, finished, updated, cursor FROM checkpoints"
        ).fetchall()
        return [Checkpoint(r[0], r[1], path_from_db(r[2]), r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10])
                for r in rows]

    @staticmethod
    def save_checkpoints(tx: sqlite3.Connection, checkpoints: Sequence[Checkpoint]) -> None:
        tx.executemany(
            "INSERT INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(stream) DO UPDATE SET "
            "path=excluded.path, dev=excluded.dev, ino=excluded.ino, fp_len=excluded.fp_len, "
            "fp_hash=excluded.fp_hash, offset=excluded.offset, finished=excluded.finished, updated=excluded.updated, "
            "cursor=excluded.cursor",
            [(c.stream, c.source, path_to_db(c.path), c.dev, c.ino, c.fp_len, c.fp_hash, c.offset, int(c.finished),
              c.updated, c.cursor) for c in checkpoints],
        )

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass
