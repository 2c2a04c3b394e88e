"""Running out of space in the state directory: recognising it, and a reserve kept for the audit record.

SQLite reports a full file system as ``database or disk is full`` (SQLITE_FULL), at an INSERT when its
page cache spills or at COMMIT when the WAL grows. The transaction is then rolled back and nothing of
the batch is kept, so the daemon can wait and try again instead of exiting.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

SQLITE_FULL = 13
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
MIN_ROOM_BYTES = 64 * 1024  # with no reserve configured: what must be free before another batch is tried


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means the file system (or the user's quota) has no room left."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "database or disk is full" in str(exc)
    if isinstance(exc, OSError):
        return exc.errno in _NO_SPACE
    return False


class SpaceReserve:
    """A pre-allocated file in the state directory, deleted when the disk fills so that the records saying
    so (audit trail, logs) can still be written, and allocated again before reading resumes.

    Allocating it again doubles as the probe that space has returned: the first batch after a full disk
    only runs once at least this much is free.
    """

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes

    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size_bytes
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Allocate the reserve if it is not there; False (and nothing left behind) when there is no room."""
        if self.size_bytes <= 0 or self.held():
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                return False
            raise
        try:
            try:
                os.posix_fallocate(fd, 0, self.size_bytes)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                # A file system without fallocate: real zeros take the same room.
                chunk = b"\0" * (1 << 16)
                written = 0
                while written < self.size_bytes:
                    written += os.pwrite(fd, chunk[: self.size_bytes - written], written)
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            self.release()
            if exc.errno in _NO_SPACE:
                return False
            raise
        os.close(fd)
        return True

    def room_beyond(self) -> bool:
        """At least the reserve's size is free besides it: enough to be worth another batch."""
        try:
            return shutil.disk_usage(self.path.parent).free >= max(self.size_bytes, MIN_ROOM_BYTES)
        except OSError:
            return False

    def release(self) -> bool:
        """Give the reserve's space back to the file system; whether there was one to give."""
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
