"""Benchmark: how long until a notification arrives at a local webhook.

Two measurements:

- outbox → webhook: the real RoutingService and NotifyService alone (routing and delivery threads, apprise
  json:// to a local
  ThreadingHTTPServer) with group_wait 0s, one group per alert, alerts committed at a steady rate;
- ``--end-to-end``: line appended → webhook, through a real ``sentinel run`` tailing a file with default
  settings (notify poll 200 ms) and a rule that alerts on every failed password, group_wait 0s.

Both print p50/p99 latency.

    python tests/bench_notify.py [--alerts 400] [--rate 40] [--poll-ms 200 50]
    python tests/bench_notify.py --end-to-end [--alerts 300] [--rate 10]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from sentinel.conf.models import NotifySettings  # noqa: E402
from sentinel.notify.redact import Redactor  # noqa: E402
from sentinel.notify.render import Renderer  # noqa: E402
from sentinel.notify.templates import load_templates  # noqa: E402
from sentinel.notify.worker import NotifyService  # noqa: E402
from sentinel.route.loader import load_routing  # noqa: E402
from sentinel.route.service import RoutingService  # noqa: E402
from sentinel.store.alerts import write_alerts  # noqa: E402
from sentinel.store.database import Database  # noqa: E402
from tests.fixtures.receiver import Receiver, make_alert, write_alerts_dir  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(alerts: int, rate: float, poll_ms: int) -> dict[str, float]:
    receiver = Receiver().start()
    with tempfile.TemporaryDirectory() as tmp:
        d = write_alerts_dir(Path(tmp) / "alerts",
                             "defaults: {group_by: [rule, user.name], group_wait: 0s, group_interval: 1m, "
                             "repeat_interval: 24h}\nroute:\n  receivers: [hook]\n",
                             f'receivers:\n  - name: hook\n    urls: ["json://{receiver.url}/hook"]\n')
        db = Database(Path(tmp) / "events.db")
        templates, _ = load_templates(d / "templates")
        routing, settings = load_routing(d), NotifySettings(poll_interval_ms=poll_ms, delivery_threads=1)
        service = NotifyService(db.path, routing, Renderer(templates, Redactor(), "sentinel alerts show"), settings)
        router = RoutingService(db.path, routing, settings, on_routed=service.notifications_made)
        service.start()
        router.start()
        committed: dict[str, float] = {}
        try:
            t0 = time.time()
            for i in range(alerts):
                target = t0 + i / rate
                time.sleep(max(0.0, target - time.time()))
                a = make_alert(i, user=f"u{i:05d}", at=time.time())
                with db.transaction() as tx:
                    write_alerts(tx, [a])
                committed[a.labels["user.name"]] = time.time()
            got = receiver.wait_for(alerts, timeout=60 + alerts / 10)
        finally:
            router.stop()
            service.stop()
            receiver.stop()
            db.close()
    latencies = []
    for r in got:
        user = r.json()["message"].split("user: ", 1)[1].split()[0]
        latencies.append(r.at - committed[user])
    return {"delivered": len(got), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}


E2E_RULE = """id: bench-each-failure
title: Every failed password (benchmark)
description: One alert per failed password, grouped per user, so every line appended makes one notification.
severity: high
tags: ["hipaa:164.308(a)(5)(ii)(C)"]
filter:
  event.action: ssh_login
  event.outcome: failure
type: match
group_by: [user.name]
summary: "failed password user: {user.name} from {source.ip}"
runbook: Benchmark rule.
"""


def start_end_to_end(work: Path, receiver: Receiver, notify: dict[str, object] | None = None) -> tuple[
        Path, subprocess.Popen[bytes]]:
    """A ``sentinel run`` in ``work`` tailing auth.log with E2E_RULE, notifying ``receiver``; (log, process)."""
    (work / "rules").mkdir()
    (work / "rules" / "bench.yaml").write_text(E2E_RULE)
    write_alerts_dir(work / "alerts",
                     "defaults: {group_by: [rule, user.name], group_wait: 0s, group_interval: 1m, "
                     "repeat_interval: 24h}\nroute:\n  receivers: [hook]\n",
                     f'receivers:\n  - name: hook\n    urls: ["json://{receiver.url}/hook"]\n')
    log = work / "auth.log"
    log.touch()
    cfg = work / "sentinel.yaml"
    cfg.write_text(yaml.safe_dump({
        "state_dir": str(work / "state"), "collectors_dir": str(ROOT / "sentinel" / "shipped" / "collectors"),
        "rules_dir": str(work / "rules"), "alerts_dir": str(work / "alerts"),
        "metrics": {"enabled": False}, "api": {"enabled": False}, **({"notify": notify} if notify else {}),
        "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}))
    daemon = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg), "--log-level", "WARNING"],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_until_tailing(work / "state" / "events.db", log, daemon)
    return log, daemon


def wait_until_tailing(db: Path, log: Path, daemon: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Until the daemon has a checkpoint for ``log``: a line appended before that would be behind its start
    position (the end of the file), and a loaded machine can take seconds to get there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"sentinel run exited ({daemon.returncode}) before tailing {log}")
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                if conn.execute("SELECT 1 FROM checkpoints WHERE path = ?", (str(log),)).fetchone():
                    return
        except sqlite3.Error:
            pass  # not created yet, or created without its tables so far
        time.sleep(0.1)
    raise RuntimeError(f"sentinel run did not start tailing {log} within {timeout:.0f} s")


def run_end_to_end(alerts: int, rate: float) -> dict[str, float]:
    """Line appended → notification at the webhook, through ``sentinel run`` with its default settings."""
    receiver = Receiver().start()
    with tempfile.TemporaryDirectory() as tmp:
        log, daemon = start_end_to_end(Path(tmp), receiver)
        appended: dict[str, float] = {}
        try:
            with log.open("a", encoding="utf-8") as fh:
                # A first line, until it is notified: the daemon is up and has its checkpoint.
                fh.write("Nov 27 09:00:00 web01 sshd[1]: Failed password for warmup from 203.0.113.9 port 1 ssh2\n")
                fh.flush()
                receiver.wait_for(1, timeout=120)
                t0 = time.time()
                for i in range(alerts):
                    time.sleep(max(0.0, t0 + i / rate - time.time()))
                    user = f"u{i:05d}"
                    fh.write(f"Nov 27 09:00:{i % 60:02d} web01 sshd[{1000 + i}]: Failed password for {user} from "
                             f"203.0.113.{i % 250 + 1} port {40000 + i} ssh2\n")
                    fh.flush()
                    appended[user] = time.time()
            got = receiver.wait_for(alerts + 1, timeout=60 + alerts / 10)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            receiver.stop()
    latencies = []
    for r in got:
        user = r.json()["message"].split("user: ", 1)[1].split()[0]
        if user in appended:
            latencies.append(r.at - appended[user])
    return {"delivered": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0, help="alerts per second")
    parser.add_argument("--poll-ms", type=int, nargs="*", default=[200, 50])
    parser.add_argument("--end-to-end", action="store_true",
                        help="line appended → webhook through `sentinel run` (default settings)")
    args = parser.parse_args()
    if args.end_to_end:
        res = run_end_to_end(args.alerts, args.rate)
        print(f"end to end: {res['delivered']}/{args.alerts} delivered at {args.rate:g} lines/s; line→webhook "
              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, max {res['max_ms']:.1f} ms")
        return
    for poll in args.poll_ms:
        res = run(args.alerts, args.rate, poll)
        print(f"poll {poll:>4} ms: {res['delivered']}/{args.alerts} delivered at {args.rate:g}/s; outbox→delivered "
              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, max {res['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
