"""When the state directory misbehaves: a full file system, a deleted database, a replaced state directory.

The daemon runs as a real subprocess; the full disk is a real, small tmpfs mounted on the state directory.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.audit.chain import AuditLog
from tests.ops_helpers import (
    SHIPPED,
    DaemonProcess,
    NotifyListener,
    OpsEnv,
    append,
    auth_line,
    metric_value,
    scrape,
    wait_until,
)
from tests.storm import make_storm_log

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[OpsEnv]:
    """An OpsEnv whose state directory is a 16 MiB tmpfs, unmounted afterwards."""
    env = OpsEnv(tmp_path)
    env.state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(env.state)], check=True)
    try:
        yield env
    finally:
        subprocess.run(["umount", "-l", str(env.state)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the file system has no byte left."""
    filler = directory / "filler"
    chunk = b"x" * 4096
    with filler.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class _Writer:
    """Appends auth lines in the background, as a busy server would, until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            append(self.path, [auth_line(self.written + i) for i in range(50)])
            self.written += 50
            time.sleep(0.05)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


@needs_root
@pytest.mark.parametrize("decode_workers", [0, 2])
def test_full_disk_pauses_reading_and_resumes_with_nothing_lost(small_state: OpsEnv, tmp_path: Path,
                                                                 decode_workers: int) -> None:
    env = small_state
    env.write_config(storage={"reserve_mb": 0.25, "full_retry_seconds": 0.5},
                     pipeline={"start_position": "beginning", "poll_interval_ms": 50, "batch_max_lines": 200,
                               "decode_workers": decode_workers})
    listener = NotifyListener(path=tmp_path / "notify.sock")
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        assert (env.state / "space-reserve").stat().st_size == 256 * 1024
        with _Writer(env.log) as writer:
            wait_until(lambda: env.events_stored() > 500, 30, "the first events stored")
            filler = _fill(env.state)
            wait_until(lambda: metric_value(scrape(env.metrics_port), "sentinel_storage_full") == 1, 30,
                       "sentinel_storage_full = 1")
            code, body = _readyz(env.metrics_port)
            assert code == 503 and "storage full" in body
            status = listener.wait_for(lambda m: "DEGRADED" in m.get("STATUS", ""))
            assert "full" in status["STATUS"]
            stuck = env.events_stored()
            time.sleep(3)  # lines keep coming; the daemon keeps trying and must neither exit nor store them
            assert daemon.proc.poll() is None, daemon.stderr()
            assert env.events_stored() == stuck
            # Written on the full disk: the reserve was released for it.
            assert "storage_full" in [r.action for r in AuditLog(env.state / "audit.jsonl").records()]
            filler.unlink()
            time.sleep(1)
        total = writer.written
        wait_until(lambda: env.events_stored() == total, 60, f"all {total} lines stored after space returned")
        wait_until(lambda: metric_value(scrape(env.metrics_port), "sentinel_storage_full") == 0, 10,
                   "sentinel_storage_full = 0")
        assert _readyz(env.metrics_port)[0] == 200
        listener.wait_for(lambda m: "reading resumed" in m.get("STATUS", ""))
        assert (env.state / "space-reserve").exists()
        assert (metric_value(scrape(env.metrics_port), "sentinel_storage_full_rollbacks_total") or 0) >= 1
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
        listener.close()
    err = daemon.stderr_path.read_text()
    assert daemon.proc.returncode == 0, err
    assert env.events_stored() == total
    actions = [r.action for r in AuditLog(env.state / "audit.jsonl").records()]
    assert actions.count("storage_full") == 1 and actions.count("storage_recovered") == 1
    assert actions.index("storage_full") < actions.index("storage_recovered")
    assert "Traceback" not in err
    assert err.count("state directory full") == 1  # once per episode, then at most a reminder a minute


def _run_cli(config: Path, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel.cli.main", "run", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=timeout)


@needs_root
def test_replay_onto_a_full_disk_stops_with_a_clear_error_and_finishes_once_there_is_room(small_state: OpsEnv) -> None:
    env = small_state
    env.write_config(rules_dir=str(SHIPPED / "rules"))  # the rule pack on: batches are judged while stored
    lines = 30_000  # about 30 MB stored: twice the 16 MiB file system
    make_storm_log(env.log, lines)
    replay = [sys.executable, "-m", "sentinel", "replay", "-c", str(env.config), "--collector", "linux-auth", "-q",
              str(env.log)]
    first = subprocess.run(replay, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1
    assert "Traceback" not in first.stderr
    assert f"no space left for the database in {env.state}" in first.stderr
    subprocess.run(["mount", "-o", "remount,size=256m", str(env.state)], check=True)
    stored = env.events_stored()  # counted once there is room: a reader needs some too
    # Whole batches committed, each in one transaction: none in part.
    assert 0 < stored < lines and stored % env.doc()["pipeline"]["batch_max_lines"] == 0
    second = subprocess.run(replay, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{lines - stored} new events stored, {stored} already present" in second.stdout
    assert env.events_stored() == lines


def test_database_deleted_while_running_stops_with_a_clear_error_and_a_restart_refuses(tmp_path: Path) -> None:
    env = OpsEnv(tmp_path)
    daemon = DaemonProcess(env.config)
    try:
        append(env.log, [auth_line(i) for i in range(100)])
        wait_until(lambda: env.events_stored() == 100, 30, "the first 100 events")
        (env.state / "events.db").unlink()
        append(env.log, [auth_line(i) for i in range(100, 150)])
        rc = daemon.wait(30)  # stops by itself: writing on into the deleted file would lose everything
    finally:
        daemon.stop()
    err = daemon.stderr_path.read_text()
    assert rc == 1
    assert "the database was deleted while sentinel was writing to it" in err
    assert "Traceback" not in err
    actions = [(r.action, r.details) for r in AuditLog(env.state / "audit.jsonl").records()]
    assert [a for a, _ in actions if a == "fatal_error"] == ["fatal_error"]

    # A restart (systemd's Restart=on-failure) must not quietly begin an empty history.
    refused = _run_cli(env.config)
    assert refused.returncode == 1
    assert "the database is missing" in refused.stderr and "--reset-state" in refused.stderr
    assert not (env.state / "events.db").exists()

    # The operator accepts the loss explicitly; the audit trail says so; the files are read again.
    proc = subprocess.Popen([sys.executable, "-m", "sentinel.cli.main", "run", "--config", str(env.config),
                             "--reset-state"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: env.events_stored() == 150, 30, "150 events re-read after --reset-state")
    finally:
        proc.terminate()
        _, err = proc.communicate(30)
    assert proc.returncode == 0, err
    resets = [r.details for r in AuditLog(env.state / "audit.jsonl").records() if r.action == "state_reset"]
    assert len(resets) == 1 and resets[0]["reason"] == "database missing"
    assert resets[0]["state_id"] == (env.state / "state-id").read_text().strip() != resets[0]["previous_state_id"]


def test_a_database_from_another_state_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = OpsEnv(tmp_path / "a"), OpsEnv(tmp_path / "b")
    for env in (first, second):
        append(env.log, [auth_line(i) for i in range(10)])
        d = DaemonProcess(env.config)
        try:
            wait_until(lambda env=env: env.events_stored() == 10, 30, "10 events")  # type: ignore[misc]
        finally:
            d.stop()
    # The operator "restores" the wrong database: a's, copied whole (WAL included) by SQLite's backup API.
    for name in ("events.db", "events.db-wal", "events.db-shm"):
        (second.state / name).unlink(missing_ok=True)
    src, dst = sqlite3.connect(first.state / "events.db"), sqlite3.connect(second.state / "events.db")
    src.backup(dst)
    src.close()
    dst.close()
    refused = _run_cli(second.config)
    assert refused.returncode == 1
    assert "belongs to another state directory" in refused.stderr


def test_the_database_replaced_while_running_is_noticed(tmp_path: Path) -> None:
    env = OpsEnv(tmp_path)
    daemon = DaemonProcess(env.config)
    try:
        append(env.log, [auth_line(i) for i in range(20)])
        wait_until(lambda: env.events_stored() == 20, 30, "20 events")
        db = env.state / "events.db"
        copy = db.with_name("copy.db")
        copy.write_bytes(db.read_bytes())
        os.replace(copy, db)
        assert daemon.wait(30) == 1
    finally:
        daemon.stop()
    assert "the database file was replaced while sentinel was writing to it" in daemon.stderr_path.read_text()
