"""Memory under a key flood (not collected by pytest): ``python tests/bench_memory.py [--rate 2000] [--seconds 90]``.

Runs ``sentinel run`` (the real daemon, the shipped rule pack) on an auth.log that gets ``--rate`` lines a second,
every line a new user name and a new source address, and samples the resident memory of the daemon's whole
process tree (the daemon and any decode workers) once a second. Prints the median and the peak RSS, the rule
state keys held by the busiest rules, and whether every line was stored. The bound it checks: peak < 200 MiB.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
BOUND_MIB = 200.0


def tree_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants (from /proc), in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def line(i: int, stamp: str) -> str:
    ip = f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}"
    verdict = "Failed" if i % 4 else "Accepted"
    return (f"{stamp} bastion sshd[{i % 30000}]: {verdict} password for flood{i:07d} from {ip} "
            f"port {1024 + i % 60000} ssh2\n")


def stored(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def state_keys(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return dict(conn.execute("SELECT rule, count(*) FROM rule_state GROUP BY rule ORDER BY 2 DESC LIMIT 5"))
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=2000, help="lines a second (default 2000)")
    ap.add_argument("--seconds", type=int, default=90, help="how long the flood lasts (default 90)")
    ap.add_argument("--workers", type=int, default=0, help="pipeline.decode_workers for the daemon (default 0)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentinel-mem-") as tmp:
        work = Path(tmp)
        log = work / "auth.log"
        log.touch()
        doc = {"state_dir": str(work / "state"), "collectors_dir": str(SHIPPED / "collectors"),
               "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
               "pipeline": {"start_position": "beginning", "decode_workers": args.workers},
               "metrics": {"enabled": False}, "api": {"enabled": False}, "notify": {"enabled": False},
               "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}
        (work / "sentinel.yaml").write_text(yaml.safe_dump(doc))
        daemon = subprocess.Popen([sys.executable, "-m", "sentinel.cli.main", "run", "--config",
                                   str(work / "sentinel.yaml")], stdout=subprocess.DEVNULL,
                                  stderr=(work / "daemon.err").open("wb"), cwd=ROOT)
        samples: list[float] = []
        written = 0
        try:
            time.sleep(2)
            started = time.monotonic()
            tick = 0.1
            per_tick = max(1, int(args.rate * tick))
            next_sample = started
            with log.open("a") as f:
                while time.monotonic() - started < args.seconds:
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    f.write("".join(line(written + k, stamp) for k in range(per_tick)))
                    f.flush()
                    written += per_tick
                    now = time.monotonic()
                    if now >= next_sample:
                        samples.append(tree_rss_kib(daemon.pid) / 1024)
                        next_sample += 1.0
                    time.sleep(max(0.0, started + (written / per_tick) * tick - time.monotonic()))
            db = work / "state" / "events.db"
            deadline = time.monotonic() + 600
            while stored(db) < written and time.monotonic() < deadline and daemon.poll() is None:
                samples.append(tree_rss_kib(daemon.pid) / 1024)
                time.sleep(1)
            caught_up = time.monotonic() - started
            keys = state_keys(db)
            count = stored(db)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(60)
        peak = max(samples)
        print(f"flood: {written} lines at {args.rate}/s for {args.seconds}s, each a new user and address; "
              f"stored {count} ({'all' if count == written else 'MISSING ' + str(written - count)}) after "
              f"{caught_up:.0f}s")
        print(f"process-tree RSS: median {statistics.median(samples):.0f} MiB, peak {peak:.0f} MiB over "
              f"{len(samples)} samples (bound {BOUND_MIB:.0f} MiB: {'ok' if peak < BOUND_MIB else 'EXCEEDED'})")
        print("rule state keys (top 5): " + ", ".join(f"{k}={v}" for k, v in keys.items()))
        print("(the machine is shared: RSS is what it is, timings are noisy)")
        return 0 if peak < BOUND_MIB and count == written else 1


if __name__ == "__main__":
    sys.exit(main())
