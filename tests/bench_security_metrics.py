"""Security-metrics benchmark (not collected by pytest): ``python tests/bench_security_metrics.py [--days 3]``.

Prints the daemon's catch-up rate (events stored per second, full rule pack, the demo's generated logs from
every source) with the metrics endpoint on, which adds the sign-in/MFA/PHI counters over committed events
and the alert-queue gauge worker, against the same run with metrics off, and their ratio (target >= 0.95).
Runs alternate on and off so a loaded machine slows both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
sys.path.insert(0, str(ROOT))

from sentinel.conf.loader import load_config  # noqa: E402
from sentinel.daemon.assemble import assemble  # noqa: E402
from sentinel.daemon.build import database_path  # noqa: E402
from sentinel.demo.generator import generate  # noqa: E402
from sentinel.demo.runner import COLLECTOR_OF, caught_up  # noqa: E402
from sentinel.store.database import connect  # noqa: E402
from tests.ports import free_port  # noqa: E402


def catch_up(logs: Path, work: Path, metrics: bool) -> float:
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    cfg_path = work / "sentinel.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "state_dir": str(state), "collectors_dir": str(SHIPPED / "collectors"), "rules_dir": str(SHIPPED / "rules"),
        "alerts_dir": str(SHIPPED / "alerts"), "api": {"enabled": False}, "notify": {"enabled": False},
        "metrics": {"enabled": metrics, "listen": f"127.0.0.1:{free_port()}"}, "logging": {"level": "WARNING"},
        "pipeline": {"start_position": "beginning", "poll_interval_ms": 50},
        "sources": [{"collector": collector, "paths": [str(logs / name)]} for name, collector in COLLECTOR_OF.items()
                    if (logs / name).exists()]}))
    cfg = load_config(cfg_path)
    daemon = assemble(cfg)
    started = time.perf_counter()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    db = database_path(cfg)
    while not caught_up(db, logs):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    daemon.request_stop()
    thread.join(60)
    conn = connect(db, readonly=True)
    events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    return events / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-security-"))
    logs = work / "logs"
    truth = generate(logs, days=args.days, users=200, seed=7, start=datetime(2026, 2, 2, tzinfo=UTC))
    print(f"input: {sum(f.lines for f in truth.files.values())} lines from {len(truth.files)} files, "
          f"{args.days} days")
    on: list[float] = []
    off: list[float] = []
    for _ in range(args.runs):
        off.append(catch_up(logs, work, metrics=False))
        on.append(catch_up(logs, work, metrics=True))
    print(f"catch-up, metrics off: median {statistics.median(off):.0f} events/s (runs {[round(r) for r in off]})")
    print(f"catch-up, metrics on:  median {statistics.median(on):.0f} events/s (runs {[round(r) for r in on]})")
    print(f"ratio on/off: {statistics.median(on) / statistics.median(off):.2f} (target >= 0.95)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
