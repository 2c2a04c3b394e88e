"""Benchmark: events/s the spool + shipper deliver to a real node, next to the client's own
``helpers.streaming_bulk`` sending the same documents in the same run; and the spool's disk use.

Usage: ``python tests/bench_elasticsearch.py [--events 100000] [--rounds 3]`` (uses $ELASTICSEARCH_URL
or starts the test node from tests/elasticsearch/node.py). Prints medians and the ratio (target >= 0.8).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
sys.path.insert(0, str(ROOT))

from elasticsearch import Elasticsearch, helpers  # noqa: E402

from sentinel.conf.loader import load_config  # noqa: E402
from sentinel.daemon.collectors import load_collectors  # noqa: E402
from sentinel.daemon.tables import open_database  # noqa: E402
from sentinel.decode.engine import Decoder  # noqa: E402
from sentinel.events.model import Event, nest  # noqa: E402
from sentinel.events.records import RawRecord  # noqa: E402
from sentinel.metrics.registry import Metrics  # noqa: E402
from sentinel.store.elasticsearch.indices import IndexManager  # noqa: E402
from sentinel.store.elasticsearch.mappings import events_alias  # noqa: E402
from sentinel.store.elasticsearch.wiring import build_parts  # noqa: E402


def decoded_events(n: int, round_no: int) -> list[Event]:
    """``n`` sshd lines through the project's linux-auth decoder (unique ids per round)."""
    collectors, _ = load_collectors(SHIPPED / "collectors")
    decoder = Decoder(collectors["linux-auth"].spec, "UTC", "bench01")
    out = []
    offset = 0
    for i in range(n):
        line = (f"Nov 27 08:{(i // 60) % 60:02d}:{i % 60:02d} web{i % 7:02d} sshd[{1000 + i % 30000}]: Failed "
                f"password for user{i % 5000} from 10.{i % 200}.{(i // 200) % 250}.{i % 250 + 1} port "
                f"{1024 + i % 60000} ssh2").encode()
        rec = RawRecord("linux-auth", f"bench-{round_no}", "/var/log/auth.log", offset, offset + len(line) + 1, line,
                        reference_time=time.time())
        ev, _ = decoder.decode(rec, time.time())
        out.append(ev)
        offset += len(line) + 1
    return out


def write_config(workdir: Path, url: str, prefix: str) -> Path:
    path = workdir / f"{prefix}.yaml"
    path.write_text(f"""state_dir: {workdir / prefix}
collectors_dir: {SHIPPED / 'collectors'}
storage:
  backend: elasticsearch
  elasticsearch:
    hosts: ["{url}"]
    index_prefix: {prefix}
    number_of_replicas: 0
    lifecycle: sentinel
    flush_interval_ms: 50
""")
    return path


def run_shipper(url: str, workdir: Path, events: list[Event], prefix: str) -> tuple[float, int]:
    """Spool the events, then time the shipper draining them. Returns (seconds, spool bytes on disk)."""
    cfg = load_config(write_config(workdir, url, prefix))
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(cfg, cfg.state_dir / "events.db")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db.path.stat().st_size
    parts = build_parts(cfg.config.storage.elasticsearch, cfg.origin, db.path, Metrics(), time.time)
    for i in range(0, len(events), 4096):  # batch transactions as the pipeline makes them
        with db.transaction() as tx:
            parts.sink.write(tx, events[i:i + 4096])
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    disk = db.path.stat().st_size - before
    parts.shipper.indices.setup()
    parts.shipper.indices.ensure_alias(events_alias(prefix, "linux-auth"))
    done = threading.Event()
    started = time.perf_counter()
    parts.shipper.start()
    while not done.is_set():
        if db.conn.execute("SELECT rows FROM es_spool_stats").fetchone()[0] == 0:
            done.set()
        else:
            time.sleep(0.01)
    elapsed = time.perf_counter() - started
    parts.shipper.stop()
    parts.shipper.es.close()
    db.close()
    return elapsed, disk


def run_baseline(url: str, events: list[Event], prefix: str, chunk: int) -> float:
    """The client's helpers.streaming_bulk with the same documents, ids and create op."""
    es = Elasticsearch(url, request_timeout=60)
    cfg = load_config(write_config(Path(tempfile.mkdtemp()), url, prefix))
    manager = IndexManager(es, cfg.config.storage.elasticsearch)
    alias = events_alias(prefix, "linux-auth")
    manager.ensure_alias(alias)
    actions = ({"_op_type": "create", "_index": alias, "_id": e.id, "_source": nest(e.fields)} for e in events)
    started = time.perf_counter()
    ok = sum(1 for success, _ in helpers.streaming_bulk(es, actions, chunk_size=chunk, raise_on_error=False) if success)
    elapsed = time.perf_counter() - started
    es.close()
    assert ok == len(events), f"baseline indexed {ok} of {len(events)}"
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    node = None
    url = os.environ.get("ELASTICSEARCH_URL")
    tmp = Path(tempfile.mkdtemp(prefix="sentinel-bench-es-"))
    if not url:
        from tests.elasticsearch.node import start_node

        node = start_node(tmp / "node")
        url = node.url
    ours, base, disk = [], [], []
    try:
        for r in range(args.rounds):
            events = decoded_events(args.events, r)
            # alternate who goes first so neither always gets the warmer JVM
            order = ["ours", "base"] if r % 2 == 0 else ["base", "ours"]
            for who in order:
                if who == "ours":
                    secs, nbytes = run_shipper(url, tmp, events, f"bench-ours-{r}")
                    ours.append(args.events / secs)
                    disk.append(nbytes / args.events * 1_000_000)
                else:
                    base.append(args.events / run_baseline(url, events, f"bench-base-{r}", 2000))
            print(f"round {r + 1}: shipper {ours[-1]:,.0f} ev/s, streaming_bulk {base[-1]:,.0f} ev/s", flush=True)
    finally:
        if node is not None:
            node.stop()
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"events: {args.events:,} per round, {args.rounds} rounds, node {url}")
    print(f"shipper (spool -> bulk, concurrency 2): median {mo:,.0f} events/s")
    print(f"helpers.streaming_bulk baseline:        median {mb:,.0f} events/s")
    print(f"ratio: {mo / mb:.2f} (target >= 0.80)")
    print(f"spool disk use: {statistics.median(disk) / 1024 / 1024:,.0f} MiB per million events "
          f"(SQLite pages, before shipping)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
