"""Following the files of one source: discovery by glob, rotation, truncation, copies, deletion.

A *stream* is one lineage of file content. It survives renames (same inode) and is carried
over to the copy when a file is copy-truncated (same leading bytes, new inode), so offsets
and event ids stay valid whichever file currently holds the bytes.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from sentinel.collect.framing import FramingSpec, GroupFramer, LineFramer
from sentinel.collect.identity import FINGERPRINT_BYTES, fingerprint, fingerprint_path, new_stream_id
from sentinel.collect.records import Checkpoint, RawRecord

log = logging.getLogger(__name__)

Key = tuple[int, int]


@dataclass
class TailerSettings:
    max_line_bytes: int = 1 << 20
    read_chunk_bytes: int = 1 << 20
    start_position: str = "end"
    rotated_grace_seconds: float = 2.0
    idle_flush_seconds: float = 0.25
    idle_close_seconds: float = 300.0


@dataclass
class TailerEvents:
    """Callbacks for things worth counting; the daemon wires them to metrics."""

    on_read: Callable[[str, int, int], None] = lambda source, lines, nbytes: None
    on_truncated_line: Callable[[str], None] = lambda source: None
    on_problem: Callable[[str, str, str], None] = lambda source, kind, path: None
    on_rotation: Callable[[str, str], None] = lambda source, kind: None


@dataclass(eq=False)
class _Stream:
    id: str
    path: str
    dev: int
    ino: int
    fp_len: int
    fp_hash: str
    pos: int
    framer: LineFramer | GroupFramer
    fd: int | None = None
    rotated: bool = False
    finished: bool = False
    last_growth: float = 0.0
    last_data: float = 0.0
    dirty: bool = True
    mtime: float = 0.0
    young: bool = False  # too short yet to be sure it is not a copy of another stream

    @property
    def key(self) -> Key:
        return (self.dev, self.ino)

    @property
    def committed_offset(self) -> int:
        return self.framer.pending_from

    def close(self) -> None:
        _close_quietly(self.fd)
        self.fd = None


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
        self.active: dict[Key, _Stream] = {}
        self.known: dict[Key, _Known] = {}
        self.retired: list[_Stream] = []
        self.first_start = True
        self._warned: set[tuple[str, str]] = set()

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

    def _restore_one(self, cp: Checkpoint) -> None:
        found = self._locate(cp.path, cp.dev, cp.ino, cp.fp_len, cp.fp_hash, cp.offset)
        if found is None:
            self._warn("lost", cp.path, f"file of stream {cp.stream} is gone; reading of it ended at byte {cp.offset}")
            self.retired.append(self._make_stream(cp.stream, cp.path, cp.dev, cp.ino, cp.fp_len, cp.fp_hash,
                                                  cp.offset, None, finished=True))
            return
        path, fd, st = found
        s = self._make_stream(cp.stream, path, st.st_dev, st.st_ino, cp.fp_len, cp.fp_hash, cp.offset, fd)
        s.rotated = not self._matches_glob(path)
        if (st.st_dev, st.st_ino) != (cp.dev, cp.ino):
            self.events.on_rotation(self.source, "copy")
            s.rotated = True
        self.active[s.key] = s

    def _locate(
        self, path: str, dev: int, ino: int, fp_len: int, fp_hash: str, offset: int
    ) -> tuple[str, int, os.stat_result] | None:
        """Where does this content live now? Same path, a renamed file (same inode), or a copy."""
        candidates = [path]
        directory = os.path.dirname(path) or "."
        try:
            candidates += sorted(os.path.join(directory, n) for n in os.listdir(directory))
        except OSError:
            pass
        by_inode: list[str] = []
        by_print: list[str] = []
        for cand in candidates:
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size < offset:
                continue
            if (st.st_dev, st.st_ino) == (dev, ino):
                by_inode.append(cand)
            elif fp_len > 0 and st.st_size >= fp_len:
                by_print.append(cand)
        for cand in by_inode + by_print:
            try:
                fd = os.open(cand, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                continue
            st = os.fstat(fd)
            if st.st_size >= offset and (fp_len == 0 or (st.st_size >= fp_len and fingerprint(fd, fp_len) == fp_hash)):
                return cand, fd, st
            os.close(fd)
        return None

    # --------------------------------------------------------------- discovery
    def discover(self) -> None:
        """Match the globs and react to new, renamed, replaced and vanished files."""
        now = self.clock()
        seen: set[Key] = set()
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                self._consider(path, now, seen)
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
            s.path = path
            if s.rotated:
                s.rotated = False
            if s.fd is None and st.st_size != s.pos:
                s.fd = self._open(path)
            if s.fd is not None and s.fp_len and st.st_size >= s.fp_len and fingerprint(s.fd, s.fp_len) != s.fp_hash:
                self._handle_truncation(s, "replaced")
            return
        known = self.known.get(key)
        if known is not None and (known.fp_len == 0 or (
                st.st_size >= known.fp_len and fingerprint_path(path, known.fp_len) == known.fp_hash)):
            return
        self.known.pop(key, None)
        fd = self._open(path)
        if fd is None:
            return
        st = os.fstat(fd)
        fp_len = min(st.st_size, FINGERPRINT_BYTES)
        fp_hash = fingerprint(fd, fp_len)
        original = self._copy_of(fd, st.st_size, key)
        if original == "pending":
            # Its bytes so far are the start of a file we follow: most likely a copy (copytruncate)
            # still being written. Decide at the next discovery, once it has grown.
            os.close(fd)
            return
        if original is not None:
            # A copy of content we already read or are reading (copytruncate): keep it aside;
            # if its original gets truncated, the rest of the stream is read from this copy.
            self.known[key] = _Known(fp_len, fp_hash, original, fd, path, st.st_size, now)
            return
        start = 0
        if self.first_start and self.settings.start_position == "end":
            start = st.st_size
        sid = new_stream_id(st.st_dev, st.st_ino, fp_hash, now)
        stream = self._make_stream(sid, path, st.st_dev, st.st_ino, fp_len, fp_hash, start, fd)
        stream.mtime = st.st_mtime
        stream.young = fp_len < FINGERPRINT_BYTES
        self.active[key] = stream
        if not self.first_start:
            self.events.on_rotation(self.source, "new_file")

    def _copy_of(self, fd: int, size: int, key: Key) -> str | None:
        """Stream whose content this file copies, "pending" if it may be a copy still being written."""
        pending = False
        for s in list(self.active.values()) + self.retired:
            if s.key == key or s.fp_len == 0:
                continue
            if size >= s.fp_len:
                if fingerprint(fd, s.fp_len) == s.fp_hash:
                    return s.id
            elif size > 0 and s.fd is not None and os.pread(fd, size, 0) == os.pread(s.fd, size, 0):
                pending = True
        for k, known in self.known.items():
            if (k != key and known.fp_len > 0 and size >= known.fp_len
                    and fingerprint(fd, known.fp_len) == known.fp_hash):
                return known.stream or "finished"
        return "pending" if pending else None

    # ------------------------------------------------------------------ reading
    def read(self, budget: int) -> list[RawRecord]:
        """Read up to about ``budget`` records across streams, fairly."""
        out: list[RawRecord] = []
        now = self.clock()
        streams = list(self.active.values())
        if not streams:
            return out
        share = max(1, budget // len(streams))
        for s in streams:
            if len(out) >= budget:
                break
            self._read_stream(s, min(share, budget - len(out)), now, out)
        return out

    def _read_stream(self, s: _Stream, budget: int, now: float, out: list[RawRecord]) -> None:
        if s.fd is None:
            return
        try:
            st = os.fstat(s.fd)
        except OSError:
            return
        if s.young and s.pos == 0 and st.st_size > 0:
            verdict = self._copy_of(s.fd, st.st_size, s.key)
            if verdict == "pending":
                return
            if verdict is not None:
                self.active.pop(s.key, None)
                self.known[s.key] = _Known(s.fp_len, s.fp_hash, verdict, s.fd, s.path, st.st_size, now)
                return
            s.young = False
        if st.st_size < s.pos:
            self._handle_truncation(s, "truncated")
            new = self.active.get(s.key)
            if new is None or new is s:
                return
            s = new
            st = os.fstat(s.fd) if s.fd is not None else st
        got = 0
        chunk = self.settings.read_chunk_bytes
        while got < budget and s.fd is not None:
            try:
                data = os.pread(s.fd, chunk, s.pos)
            except OSError as exc:
                self._warn("read_error", s.path, f"read failed: {exc.strerror}")
                break
            if not data:
                break
            at = s.pos
            s.pos += len(data)
            s.last_growth = now
            s.last_data = now
            s.mtime = st.st_mtime
            frames = s.framer.feed(data, at)
            got += self._emit(s, frames, out)
            self.events.on_read(self.source, len(frames), len(data))
            if len(data) < chunk:
                break
        if got:
            return
        idle = now - s.last_data
        final = s.rotated and now - s.last_growth >= self.settings.rotated_grace_seconds
        if idle >= self.settings.idle_flush_seconds or final:
            self._emit(s, s.framer.flush(final), out)
        if final:
            self._finish(s)
        elif idle >= self.settings.idle_close_seconds and not s.rotated:
            s.close()

    def _emit(self, s: _Stream, frames: list, out: list[RawRecord]) -> int:
        if not frames:
            return 0
        s.dirty = True
        if s.fp_len < FINGERPRINT_BYTES and s.fd is not None:
            size = min(s.pos, FINGERPRINT_BYTES)
            if size > s.fp_len:
                s.fp_len, s.fp_hash = size, fingerprint(s.fd, size)
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
        self.known[s.key] = _Known(s.fp_len, s.fp_hash, s.id)

    def _handle_truncation(self, s: _Stream, why: str) -> None:
        """The file at this inode shrank or was rewritten. The stream goes on in a copy of the old
        content if one exists (copytruncate), otherwise it ends; the file itself restarts at 0."""
        orig_path, orig_fd, key = s.path, s.fd, s.key
        self.active.pop(key, None)
        copy = self._find_copy(s)
        if copy is not None:
            path, fd, st = copy
            s.path, s.dev, s.ino, s.fd = path, st.st_dev, st.st_ino, fd
            s.rotated = True
            s.last_growth = self.clock()
            self.active[s.key] = s
            self.known.pop(s.key, None)
            self.events.on_rotation(self.source, "copytruncate")
        else:
            lost = s.pos - s.committed_offset
            self._warn("truncated", s.path, f"file {why} at byte {s.pos}; restarting at 0"
                       + (f" ({lost} bytes of an unfinished line dropped)" if lost else ""))
            self.events.on_rotation(self.source, "truncate")
            s.fd = None
            self._finish(s)
        if orig_fd is None:
            return
        st = os.fstat(orig_fd)
        fp_len = min(st.st_size, FINGERPRINT_BYTES)
        fp_hash = fingerprint(orig_fd, fp_len)
        sid = new_stream_id(st.st_dev, st.st_ino, fp_hash, self.clock())
        new = self._make_stream(sid, orig_path, st.st_dev, st.st_ino, fp_len, fp_hash, 0, orig_fd)
        self.known.pop(new.key, None)
        self.active[new.key] = new

    def _find_copy(self, s: _Stream) -> tuple[str, int, os.stat_result] | None:
        need = s.committed_offset
        for key, known in list(self.known.items()):
            if known.stream == s.id and known.fd is not None:
                st = os.fstat(known.fd)
                if st.st_size >= need:
                    self.known.pop(key)
                    return known.path, known.fd, st
        found = self._locate(s.path, -1, -1, s.fp_len, s.fp_hash, need)
        if found is not None and (found[2].st_dev, found[2].st_ino) != s.key:
            return found
        if found is not None:
            os.close(found[1])
        return None

    # -------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints of the streams that moved since the last call (for the batch transaction)."""
        out = []
        now = self.clock()
        for s in list(self.active.values()) + self.retired:
            if s.dirty:
                out.append(Checkpoint(s.id, self.source, s.path, s.dev, s.ino, s.fp_len, s.fp_hash,
                                      s.committed_offset, s.finished, now))
                s.dirty = False
        self.retired = [s for s in self.retired if s.dirty]
        return out

    def lag(self) -> list[tuple[str, int, float]]:
        """(path, bytes behind, seconds since the file last changed beyond what was read) per stream."""
        out = []
        now = self.clock()
        for s in self.active.values():
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
    def _make_stream(self, sid: str, path: str, dev: int, ino: int, fp_len: int, fp_hash: str, offset: int,
                     fd: int | None, finished: bool = False) -> _Stream:
        framer = self.framing.framer(offset, self.settings.max_line_bytes)
        now = self.clock()
        return _Stream(sid, path, dev, ino, fp_len, fp_hash, offset, framer, fd, finished=finished,
                       last_growth=now, last_data=now)

    def _open(self, path: str) -> int | None:
        try:
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            kind = "permission_denied" if exc.errno in (errno.EACCES, errno.EPERM) else "unreadable"
            self._warn(kind, path, f"cannot open: {exc.strerror}")
            return None

    def _matches_glob(self, path: str) -> bool:
        import fnmatch

        return any(fnmatch.fnmatch(path, p) for p in self.patterns)

    def _warn(self, kind: str, path: str, message: str) -> None:
        self.events.on_problem(self.source, kind, path)
        if (kind, path) in self._warned:
            return
        self._warned.add((kind, path))
        log.warning("source %s: %s: %s", self.source, path, message)

