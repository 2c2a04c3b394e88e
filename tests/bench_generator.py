"""Generator speed and output size: ``python tests/bench_generator.py [--days 14] [--users 200] [--runs 3]``."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sentinel.demo.generator import generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    times = []
    truth = None
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            truth = generate(Path(tmp), days=args.days, users=args.users, start=datetime(2026, 11, 2, tzinfo=UTC))
            times.append(time.perf_counter() - began)
    assert truth is not None
    lines = sum(f.lines for f in truth.files.values())
    size = sum(f.bytes for f in truth.files.values())
    print(f"{args.days} days x {args.users} users: median {statistics.median(times):.2f} s over {args.runs} runs "
          f"(min {min(times):.2f}), {lines:,} lines, {size / 1e6:.1f} MB, {lines / statistics.median(times):,.0f} "
          "lines/s")
    for name, stats in truth.files.items():
        print(f"  {name:<22} {stats.lines:>9,} lines {stats.bytes / 1e6:>7.1f} MB")


if __name__ == "__main__":
    main()
