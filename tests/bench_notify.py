"""Benchmark: time from an alert entering the outbox to its notification arriving at a local webhook.

Runs the real NotifyService (routing thread + delivery thread, apprise json:// to a local ThreadingHTTPServer)
with group_wait 0s, one group per alert, alerts committed at a steady rate. Prints p50/p99 latency.

    python tests/bench_notify.py [--alerts 400] [--rate 40] [--poll-ms 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sentinel.route.state  # noqa: E402,F401 - registers the routing tables
from sentinel.conf.models import NotifySettings  # noqa: E402
from sentinel.notify.redact import Redactor  # noqa: E402
from sentinel.notify.render import Renderer  # noqa: E402
from sentinel.notify.templates import load_templates  # noqa: E402
from sentinel.notify.worker import NotifyService  # noqa: E402
from sentinel.route.loader import load_routing  # noqa: E402
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
        service = NotifyService(db.path, load_routing(d), Renderer(templates, Redactor(), "sentinel alerts show"),
                                NotifySettings(poll_interval_ms=poll_ms, delivery_threads=1))
        service.start()
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
            service.stop()
            receiver.stop()
            db.close()
    latencies = []
    for r in got:
        user = r.json()["message"].split("user: ", 1)[1].split()[0]
        latencies.append(r.at - committed[user])
    return {"delivered": len(got), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0, help="alerts per second")
    parser.add_argument("--poll-ms", type=int, nargs="*", default=[200, 50])
    args = parser.parse_args()
    for poll in args.poll_ms:
        res = run(args.alerts, args.rate, poll)
        print(f"poll {poll:>4} ms: {res['delivered']}/{args.alerts} delivered at {args.rate:g}/s; outbox→delivered "
              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, max {res['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
