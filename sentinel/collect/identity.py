"""File identity: device + inode + a fingerprint of the first bytes.

The inode follows a file through renames; the fingerprint tells an inode reused by a new
file apart and recognises a copy (copytruncate) of content already being read.
"""

from __future__ import annotations

import os
from hashlib import blake2b

FINGERPRINT_BYTES = 1024


def fingerprint(fd: int, length: int) -> str:
    """Hash of the first ``length`` bytes of an open file, without moving its position."""
    data = os.pread(fd, length, 0) if length else b""
    return blake2b(data, digest_size=12).hexdigest()


def fingerprint_path(path: str, length: int) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size < length:
            return None
        return fingerprint(fd, length)
    finally:
        os.close(fd)


def new_stream_id(dev: int, ino: int, fp_hash: str, born: float) -> str:
    return blake2b(f"{dev}:{ino}:{fp_hash}:{born}".encode(), digest_size=10).hexdigest()
