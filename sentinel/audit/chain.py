"""Append-only audit log with a hash chain, safe for several writing processes (daemon and CLI).

Each line is one JSON record ``{seq, ts, action, actor, details, prev, hash}`` where ``hash`` is the
SHA-256 of the record's canonical JSON without ``hash`` and ``prev`` is the previous record's hash.
Editing a record breaks its hash; deleting one breaks the next record's ``prev`` and ``seq``.
Deleting the newest records is caught by the head file (``<log>.head``, the last ``seq`` and hash),
written with every append. Rotated segments (``<log>.1``, ``<log>.2.gz``, …) continue the chain.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
_SEGMENT = re.compile(r"\.(\d+)(\.gz)?$")


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in doc.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as read back from the log."""

    seq: int
    ts: str
    action: str
    actor: str
    details: dict[str, Any]
    prev: str
    hash: str


class AuditLog:
    """Appends records to one JSONL file; every append is locked, fsynced and advances the head file."""

    def __init__(self, path: Path, clock: Any = time.time) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self.clock = clock

    def append(self, action: str, actor: str = "sentinel", **details: Any) -> AuditRecord:
        """Write one record (``details`` must be JSON-serialisable and free of PHI and secrets)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._last(fd)
            now = self.clock()
            doc: dict[str, Any] = {
                "seq": seq + 1,
                "ts": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "action": action,
                "actor": actor,
                "details": details,
                "prev": prev,
            }
            doc["hash"] = record_hash(doc)
            os.write(fd, canonical(doc) + b"\n")
            os.fsync(fd)
            self._write_head(doc["seq"], doc["hash"])
            return AuditRecord(**doc)
        finally:
            os.close(fd)  # closing releases the lock

    def _last(self, fd: int) -> tuple[int, str]:
        """The chain's tip: the last line of the file, else the head file (after rotation), else genesis."""
        size = os.fstat(fd).st_size
        if size:
            start = max(0, size - 65536)
            tail = os.pread(fd, size - start, start).rstrip(b"\n")
            line = tail.rsplit(b"\n", 1)[-1]
            try:
                doc = json.loads(line)
                return int(doc["seq"]), str(doc["hash"])
            except (ValueError, KeyError, TypeError):
                pass  # a damaged tail: fall back to the head so the chain still continues from the truth
        head = read_head(self.head_path)
        return head if head is not None else (0, GENESIS)

    def _write_head(self, seq: int, digest: str) -> None:
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "w") as f:
            f.write(f"{seq} {digest}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.head_path)

    def records(self) -> Iterator[AuditRecord]:
        """Every record of every segment, oldest first (no checking; see :func:`verify`)."""
        for _, lines in _segments(self.path):
            for _, raw in lines:
                try:
                    yield AuditRecord(**json.loads(raw))
                except (ValueError, TypeError):
                    continue


def read_head(path: Path) -> tuple[int, str] | None:
    try:
        seq, digest = path.read_text().split()
        return int(seq), digest
    except (OSError, ValueError):
        return None


def _segments(path: Path) -> list[tuple[Path, list[tuple[int, bytes]]]]:
    """Rotated segments oldest first (highest number first), then the live file; each as numbered lines."""
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        m = _SEGMENT.search(p.name[len(path.name):])
        if m and p.name[len(path.name):] == m.group(0):
            rotated.append((int(m.group(1)), p))
    out = []
    for _, p in sorted(rotated, reverse=True):
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        out.append((p, _lines(data)))
    if path.exists():
        out.append((path, _lines(path.read_bytes())))
    return out


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    return [(i, line) for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]


@dataclass
class VerifyResult:
    """What ``sentinel audit verify`` found: the records checked and every problem with its location."""

    records: int = 0
    head: tuple[int, str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path, allow_pruned: bool = False) -> VerifyResult:
    """Check every record's hash, the chain links, consecutive seq numbers from 1, and the head file.

    ``allow_pruned`` accepts a chain whose oldest segments were deleted by retention (it then starts
    at the first record still present); every later record must still link.
    """
    result = VerifyResult()
    expected_seq, prev = 1, GENESIS
    first = True
    for segment, lines in _segments(path):
        for lineno, raw in lines:
            where = f"{segment}:{lineno}"
            try:
                doc = json.loads(raw)
                seq, digest, link = int(doc["seq"]), str(doc["hash"]), str(doc["prev"])
            except (ValueError, KeyError, TypeError):
                result.problems.append(f"{where}: not a valid audit record")
                continue
            result.records += 1
            if first and allow_pruned and seq > 1:
                expected_seq, prev = seq, link
            first = False
            if record_hash(doc) != digest:
                result.problems.append(f"{where}: record seq {seq} was modified (its hash does not match)")
            if seq != expected_seq:
                if seq > expected_seq:
                    result.problems.append(f"{where}: records {expected_seq}..{seq - 1} are missing (deleted)")
                else:
                    result.problems.append(f"{where}: seq {seq} repeats or goes backwards (expected {expected_seq})")
            elif link != prev:
                result.problems.append(f"{where}: record seq {seq} does not link to the record before it")
            expected_seq, prev = seq + 1, digest
    head = read_head(path.with_name(path.name + ".head"))
    result.head = head
    last = expected_seq - 1
    if head is None:
        if last:
            result.problems.append(f"{path}.head: head file missing or unreadable")
    elif head[0] > last:
        result.problems.append(f"{path}: records {last + 1}..{head[0]} are missing at the end (log truncated)")
    elif head != (last, prev):
        result.problems.append(f"{path}.head: head says seq {head[0]}, log ends at seq {last} with another hash")
    return result
