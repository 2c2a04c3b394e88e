"""Run the real daemon on a ``type: api`` source and read what it stored."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sentinel.shipped import shipped_path
from sentinel.store.docs import ShapeReader

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, collector: str, api: dict[str, Any], metrics_port: int | None = None,
                 more: dict[str, dict[str, Any]] | None = None, **pipeline: Any) -> Path:
    """One ``type: api`` source (``more``: further collectors and their api settings)."""
    cfg = {
        "state_dir": str(tmp / "state"),
        "collectors_dir": str(shipped_path("collectors")),
        "rules_dir": str(tmp / "no-rules"),
        "alerts_dir": str(tmp / "no-alerts"),
        "pipeline": {"poll_interval_ms": 50, **pipeline},
        "metrics": {"enabled": metrics_port is not None, "listen": f"127.0.0.1:{metrics_port or 9464}"},
        "api": {"enabled": False}, "detection": {"enabled": False}, "notify": {"enabled": False},
        "sources": [{"collector": name, "type": "api", "api": settings}
                    for name, settings in {collector: api, **(more or {})}.items()],
    }
    path = tmp / "sentinel.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    out = (config.parent / "daemon.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(config), "--log-level", "WARNING"],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def wait_for_count(db: Path, want: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> int:
    """Events in ``db`` once there are ``want``, ``timeout`` has passed or ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    n = count(db)
    while n < want and time.monotonic() < deadline and (proc is None or proc.poll() is None):
        time.sleep(0.1)
        n = count(db)
    return n


def stored(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        reader = ShapeReader(conn)
        return [reader.fields(shape, doc) for shape, doc in conn.execute("SELECT shape, doc FROM events")]
    finally:
        conn.close()


def metric(port: int, name: str, **labels: str) -> float:
    """The value of one series on the daemon's /metrics (0 when absent)."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
