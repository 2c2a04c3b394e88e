"""File identity: device + inode + the first bytes of the content (its head).

The inode follows a file through renames; the head tells an inode reused or rewritten by new
content apart and recognises a copy (copytruncate) or a compressed rotation of content already
being read. A stream's head is taken from the file when the stream is first seen, so even a stream
that has not read a byte yet is bound to the content it will read.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import blake2b

FINGERPRINT_BYTES = 1024
GZIP_MAGIC = b"\x1f\x8b"


def head_hash(head: bytes) -> str:
    return blake2b(head, digest_size=12).hexdigest()


def fingerprint(fd: int, length: int) -> str:
    """Hash of the first ``length`` bytes of an open file, without moving its position."""
    return head_hash(os.pread(fd, length, 0) if length else b"")


def read_head(fd: int, length: int = FINGERPRINT_BYTES) -> bytes:
    """The first ``length`` bytes of an open (plain) file."""
    return os.pread(fd, length, 0) if length else b""


def is_compressed(fd: int) -> bool:
    try:
        return os.pread(fd, 2, 0) == GZIP_MAGIC
    except OSError:
        return False


@contextmanager
def _gunzipped(fd: int) -> Iterator[gzip.GzipFile]:
    """The decompressed content of an open gzip file from its start, on a descriptor of its own."""
    with os.fdopen(os.dup(fd), "rb") as raw:
        raw.seek(0)  # a duplicated descriptor shares the position: start from the first byte
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            yield gz


def compressed_head(fd: int, length: int = FINGERPRINT_BYTES) -> bytes | None:
    """The first ``length`` decompressed bytes of a gzip file, None if it cannot be read as one."""
    try:
        with _gunzipped(fd) as gz:
            return gz.read(length)
    except (OSError, EOFError, zlib.error):
        return None


def compressed_complete(fd: int) -> bool:
    """Whether a gzip file is whole: its magic, then members that decompress to their end. Read to the end,
    so only asked of files whose content so far is short (a compressor that has just begun writing)."""
    if not is_compressed(fd):
        return False
    try:
        with _gunzipped(fd) as gz:
            while gz.read(1 << 16):
                pass
    except (OSError, EOFError, zlib.error):
        return False
    return True


def content_head(fd: int, path: str | None = None) -> tuple[bool, bytes | None]:
    """(compressed?, the content's first KiB): gzip by its magic bytes, or by a ``.gz`` name when ``path`` is
    given (a compressor may not have written the magic yet); None when a compressed head cannot be read yet."""
    compressed = is_compressed(fd) or (path is not None and path.endswith(".gz"))
    return compressed, compressed_head(fd) if compressed else read_head(fd)


def new_stream_id(dev: int, ino: int, fp_hash: str, born: float) -> str:
    """A stream's id, never one given before: a truncated file restarts as a new stream on the same inode,
    often with the same (empty) head, and a coarse or injected clock may not have moved since."""
    nonce = os.urandom(8).hex()
    return blake2b(f"{dev}:{ino}:{fp_hash}:{born}:{nonce}".encode(), digest_size=10).hexdigest()
