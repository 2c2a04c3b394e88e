"""Which bytes of which streams are stored: what keeps a line from being stored or judged twice.

The events table can say whether an id is new, the Elasticsearch spool cannot (its rows leave once
shipped), and neither knows that a replayed file is the same content as a stream the daemon read
under another id. The ledger records, in the batch transaction, the byte ranges of every stream
whose records were stored, the stream's fingerprint (the hash of its first bytes) and a few
*anchors* (digests of the records covering a sparse grid of offsets, see :func:`anchored`). A record
is fresh when no stored range of its stream, or of a stream with the same fingerprint whose anchors
agree, covers its offset.
Only fresh records are stored and reach the rules.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from typing import Any

DDL = """
CREATE TABLE IF NOT EXISTS stored_streams (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    fp_len INTEGER NOT NULL,
    fp_hash TEXT NOT NULL,
    PRIMARY KEY (source, stream)
);
CREATE INDEX IF NOT EXISTS stored_streams_print ON stored_streams(source, fp_len, fp_hash);
-- half-open byte ranges [start, stop) of a stream whose records are stored; touching ranges are merged
CREATE TABLE IF NOT EXISTS stored_ranges (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    PRIMARY KEY (source, stream, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stored_anchors (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (source, stream, offset)
) WITHOUT ROWID;
-- pairs of streams found (by an anchor) to differ although their fingerprints are equal: never equivalent
CREATE TABLE IF NOT EXISTS stored_differs (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    other TEXT NOT NULL,
    PRIMARY KEY (source, stream, other)
) WITHOUT ROWID;
"""

ANCHOR_FROM_BIT = 10  # the first KiB is the fingerprint's; anchors start at byte 1024
PREFIX_BYTES = 1024  # the tailer's fingerprint length (collect/identity.py)
ANCHOR_STEPS_BITS = 3  # 2^3 anchors per doubling of the offset
ANCHOR_BYTES = 256  # of a record's data: what a replay can rebuild even when the line was truncated

# The fields of a record the ledger reads, by position in the records it is handed (RecordTuple).
SOURCE, STREAM, OFFSET, END, DATA = 0, 1, 3, 4, 5
Record = Sequence[Any]  # a RecordTuple: (source, stream, path, offset, end, data, ...)


def anchor_digest(data: bytes) -> str:
    """Digest of a record's data as an anchor stores it (a replay computes it from the raw bytes)."""
    return blake2b(data[:ANCHOR_BYTES], digest_size=12).hexdigest()


def anchored(offset: int, end: int) -> bool:
    """Whether the record [offset, end) covers a point of the anchor grid: from byte 1024 on, eight points
    per doubling of the offset (1024, 1152, 1280 ... 2048, 2304 ...), so a stream of n bytes has about
    8·log2(n/1024) anchors and a file that parts from it leaves it within an eighth of its length."""
    if end - offset <= 0:
        return False
    last = end - 1
    k = last.bit_length() - 1
    if k < ANCHOR_FROM_BIT:
        return False
    step = 1 << (k - ANCHOR_STEPS_BITS)
    return (last // step) * step >= offset


@dataclass(frozen=True)
class Head:
    """A stream's fingerprint; with ``prefix`` (a replay knows its file's first bytes), it also matches
    streams fingerprinted on fewer bytes, whose every stored byte then is part of this prefix."""

    fp_len: int
    fp_hash: str
    prefix: bytes | None = None

    def print_at(self, length: int) -> str | None:
        if length <= 0:
            return None
        if length == self.fp_len:
            return self.fp_hash
        if self.prefix is not None and length <= len(self.prefix):
            return _prefix_print(self.prefix, length)
        return None


@lru_cache(maxsize=4096)
def _prefix_print(prefix: bytes, length: int) -> str:
    """Cached: a replay asks the same file's prints of every stored length, batch after batch."""
    return print_of(prefix[:length])


class Ledger:
    """Decides, inside the batch transaction, which records are fresh, and records what is now stored."""

    def fresh(self, tx: sqlite3.Connection, records: Sequence[Record], heads: Mapping[tuple[str, str], Head],
              rejected: Collection[str] = ()) -> list[bool]:
        """Per record, whether its bytes were never stored before; ``rejected`` names streams known to
        differ from these records' although they share a fingerprint (found by a replay's check)."""
        out = [True] * len(records)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault((str(rec[SOURCE]), str(rec[STREAM])), []).append(i)
        for (source, stream), idx in groups.items():
            head = heads.get((source, stream))
            spans = [(int(records[i][OFFSET]), int(records[i][END])) for i in idx]
            lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
            if head is not None and head.prefix is None and lo == 0:
                head = Head(head.fp_len, head.fp_hash, _prefix(records, idx))
            found = self._equivalents(tx, source, stream, head)
            _differ(tx, source, stream, [o for o in found if o in rejected])
            others = [o for o in found if o not in rejected]
            others = self._check_anchors(tx, source, stream, others, records, idx, lo, hi)
            covered = _merge(_ranges(tx, source, [stream, *others], lo, hi))
            starts = [a for a, _ in covered]
            seen: set[int] = set()
            for i, (off, _end) in zip(idx, spans, strict=True):
                at = bisect_right(starts, off) - 1
                if off in seen or (at >= 0 and covered[at][1] > off):
                    out[i] = False
                seen.add(off)
            self._record(tx, source, stream, head, records, idx, spans)
        return out

    def _equivalents(self, tx: sqlite3.Connection, source: str, stream: str, head: Head | None) -> list[str]:
        if head is None:
            return []
        found: list[str] = []
        lengths = [r[0] for r in tx.execute(
            "SELECT DISTINCT fp_len FROM stored_streams WHERE source = ? AND fp_len > 0", (source,))]
        for length in lengths:
            digest = head.print_at(length)
            if digest is None:
                continue
            found += [r[0] for r in tx.execute(
                "SELECT stream FROM stored_streams WHERE source = ? AND fp_len = ? AND fp_hash = ? AND stream != ? "
                "AND stream NOT IN (SELECT other FROM stored_differs WHERE source = ? AND stream = ?)",
                (source, length, digest, stream, source, stream))]
        return found

    def _check_anchors(self, tx: sqlite3.Connection, source: str, stream: str, others: list[str],
                       records: Sequence[Record], idx: list[int], lo: int, hi: int) -> list[str]:
        """Drop the equivalents whose anchors in this batch's byte range disagree with its records."""
        if not others:
            return others
        by_offset = {int(records[i][OFFSET]): records[i] for i in idx}
        kept: list[str] = []
        differ: list[str] = []
        for other in others:
            agree = True
            for offset, stop, digest in tx.execute(
                    "SELECT offset, stop, digest FROM stored_anchors WHERE source = ? AND stream = ? "
                    "AND offset >= ? AND offset < ?", (source, other, lo, hi)):
                rec = by_offset.get(offset)
                if rec is None or rec[END] != stop or anchor_digest(rec[DATA]) != digest:
                    agree = False
                    break
            (kept if agree else differ).append(other)
        _differ(tx, source, stream, differ)
        return kept

    @staticmethod
    def _record(tx: sqlite3.Connection, source: str, stream: str, head: Head | None, records: Sequence[Record],
                idx: list[int], spans: list[tuple[int, int]]) -> None:
        if head is not None:
            tx.execute("INSERT INTO stored_streams VALUES (?,?,?,?) ON CONFLICT(source, stream) DO UPDATE SET "
                       "fp_len = excluded.fp_len, fp_hash = excluded.fp_hash", (source, stream, head.fp_len,
                                                                                 head.fp_hash))
        lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
        old = tx.execute("SELECT start, stop FROM stored_ranges WHERE source = ? AND stream = ? AND start <= ? "
                         "AND stop >= ?", (source, stream, hi, lo)).fetchall()
        merged = _merge([*old, *spans])
        tx.executemany("DELETE FROM stored_ranges WHERE source = ? AND stream = ? AND start = ?",
                       [(source, stream, a) for a, _ in old])
        tx.executemany("INSERT INTO stored_ranges VALUES (?,?,?,?)", [(source, stream, a, b) for a, b in merged])
        anchors = [(source, stream, off, end, anchor_digest(records[i][DATA]))
                   for i, (off, end) in zip(idx, spans, strict=True) if anchored(off, end)]
        if anchors:
            tx.executemany("INSERT OR IGNORE INTO stored_anchors VALUES (?,?,?,?,?)", anchors)


def _prefix(records: Sequence[Record], idx: list[int]) -> bytes:
    """A stream's first bytes (up to 1 KiB), rebuilt from a batch holding its records from byte 0: a file
    that grew since another reader fingerprinted it then still matches that reader's shorter print."""
    out = bytearray()
    for i in sorted(idx, key=lambda i: int(records[i][OFFSET])):
        offset, end, data = int(records[i][OFFSET]), int(records[i][END]), bytes(records[i][DATA])
        if offset != len(out) or len(out) >= PREFIX_BYTES:
            break
        if end - offset == len(data) + 1:
            out += data + b"\n"
        elif end - offset == len(data):
            out += data  # the last line of a finished file, without its newline
        else:
            break  # a truncated or joined record: its bytes are not all known here
    return bytes(out[:PREFIX_BYTES])


def _differ(tx: sqlite3.Connection, source: str, stream: str, others: list[str]) -> None:
    """Remember, both ways, that these streams' content differs from ``stream``'s."""
    tx.executemany("INSERT OR IGNORE INTO stored_differs VALUES (?,?,?)",
                   [p for o in others for p in ((source, stream, o), (source, o, stream))])


def _ranges(tx: sqlite3.Connection, source: str, streams: list[str], lo: int, hi: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for stream in streams:
        out += tx.execute("SELECT start, stop FROM stored_ranges WHERE source = ? AND stream = ? AND start < ? "
                          "AND stop > ?", (source, stream, hi, lo)).fetchall()
    return out


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-touching ranges covering exactly the given ones."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def stream_anchors(conn: sqlite3.Connection, source: str, stream: str) -> list[tuple[int, int, str]]:
    """A stream's anchors in offset order: (offset, stop, digest)."""
    return conn.execute("SELECT offset, stop, digest FROM stored_anchors WHERE source = ? AND stream = ? "
                        "ORDER BY offset", (source, stream)).fetchall()


def stored_streams(conn: sqlite3.Connection, source: str) -> list[tuple[str, int, str]]:
    """(stream, fp_len, fp_hash) of every stream of a source with stored records."""
    return conn.execute("SELECT stream, fp_len, fp_hash FROM stored_streams WHERE source = ? AND fp_len > 0",
                        (source,)).fetchall()


def covered_bytes(conn: sqlite3.Connection, source: str, stream: str) -> int:
    """How many bytes of a stream are stored (for choosing between equivalent streams)."""
    row = conn.execute("SELECT coalesce(sum(stop - start), 0) FROM stored_ranges WHERE source = ? AND stream = ?",
                       (source, stream)).fetchone()
    return int(row[0])


def print_of(data: bytes) -> str:
    """The fingerprint of a stream's first bytes, computed as the tailer's (collect/identity.py) is."""
    return blake2b(data, digest_size=12).hexdigest()
