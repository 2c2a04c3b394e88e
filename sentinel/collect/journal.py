"""Following the systemd journal through ``journalctl --output=json --follow``.

journalctl rather than the ``systemd`` Python bindings: it ships with systemd itself (the bindings
need a compiler and libsystemd headers to install from PyPI), it understands every journal file
format the installed systemd writes, and a reader that crashes or leaks is a child process we
restart and count, not a fault inside the daemon.

The journal cursor of the last entry handed out is the checkpoint. A (re)start follows from
``--cursor=<committed cursor>``: journalctl then prints that entry first, which is skipped. If the
first entry is another one, the committed entry is gone (vacuumed, or its file deleted) and journalctl
has resumed at the closest entry still there: that is a gap, counted and stored as an event, never a
crash and never a silent skip (``--after-cursor`` prints nothing at all for a vanished cursor).
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b

import orjson

from sentinel.events.records import GAP_FIELD, Checkpoint, RawRecord

log = logging.getLogger(__name__)

# The fields sentinel maps; journalctl adds __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID.
OUTPUT_FIELDS = ("MESSAGE", "PRIORITY", "SYSLOG_FACILITY", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "_PID", "_COMM",
                 "_HOSTNAME", "_SYSTEMD_UNIT", "_TRANSPORT", "_UID")
_CURSOR = re.compile(rb'"__CURSOR"\s*:\s*"([^"]+)"')


@dataclass(frozen=True)
class JournalSettings:
    """Which journal and which entries; equality tells a reload whether the follower must restart."""

    directory: str | None = None  # --directory (journal files written elsewhere); None: the system journal
    files: tuple[str, ...] = ()  # --file globs
    identifiers: tuple[str, ...] = ()  # SYSLOG_IDENTIFIER=
    units: tuple[str, ...] = ()  # _SYSTEMD_UNIT=
    matches: tuple[str, ...] = ()  # raw FIELD=value matches, each its own alternative
    start_position: str = "end"  # with no checkpoint: "end" (new entries only) or "beginning"
    since: str | None = None  # replay: --since
    follow: bool = True  # False (replay): read to the end of the journal and stop
    max_line_bytes: int = 1 << 20
    read_chunk_bytes: int = 1 << 16
    journalctl: str = "journalctl"
    restart_min_seconds: float = 0.5
    restart_max_seconds: float = 30.0

    def location_args(self) -> list[str]:
        args = [f"--directory={self.directory}"] if self.directory else []
        return args + [f"--file={f}" for f in self.files]

    def match_args(self) -> list[str]:
        """journalctl ORs matches of one field and ANDs different fields; ``+`` separates alternatives,
        so "these identifiers, or these units, or this match" is written as groups joined by ``+``."""
        groups = [[f"SYSLOG_IDENTIFIER={i}" for i in self.identifiers], [f"_SYSTEMD_UNIT={u}" for u in self.units]]
        groups += [[m] for m in self.matches]
        out: list[str] = []
        for group in (g for g in groups if g):
            if out:
                out.append("+")
            out += group
        return out

    @property
    def label(self) -> str:
        """What ``log.file.path``-like fields and messages call this journal."""
        if self.directory:
            return f"journal:{self.directory}"
        if self.files:
            return "journal:" + ",".join(self.files)
        return "journal"


@dataclass
class JournalEvents:
    """Things worth counting; the daemon wires them to metrics."""

    on_read: Callable[[str, int, int], None] = lambda source, entries, nbytes: None
    on_gap: Callable[[str, int], None] = lambda source, entries: None
    on_restart: Callable[[str, str], None] = lambda source, reason: None
    on_truncated: Callable[[str], None] = lambda source: None


def parse_cursor(cursor: str) -> dict[str, str]:
    """``s=…;i=…;b=…`` into its parts (journal cursors are documented as opaque, but this form is stable
    since systemd 38; the ids fall back to a hash of the whole cursor when a part is missing)."""
    out: dict[str, str] = {}
    for part in cursor.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out


def entry_position(cursor: str) -> tuple[str, int]:
    """(stream, offset) an entry's event id derives from: the journal's seqnum id and the entry's seqnum,
    unique per entry and the same however often it is read."""
    parts = parse_cursor(cursor)
    try:
        return f"journal:{parts['s']}", int(parts["i"], 16)
    except (KeyError, ValueError):
        digest = blake2b(cursor.encode(), digest_size=6).hexdigest()
        return "journal:cursor", int(digest, 16)


def same_entry(a: str, b: str) -> bool:
    pa, pb = parse_cursor(a), parse_cursor(b)
    if "s" in pa and "i" in pa:
        return (pa.get("s"), pa.get("i")) == (pb.get("s"), pb.get("i"))
    return a == b


@dataclass
class _Reader:
    proc: subprocess.Popen[bytes]
    expect: str | None  # the committed cursor, printed first when it still exists
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    discarding: bool = False  # inside an over-long line, after its head was emitted
    errors: bytearray = field(default_factory=bytearray)
    first: bool = True


class JournalSource:
    """Follows journal entries of one source, as JSON records, from the committed cursor on."""

    def __init__(self, source: str, settings: JournalSettings, events: JournalEvents | None = None,
                 clock: Callable[[], float] = time.time, wake: threading.Event | None = None) -> None:
        self.source = source
        # Set when journalctl has printed something, so the pipeline reads it now rather than at its next poll.
        self.wake = wake
        self._drained = threading.Event()
        self.settings = settings
        self.events = events or JournalEvents()
        self.clock = clock
        self.patterns: list[str] = []
        self.framing = None
        self.bytes_read = 0  # every read hands out whole records
        self.stream = f"journal:{source}"
        self.cursor: str | None = None
        self.committed_seqnum = 0
        self.dirty = False
        self.finished = False
        self._reader: _Reader | None = None
        self._backoff = settings.restart_min_seconds
        self._next_start = 0.0
        self._warned: set[str] = set()

    @property
    def active(self) -> list[str]:
        return [self.settings.label] if self._reader is not None else []

    # ----------------------------------------------------------------- restore
    def restore(self, checkpoints: list[Checkpoint]) -> None:
        for cp in checkpoints:
            if cp.source == self.source and cp.stream == self.stream and cp.cursor:
                self.cursor = cp.cursor
                self.committed_seqnum = cp.offset

    def rewind(self, checkpoints: list[Checkpoint]) -> None:
        """Their batch rolled back: journalctl starts again after the committed cursor."""
        self.close()
        self.restore(checkpoints)

    def discover(self) -> None:
        if self._reader is None and not self.finished and self.clock() >= self._next_start:
            self._start()

    # ----------------------------------------------------------------- reading
    def read(self, budget: int) -> list[RawRecord]:
        out: list[RawRecord] = []
        if self._reader is None:
            self.discover()
        reader = self._reader
        if reader is None:
            return out
        nbytes = 0
        assert reader.proc.stdout is not None
        fd = reader.proc.stdout.fileno()
        ended = False
        while len(out) < budget:
            try:
                data = os.read(fd, self.settings.read_chunk_bytes)
            except BlockingIOError:
                self._drained.set()
                break
            except OSError as exc:
                self._warn("read", f"reading journalctl's output failed: {exc.strerror}")
                ended = True
                break
            if not data:
                ended = True
                break
            nbytes += len(data)
            self._take(reader, data, out)
        self._drain_errors(reader)
        if out or nbytes:
            self.events.on_read(self.source, len(out), nbytes)
        if ended:
            self._ended(reader, out)
        return out

    def _take(self, reader: _Reader, data: bytes, out: list[RawRecord]) -> None:
        buf = reader.buffer
        buf += data
        start = 0
        limit = self.settings.max_line_bytes
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(buf[start:nl])
            start = nl + 1
            if reader.discarding:
                reader.discarding = False
                continue
            if line:
                self._line(reader, line, False, len(line), out)
        del buf[:start]
        if len(buf) > limit and not reader.discarding:
            # An entry longer than the line limit: its head is kept and flagged, the rest skipped up to the
            # next entry (its cursor moves the checkpoint if the head holds it; journalctl orders no field).
            head = bytes(buf[:limit])
            self._line(reader, head, True, len(buf), out)
            reader.discarding = True
            buf.clear()
        elif reader.discarding:
            buf.clear()

    def _line(self, reader: _Reader, line: bytes, truncated: bool, length: int, out: list[RawRecord]) -> None:
        m = _CURSOR.search(line)
        cursor = m.group(1).decode("ascii", "replace") if m else None
        if reader.first:
            reader.first = False
            if reader.expect is not None:
                if cursor is not None and same_entry(cursor, reader.expect):
                    return  # the committed entry itself: already stored
                if not self._exists(reader.expect):
                    out.append(self._gap_record(reader.expect, cursor))
                # else: the entry is there but no longer matches (the identifiers or units changed)
        if cursor is None:
            self._warn("nocursor", "journalctl printed an entry without __CURSOR; it is stored, resuming may repeat it")
            stream, offset = "journal:nocursor", int(blake2b(line, digest_size=6).hexdigest(), 16)
        else:
            stream, offset = entry_position(cursor)
            self.cursor = cursor
            self.committed_seqnum = offset
            self.dirty = True
        if truncated:
            self.events.on_truncated(self.source)
        out.append(RawRecord(self.source, stream, self.settings.label, offset, offset + 1, line, truncated,
                             length if truncated else 0, self.clock()))

    def _gap_record(self, lost: str, resumed: str | None) -> RawRecord:
        """The committed entry no longer exists: entries after it, before ``resumed``, are gone unread."""
        lost_stream, lost_seq = entry_position(lost)
        missing = -1
        if resumed is not None:
            stream, seq = entry_position(resumed)
            if stream == lost_stream and seq > lost_seq:
                missing = seq - lost_seq - 1  # entries of every program, not only those this source follows
        self.events.on_gap(self.source, missing)
        log.warning("source %s: the journal no longer holds the last entry read (vacuumed or deleted); resuming at "
                    "the oldest entry after it%s", self.source,
                    f", {missing} journal entries never read" if missing >= 0 else "; how many were lost is unknown")
        doc = {GAP_FIELD: "cursor_vacuumed", "__CURSOR": lost, "SENTINEL_RESUMED_AT": resumed or "",
               "SENTINEL_MISSING_ENTRIES": missing,
               "__REALTIME_TIMESTAMP": str(int(self.clock() * 1_000_000))}
        return RawRecord(self.source, "journal-gap:" + lost_stream, self.settings.label, lost_seq, lost_seq + 1,
                         orjson.dumps(doc), reference_time=self.clock())

    def _ended(self, reader: _Reader, out: list[RawRecord]) -> None:
        # journalctl ends every entry with a newline: an unterminated tail is an entry cut off by its death.
        # It is not handed on (nor its cursor taken), so the restarted journalctl prints it again, whole.
        reader.buffer.clear()
        rc = reader.proc.wait()
        self._drain_errors(reader, final=True)
        self._close_reader(reader)
        self._reader = None
        text = reader.errors.decode("utf-8", "replace").strip().splitlines()
        if not self.settings.follow:
            self.finished = True
            if rc != 0:
                self.events.on_restart(self.source, "failed")
                log.error("source %s: journalctl failed (exit status %s)%s", self.source, rc,
                          f": {text[-1][:300]}" if text else "")
            return
        self.events.on_restart(self.source, "exited" if rc >= 0 else "killed")
        log.warning("source %s: journalctl ended (exit status %s)%s; restarting in %.1f s", self.source, rc,
                    f": {text[-1][:300]}" if text else "", self._backoff)
        self._next_start = self.clock() + self._backoff
        # A reader that keeps dying right away backs off; one that ran a while restarts quickly again.
        ran = self.clock() - reader.started
        self._backoff = (self.settings.restart_min_seconds if ran > self.settings.restart_max_seconds
                         else min(self._backoff * 2, self.settings.restart_max_seconds))

    def _drain_errors(self, reader: _Reader, final: bool = False) -> None:
        if reader.proc.stderr is None:
            return
        fd = reader.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 4096)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            # journalctl keeps following, silently showing nothing, when it may not read the journal
            # ("insufficient permissions"): what it says is logged (each distinct line once).
            for line in (reader.errors + data).decode("utf-8", "replace").split("\n")[:-1][-5:]:
                if line.strip() and len(self._warned) < 100:
                    self._warn("stderr " + line[:120], f"journalctl: {line[:300]}")
            reader.errors += data
            del reader.errors[:-4096]

    # ---------------------------------------------------------------- starting
    def _start(self) -> None:
        s = self.settings
        expect = self.cursor
        if expect is None and s.since is None and s.start_position == "end" and s.follow:
            expect = self._last_entry()
            if expect is not None:
                self.cursor = expect
                self.committed_seqnum = entry_position(expect)[1]
                self.dirty = True  # committed with the next batch, so a crash before any entry starts here
        args = [s.journalctl, "--output=json", "--all", "--no-pager", "--quiet",
                "--output-fields=" + ",".join(OUTPUT_FIELDS), *s.location_args()]
        if s.follow:
            args.append("--follow")
        if expect is not None:
            args.append(f"--cursor={expect}")
        elif s.since is not None:
            args.append(f"--since={s.since}")
        args += ["--no-tail", *s.match_args()]
        # journalctl must not outlive the daemon (a SIGKILLed daemon cannot stop it): setpriv from
        # util-linux makes the kernel kill it when the thread that started it goes away.
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            args = [setpriv, "--pdeathsig", "KILL", "--", *args]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**os.environ, "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"})
        except OSError as exc:
            self._warn("spawn", f"cannot run {s.journalctl}: {exc.strerror}")
            self.events.on_restart(self.source, "cannot_start")
            self._next_start = self.clock() + self._backoff
            self._backoff = min(self._backoff * 2, s.restart_max_seconds)
            return
        assert proc.stdout is not None and proc.stderr is not None
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stderr.fileno(), False)
        self._reader = _Reader(proc, expect, self.clock())
        if self.wake is not None:
            self._drained.set()
            threading.Thread(target=self._watch, args=(self._reader,), name=f"journal-{self.source}",
                             daemon=True).start()

    def _watch(self, reader: _Reader) -> None:
        """Wake the pipeline when output is waiting; after each wake, wait until the pipeline read it all."""
        assert self.wake is not None and reader.proc.stdout is not None
        stdout = reader.proc.stdout
        while self._reader is reader:
            if not self._drained.wait(1.0):
                continue
            try:
                if stdout.closed:
                    return
                ready, _, _ = select.select([stdout], [], [], 1.0)
            except (OSError, ValueError):
                return
            if ready and self._reader is reader:
                self._drained.clear()
                self.wake.set()

    def _exists(self, cursor: str) -> bool:
        """Whether the journal still holds this entry, whatever the source's matches."""
        s = self.settings
        args = [s.journalctl, "--output=json", "--output-fields=MESSAGE", "--no-pager", "--quiet",
                f"--cursor={cursor}", *s.location_args()]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError:
            return False
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
        finally:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        m = _CURSOR.search(first)
        return m is not None and same_entry(m.group(1).decode("ascii", "replace"), cursor)

    def _last_entry(self) -> str | None:
        """Cursor of the newest matching entry: "end" starts after it (None: the journal has none yet)."""
        s = self.settings
        args = [s.journalctl, "--output=json", "--output-fields=MESSAGE", "--no-pager", "--quiet", "--lines=1",
                *s.location_args(), *s.match_args()]
        try:
            done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn("spawn", f"cannot run {s.journalctl}: {exc}")
            return None
        m = _CURSOR.search(done.stdout)
        return m.group(1).decode("ascii", "replace") if m else None

    # -------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[Checkpoint]:
        if not self.dirty or self.cursor is None:
            return []
        self.dirty = False
        return [Checkpoint(self.stream, self.source, self.settings.label, 0, 0, 0, "", self.committed_seqnum,
                           False, self.clock(), self.cursor)]

    def lag(self) -> list[tuple[str, int, float]]:
        reader = self._reader
        if reader is None:
            return []
        return [(self.settings.label, len(reader.buffer), 0.0)]

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.proc.kill()
            reader.proc.wait()
            self._close_reader(reader)

    @staticmethod
    def _close_reader(reader: _Reader) -> None:
        for stream in (reader.proc.stdout, reader.proc.stderr):
            if stream is not None:
                stream.close()

    def _warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        log.warning("source %s: %s", self.source, message)
