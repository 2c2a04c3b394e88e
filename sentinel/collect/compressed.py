"""Reading a compressed rotation (logrotate's ``compress``) as the stream whose content it holds.

Offsets are those of the decompressed bytes, which are the offsets the stream had in its plain file,
so a stream that was not read to its end before its file was compressed goes on where it stopped.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import BinaryIO


class CorruptCompressedFile(Exception):
    """The gzip data ends early or is damaged; what was read before it stays valid."""


class CompressedReader:
    """Forward reads of a gzip file's content by decompressed offset (a backwards read starts over)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._raw: BinaryIO | None = None
        self._gz: gzip.GzipFile | None = None
        self._at = 0

    def read_at(self, pos: int, size: int) -> bytes:
        try:
            if self._gz is None or pos < self._at:
                self._reopen()
            assert self._gz is not None
            while self._at < pos:
                skipped = self._gz.read(min(1 << 20, pos - self._at))
                if not skipped:
                    return b""
                self._at += len(skipped)
            data = self._gz.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptCompressedFile(str(exc) or type(exc).__name__) from None
        self._at += len(data)
        return data

    def _reopen(self) -> None:
        self.close_reader()
        self._raw = os.fdopen(os.dup(self.fd), "rb")
        self._raw.seek(0)  # a duplicated descriptor shares the position: start from the first byte
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")
        self._at = 0

    def close_reader(self) -> None:
        # GzipFile.close() leaves the file object it was given open: close both.
        for f in (self._gz, self._raw):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._gz = self._raw = None
