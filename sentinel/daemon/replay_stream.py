"""Which stream a replayed file's content belongs to, so the same bytes get the same event ids.

The daemon names a stream after the file it first saw (device, inode, fingerprint, time); a replay
sees only content, maybe decompressed. Its first KiB is matched against the fingerprints of the
streams the store knows (the tailer's checkpoints and the ledger's streams), and each match is
checked at its anchors (the records covering bytes 2^k), so a file that merely begins like another
is not taken for it. A replay of a rotation the daemon read (``auth.log.2.gz``) then carries on the
daemon's stream; content nobody has seen gets an id derived from its first KiB, as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from hashlib import blake2b
from io import BufferedIOBase

from sentinel.errors import StoreError
from sentinel.store.ledger import Head, anchor_digest, covered_bytes, print_of, stored_streams, stream_anchors

Opener = Callable[[], AbstractContextManager[BufferedIOBase]]  # the content from its start, decompressed
OWN_ID_TRIES = 64  # distinct files sharing a first KiB with each other before ids repeat


@dataclass(frozen=True)
class ReplayStream:
    id: str
    head: Head
    rejected: frozenset[str]  # streams sharing the fingerprint whose content differs from this file's


@dataclass(frozen=True)
class _Candidate:
    stream: str
    fp_len: int
    daemon: bool  # the tailer has a checkpoint for it


def identify(conn: sqlite3.Connection, source: str, head: bytes, open_content: Opener,
             where: str) -> ReplayStream:
    """The stream for the file ``where``, whose content starts with ``head`` (its first KiB, or all of a
    shorter file); ``open_content`` opens its content (decompressed) from the start."""
    mine = Head(len(head), print_of(head), head)
    candidates = _candidates(conn, source, mine)
    verified: list[_Candidate] = []
    rejected: set[str] = set()
    for cand in candidates:
        if _agrees(open_content, stream_anchors(conn, source, cand.stream)):
            verified.append(cand)
        else:
            rejected.add(cand.stream)
    # Carry on a stream only where its fingerprint covers as much of the content as a new one would:
    # a stream fingerprinted on its first line alone may go on quite differently from this file.
    whole = [c for c in verified if c.fp_len == len(head)]
    if whole:
        best = max(whole, key=lambda c: (c.daemon, covered_bytes(conn, source, c.stream), c.stream))
        return ReplayStream(best.stream, mine, frozenset(rejected))
    return ReplayStream(_own_id(head, rejected, where), mine, frozenset(rejected))


def _candidates(conn: sqlite3.Connection, source: str, mine: Head) -> list[_Candidate]:
    found: dict[str, _Candidate] = {}
    rows = conn.execute("SELECT stream, fp_len, fp_hash FROM checkpoints WHERE source = ? AND fp_len > 0",
                        (source,)).fetchall()
    for stream, fp_len, fp_hash in rows:
        if mine.print_at(fp_len) == fp_hash:
            found[stream] = _Candidate(stream, fp_len, True)
    for stream, fp_len, fp_hash in stored_streams(conn, source):
        if stream not in found and mine.print_at(fp_len) == fp_hash:
            found[stream] = _Candidate(stream, fp_len, False)
    return sorted(found.values(), key=lambda c: c.stream)


def _agrees(open_content: Opener, anchors: list[tuple[int, int, str]]) -> bool:
    """Whether the content has, at every anchor it reaches, the record the anchor describes."""
    if not anchors:
        return True
    with open_content() as fh:
        for offset, stop, digest in anchors:
            fh.seek(offset)
            data = fh.read(stop - offset)
            if len(data) < stop - offset:
                return True  # the content ends before this anchor: it agrees as far as it goes
            if data.endswith(b"\n"):
                data = data[:-1]
            if anchor_digest(data) != digest:
                return False
    return True


def _own_id(head: bytes, rejected: set[str], where: str) -> str:
    """An id of the content's own: from its first KiB, told apart from other files with that first KiB."""
    for n in range(OWN_ID_TRIES):
        salt = b"" if n == 0 else f"\x1f{n}".encode()
        sid = "replay-" + blake2b(head + salt, digest_size=10).hexdigest()
        if sid not in rejected:
            return sid
    raise StoreError(f"{where}: more than {OWN_ID_TRIES} different files replayed before share its first "
                     f"{len(head)} bytes; cannot give its lines ids of their own")
