"""Backfill: existing files (plain or gzip) through framing, decoding, the store and the rules."""

from __future__ import annotations

import gzip
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from hashlib import blake2b
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from sentinel.collect.framing import FramingSpec
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path, host_name
from sentinel.daemon.decode_pool import DecodedBatch, DecodePool, RecordTuple, default_workers
from sentinel.daemon.gctune import tune_gc
from sentinel.daemon.pipeline import BatchProcessor
from sentinel.decode.engine import Decoder
from sentinel.decode.registry import load_collector_layers
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.store.database import Database
from sentinel.store.sink import EventSink
from sentinel.store.sqlite_events import SqliteEventStore

if TYPE_CHECKING:  # the client library is imported only when Elasticsearch is the backend
    from sentinel.store.elasticsearch.wiring import ElasticsearchParts


@dataclass
class ReplayResult:
    files: int = 0
    records: int = 0
    new: int = 0
    duplicates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    still_spooled: int = 0  # Elasticsearch backend: events not shipped yet when the replay ended


def _open(path: Path) -> tuple[io.BufferedIOBase, io.BufferedReader]:
    """The content reader (gunzipping when the file is gzip) and the raw file, whose position drives progress."""
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    return (gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw), raw


def replay_files(
    cfg: LoadedConfig,
    collector: str,
    paths: list[str],
    progress: bool = True,
    detect: bool = True,
    sink: EventSink | None = None,
    processors: list[BatchProcessor] | None = None,
    batch_size: int = 4096,
    workers: int | None = None,
) -> ReplayResult:
    """Replay files; ids come from the file's content, so replaying the same file twice stores it once.

    ``workers`` decode processes (default: one per spare core) decode while this process stores;
    0 decodes here. Either way every batch commits in file order, in one transaction each.
    """
    collectors, errors = load_collector_layers(cfg.collector_dirs)
    if collector not in collectors:
        errors.append(ConfigError(f"unknown collector {collector!r}; known: {', '.join(sorted(collectors))}",
                                  Location("--collector")))
        raise ConfigErrors(errors)
    spec = collectors[collector].spec
    decoder = Decoder(spec, cfg.config.timezone, host_name(cfg))
    framing = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)
    db = Database(database_path(cfg))
    shipping: ElasticsearchParts | None = None
    if sink is None and cfg.config.storage.backend == "elasticsearch":
        # The same spool and shipper as the daemon's: events reach Elasticsearch in bulk, exactly once by
        # id (a daemon shipping the same spool at the same time only adds 409s, counted as delivered).
        from sentinel.metrics.registry import Metrics
        from sentinel.store.elasticsearch.wiring import build_parts

        shipping = build_parts(cfg, database_path(cfg), Metrics(), time.time)
        sink = shipping.sink
        shipping.shipper.start()
    sink = sink or SqliteEventStore()
    if processors is None:
        processors = []
        if detect:
            from sentinel.daemon.assemble import detection_processors

            processors = detection_processors(cfg, db)
    result = ReplayResult()
    tune_gc()
    commit = partial(_commit, db, sink, processors, result=result,
                     room=partial(_wait_for_room, shipping, progress) if shipping else None)
    try:
        with DecodePool({spec.name: decoder}, default_workers() if workers is None else workers) as pool:
            for name in paths:
                path = Path(name)
                for batch in _replay_one(path, spec.name, framing, cfg.config.pipeline.max_line_bytes, pool,
                                         batch_size, progress):
                    commit(batch)
                result.files += 1
            for batch in pool.drain():
                commit(batch)
        if shipping is not None:
            result.still_spooled = _drain_spool(shipping, SHIP_WAIT_SECONDS)
    finally:
        if shipping is not None:
            shipping.shipper.stop()
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


def _replay_one(path: Path, source: str, framing: FramingSpec, max_line: int, pool: DecodePool, batch_size: int,
                progress: bool) -> Iterator[DecodedBatch]:
    """Frame one file and queue its batches; yields decoded batches as they become ready to commit."""
    reference = path.stat().st_mtime
    size = path.stat().st_size
    fh, raw = _open(path)
    with raw, fh:
        head = fh.read(1024)
        stream, where = "replay-" + blake2b(head, digest_size=10).hexdigest(), str(path)
        framer = framing.framer(0, max_line)
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=not progress, leave=False)
        pending: list[RecordTuple] = []
        data = head
        at = 0
        while True:
            frames = framer.feed(data, at) if data else framer.flush(True)
            at += len(data)
            pending += [(source, stream, where, f.offset, f.end, f.data, f.truncated, f.original_length, reference)
                        for f in frames]
            if len(pending) >= batch_size or (not data and pending):
                yield from pool.submit(pending, time.time())
                pending = []
            if not data:
                break
            data = fh.read(1 << 20)
            bar.n = raw.tell()
            bar.refresh()
        bar.close()


def _commit(db: Database, sink: EventSink, processors: list[BatchProcessor], batch: DecodedBatch,
            result: ReplayResult, room: Callable[[], None] | None = None) -> None:
    if room is not None:
        room()
    now = time.time()
    events = batch.events_read_by(sink, processors)
    with db.transaction() as tx:
        new = batch.write(tx, sink, events)
        for proc in processors:
            proc.process(tx, events, now)
    result.records += len(batch.rows)
    result.new += new
    result.duplicates += len(batch.rows) - new
    for (_source, outcome), n in batch.outcomes.items():
        result.outcomes[outcome] += n
