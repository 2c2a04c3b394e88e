"""Messages between sentinel and its worker processes: a pickle preceded by its length.

Only the parent process and its own children write to these pipes, so unpickling them is safe.

Both ends use the pipes' file descriptors with plain ``os.write`` / ``os.readv`` loops, never Python's buffered
file objects. A worker stopped and continued while it wrote (SIGSTOP and SIGCONT: a debugger or profiler
attaching, a cgroup freeze, job control) corrupted a stream written through ``sys.stdout.buffer``: the
parent then read a length from the middle of a pickle, and either failed to unpickle it or waited forever for
bytes that never came. Written with ``os.write`` loops, the same stream arrives whole
(tests/test_worker_protocol.py).
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

HEADER = struct.Struct(">Q")
# A batch is a few MiB; a length beyond this is not a length but bytes from the middle of a message.
MAX_MESSAGE_BYTES = 1 << 31


class CorruptMessage(ValueError):
    """The stream does not hold a well-formed message where one was expected."""


def _read_exactly(fd: int, size: int) -> bytearray | None:
    """``size`` bytes from ``fd``, or None when it ends first."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return buf


def read_message(fd: int) -> Any | None:
    """The next message on ``fd``, or None at end of stream; raises CorruptMessage for one that cannot be read."""
    head = _read_exactly(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE_BYTES:
        raise CorruptMessage(f"a message of {size} bytes (at most {MAX_MESSAGE_BYTES} expected)")
    body = _read_exactly(fd, size)
    if body is None:
        return None
    try:
        return pickle.loads(body)
    except Exception as exc:  # any of pickle's many errors for bytes that are not the pickle they should be
        # The error's type only: its text may quote the bytes, which are log lines (never in the daemon's log).
        raise CorruptMessage(f"an unreadable message of {size} bytes ({type(exc).__name__})") from exc


def write_message(fd: int, message: Any) -> None:
    """Write ``message`` on ``fd``, whole, however many writes the pipe takes it in."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    for part in (HEADER.pack(len(body)), body):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]
