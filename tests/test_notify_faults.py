"""Fault tests: the receiver fails (500), hangs (timeouts), refuses connections, and the delivery worker process
is SIGKILLed and restarted in between. Afterwards every alert has been delivered, none twice, every attempt
recorded."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sentinel.route.state  # noqa: F401 - registers the routing tables before the test opens the DB
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import Receiver, make_alert, write_alerts_dir

ROOT = Path(__file__).resolve().parent.parent


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sentinel.cli.notify_worker", "--config", str(config)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_worker_killed_while_receiver_fails_hangs_and_refuses(tmp_path: Path, make_config: MakeConfig,
                                                              receiver: Receiver) -> None:
    alerts_dir = write_alerts_dir(
        tmp_path / "alerts",
        "defaults: {group_by: [rule, user.name], group_wait: 0s, group_interval: 1s, repeat_interval: 24h}\n"
        "route:\n  receivers: [hook]\n",
        f'receivers:\n  - name: hook\n    urls: ["json://{receiver.url}/hook"]\n    max_attempts: 100\n')
    cfg = make_config(alerts_dir=str(alerts_dir), notify={
        "poll_interval_ms": 50, "retry_base_seconds": 0.1, "retry_max_seconds": 0.5, "retry_jitter": 0.2,
        "request_timeout_seconds": 0.5, "followup_interval_seconds": 1})
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.state_dir / "events.db")
    log = tmp_path / "worker.log"
    per_phase = 8
    seq = 0

    def add_alerts() -> None:
        nonlocal seq
        now = time.time()
        with db.transaction() as tx:
            write_alerts(tx, [make_alert(seq + i, user=f"u{seq + i:03d}", at=now) for i in range(per_phase)])
        seq += per_phase

    def attempts(outcome: str) -> int:
        return int(db.conn.execute("SELECT COUNT(*) FROM notification_attempts WHERE outcome = ?",
                                   (outcome,)).fetchone()[0])

    # 1. The receiver answers 500; the worker retries; then it is SIGKILLed.
    receiver.fail_with(500)
    worker = start_worker(cfg.path, log)
    add_alerts()
    assert wait_until(lambda: attempts("failed") >= 3, 20), log.read_text()
    kill(worker)
    # 2. The receiver hangs past the request timeout; a restarted worker times out; SIGKILL again mid-request.
    receiver.fail_with(200)
    receiver.hang(3.0)
    worker = start_worker(cfg.path, log)
    add_alerts()
    before = attempts("failed")
    assert wait_until(lambda: attempts("failed") >= before + 2, 20), "timeouts are recorded as failures"
    time.sleep(0.2)
    kill(worker)  # most likely in the middle of a hanging request
    # 3. Connection refused.
    receiver.down()
    receiver.hang_seconds = 0.0
    worker = start_worker(cfg.path, log)
    add_alerts()
    before = attempts("failed")
    assert wait_until(lambda: attempts("failed") > before + 2, 20)
    kill(worker)
    assert receiver.accepted == [], "nothing could be delivered so far"
    # 4. Recovery: the receiver is back, a fresh worker delivers everything, once.
    receiver.heal()
    worker = start_worker(cfg.path, log)
    add_alerts()
    total = 4 * per_phase
    try:
        receiver.wait_for(total, timeout=30)
        time.sleep(1.0)  # anything extra (a duplicate) would arrive now
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    accepted = receiver.accepted
    keys = [r.json()["notification_key"] for r in accepted]
    assert len(accepted) == total, f"{len(accepted)} delivered of {total}\n{log.read_text()[-3000:]}"
    assert len(set(keys)) == total, "none twice to the same receiver"
    users = {re.search(r"user: (\S+)", r.json()["message"]).group(1) for r in accepted}  # type: ignore[union-attr]
    assert users == {f"u{i:03d}" for i in range(total)}, "every alert is in a delivered message"
    states = dict(db.conn.execute("SELECT status, COUNT(*) FROM notifications GROUP BY status").fetchall())
    assert states == {"delivered": total}
    outcomes = dict(db.conn.execute("SELECT outcome, COUNT(*) FROM notification_attempts GROUP BY outcome"))
    assert outcomes["delivered"] == total
    assert outcomes.get("failed", 0) + outcomes.get("deferred", 0) >= 9, outcomes
    errors = [r[0] for r in db.conn.execute("SELECT DISTINCT error FROM notification_attempts WHERE error IS NOT NULL")]
    assert errors, "failures carry their error"
    assert db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert worker.returncode == 0
    db.close()
