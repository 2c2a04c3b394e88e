"""The shipper worker: drains the spool to Elasticsearch with the bulk API, and ships alerts.

Batches close at ``bulk_max_docs``/``bulk_max_bytes`` or after ``flush_interval_ms``; at most
``concurrency`` requests are in flight. A request that fails as a whole (connection, 429, 5xx) is
retried with exponential backoff until it gets through (the data waits in the spool, which applies
backpressure when full); a document Elasticsearch rejects with 429/5xx is retried ``max_retries``
times; any other per-document failure (mapping conflict...) goes to ``es_dead_letter`` with the
reason. Spool rows are deleted only in the transaction that records their acknowledgement.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from sentinel.conf.models import ElasticsearchSettings
from sentinel.events.alerts import SEVERITY_RANK
from sentinel.events.model import iso, nest
from sentinel.metrics.registry import Metrics
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert
from sentinel.store.database import connect, immediate
from sentinel.store.elasticsearch.bulk import BulkOutcome, SpoolRow, send
from sentinel.store.elasticsearch.indices import IndexManager, is_unavailable
from sentinel.store.elasticsearch.mappings import alerts_alias
from sentinel.store.elasticsearch.spool import SpoolGauge

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What a finished request hands back to the thread that owns the spool connection."""

    rows: list[SpoolRow]
    acked: int = 0
    duplicates: int = 0
    dead: list[tuple[SpoolRow, int, str, str, int]] = field(default_factory=list)
    abandoned: bool = False  # stopping: nothing is deleted, the rows are sent again next start


class Backoff:
    """Exponential backoff 0.1 s, 0.2 s ... capped; reset on success."""

    def __init__(self, cap: float, base: float = 0.1) -> None:
        self.cap, self.base, self.failures = cap, base, 0

    def next(self) -> float:
        delay = float(min(self.cap, self.base * (2.0 ** self.failures)))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class Shipper:
    """Worker (start/stop) that owns its own SQLite connection and a small pool of bulk senders."""

    def __init__(
        self,
        db_path: Path,
        es: Elasticsearch,
        indices: IndexManager,
        settings: ElasticsearchSettings,
        metrics: Metrics,
        gauge: SpoolGauge,
        wake: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        ship_alerts: bool = True,
    ) -> None:
        self.db_path = db_path
        self.es = es
        self.indices = indices
        self.s = settings
        self.metrics = metrics
        self.gauge = gauge
        self.wake = wake or threading.Event()
        self.clock = clock
        self.ship_alerts = ship_alerts
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.conn: sqlite3.Connection | None = None
        self.ready = False
        self._last_housekeeping = float("-inf")
        self._last_alerts = 0.0
        self._last_gauges = 0.0
        self._dispatched_upto = 0
        self._flush_due: float | None = None
        self._up_backoff = Backoff(settings.retry_max_backoff_seconds)

    # -- worker protocol ------------------------------------------------------------------------------

    def start(self) -> None:
        self.stop_event.clear()
        self.thread = threading.Thread(target=self.run, name="es-shipper", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=self.s.request_timeout + 5)
            self.thread = None

    # -- main loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        self.conn = connect(self.db_path)
        try:
            with ThreadPoolExecutor(self.s.concurrency, thread_name_prefix="es-bulk") as pool:
                self._loop(pool)
        except Exception:
            log.exception("elasticsearch shipper failed")
            raise
        finally:
            self.conn.close()
            self.conn = None

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        inflight: set[Future[BatchResult]] = set()
        while not self.stop_event.is_set():
            if not self.ready and not self._setup():
                continue
            now = self.clock()
            if now - self._last_housekeeping >= self.s.housekeeping_seconds:
                self._housekeeping(now)
            if self.ship_alerts and time.monotonic() - self._last_alerts >= 1.0:
                self._ship_alerts()
            while len(inflight) < self.s.concurrency:
                batch = self._next_batch()
                if not batch:
                    break
                inflight.add(pool.submit(self._ship_batch, batch))
            if time.monotonic() - self._last_gauges >= 0.5:
                self._refresh_gauges()  # also while requests hang: the backlog must show during an outage
            if inflight:
                done, inflight = wait(inflight, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    self._commit(fut.result())
            else:
                timeout = 1.0 if self._flush_due is None else max(0.0, self._flush_due - time.monotonic())
                self.wake.wait(timeout)
                self.wake.clear()
        for fut in inflight:  # stopping: let senders notice and give up, commit what was acknowledged
            self._commit(fut.result())

    def _setup(self) -> bool:
        try:
            self.indices.setup()
        except Exception as exc:
            self._down(exc, "index set-up")
            return False
        self.ready = True
        self._up()
        self._dispatched_upto = 0
        return True

    def _up(self) -> None:
        self.metrics.es_up.set(1)
        self._up_backoff.reset()

    def _down(self, exc: Exception, what: str) -> None:
        self.metrics.es_up.set(0)
        delay = self._up_backoff.next()
        log.warning("elasticsearch unavailable (%s: %s); retrying in %.1fs", what, type(exc).__name__, delay)
        self.stop_event.wait(delay)

    # -- spool → bulk -----------------------------------------------------------------------------------

    def _next_batch(self) -> list[SpoolRow]:
        """The next rows after what is in flight, if a batch is full or its flush interval has passed."""
        assert self.conn is not None
        cur = self.conn.execute("SELECT seq, id, idx, doc FROM es_spool WHERE seq > ? ORDER BY seq LIMIT ?",
                                (self._dispatched_upto, self.s.bulk_max_docs))
        rows: list[SpoolRow] = []
        size = 0
        full = False
        for seq, eid, idx, doc in cur:
            if rows and size + len(doc) > self.s.bulk_max_bytes:
                full = True
                break
            rows.append(SpoolRow(seq, eid, idx, bytes(doc)))
            size += len(doc) + 64
        cur.close()
        if not rows:
            self._flush_due = None
            return []
        full = full or len(rows) >= self.s.bulk_max_docs
        if not full:
            mono = time.monotonic()
            if self._flush_due is None:
                self._flush_due = mono + self.s.flush_interval_ms / 1000.0
            if mono < self._flush_due and not self.stop_event.is_set():
                return []
        self._flush_due = None
        self._dispatched_upto = rows[-1].seq
        return rows

    def _ship_batch(self, rows: list[SpoolRow]) -> BatchResult:
        """Runs in a pool thread: send until every row is acknowledged or parked (or we are stopping)."""
        result = BatchResult(rows)
        pending = rows
        attempts: dict[int, int] = {}
        backoff = Backoff(self.s.retry_max_backoff_seconds)
        while pending:
            if self.stop_event.is_set():
                result.abandoned = True
                return result
            started = time.perf_counter()
            try:
                for idx in {r.idx for r in pending}:
                    self.indices.ensure_alias(idx)
                outcome = send(self.es, pending)
            except Exception as exc:
                if not is_unavailable(exc):
                    log.error("bulk request failed (%s: %s); retrying", type(exc).__name__, str(exc)[:300])
                self.metrics.es_up.set(0)
                self.metrics.es_retries.inc()
                delay = backoff.next()
                log.warning("bulk of %d documents failed (%s); retry in %.1fs", len(pending), type(exc).__name__,
                            delay)
                self.stop_event.wait(delay)
                continue
            self.metrics.es_bulk_seconds.observe(time.perf_counter() - started)
            self.metrics.es_up.set(1)
            pending = self._settle(result, outcome, attempts)
            if pending:
                self.metrics.es_retries.inc()
                self.stop_event.wait(backoff.next())
        return result

    def _settle(self, result: BatchResult, outcome: BulkOutcome, attempts: dict[int, int]) -> list[SpoolRow]:
        result.acked += outcome.created
        result.duplicates += outcome.duplicates
        for row, status, etype, reason in outcome.rejected:
            result.dead.append((row, status, etype, reason, attempts.get(row.seq, 0) + 1))
        again: list[SpoolRow] = []
        for row in outcome.retry:
            n = attempts[row.seq] = attempts.get(row.seq, 0) + 1
            if n > self.s.max_retries:
                result.dead.append((row, 429, "retries_exhausted", outcome.retry_reasons.get(row.seq, ""), n))
            else:
                again.append(row)
        return again

    def _commit(self, result: BatchResult) -> None:
        """Delete acknowledged and parked rows, record dead letters: one local transaction."""
        assert self.conn is not None
        m = self.metrics
        if result.abandoned:
            return
        rows = result.rows
        nbytes = sum(len(r.doc) for r in rows)
        now = self.clock()
        with immediate(self.conn):
            if result.dead:
                self.conn.executemany(
                    "INSERT INTO es_dead_letter (id, idx, doc, status, error_type, reason, attempts, created) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [(r.id, r.idx, r.doc, st, etype, reason, n, now) for r, st, etype, reason, n in result.dead],
                )
            # a batch is a contiguous seq range of rows that existed when it was read (AUTOINCREMENT)
            self.conn.execute("DELETE FROM es_spool WHERE seq BETWEEN ? AND ?", (rows[0].seq, rows[-1].seq))
            self.conn.execute("UPDATE es_spool_stats SET rows = rows - ?, bytes = bytes - ? WHERE one = 1",
                              (len(rows), nbytes))
        m.es_docs.labels("created").inc(result.acked)
        m.es_docs.labels("duplicate").inc(result.duplicates)
        if result.dead:
            m.es_docs.labels("dead_letter").inc(len(result.dead))
            m.es_dead_letters.inc(len(result.dead))
            for r, status, etype, _, _ in result.dead[:5]:
                log.error("document %s parked in es_dead_letter: %s %s", r.id, status, etype)
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        assert self.conn is not None
        self._last_gauges = time.monotonic()
        rows, nbytes = self.gauge.refresh(self.conn)
        self.metrics.spool_depth.set(rows)
        self.metrics.spool_bytes.set(nbytes)

    # -- alerts ---------------------------------------------------------------------------------------

    def _ship_alerts(self) -> None:
        """Alerts raised since the last acknowledged one go to the alerts index (cursor on rowid)."""
        assert self.conn is not None
        self._last_alerts = time.monotonic()
        row = self.conn.execute("SELECT value FROM es_state WHERE key = 'alerts_rowid'").fetchone()
        cursor = int(row[0]) if row else 0
        self._ship_alert_changes(cursor)
        found = self.conn.execute(
            f"SELECT rowid, {ALERT_COLUMNS}, {LIFECYCLE_COLUMNS} FROM alerts WHERE rowid > ? ORDER BY rowid LIMIT 500",
            (cursor,)).fetchall()
        if not found:
            return
        alias = alerts_alias(self.s.index_prefix)
        rows = [SpoolRow(r[0], r[1], alias, orjson.dumps(alert_document(r[1:]))) for r in found]
        outcome = self._send_alerts(rows, "create", "alerts")
        if outcome is None or outcome.retry:
            return  # all or nothing for alerts: the cursor only moves past a fully acknowledged set
        now = self.clock()
        with immediate(self.conn):
            if outcome.rejected:
                self.conn.executemany(
                    "INSERT INTO es_dead_letter (id, idx, doc, status, error_type, reason, attempts, created) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [(r.id, r.idx, r.doc, st, etype, reason, 1, now) for r, st, etype, reason in outcome.rejected],
                )
            self.conn.execute("INSERT INTO es_state VALUES ('alerts_rowid', ?) ON CONFLICT(key) DO UPDATE SET "
                              "value = excluded.value", (str(rows[-1].seq),))
        self.metrics.es_docs.labels("alert").inc(outcome.created)
        if outcome.rejected:
            self.metrics.es_dead_letters.inc(len(outcome.rejected))

    def _send_alerts(self, rows: list[SpoolRow], op: str, what: str) -> BulkOutcome | None:
        """One bulk of alert documents; None (Elasticsearch marked down, retried later) if the request failed."""
        try:
            return send(self.es, rows, op=op)
        except Exception as exc:
            self.metrics.es_up.set(0)
            log.warning("shipping %d %s failed (%s); will retry", len(rows), what, type(exc).__name__)
            return None

    def _ship_alert_changes(self, cursor: int) -> None:
        """Alerts acknowledged or resolved after they were shipped: their documents are replaced."""
        assert self.conn is not None
        found = self.conn.execute(
            f"SELECT c.version, a.rowid, {', '.join('a.' + c for c in ALERT_COLUMNS.split(', '))}, "
            f"{', '.join('a.' + c for c in LIFECYCLE_COLUMNS.split(', '))} "
            "FROM es_alert_changes AS c JOIN alerts AS a ON a.id = c.alert_id WHERE a.rowid <= ? LIMIT 500",
            (cursor,)).fetchall()
        if not found:
            return
        alias = alerts_alias(self.s.index_prefix)
        rows = [SpoolRow(r[1], r[2], alias, orjson.dumps(alert_document(r[2:]))) for r in found]
        outcome = self._send_alerts(rows, "index", "alert status changes")
        if outcome is None:
            return
        # Rejected ones (a mapping conflict) are not retried forever: logged below and dropped from the queue.
        done = {r.id for r in rows} - {r.id for r in outcome.retry}
        with immediate(self.conn):
            # Only the version shipped: a change made meanwhile stays queued and is shipped next time.
            self.conn.executemany("DELETE FROM es_alert_changes WHERE alert_id = ? AND version = ?",
                                  [(r[2], r[0]) for r in found if r[2] in done])
        for r, status, etype, _reason in outcome.rejected:
            log.warning("alert %s status change rejected by elasticsearch: %s %s", r.id, status, etype)

    # -- housekeeping ---------------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        self._last_housekeeping = now
        if self.conn is not None:
            with immediate(self.conn):  # changes of alerts that retention has deleted since
                self.conn.execute("DELETE FROM es_alert_changes WHERE alert_id NOT IN (SELECT id FROM alerts)")
        try:
            self.indices.enforce_retention(now)
        except Exception as exc:
            log.warning("elasticsearch retention check failed (%s); next try in %.0fs", type(exc).__name__,
                        self.s.housekeeping_seconds)


LIFECYCLE_COLUMNS = "status, acked_by, acked_at, resolved_by, resolved_at"
_ALERT_WIDTH = len(ALERT_COLUMNS.split(", "))


def alert_document(row: tuple[Any, ...]) -> dict[str, Any]:
    """An alert row (ALERT_COLUMNS then LIFECYCLE_COLUMNS) as an ECS-style document (``event.kind: alert``)."""
    a = row_to_alert(row[:_ALERT_WIDTH])
    status, acked_by, acked_at, resolved_by, resolved_at = row[_ALERT_WIDTH:_ALERT_WIDTH + 5]
    return nest({
        "@timestamp": iso(a.created or a.last_seen),
        "event.kind": "alert",
        "event.severity": SEVERITY_RANK.get(a.severity, 0),
        "event.start": iso(a.first_seen),
        "event.end": iso(a.last_seen),
        "rule.id": a.rule_id,
        "rule.name": a.title,
        "sentinel.alert.id": a.id,
        "sentinel.alert.severity": a.severity,
        "sentinel.alert.group_key": a.group_key,
        "sentinel.alert.count": a.count,
        "sentinel.alert.event_ids": a.event_ids,
        "sentinel.alert.summary": a.summary,
        "sentinel.alert.runbook": a.runbook,
        "sentinel.alert.details": a.details,
        "sentinel.alert.status": status,
        "sentinel.alert.acked_by": acked_by,
        "sentinel.alert.acked_at": iso(acked_at) if acked_at is not None else None,
        "sentinel.alert.resolved_by": resolved_by,
        "sentinel.alert.resolved_at": iso(resolved_at) if resolved_at is not None else None,
        "labels": a.labels,
        "tags": a.tags,
    })
