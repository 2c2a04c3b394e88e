"""What each index of the events table costs the store, on the brute-force storm.

    python tests/bench_store_indexes.py [--lines 200000] [--runs 3] [--batch 4096]

The storm (tests/storm.py) is decoded once into the rows the store writes; then, round by round, the rows are
stored into a fresh database through the embedded store's own insert path (the daemon's schema and pragmas,
batch transactions of ``--batch`` rows) with every index, with each secondary index dropped in turn, and with
none of them. It prints CPU microseconds per row (medians) and what leaving each index out saves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sentinel.store.database import Database  # noqa: E402
from sentinel.store.sqlite_events import SqliteEventStore  # noqa: E402
from tests.storm import make_storm_log  # noqa: E402
from tests.storm_bench import _config, linux_auth_decoding  # noqa: E402

SECONDARY = ("events_ts", "events_user_ts", "events_ip_ts", "events_host_ts", "events_action_ts")


def decoded_rows(log: Path, work: Path) -> tuple[list[Any], dict[int, Any]]:
    """The storm's rows and shapes as the linux-auth collector decodes them."""
    from sentinel.conf.loader import load_config
    from sentinel.daemon.decode_pool import decode_records

    cfg = load_config(_config(work, "rows", log))
    decoder, framing = linux_auth_decoding(cfg)
    framer = framing.framer(0, cfg.config.pipeline.max_line_bytes)
    data = log.read_bytes()
    frames = framer.feed(data, 0) + framer.flush(True)
    records = [("linux-auth", "storm", str(log), f.offset, f.end, f.data, f.truncated, f.original_length, 0.0)
               for f in frames]
    batch = decode_records({"linux-auth": decoder}, records, time.time())
    return batch.rows, batch.shapes


def store_cpu(rows: list[Any], shapes: dict[int, Any], work: Path, dropped: tuple[str, ...], batch: int) -> float:
    """CPU seconds per row to store ``rows`` with the indexes in ``dropped`` removed from the schema."""
    path = work / "indexes.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(path)
    for name in dropped:
        db.conn.execute(f"DROP INDEX {name}")
    sink = SqliteEventStore()
    started = time.process_time()
    for at in range(0, len(rows), batch):
        with db.transaction() as tx:
            sink.insert_rows(tx, rows[at:at + batch], shapes)
    spent = time.process_time() - started
    db.close()
    return spent / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4096, help="rows per transaction (replay: 4096, run: 16384)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "storm.log"
        make_storm_log(log, args.lines)
        rows, shapes = decoded_rows(log, work)
        cases: dict[str, tuple[str, ...]] = {"every index": ()}
        cases.update({f"without {name}": (name,) for name in SECONDARY})
        cases["no secondary index"] = SECONDARY
        runs: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, dropped in cases.items():
                runs[name].append(store_cpu(rows, shapes, work, dropped, args.batch) * 1e6)
    every = statistics.median(runs["every index"])
    print(f"storm of {args.lines} lines, {args.batch}-row transactions: store CPU µs per row, median of {args.runs}")
    print("\n| schema | µs per row | saved |")
    print("| --- | --- | --- |")
    for name, values in runs.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.1f} | {every - value:+.1f} |" if name != "every index" else
              f"| {name} | {value:.1f} | |")


if __name__ == "__main__":
    main()
