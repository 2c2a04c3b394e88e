"""Backfill: existing files (plain or gzip) through framing, decoding, the store and the rules."""

from __future__ import annotations

import gzip
import io
import sqlite3
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from sentinel.collect.framing import FramingSpec
from sentinel.collect.identity import FINGERPRINT_BYTES
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path, host_name, source_host
from sentinel.daemon.collectors import load_collector_layers
from sentinel.daemon.decode_pool import DecodedBatch, DecodePool, RecordTuple, default_workers, record_tuple
from sentinel.daemon.gctune import tune_gc
from sentinel.daemon.overlap import BatchProcessor, store_and_process
from sentinel.daemon.pipeline import store_fresh
from sentinel.daemon.replay_commit import Committer
from sentinel.daemon.replay_stream import ReplayStream, identify
from sentinel.daemon.tables import open_database
from sentinel.decode.engine import Decoder
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.store.database import Database
from sentinel.store.ledger import Ledger
from sentinel.store.sink import EventSink
from sentinel.store.sqlite_events import SqliteEventStore

if TYPE_CHECKING:  # the client library is imported only when Elasticsearch is the backend
    from sentinel.store.elasticsearch.wiring import ElasticsearchParts

# Replay's batches at most: its decode workers hold a few batches each in flight besides the one being committed,
# so the daemon's batch (16,384 lines) took replay's process tree to 287 MiB on the storm; 4,096 keeps it ~160.
REPLAY_BATCH_LINES = 4096
REPLAY_WAL_PAGES = 10_000
# Batches a transaction: the rules' state is written once for them (a key a storm touches in every batch is
# packed and written once, not four times), and the store's indexes take four batches' rows between commits.
REPLAY_BATCHES_PER_TRANSACTION = 4


@dataclass
class ReplayResult:
    files: int = 0
    records: int = 0
    new: int = 0
    duplicates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    still_spooled: int = 0  # Elasticsearch backend: events not shipped yet when the replay ended
    unreadable: list[str] = field(default_factory=list)  # "path: why" of the files that could not be read whole


def _open(path: Path) -> tuple[io.BufferedIOBase, io.BufferedReader]:
    """The content reader (gunzipping when the file is gzip) and the raw file, whose position drives progress."""
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    return (gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw), raw


@contextmanager
def _open_content(path: Path) -> Iterator[io.BufferedIOBase]:
    """The file's content from the start, gunzipped when it is gzip."""
    fh, raw = _open(path)
    with raw, fh:
        yield fh


def replay_files(
    cfg: LoadedConfig,
    collector: str,
    paths: list[str],
    progress: bool = True,
    detect: bool = True,
    sink: EventSink | None = None,
    processors: list[BatchProcessor] | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
) -> ReplayResult:
    """Replay files; ids come from the file's content (or the stream the daemon read it as), and only
    records never stored before are stored and reach the rules, so replaying a file twice, or a rotation
    the daemon tailed, stores and judges each line once.

    ``workers`` decode processes (default: one per spare core) decode while this process stores;
    0 decodes here. Either way the batches commit in file order, ``REPLAY_BATCHES_PER_TRANSACTION`` a
    transaction (and each file's last ones before the next file). A batch is ``batch_size`` records (default:
    the daemon's ``pipeline.batch_max_lines``, at most ``REPLAY_BATCH_LINES``), the last of a file fewer.
    """
    collectors, errors = load_collector_layers(cfg.collector_dirs)
    if collector not in collectors:
        errors.append(ConfigError(f"unknown collector {collector!r}; known: {', '.join(sorted(collectors))}",
                                  Location("--collector")))
        raise ConfigErrors(errors)
    spec = collectors[collector].spec
    decoder = Decoder(spec, cfg.config.timezone, source_host(cfg, spec))
    framing = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)
    shipping: ElasticsearchParts | None = None
    if sink is None and cfg.config.storage.backend == "elasticsearch":
        # The same spool and shipper as the daemon's: events reach Elasticsearch in bulk, exactly once by
        # id (a daemon shipping the same spool at the same time only adds 409s, counted as delivered).
        from sentinel.metrics.registry import Metrics
        from sentinel.store.elasticsearch.wiring import build_parts

        shipping = build_parts(cfg.config.storage.elasticsearch, cfg.origin, database_path(cfg), Metrics(), time.time)
        sink = shipping.sink
    sink = sink or SqliteEventStore()
    db = open_database(cfg)
    # A bulk load: the WAL is copied back into the database every 40 MiB rather than 4, once for pages that
    # several batches rewrote (the random-keyed indexes' leaves), not once per batch. The daemon's connection
    # keeps SQLite's default, which bounds the WAL on a small or nearly full disk.
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {REPLAY_WAL_PAGES}")
    if shipping is not None:
        shipping.shipper.start()
    if processors is None:
        processors = []
        if detect:
            from sentinel.daemon.assemble import detection_processors

            processors = detection_processors(cfg, db)
    result = ReplayResult()
    size = batch_size or min(cfg.config.pipeline.batch_max_lines, REPLAY_BATCH_LINES)
    tune_gc()
    # What each batch handed to the decode pool covers, in submission order (batches come back in it).
    queued: deque[tuple[list[RecordTuple], ReplayStream]] = deque()
    # Stores a batch while the rules judge it (daemon.overlap).
    writer = ThreadPoolExecutor(1, thread_name_prefix="sentinel-store")
    # Backpressure waits for the shipper to empty the spool: before a transaction, never inside one.
    room = partial(_wait_for_room, shipping, progress) if shipping else None
    committer = Committer(db, partial(_commit_batch, sink, processors, Ledger(), queued, writer, result),
                          processors, REPLAY_BATCHES_PER_TRANSACTION, before_transaction=room)
    try:
        with writer, committer, DecodePool({spec.name: decoder},
                                           default_workers() if workers is None else workers) as pool:
            for name in paths:
                # The file's stream is told from what is committed, on the connection the batches commit on.
                committer.settle()
                batches = _replay_one(db, Path(name), spec.name, framing, cfg.config.pipeline.max_line_bytes,
                                      pool, queued, size, progress)
                while True:
                    try:
                        batch = next(batches, None)
                    except (OSError, EOFError, zlib.error) as exc:
                        # A rotation deleted since the command line was read, a cut-off gzip, a read error: what
                        # was read of it is committed (in order, by the batches below), the other files go on.
                        result.unreadable.append(f"{name}: {getattr(exc, 'strerror', None) or exc}")
                        break
                    if batch is None:
                        result.files += 1
                        break
                    committer.submit(batch)
                    del batch  # being committed: not kept alive here while the next one is framed and decoded
            for batch in pool.drain():
                committer.submit(batch)
                del batch
            committer.settle()
        if shipping is not None:
            result.still_spooled = _drain_spool(shipping, SHIP_WAIT_SECONDS)
    finally:
        if shipping is not None:
            shipping.shipper.stop()
        db.close()
    return result


def replay_journal(
    cfg: LoadedConfig,
    collector: str,
    since: str | None,
    directory: str | None = None,
    progress: bool = True,
    detect: bool = True,
    batch_size: int = 4096,
) -> ReplayResult:
    """Backfill from the systemd journal: the entries the collector follows there (from ``since``), read to
    the journal's end. Ids are the daemon's own (journal seqnum id + seqnum), so what the daemon already
    stored is counted as present, never stored twice; checkpoints are left alone."""
    from sentinel.collect.journal import JournalSource
    from sentinel.daemon.build import journal_settings_for

    collectors, errors = load_collector_layers(cfg.collector_dirs)
    if collector not in collectors:
        errors.append(ConfigError(f"unknown collector {collector!r}; known: {', '.join(sorted(collectors))}",
                                  Location("--collector")))
        raise ConfigErrors(errors)
    if cfg.config.storage.backend == "elasticsearch":
        raise ConfigErrors([ConfigError("replay --journal stores into the embedded store only; with Elasticsearch, "
                                        "let the daemon's journal source read it (type: journal, start_position: "
                                        "beginning)", Location("--journal"))])
    loaded = collectors[collector]
    settings = journal_settings_for(cfg, loaded, directory)
    if not settings.match_args():
        raise ConfigErrors([ConfigError(f"collector {collector!r} has no journal part: nothing to follow in the "
                                        "journal", Location("--collector"))])
    settings = replace(settings, follow=False, since=since, start_position="beginning",
                       max_line_bytes=cfg.config.pipeline.max_line_bytes)
    source = JournalSource(collector, settings)
    decoder = Decoder(loaded.spec, cfg.config.timezone, host_name(cfg), source_type="journal")
    db = open_database(cfg)
    processors: list[BatchProcessor] = []
    if detect:
        from sentinel.daemon.assemble import detection_processors

        processors = detection_processors(cfg, db)
    sink = SqliteEventStore()
    result = ReplayResult(files=1)
    bar = tqdm(unit=" entries", desc=settings.label, disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="sentinel-store") as writer, DecodePool({collector: decoder},
                                                                                             0) as pool:
            pending: list[RecordTuple] = []
            while not source.finished:
                source.discover()
                got = source.read(batch_size - len(pending))
                pending += [record_tuple(r) for r in got]
                bar.update(len(got))
                if len(pending) >= batch_size or (source.finished and pending):
                    for batch in pool.submit(pending, time.time()):
                        _commit_own_ids(db, sink, processors, writer, batch, result)
                    pending = []
                elif not got:
                    time.sleep(0.01)
            for batch in pool.drain():
                _commit_own_ids(db, sink, processors, writer, batch, result)
    finally:
        bar.close()
        source.close()
        db.close()
    return result


SHIP_WAIT_SECONDS = 120.0  # after the last batch, how long replay waits for the spool to reach Elasticsearch


def _wait_for_room(shipping: ElasticsearchParts, progress: bool) -> None:
    """Backpressure, as in the daemon: while the spool is over its bound, wait for the shipper to drain it."""
    told = False
    while not shipping.gauge.accepting():
        if not told and progress:
            print("spool full: waiting for Elasticsearch to take the backlog (Ctrl-C is safe: replay again "
                  "to finish, nothing is stored twice)", file=sys.stderr)
            told = True
        time.sleep(0.2)


def _drain_spool(shipping: ElasticsearchParts, timeout: float) -> int:
    """Wait until the shipper has sent everything spooled (or ``timeout``); returns how many events are left."""
    deadline = time.monotonic() + timeout
    shipping.shipper.wake.set()
    while shipping.gauge.rows and time.monotonic() < deadline:
        time.sleep(0.2)
    return shipping.gauge.rows


# Each read is framed at once: a smaller chunk means fewer records framed ahead of the batch being decoded.
READ_BYTES = 256 << 10


def _replay_one(db: Database, path: Path, source: str, framing: FramingSpec, max_line: int, pool: DecodePool,
                queued: deque[tuple[list[RecordTuple], ReplayStream]], batch_size: int,
                progress: bool) -> Iterator[DecodedBatch]:
    """Frame one file and queue its batches; yields decoded batches as they become ready to commit."""
    reference = path.stat().st_mtime
    size = path.stat().st_size
    fh, raw = _open(path)
    with raw, fh:
        head = fh.read(FINGERPRINT_BYTES)
        where = str(path)
        identity = identify(db.conn, source, head, partial(_open_content, path), where)
        stream = identity.id
        framer = framing.framer(0, max_line)
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=not progress, leave=False)
        pending: list[RecordTuple] = []
        data = head
        at = 0

        def submit(records: list[RecordTuple]) -> Iterator[DecodedBatch]:
            queued.append((records, identity))
            return pool.submit(records, time.time())

        while True:
            pending += [(source, stream, where, f.offset, f.end, f.data, f.truncated, f.original_length, reference)
                        for f in (framer.feed(data, at) if data else framer.flush(True))]
            at += len(data)
            # Exactly batch_size records a batch, as the daemon commits them: a chunk of short lines frames
            # thousands of records, and a batch of all of them would hold that many rows and events at once.
            while len(pending) >= batch_size:
                yield from submit(pending[:batch_size])
                del pending[:batch_size]
            if not data:
                if pending:
                    yield from submit(pending)
                break
            try:
                data = fh.read(READ_BYTES)
            except (OSError, EOFError, zlib.error):
                # The whole lines framed so far are committed before the file is named as cut off.
                if pending:
                    yield from submit(pending)
                raise
            bar.n = raw.tell()
            bar.refresh()
        bar.close()


def _commit_own_ids(db: Database, sink: EventSink, processors: list[BatchProcessor], writer: Executor,
                    batch: DecodedBatch, result: ReplayResult) -> None:
    """A batch whose ids are the source's own (the journal's seqnums): the store alone tells which are new,
    and only those reach the rules."""
    now = time.time()
    events = batch.events_read_by(sink, processors)
    fresh = [True] * len(batch.rows)
    with db.transaction() as tx:
        stored = store_and_process(tx, partial(store_fresh, tx, sink, events, batch, fresh), events, fresh,
                                   processors, now, writer)
    new = sum(stored)
    result.records += len(batch.rows)
    result.new += new
    result.duplicates += len(batch.rows) - new
    for (_source, outcome), n in batch.outcomes.items():
        result.outcomes[outcome] += n


def _commit_batch(sink: EventSink, processors: list[BatchProcessor], ledger: Ledger,
                  queued: deque[tuple[list[RecordTuple], ReplayStream]], writer: Executor, result: ReplayResult,
                  tx: sqlite3.Connection, batch: DecodedBatch, now: float) -> None:
    """Store one batch in the open transaction: only records never stored before are stored and reach the
    rules, as in the daemon (a daemon committing the same lines meanwhile waits for it, or it for the daemon)."""
    records, identity = queued.popleft()
    events = batch.events_read_by(sink, processors)
    fresh = ledger.fresh(tx, records, {(r[0], r[1]): identity.head for r in records[:1]}, identity.rejected)
    stored = store_and_process(tx, partial(store_fresh, tx, sink, events, batch, fresh), events, fresh, processors,
                               now, writer)
    new = sum(stored)
    result.records += len(batch.rows)
    result.new += new
    result.duplicates += len(batch.rows) - new
    for (_source, outcome), n in batch.outcomes.items():
        result.outcomes[outcome] += n
