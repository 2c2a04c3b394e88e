"""Following the files of one source: discovery by glob, rotation, truncation, copies, deletion.

A *stream* is one lineage of file content. It survives renames (same inode) and is carried
over to the copy when a file is copy-truncated (same leading bytes, new inode) or to its compressed
rotation, so offsets and event ids stay valid whichever file currently holds the bytes.

A stream is bound to its content by its *head*: the first bytes of the file (up to 1 KiB) as they
were when the stream was first seen, extended by what it reads. Before and after every read the
head is compared with the file, so a truncation is noticed whatever the read position (even 0,
before a byte was read) and however far the file has grown again since.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from sentinel.collect.compressed import CompressedReader, CorruptCompressedFile
from sentinel.collect.framing import Frame, FramingSpec, GroupFramer, LineFramer
from sentinel.collect.identity import (
    FINGERPRINT_BYTES,
    compressed_complete,
    content_head,
    head_hash,
    is_compressed,
    new_stream_id,
    read_head,
)
from sentinel.events.paths import shown
from sentinel.events.records import Checkpoint, RawRecord

log = logging.getLogger(__name__)

Key = tuple[int, int]

# How far file times may lag behind time.time() (the kernel stamps them with its coarse clock).
TIME_MARGIN = 1.0

# Names of compressed rotations: never read as text, whatever their first bytes are so far.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")

# Bytes read per system call. Small enough that one stream's backlog cannot overshoot a batch by much
# and that the head check before and after a read brackets it closely.
READ_BYTES = 1 << 16


@dataclass
class TailerSettings:
    max_line_bytes: int = 1 << 20
    read_chunk_bytes: int = 1 << 20  # at most this much of one stream per read() call: fair shares
    start_position: str = "end"
    rotated_grace_seconds: float = 2.0
    # A renamed file that still exists is followed this long after it last grew: a writer may keep its
    # old descriptor for a while before it reopens the path.
    rotated_hold_seconds: float = 30.0
    idle_flush_seconds: float = 0.25
    idle_close_seconds: float = 300.0


def _ignore_read(source: str, lines: int, nbytes: int) -> None:
    return None


def _ignore_source(source: str) -> None:
    return None


def _ignore_problem(source: str, kind: str, path: str) -> None:
    return None


def _ignore_kind(source: str, kind: str) -> None:
    return None


def _ignore_lost(source: str, nbytes: int) -> None:
    return None


@dataclass
class TailerEvents:
    """Callbacks for things worth counting; the daemon wires them to metrics."""

    on_read: Callable[[str, int, int], None] = _ignore_read
    on_truncated_line: Callable[[str], None] = _ignore_source
    on_problem: Callable[[str, str, str], None] = _ignore_problem
    on_rotation: Callable[[str, str], None] = _ignore_kind
    on_lost: Callable[[str, int], None] = _ignore_lost  # bytes that no file holds any more, never read


@dataclass(eq=False)
class _Stream:
    id: str
    path: str
    dev: int
    ino: int
    head: bytes
    pos: int
    framer: LineFramer | GroupFramer
    fd: int | None = None
    gz: CompressedReader | None = None  # the stream goes on in a compressed rotation
    rotated: bool = False
    finished: bool = False
    last_growth: float = 0.0
    last_data: float = 0.0
    dirty: bool = True
    mtime: float = 0.0
    size_seen: int = 0
    lost_print: tuple[int, str] | None = None  # the print of a stream whose content is gone, kept for good
    young: bool = False  # too short yet to be sure it is not a copy of another stream

    @property
    def key(self) -> Key:
        return (self.dev, self.ino)

    @property
    def committed_offset(self) -> int:
        return self.framer.pending_from

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close_reader()
            self.gz = None
        _close_quietly(self.fd)
        self.fd = None


def _key_at(path: str) -> Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _close_quietly(fd: int | None) -> None:
    """Close a descriptor we may hold (one already gone is no error)."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass
class _Known:
    """A physical file whose content is accounted for elsewhere: finished, or a copy of a stream."""

    fp_len: int
    fp_hash: str
    stream: str | None = None
    fd: int | None = None  # held for a copy, so the stream can go on in it if its original is truncated
    path: str = ""
    size: int = 0
    changed: float = 0.0  # when the held copy last grew

    def release(self) -> None:
        _close_quietly(self.fd)
        self.fd = None

    def holds(self, head: bytes) -> bool:
        return len(head) >= self.fp_len and head_hash(head[: self.fp_len]) == self.fp_hash


@dataclass
class _Found:
    path: str
    fd: int
    st: os.stat_result
    head: bytes
    compressed: bool


# logrotate truncates right after it copies. A copy whose original is still intact this long after the
# copy stopped growing is something else (a backup, a manual cp): its descriptor is let go, so copies
# cannot pile up open files or keep deleted files' space. If the original is truncated later after all,
# the copy is still found by its content, as long as it exists.
COPY_HOLD_SECONDS = 60.0


class SourceTailer:
    """Tails every file matching a source's globs and frames their content into records."""

    def __init__(
        self,
        source: str,
        patterns: list[str],
        framing: FramingSpec,
        settings: TailerSettings,
        events: TailerEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.patterns = patterns
        self.framing = framing
        self.settings = settings
        self.events = events or TailerEvents()
        self.clock = clock
        self._reset()

    def _reset(self) -> None:
        self.active: dict[Key, _Stream] = {}
        self.known: dict[Key, _Known] = {}
        self.retired: list[_Stream] = []
        self.first_start = True
        self._warned: set[tuple[str, str]] = set()
        self._turn = 0  # which stream reads first: turns round, so no stream always goes last
        self.bytes_read = 0  # by the last read() call
        self._at_path: dict[str, Key | None] = {}  # which file held each followed name at the last look
        self._looked: dict[str, float] = {}  # and when (real time)
        self._unreadable_since: dict[str, float] = {}

    # ----------------------------------------------------------------- restore
    def restore(self, checkpoints: list[Checkpoint]) -> None:
        """Resume from committed checkpoints, finding content that moved while we were down."""
        mine = [c for c in checkpoints if c.source == self.source and not c.cursor]  # a cursor: not a file
        if mine:
            self.first_start = False
        for cp in mine:
            if cp.finished:
                self.known[(cp.dev, cp.ino)] = _Known(cp.fp_len, cp.fp_hash, cp.stream)
        for cp in mine:
            if not cp.finished:
                self._restore_one(cp)
        if mine:
            since = max(c.updated for c in mine)
            prints = [(c.fp_len, c.fp_hash) for c in mine if c.fp_len]
            for path in self._followed_paths():
                self._adopt_unseen_rotations(path, since, prints)

    def rewind(self, checkpoints: list[Checkpoint]) -> None:
        """Forget everything read past the committed checkpoints (their batch rolled back): exactly the
        state a restart would build, so the same bytes are read again."""
        first = self.first_start
        self.close()
        self._reset()
        self.first_start = first
        self.restore(checkpoints)

    def _restore_one(self, cp: Checkpoint) -> None:
        found = self._locate(cp.path, cp.dev, cp.ino, cp.fp_len, cp.fp_hash, cp.offset)
        if found is None:
            self._lost(cp.path, cp.offset, None, f"the file of stream {cp.stream} is gone and no rotation of it "
                       "holds its content (deleted or rotated away while sentinel was stopped)")
            gone = self._make_stream(cp.stream, cp.path, cp.dev, cp.ino, b"", cp.offset, None, finished=True)
            gone.lost_print = (cp.fp_len, cp.fp_hash)  # so its content is still recognised if it turns up
            self.retired.append(gone)
            self.known[(cp.dev, cp.ino)] = _Known(cp.fp_len, cp.fp_hash, cp.stream)
            return
        st = found.st
        s = self._make_stream(cp.stream, found.path, st.st_dev, st.st_ino, found.head, cp.offset, None)
        self._attach(s, found)
        s.rotated = found.compressed or not self._matches_glob(found.path)
        if (st.st_dev, st.st_ino) != (cp.dev, cp.ino):
            self.events.on_rotation(self.source, "compressed" if found.compressed else "copy")
            s.rotated = True
        self.active[s.key] = s

    def _blank(self, key: Key | None) -> bool:
        s = self.active.get(key) if key is not None else None
        return s is not None and not s.head

    def _adopt_unseen_rotations(self, path: str, since: float, prints: list[tuple[int, str]]) -> None:
        """Read rotations of ``path`` that no stream ever saw: a file created, written and renamed away
        between two looks (or while sentinel was stopped), or the copy of a copytruncate of a stream that
        had no content to be recognised by. Candidates are siblings named like a rotation of ``path``,
        outside the globs, changed after ``since`` (a real time, like the files' own), whose content no
        stream, copy or checkpoint accounts for; they are read whole."""
        directory = os.path.dirname(path) or "."
        base = os.path.basename(path)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        fd = self._open(path, quiet=True)
        current = b""
        if fd is not None:
            current = read_head(fd)
            os.close(fd)
        for name in names:
            if name == base or not name.startswith(base) or name[len(base)] not in ".-_":
                continue
            cand = os.path.join(directory, name)
            if self._matches_glob(cand):
                continue  # discovery looks at it anyway
            try:
                st = os.stat(cand)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            # File times come from the kernel's coarse clock, a few ms behind time.time(): a margin keeps a
            # change made just after a look from passing for one made before it. Content decides the rest.
            if (not stat.S_ISREG(st.st_mode) or key in self.active or key in self.known
                    or st.st_ctime <= since - TIME_MARGIN):
                continue
            fd = self._open(cand, quiet=True)
            if fd is None:
                continue
            compressed, head = content_head(fd, cand)
            if (cand.endswith(COMPRESSED_SUFFIXES[1:]) or head is None or not head
                    or self._copy_of(head, key, complete=True) is not None
                    or any(len(head) >= n and head_hash(head[:n]) == h for n, h in prints)
                    or (current and (head.startswith(current) or current.startswith(head)))):
                os.close(fd)  # no content yet, or content some stream already accounts for
                continue
            st = os.fstat(fd)
            sid = new_stream_id(st.st_dev, st.st_ino, head_hash(head), self.clock())
            s = self._make_stream(sid, cand, st.st_dev, st.st_ino, head, 0, None)
            self._attach(s, _Found(cand, fd, st, head, compressed))
            s.rotated = True
            self.active[s.key] = s
            self.events.on_rotation(self.source, "unseen_rotation")

    def _attach(self, s: _Stream, found: _Found) -> None:
        s.fd = found.fd
        s.gz = CompressedReader(found.fd) if found.compressed else None
        s.size_seen = found.st.st_size
        s.mtime = found.st.st_mtime

    def _locate(
        self, path: str, dev: int, ino: int, fp_len: int, fp_hash: str, offset: int
    ) -> _Found | None:
        """Where does this content live now? Same inode, a copy (same head), or a compressed rotation."""
        candidates = [path]
        directory = os.path.dirname(path) or "."
        try:
            candidates += sorted(os.path.join(directory, n) for n in os.listdir(directory))
        except OSError:
            pass
        by_inode: list[str] = []
        by_print: list[str] = []
        squeezed: list[str] = []
        for cand in dict.fromkeys(candidates):
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if (st.st_dev, st.st_ino) == (dev, ino):
                by_inode.append(cand)  # its size is checked below: a compressed one is smaller than its content
            elif fp_len > 0:
                if cand.endswith(".gz"):
                    squeezed.append(cand)
                elif st.st_size >= max(fp_len, offset):
                    by_print.append(cand)
        for cand in by_inode + by_print + squeezed:
            fd = self._open(cand, quiet=True)
            if fd is None:
                continue
            st = os.fstat(fd)
            # By name too: a .gz a compressor has only just created has no magic bytes yet, and is no text.
            compressed, head = content_head(fd, cand)
            if (head is not None and len(head) >= fp_len and head_hash(head[:fp_len]) == fp_hash
                    and (compressed or st.st_size >= offset)):
                return _Found(cand, fd, st, head, compressed)
            os.close(fd)
        return None

    def _followed_paths(self) -> set[str]:
        """The names rotations are named after: exact paths in the source, and the files its globs matched."""
        exact = {p for p in self.patterns if not glob.has_magic(p)}
        return exact | {s.path for s in self.active.values() if not s.rotated and s.gz is None}

    # --------------------------------------------------------------- discovery
    def discover(self) -> None:
        """Match the globs and react to new, renamed, replaced and vanished files."""
        now = self.clock()
        seen: set[Key] = set()
        looked = time.time()  # compared with file times, which are the real clock's
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                self._consider(path, now, seen)
        for path in self._followed_paths():
            key = _key_at(path)
            if path in self._at_path and (key != self._at_path[path] or self._blank(key)):
                # Another file holds the name now, or its stream has seen no content yet (a copytruncate
                # would leave no trace in it): a rotation may hold content no stream saw.
                self._adopt_unseen_rotations(path, self._looked.get(path, 0.0), [])
            self._at_path[path] = key
            self._looked[path] = looked
        for key, s in list(self.active.items()):
            if key not in seen and not s.rotated:
                s.rotated = True
                s.last_growth = now
                self.events.on_rotation(self.source, "moved_or_deleted")
        self._release_stale_copies(now)
        self.first_start = False

    def _release_stale_copies(self, now: float) -> None:
        for known in self.known.values():
            if known.fd is None:
                continue
            try:
                size = os.fstat(known.fd).st_size
            except OSError:
                known.release()
                continue
            if size != known.size:
                known.size, known.changed = size, now
            elif now - known.changed >= COPY_HOLD_SECONDS:
                known.release()

    def _consider(self, path: str, now: float, seen: set[Key]) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._warn("unreadable", path, f"cannot stat: {exc.strerror}")
            return
        if not stat.S_ISREG(st.st_mode):
            self._warn("not_a_file", path, "matches the source's paths but is not a regular file; ignored")
            return
        key = (st.st_dev, st.st_ino)
        seen.add(key)
        s = self.active.get(key)
        if s is not None:
            if s.gz is None:
                s.path = path
            if s.rotated and s.gz is None:
                s.rotated = False
            if s.fd is None and st.st_size != s.pos:
                s.fd = self._open(path)
            if s.fd is not None and s.gz is None and not self._intact(s):
                self._handle_truncation(s, "replaced")
            return
        known = self.known.get(key)
        if known is not None:
            if known.fp_len == 0 and st.st_size == 0:
                return
            fd = self._open(path, quiet=True)
            if fd is None:
                return
            try:
                head = content_head(fd, path)[1]
            finally:
                os.close(fd)
            if head is not None and known.fp_len and known.holds(head):
                return
        self.known.pop(key, None)
        if path.endswith(COMPRESSED_SUFFIXES[1:]):
            self._warn("compressed_unsupported", path, "only gzip rotations can be read; this file is ignored")
            return
        fd = self._open(path)
        if fd is None:
            return
        st = os.fstat(fd)
        # A .gz still being written may not show its magic bytes yet: its name says what it is.
        compressed, head = content_head(fd, path)
        # Short compressed content that does not reach its end: a compressor has only begun writing it. Its
        # first KiB (or, for a short file, its end) is what tells a copy of a stream we follow from new content.
        if head is None or (compressed and len(head) < FINGERPRINT_BYTES and not compressed_complete(fd)):
            # Being written by gzip, or damaged: looked at again at the next discovery.
            os.close(fd)
            first = self._unreadable_since.setdefault(path, now)
            if now - first >= 60.0:
                self._warn("corrupt_compressed", path, "compressed file cannot be read; ignored until it can")
            return
        self._unreadable_since.pop(path, None)
        original = self._copy_of(head, key, complete=compressed)
        if original == "pending":
            # Its bytes so far are the start of a stream we follow: most likely a copy (copytruncate)
            # still being written. Decide at the next discovery, once it has grown.
            os.close(fd)
            return
        if original is not None:
            # A copy of content we already read or are reading (copytruncate, or its compressed rotation):
            # keep a plain copy aside; if its original gets truncated, the rest of the stream is read there.
            if compressed:
                self.known[key] = _Known(len(head), head_hash(head), original, None, path, st.st_size, now)
                os.close(fd)
            else:
                self.known[key] = _Known(len(head), head_hash(head), original, fd, path, st.st_size, now)
            return
        start = 0
        if self.first_start and self.settings.start_position == "end":
            if compressed:  # history from before sentinel ran, like the skipped part of a live file
                self.known[key] = _Known(len(head), head_hash(head))
                os.close(fd)
                return
            start = st.st_size
        sid = new_stream_id(st.st_dev, st.st_ino, head_hash(head), now)
        stream = self._make_stream(sid, path, st.st_dev, st.st_ino, head, start, None)
        self._attach(stream, _Found(path, fd, st, head, compressed))
        stream.young = not compressed and len(head) < FINGERPRINT_BYTES
        stream.rotated = compressed
        self.active[key] = stream
        if not self.first_start:
            self.events.on_rotation(self.source, "new_file")

    def _copy_of(self, head: bytes, key: Key, complete: bool = False) -> str | None:
        """Stream whose content this file copies, "pending" if it may be a copy still being written."""
        if not head:
            return None
        pending = False
        for s in list(self.active.values()) + self.retired:
            if s.key == key or not s.head:
                continue
            if len(head) >= len(s.head):
                if head.startswith(s.head):
                    return s.id
            elif not complete and s.head.startswith(head):
                pending = True
        for k, known in self.known.items():
            if k != key and known.fp_len > 0 and known.holds(head):
                return known.stream or "finished"
        return "pending" if pending else None

    # ------------------------------------------------------------------ reading
    def read(self, budget: int) -> list[RawRecord]:
        """Read up to about ``budget`` records, each stream its fair share in records and bytes."""
        out: list[RawRecord] = []
        self.bytes_read = 0
        now = self.clock()
        streams = list(self.active.values())
        if not streams:
            return out
        self._turn = (self._turn + 1) % len(streams)
        streams = streams[self._turn:] + streams[: self._turn]
        left = len(streams)
        for s in streams:
            share = max(1, (budget - len(out)) // left)
            left -= 1
            if len(out) >= budget:
                break
            self._read_stream(s, share, now, out)
        return out

    def _intact(self, s: _Stream) -> bool:
        """Does the file still begin with the stream's head (not truncated, not rewritten)?"""
        if not s.head or s.fd is None or s.gz is not None:
            return True
        try:
            return os.pread(s.fd, len(s.head), 0) == s.head
        except OSError:
            return True  # a read error is reported by the read itself

    def _read_stream(self, s: _Stream, budget: int, now: float, out: list[RawRecord]) -> None:
        if s.fd is None:
            return
        if s.gz is not None:
            self._read_compressed(s, budget, now, out)
            return
        try:
            st = os.fstat(s.fd)
        except OSError:
            return
        if s.young and s.pos == 0 and st.st_size > 0:
            if is_compressed(s.fd):  # it was empty when found; a compressor is writing it: not text
                self.active.pop(s.key, None)
                s.close()
                return
            verdict = self._copy_of(read_head(s.fd), s.key)
            if verdict == "pending":
                return
            if verdict is not None:
                self.active.pop(s.key, None)
                self.known[s.key] = _Known(len(s.head), head_hash(s.head), verdict, s.fd, s.path, st.st_size, now)
                return
            s.young = False
        if st.st_size < s.pos or not self._intact(s):
            s = self._truncated(s, "truncated", st)
            if s.fd is None:
                return
            st = os.fstat(s.fd)
        if not s.head and st.st_size > 0 and s.path in self._looked:
            # Its first bytes: the file was empty when last seen, so a copytruncate since then left no trace
            # in it. What it held may sit in a rotation next to it (looked for once, before reading).
            self._adopt_unseen_rotations(s.path, self._looked[s.path], [])
        s.size_seen = st.st_size
        got = nbytes = 0
        while got < budget and nbytes < self.settings.read_chunk_bytes and s.fd is not None:
            at = s.pos
            want = min(READ_BYTES, self.settings.read_chunk_bytes - nbytes)
            try:
                data = os.pread(s.fd, want, at)
            except OSError as exc:
                self._warn("read_error", s.path, f"read failed: {exc.strerror}")
                break
            if not data:
                break
            if not self._intact(s):
                # Truncated (and maybe written again) while we read: were these bytes the old content?
                if os.pread(s.fd, len(data), at) != data:
                    got += self._take(s, data, at, now, st, out)
                s = self._truncated(s, "truncated", st)
                break
            got += self._take(s, data, at, now, st, out)
            nbytes += len(data)
            if len(data) < want:
                break
        if got or nbytes:
            return
        self._idle(s, now, st.st_nlink == 0, out)

    def _read_compressed(self, s: _Stream, budget: int, now: float, out: list[RawRecord]) -> None:
        assert s.gz is not None
        got = nbytes = 0
        while got < budget and nbytes < self.settings.read_chunk_bytes:
            at = s.pos
            try:
                data = s.gz.read_at(at, READ_BYTES)
            except CorruptCompressedFile as exc:
                if self._compressor_writing(s, now):
                    return
                self._warn("corrupt_compressed", s.path, f"compressed data ends or is damaged after byte {at}: {exc}")
                self._lost(s.path, at, None, "the rest of this compressed rotation cannot be read")
                self._emit(s, s.framer.flush(True), out)
                self._finish(s)
                return
            if not data:
                if s.pos > 0:
                    # A clean end past some content: the member's trailer was read and checked, so the
                    # compressor is done with it. Finishing now, not after the rotation grace, means a stop
                    # right after cannot leave a stream whose file, deleted while stopped, reads as lost.
                    self._emit(s, s.framer.flush(True), out)
                    self._finish(s)
                    return
                break
            got += self._take(s, data, at, now, None, out)
            nbytes += len(data)
        if not got and not nbytes:
            self._idle(s, now, True, out)

    def _compressor_writing(self, s: _Stream, now: float) -> bool:
        """A compressed file whose data ended early: still being written (it grew since the last look, or
        within the rotation grace), or damaged? While written, its reader starts over at the next read
        (one that hit the end of partial data cannot resume) and the stream counts as growing."""
        assert s.gz is not None and s.fd is not None
        try:
            size = os.fstat(s.fd).st_size
        except OSError:
            return False
        if size != s.size_seen:
            s.size_seen = size
            s.last_growth = now
        if now - s.last_growth >= self.settings.rotated_grace_seconds:
            return False
        s.gz.close_reader()
        return True

    def _take(self, s: _Stream, data: bytes, at: int, now: float, st: os.stat_result | None,
              out: list[RawRecord]) -> int:
        self.bytes_read += len(data)
        s.pos = at + len(data)
        s.last_growth = now
        s.last_data = now
        if st is not None:
            s.mtime = st.st_mtime
        if len(s.head) < FINGERPRINT_BYTES and at <= len(s.head) < s.pos:
            s.head = (s.head + data[len(s.head) - at:])[:FINGERPRINT_BYTES]
        frames = s.framer.feed(data, at)
        self.events.on_read(self.source, len(frames), len(data))
        return self._emit(s, frames, out)

    def _idle(self, s: _Stream, now: float, gone: bool, out: list[RawRecord]) -> None:
        idle = now - s.last_data
        quiet = now - s.last_growth
        final = s.rotated and quiet >= self.settings.rotated_grace_seconds and (
            gone or s.gz is not None or quiet >= self.settings.rotated_hold_seconds)
        if idle >= self.settings.idle_flush_seconds or final:
            self._emit(s, s.framer.flush(final), out)
        if final:
            self._finish(s)
        elif idle >= self.settings.idle_close_seconds and not s.rotated:
            s.close()

    def _emit(self, s: _Stream, frames: list[Frame], out: list[RawRecord]) -> int:
        if not frames:
            return 0
        s.dirty = True
        ref = s.mtime or self.clock()
        for f in frames:
            if f.truncated:
                self.events.on_truncated_line(self.source)
            out.append(RawRecord(self.source, s.id, s.path, f.offset, f.end, f.data, f.truncated,
                                 f.original_length, ref))
        return len(frames)

    def _finish(self, s: _Stream) -> None:
        s.finished = True
        s.dirty = True
        s.close()
        self.active.pop(s.key, None)
        self.retired.append(s)
        for known in self.known.values():
            if known.stream == s.id:
                known.release()  # the stream is over: nothing will continue in its copies
        self.known[s.key] = _Known(len(s.head), head_hash(s.head), s.id)

    def _truncated(self, s: _Stream, why: str, st: os.stat_result) -> _Stream:
        """Handle a truncation of ``s``'s file; returns the stream that now reads that file."""
        self._handle_truncation(s, why)
        new = self.active.get((st.st_dev, st.st_ino))
        return new if new is not None else s

    def _handle_truncation(self, s: _Stream, why: str) -> None:
        """The file at this inode shrank or was rewritten. The stream goes on in a copy of the old
        content if one exists (copytruncate), otherwise it ends; the file itself restarts at 0."""
        orig_path, orig_fd, key = s.path, s.fd, s.key
        self.active.pop(key, None)
        found = self._find_copy(s)
        if found is not None:
            s.path, s.dev, s.ino = found.path, found.st.st_dev, found.st.st_ino
            self._attach(s, found)
            s.rotated = True
            s.last_growth = self.clock()
            self.active[s.key] = s
            self.known.pop(s.key, None)
            self.events.on_rotation(self.source, "copytruncate")
        else:
            unread = max(0, s.size_seen - s.pos)
            partial = s.pos - s.committed_offset
            if unread or partial:
                self._lost(s.path, s.committed_offset, s.committed_offset + partial + unread,
                           f"file {why} and no copy of it holds these bytes")
            else:
                self._warn("truncated", s.path, f"file {why} at byte {s.pos}; restarting at 0")
            self.events.on_rotation(self.source, "truncate")
            s.fd = None
            s.gz = None
            self._finish(s)
        if orig_fd is None:
            return
        st = os.fstat(orig_fd)
        head = read_head(orig_fd)
        sid = new_stream_id(st.st_dev, st.st_ino, head_hash(head), self.clock())
        new = self._make_stream(sid, orig_path, st.st_dev, st.st_ino, head, 0, orig_fd)
        new.size_seen = st.st_size
        new.mtime = st.st_mtime
        self.known.pop(new.key, None)
        self.active[new.key] = new

    def _find_copy(self, s: _Stream) -> _Found | None:
        need = s.committed_offset
        for key, known in list(self.known.items()):
            if known.stream == s.id and known.fd is not None:
                st = os.fstat(known.fd)
                if st.st_size >= need and os.pread(known.fd, len(s.head), 0) == s.head:
                    self.known.pop(key)
                    return _Found(known.path, known.fd, st, s.head, False)
        if not s.head:
            return None
        found = self._locate(s.path, -1, -1, len(s.head), head_hash(s.head), need)
        if found is not None and (found.st.st_dev, found.st.st_ino) != s.key:
            return found
        if found is not None:
            os.close(found.fd)
        return None

    # -------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints of the streams that moved since the last call (for the batch transaction)."""
        out = []
        looked = time.time()
        for s in list(self.active.values()) + self.retired:
            if s.dirty:
                # ``updated`` is real time, not the injected clock: it is compared with file times.
                fp_len, fp_hash = s.lost_print or (len(s.head), head_hash(s.head))
                out.append(Checkpoint(s.id, self.source, s.path, s.dev, s.ino, fp_len, fp_hash,
                                      s.committed_offset, s.finished, looked))
                s.dirty = False
        self.retired = [s for s in self.retired if s.dirty]
        return out

    def lag(self) -> list[tuple[str, int, float]]:
        """(path, bytes behind, seconds since the file last changed beyond what was read) per stream."""
        out = []
        now = self.clock()
        for s in self.active.values():
            if s.gz is not None:
                continue
            try:
                st = os.stat(s.path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != s.key:
                continue
            behind = max(0, st.st_size - s.committed_offset)
            out.append((s.path, behind, max(0.0, now - st.st_mtime) if behind else 0.0))
        return out

    def close(self) -> None:
        for s in self.active.values():
            s.close()
        for k in self.known.values():
            k.release()

    # ------------------------------------------------------------------ helpers
    def _make_stream(self, sid: str, path: str, dev: int, ino: int, head: bytes, offset: int,
                     fd: int | None, finished: bool = False) -> _Stream:
        framer = self.framing.framer(offset, self.settings.max_line_bytes)
        now = self.clock()
        return _Stream(sid, path, dev, ino, head, offset, framer, fd, finished=finished,
                       last_growth=now, last_data=now)

    def _open(self, path: str, quiet: bool = False) -> int | None:
        try:
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if not quiet:
                kind = "permission_denied" if exc.errno in (errno.EACCES, errno.EPERM) else "unreadable"
                self._warn(kind, path, f"cannot open: {exc.strerror}")
            return None

    def _matches_glob(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) for p in self.patterns)

    def _lost(self, path: str, start: int, end: int | None, why: str) -> None:
        """Bytes that can never be read: counted, and logged with their range, never silently skipped."""
        span = f"bytes {start}-{end}" if end is not None else f"bytes from {start} to the end"
        if end is not None:
            self.events.on_lost(self.source, end - start)
        self.events.on_problem(self.source, "lost", path)
        log.warning("source %s: %s: %s lost: %s", self.source, shown(path), span, why)

    def _warn(self, kind: str, path: str, message: str) -> None:
        self.events.on_problem(self.source, kind, path)
        if (kind, path) in self._warned:
            return
        self._warned.add((kind, path))
        log.warning("source %s: %s: %s", self.source, shown(path), message)
