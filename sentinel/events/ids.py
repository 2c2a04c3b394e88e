"""Deterministic event ids, so a replayed or retried line never becomes a second document.

An id is a hash of (source, stream) followed by the byte offset in hex: unique per line,
identical on every replay, and increasing within a file, which keeps index inserts cheap.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b


@lru_cache(maxsize=4096)
def stream_prefix(source: str, stream: str) -> str:
    """The part of every id of one stream that precedes the offset (callers may cache it)."""
    return blake2b(f"{source}\x1f{stream}".encode(), digest_size=8).hexdigest()


def event_id(source: str, stream: str, offset: int) -> str:
    """Id from the source name, the file's stream identity and the byte offset of the line."""
    return f"{stream_prefix(source, stream)}{offset:012x}"


def alert_id(rule_id: str, group_key: str, first_event_id: str) -> str:
    return blake2b(f"{rule_id}\x1f{group_key}\x1f{first_event_id}".encode(), digest_size=16).hexdigest()
