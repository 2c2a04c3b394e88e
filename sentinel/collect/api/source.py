"""A ``type: api`` source: polls a provider's audit-log API and hands its events on like lines of a file.

One thread per source fetches pages (each of the provider's streams in turn: Graph's sign-ins and
directory audits, Workspace's applications, the Management Activity API's content types) into a bounded
queue; the pipeline reads from it. Every queued event carries the cursor of the page it came from, and the
end of a page carries the cursor of the next one, so the checkpoint taken after a read names exactly a
page whose events up to there are in the batch: a restart fetches that page again. Its events already
stored are recognised by their id, which is the provider's own event id (a record's stream is
``api:<source>:<stream>/<provider id>``), so nothing is stored or judged twice and nothing is skipped.

A failing provider (throttling, 503s, a network outage) is retried with exponential backoff, or after the
wait it asks for (Retry-After, X-Rate-Limit-Reset); meanwhile the backlog is the time since the last
successful page, and once the provider answers again pages are fetched back to back until it is drained.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sentinel.collect.api.http import Http, Retry
from sentinel.credentials import mask
from sentinel.events.records import Checkpoint, RawRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One provider event: its id (Okta uuid, Graph id, ...), the JSON the decoder reads, its time."""

    id: str
    data: bytes
    time: float | None = None


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next: str  # the cursor to fetch after this page
    more: bool  # True: fetch ``next`` right away (a backfill); False: it is the live end, wait a poll interval
    late: bool = False  # a page of a late pass (collect/api/window.py): asked again for events published late


class Provider(Protocol):
    @property
    def streams(self) -> tuple[str, ...]:
        """What this provider polls, each with its own cursor (one stream for Okta)."""
        ...

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        """The page ``cursor`` names (the empty cursor: where a first start begins); raises Retry."""
        ...


@dataclass(frozen=True)
class PollSettings:
    poll_interval_seconds: float = 60.0
    backoff_min_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    queue_max: int = 10_000  # events fetched but not yet read; the poller waits when it is full


@dataclass
class PollEvents:
    """What the daemon counts (metrics); every label value comes from configuration."""

    on_page: Callable[[str, str, int], None] = lambda source, stream, events: None
    on_late_page: Callable[[str, str, int], None] = lambda source, stream, events: None
    on_error: Callable[[str, str, str], None] = lambda source, stream, kind: None
    on_success: Callable[[str, str, float], None] = lambda source, stream, when: None
    on_backlog: Callable[[str, str, float], None] = lambda source, stream, seconds: None
    on_lag: Callable[[str, str, float], None] = lambda source, stream, seconds: None
    on_token: Callable[[str], None] = lambda source: None


@dataclass
class _Stream:
    name: str
    checkpoint_stream: str
    fetch_cursor: str = ""  # what the poller asks for next
    handed_cursor: str = ""  # what the records handed out so far reach
    dirty: bool = False
    due: float = 0.0  # monotonic time of the next fetch
    failures: int = 0
    last_success: float = 0.0  # wall clock
    failing_since: float = 0.0  # wall clock of the first failure of the current run of failures
    newest: float | None = None


class ApiSource:
    """The Source the pipeline drives for one ``type: api`` collector."""

    def __init__(self, source: str, provider: Provider, http: Http, settings: PollSettings,
                 events: PollEvents | None = None, clock: Callable[[], float] = time.time,
                 wake: threading.Event | None = None, label: str = "api") -> None:
        self.source = source
        self.provider = provider
        self.http = http
        self.settings = settings
        self.events = events or PollEvents()
        self.clock = clock
        self.wake = wake
        self.label = label  # what log.file.path-like places call it: the provider and its base URL
        self.patterns: list[str] = []
        self.framing = None
        self.bytes_read = 0  # every read hands out whole records
        self.streams = {name: _Stream(name, f"api:{source}:{name}") for name in provider.streams}
        self._queue: deque[tuple[_Stream, RawRecord | None, str]] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0  # a rewind makes pages fetched before it stale
        self._rng = random.Random()
        http.on_token = lambda: self.events.on_token(source)

    @property
    def active(self) -> list[str]:
        return [self.label] if self._thread is not None else []

    # ------------------------------------------------------------------ the Source protocol
    def restore(self, checkpoints: list[Checkpoint]) -> None:
        by_stream = {cp.stream: cp for cp in checkpoints if cp.source == self.source}
        for st in self.streams.values():
            cp = by_stream.get(st.checkpoint_stream)
            st.fetch_cursor = st.handed_cursor = cp.cursor if cp is not None else ""
            st.dirty = False
            st.due = 0.0

    def rewind(self, checkpoints: list[Checkpoint]) -> None:
        """Their batch rolled back: fetch again from the committed cursors."""
        self._halt()
        with self._lock:
            self._queue.clear()
            self._generation += 1
        self.restore(checkpoints)

    def discover(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"api-{self.source}", daemon=True)
            self._thread.start()

    def read(self, budget: int) -> list[RawRecord]:
        out: list[RawRecord] = []
        with self._lock:
            while self._queue and len(out) < budget:
                st, rec, cursor = self._queue.popleft()
                if rec is not None:
                    out.append(rec)
                if cursor != st.handed_cursor:
                    st.handed_cursor, st.dirty = cursor, True
            self._room.notify_all()
        return out

    def checkpoints(self) -> list[Checkpoint]:
        out = []
        now = self.clock()
        for st in self.streams.values():
            if st.dirty:
                st.dirty = False
                out.append(Checkpoint(st.checkpoint_stream, self.source, self.label, 0, 0, 0, "", 0, False, now,
                                      st.handed_cursor))
        return out

    def lag(self) -> list[tuple[str, int, float]]:
        """(stream, events queued, seconds since the last good page while the provider fails)."""
        now = self.clock()
        with self._lock:
            queued = {name: 0 for name in self.streams}
            for st, rec, _ in self._queue:
                if rec is not None:
                    queued[st.name] += 1
        return [(name, queued[name], now - st.failing_since if st.failures else 0.0)
                for name, st in self.streams.items()]

    def close(self) -> None:
        self._halt()
        self.http.close()

    # ------------------------------------------------------------------ the poller
    def _halt(self) -> None:
        self._stop.set()
        with self._lock:
            self._room.notify_all()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            ready = [st for st in self.streams.values() if st.due <= now]
            if not ready:
                wait = min(st.due for st in self.streams.values()) - now
                self._stop.wait(max(0.0, min(wait, 1.0)))
                continue
            for st in ready:
                if self._stop.is_set():
                    return
                self._poll(st)

    def _poll(self, st: _Stream) -> None:
        with self._lock:
            generation = self._generation
            cursor = st.fetch_cursor
        try:
            page = self.provider.fetch(self.http, st.name, cursor, self.clock())
        except Retry as exc:
            self._failed(st, exc)
            return
        except Exception as exc:  # a provider's payload we did not foresee must not end polling for good
            log.exception("api source %s/%s: unexpected error while fetching a page", self.source, st.name)
            self._failed(st, Retry("bad_payload", mask(f"{type(exc).__name__}: {exc}")))
            return
        now = self.clock()
        if st.failures >= 3:
            log.warning("api source %s/%s: the provider answers again after %d failed attempts (%.0f s); "
                        "draining the backlog", self.source, st.name, st.failures, now - st.failing_since)
        st.failures = 0
        st.last_success = now
        self.events.on_success(self.source, st.name, now)
        self.events.on_backlog(self.source, st.name, 0.0)
        self.events.on_page(self.source, st.name, len(page.items))
        if page.late:
            self.events.on_late_page(self.source, st.name, len(page.items))
        times = [i.time for i in page.items if i.time is not None]
        if times:
            st.newest = max(times) if st.newest is None else max(st.newest, max(times))
        if st.newest is not None:
            self.events.on_lag(self.source, st.name, max(0.0, now - st.newest))
        if not self._enqueue(st, cursor, page, generation):
            return
        st.fetch_cursor = page.next
        st.due = time.monotonic() + (0.0 if page.more else self.settings.poll_interval_seconds)

    def _enqueue(self, st: _Stream, cursor: str, page: Page, generation: int) -> bool:
        """Queue the page's events (waiting for room); False when a rewind or stop made the page stale."""
        base = st.checkpoint_stream
        records = [RawRecord(self.source, f"{base}/{item.id}", self.label, 0, 1, item.data, False, 0,
                             item.time or 0.0) for item in page.items]
        with self._lock:
            for rec in records:
                while len(self._queue) >= self.settings.queue_max:
                    if self._stop.is_set() or generation != self._generation:
                        return False
                    self._room.wait(0.5)
                if self._stop.is_set() or generation != self._generation:
                    return False
                self._queue.append((st, rec, cursor))
            if generation != self._generation:
                return False
            self._queue.append((st, None, page.next))
        if self.wake is not None:
            self.wake.set()
        return True

    def _failed(self, st: _Stream, exc: Retry) -> None:
        now = self.clock()
        if not st.failures:
            st.failing_since = now
        st.failures += 1
        self.events.on_error(self.source, st.name, exc.kind)
        self.events.on_backlog(self.source, st.name, now - st.failing_since)
        s = self.settings
        backoff = min(s.backoff_max_seconds, s.backoff_min_seconds * 2 ** min(st.failures - 1, 30))
        backoff *= self._rng.uniform(0.8, 1.2)
        delay = max(backoff, exc.wait) if exc.wait is not None else backoff
        if exc.kind == "throttled" and exc.wait is not None:
            delay = max(0.05, exc.wait)  # the provider said when: asking earlier only spends more of the limit
        log_at = logging.WARNING if st.failures in (1, 10, 100) or st.failures % 1000 == 0 else logging.DEBUG
        log.log(log_at, "api source %s/%s: %s (attempt %d; retrying in %.1f s)", self.source, st.name,
                mask(str(exc)), st.failures, delay)
        st.due = time.monotonic() + delay
