"""Crash safety: SIGKILL the daemon at random moments while files are written and rotated.

Every line written must be stored exactly once, whatever instant the daemon died at.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sentinel.store.docs import ShapeReader

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
TOTAL_LINES = 200_000
FILES = ("auth.log", "app.log", "secure.log")


def _line(name: str, seq: int) -> str:
    minute, second = divmod(seq % 3600, 60)
    return (f"Nov 27 09:{minute:02d}:{second:02d} {name.split('.')[0]} sshd[{seq % 60000}]: "
            f"Failed password for user{seq % 977} from 10.{seq % 200}.{seq % 250}.{seq % 199 + 1} "
            f"port {seq % 60000} ssh2")


class Writer(threading.Thread):
    """Appends lines across files; auth.log rotates by rename + create, app.log by copytruncate."""

    def __init__(self, directory: Path, total: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.dir = directory
        self.total = total
        self.rng = random.Random(seed)
        self.written: list[str] = []
        self.rotations = Counter[str]()

    def run(self) -> None:
        handles = {name: (self.dir / name).open("a", encoding="utf-8") for name in FILES}
        generation = Counter[str]()
        for seq in range(self.total):
            name = FILES[self.rng.randrange(3)]
            line = _line(name, seq)
            handles[name].write(line + "\n")
            self.written.append(line)
            if seq % 500 == 0:
                for fh in handles.values():
                    fh.flush()
                time.sleep(0.004)
            if seq % 20_000 == 19_777:
                for fh in handles.values():
                    fh.flush()
                generation["auth.log"] += 1
                handles["auth.log"].close()
                os.rename(self.dir / "auth.log", self.dir / f"auth.log.{generation['auth.log']}")
                handles["auth.log"] = (self.dir / "auth.log").open("a", encoding="utf-8")
                self.rotations["rename"] += 1
            if seq % 20_000 == 9_871:
                generation["app.log"] += 1
                handles["app.log"].flush()
                shutil.copyfile(self.dir / "app.log", self.dir / f"app.log.{generation['app.log']}")
                handles["app.log"].truncate(0)
                handles["app.log"].seek(0)
                self.rotations["copytruncate"] += 1
        for fh in handles.values():
            fh.close()


def _stored(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        reader = ShapeReader(conn)
        rows = conn.execute("SELECT shape, doc FROM events")
        return [reader.fields(shape, doc)["event.original"] for shape, doc in rows]
    finally:
        conn.close()


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("decode_workers", [0, 1], ids=["decode-inline", "decode-workers"])
def test_sigkill_during_writes_and_rotations_loses_and_duplicates_nothing(tmp_path: Path, decode_workers: int) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in FILES:
        (logs / name).touch()
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "collectors_dir": str(SHIPPED / "collectors"),
        "rules_dir": str(tmp_path / "no-rules"),
        "alerts_dir": str(tmp_path / "no-alerts"),
        "pipeline": {"start_position": "beginning", "poll_interval_ms": 50, "decode_workers": decode_workers,
                     # small batches, so a backlog keeps several of them queued in the worker when killed
                     "batch_max_lines": 1000 if decode_workers else 4096},
        "metrics": {"enabled": False},
        "api": {"enabled": False},
        "detection": {"enabled": False},
        "notify": {"enabled": False},
        "sources": [{"collector": "linux-auth",
                     "paths": [str(logs / "auth.log*"), str(logs / "app.log*"), str(logs / "secure.log")]}],
    }
    cfg_path = tmp_path / "sentinel.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    db = tmp_path / "state" / "events.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sentinel", "run", "-c", str(cfg_path), "--log-level", "WARNING"]
    log_file = (tmp_path / "daemon.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=log_file, stderr=log_file)

    rng = random.Random(20261127)
    writer = Writer(logs, TOTAL_LINES, seed=42)
    proc = start()
    writer.start()
    kills = 0
    while writer.is_alive() or kills < 10:
        time.sleep(rng.uniform(0.2, 1.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.0, 0.5))  # stay down a while: rotations happen meanwhile
        proc = start()
    writer.join()
    deadline = time.monotonic() + 240
    while _count(db) < TOTAL_LINES and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(1.0)  # a duplicate would show up as a count above the total
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    log_file.close()

    stored = Counter(_stored(db))
    written = Counter(writer.written)
    assert kills >= 10
    assert writer.rotations["rename"] >= 5 and writer.rotations["copytruncate"] >= 5
    missing = written - stored
    extra = stored - written
    duplicates = {line: n for line, n in stored.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} lines stored more than once, e.g. {next(iter(duplicates))!r}"
    assert not missing, f"{sum(missing.values())} lines lost, e.g. {next(iter(missing))!r}"
    assert not extra, f"{sum(extra.values())} unexpected lines stored"
    assert sum(stored.values()) == TOTAL_LINES
