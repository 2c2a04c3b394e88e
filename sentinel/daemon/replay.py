"""Backfill: existing files (plain or gzip) through framing, decoding, the store and the rules."""

from __future__ import annotations

import gzip
import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from hashlib import blake2b
from pathlib import Path

from tqdm import tqdm

from sentinel.collect.framing import FramingSpec
from sentinel.collect.records import RawRecord
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path, host_name
from sentinel.daemon.pipeline import BatchProcessor, decode_safely, tune_gc
from sentinel.decode.engine import Decoder
from sentinel.decode.registry import load_collectors
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.events.model import Event
from sentinel.store.database import Database
from sentinel.store.sink import EventSink
from sentinel.store.sqlite_events import SqliteEventStore


@dataclass
class ReplayResult:
    files: int = 0
    records: int = 0
    new: int = 0
    duplicates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


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
) -> ReplayResult:
    """Replay files; ids come from the file's content, so replaying the same file twice stores it once."""
    collectors, errors = load_collectors(cfg.collectors_dir)
    if collector not in collectors:
        errors.append(ConfigError(f"unknown collector {collector!r}; known: {', '.join(sorted(collectors))}",
                                  Location("--collector")))
        raise ConfigErrors(errors)
    spec = collectors[collector].spec
    decoder = Decoder(spec, cfg.config.timezone, host_name(cfg))
    framing = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)
    db = Database(database_path(cfg))
    sink = sink or SqliteEventStore()
    if processors is None:
        processors = []
        if detect:
            from sentinel.daemon.assemble import detection_processors

            processors = detection_processors(cfg, db)
    result = ReplayResult()
    tune_gc()
    commit = partial(_commit, db, sink, processors, result=result)
    try:
        for name in paths:
            path = Path(name)
            _replay_one(path, spec.name, decoder, framing, cfg.config.pipeline.max_line_bytes, commit,
                        batch_size, progress, result)
            result.files += 1
    finally:
        db.close()
    return result


def _replay_one(path: Path, source: str, decoder: Decoder, framing: FramingSpec, max_line: int,
                commit: Callable[[list[Event]], None], batch_size: int, progress: bool,
                result: ReplayResult) -> None:
    reference = path.stat().st_mtime
    size = path.stat().st_size
    fh, raw = _open(path)
    with raw, fh:
        head = fh.read(1024)
        stream = "replay-" + blake2b(head, digest_size=10).hexdigest()
        framer = framing.framer(0, max_line)
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=not progress, leave=False)
        pending: list[Event] = []
        data = head
        at = 0
        while True:
            frames = framer.feed(data, at) if data else framer.flush(True)
            at += len(data)
            now = time.time()
            for f in frames:
                rec = RawRecord(source, stream, str(path), f.offset, f.end, f.data, f.truncated, f.original_length,
                                reference)
                ev, outcome = decode_safely(decoder, rec, now)
                result.outcomes[outcome] += 1
                pending.append(ev)
            if len(pending) >= batch_size or (not data and pending):
                commit(pending)
                pending = []
            if not data:
                break
            data = fh.read(1 << 20)
            bar.n = raw.tell()
            bar.refresh()
        bar.close()


def _commit(db: Database, sink: EventSink, processors: list[BatchProcessor], events: list[Event],
            result: ReplayResult) -> None:
    now = time.time()
    with db.transaction() as tx:
        new = sink.write(tx, events)
        for proc in processors:
            proc.process(tx, events, now)
    result.records += len(events)
    result.new += new
    result.duplicates += len(events) - new

