"""Framing: turning a byte stream into records (lines, multiline groups, auditd serial groups).

A framer is fed bytes in order and returns complete records with their byte ranges. Bytes
after the last complete record stay pending, so the checkpoint never passes a partial line.
Memory is bounded: a line longer than ``max_line_bytes`` keeps only its head and is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

# The serial, qualified by the node= prefix auditd writes when several hosts log to one file.
AUDIT_SERIAL = re.compile(rb"^(?:node=(\S+) )?.*?msg=audit\(\d+(?:\.\d+)?:(\d+)\)")
AUDIT_EOE = re.compile(rb"^(?:node=\S+ )?type=EOE ")


@dataclass(slots=True)
class Frame:
    offset: int
    end: int
    data: bytes
    truncated: bool
    original_length: int


class Framer(Protocol):
    def feed(self, data: bytes, at: int) -> list[Frame]: ...
    def flush(self, final: bool) -> list[Frame]: ...
    @property
    def pending_from(self) -> int: ...


class LineFramer:
    """Newline-delimited records with a per-line size cap."""

    def __init__(self, start: int, max_line_bytes: int) -> None:
        self.max = max_line_bytes
        self.start = start  # offset of the first byte of the pending (partial) line
        self.buf = bytearray()
        self.dropped = 0  # bytes of the current over-long line not kept

    @property
    def pending_from(self) -> int:
        return self.start

    def feed(self, data: bytes, at: int) -> list[Frame]:
        out: list[Frame] = []
        pos = 0
        n = len(data)
        if not self.buf and not self.dropped:
            # Fast path: split whole lines straight out of the chunk.
            last = data.rfind(b"\n")
            if last >= 0:
                off = self.start
                lines = data[: last + 1].split(b"\n")
                lines.pop()
                cap = self.max
                for line in lines:
                    length = len(line)
                    if length > cap:
                        out.append(Frame(off, off + length + 1, line[:cap], True, length))
                    else:
                        out.append(Frame(off, off + length + 1, line, False, length))
                    off += length + 1
                self.start = off
                pos = last + 1
        while pos < n:
            nl = data.find(b"\n", pos)
            piece_end = n if nl < 0 else nl
            room = self.max - len(self.buf)
            take = min(room, piece_end - pos)
            if take > 0:
                self.buf += data[pos : pos + take]
            self.dropped += (piece_end - pos) - max(take, 0)
            if nl < 0:
                break
            length = len(self.buf) + self.dropped
            end = self.start + length + 1
            out.append(Frame(self.start, end, bytes(self.buf), self.dropped > 0, length))
            self.start = end
            self.buf.clear()
            self.dropped = 0
            pos = nl + 1
        return out

    def flush(self, final: bool) -> list[Frame]:
        """Emit the last line without a newline, but only once its file is finished (rotated away or
        deleted): in a live file the rest of that line may still be on its way."""
        if not final or (not self.buf and not self.dropped):
            return []
        length = len(self.buf) + self.dropped
        frame = Frame(self.start, self.start + length, bytes(self.buf), self.dropped > 0, length)
        self.start += length
        self.buf.clear()
        self.dropped = 0
        return [frame]


class GroupFramer:
    """Joins lines into one record: continuation lines (multiline) or lines sharing an auditd serial."""

    def __init__(
        self,
        start: int,
        max_line_bytes: int,
        mode: Literal["multiline", "auditd"],
        pattern: re.Pattern[bytes] | None = None,
        negate: bool = False,
        max_lines: int = 500,
    ) -> None:
        self.lines = LineFramer(start, max_line_bytes)
        self.mode = mode
        self.pattern = pattern
        self.negate = negate
        self.max_lines = max_lines
        self.max_bytes = max_line_bytes
        self.group: list[Frame] = []
        self.group_key: tuple[bytes | None, bytes] | None = None

    @property
    def pending_from(self) -> int:
        return self.group[0].offset if self.group else self.lines.pending_from

    def _continues(self, frame: Frame) -> bool:
        if not self.group:
            return False
        if self.mode == "auditd":
            m = AUDIT_SERIAL.match(frame.data)
            key = (m.group(1), m.group(2)) if m else None
            return key is not None and key == self.group_key
        assert self.pattern is not None
        matched = self.pattern.search(frame.data) is not None
        return matched != self.negate

    def _close(self) -> list[Frame]:
        if not self.group:
            return []
        g = self.group
        self.group = []
        self.group_key = None
        if len(g) == 1:
            return [g[0]]
        joined = b"\n".join(f.data for f in g)
        truncated = any(f.truncated for f in g)
        original = sum(f.original_length for f in g) + len(g) - 1
        if len(joined) > self.max_bytes:
            joined, truncated = joined[: self.max_bytes], True
        return [Frame(g[0].offset, g[-1].end, joined, truncated, original)]

    def feed(self, data: bytes, at: int) -> list[Frame]:
        out: list[Frame] = []
        for frame in self.lines.feed(data, at):
            if self._continues(frame) and len(self.group) < self.max_lines:
                self.group.append(frame)
                continue
            out.extend(self._close())
            self.group = [frame]
            if self.mode == "auditd":
                m = AUDIT_SERIAL.match(frame.data)
                self.group_key = (m.group(1), m.group(2)) if m else None
                if AUDIT_EOE.match(frame.data):
                    out.extend(self._close())
        return out

    def flush(self, final: bool) -> list[Frame]:
        """Close the pending group once the file has gone quiet: its next line may never come."""
        out: list[Frame] = []
        for frame in self.lines.flush(final):
            if self._continues(frame):
                self.group.append(frame)
            else:
                out.extend(self._close())
                self.group = [frame]
        out.extend(self._close())
        return out


@dataclass(frozen=True)
class FramingSpec:
    """How a source is framed; built from a collector definition."""

    mode: Literal["lines", "multiline", "auditd"] = "lines"
    pattern: str | None = None
    negate: bool = False
    max_lines: int = 500

    def framer(self, start: int, max_line_bytes: int) -> LineFramer | GroupFramer:
        if self.mode == "lines":
            return LineFramer(start, max_line_bytes)
        compiled = re.compile(self.pattern.encode()) if self.pattern else None
        return GroupFramer(start, max_line_bytes, self.mode, compiled, self.negate, self.max_lines)
