"""The demo's scenario as a real daemon subprocess with metrics and notifications on, for the security
dashboard and evidence report tests: generated company logs, the project's collectors and rules, a live
stream continuing them, alerts routed to a local HTTP receiver (so incident clocks start), and a
responder acknowledging and resolving some alerts with the real CLI."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sentinel.demo.generator import generate_world
from sentinel.demo.live import LiveWriter, plan_live
from sentinel.demo.runner import caught_up, write_config
from tests.ops_helpers import DaemonProcess, free_port, wait_until


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel.cli.main", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=120)


class DemoScenario:
    """``start()`` the daemon on the demo's logs, ``go_live()`` for the live stream, ``respond()`` to alerts."""

    def __init__(self, base: Path, receiver_url: str, days: int = 3, users: int = 30) -> None:
        self.base = base
        self.logs = base / "logs"
        self.truth, self.world = generate_world(self.logs, days=days, users=users, seed=7)
        self.metrics_port = free_port()
        alerts = base / "alerts"
        alerts.mkdir()
        (alerts / "routes.yaml").write_text("route:\n  receivers: [ops]\n  group_wait: 1s\n")
        (alerts / "receivers.yaml").write_text(f'receivers:\n  - name: ops\n    urls: ["json://{receiver_url}/"]\n')
        self.config = write_config(base, self.logs, io.StringIO(), alerts)
        doc: dict[str, Any] = yaml.safe_load(self.config.read_text())
        doc["alerts_dir"] = str(alerts)
        doc["metrics"] = {"enabled": True, "listen": f"127.0.0.1:{self.metrics_port}"}
        doc["notify"] = {"enabled": True}
        doc["logging"] = {"level": "INFO"}
        self.config.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.db = base / "state" / "events.db"
        self.daemon: DaemonProcess | None = None
        self.writer: LiveWriter | None = None

    def start(self) -> None:
        self.daemon = DaemonProcess(self.config)

    def wait_caught_up(self, timeout: float = 240.0) -> None:
        wait_until(lambda: caught_up(self.db, self.logs) and self.count("SELECT count(*) FROM outbox") == 0,
                   timeout, "the daemon to read the history and route its alerts")

    def go_live(self, seconds: float) -> None:
        live, _incidents = plan_live(self.world, int(time.time() * 1000) + 500, seconds)
        self.writer = LiveWriter(self.logs, live)
        self.writer.start()

    def count(self, sql: str, *params: Any) -> int:
        if not self.db.exists():
            return 0
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute(sql, params).fetchone()[0] or 0)
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def fields(self, where: str, *params: Any) -> list[dict[str, Any]]:
        """The stored fields of the events matching a WHERE clause, whatever their document shape."""
        from sentinel.store.docs import ShapeReader

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            reader = ShapeReader(conn)
            return [reader.fields(shape, doc) for shape, doc in
                    conn.execute(f"SELECT shape, doc FROM events WHERE {where}", params).fetchall()]
        finally:
            conn.close()

    def respond(self) -> tuple[list[str], list[str]]:
        """A responder acknowledges two high/critical incidents and resolves one other alert (real CLI)."""
        incidents = [r[0] for r in self.rows("SELECT i.alert_id FROM incidents i JOIN alerts a ON a.id = i.alert_id "
                                             "WHERE a.status = 'open' ORDER BY i.detected_at")]
        others = [r[0] for r in self.rows("SELECT id FROM alerts WHERE status = 'open' AND id NOT IN "
                                          "(SELECT alert_id FROM incidents) ORDER BY created")]
        assert len(incidents) >= 3 and others, (incidents, others)
        acked, resolved = incidents[:2], others[:1]
        for alert_id in acked:
            done = cli(self.config, "alerts", "ack", alert_id, "--by", "analyst")
            assert done.returncode == 0, done.stderr
        for alert_id in resolved:
            done = cli(self.config, "alerts", "resolve", alert_id, "--by", "analyst")
            assert done.returncode == 0, done.stderr
        return acked, resolved

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        if self.daemon is not None:
            self.daemon.stop()
