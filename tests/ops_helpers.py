"""Helpers for the operations tests: a daemon subprocess, an sd_notify listener, a generated auth.log."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"

# A minimal valid routing set, used only while the project's alerts/ folder does not ship one yet.
_MIN_ROUTES = "route:\n  receivers: [ops]\n"
_MIN_RECEIVERS = 'receivers:\n  - name: ops\n    urls: ["json://127.0.0.1:9/"]\n'


def auth_line(i: int, ok: bool = True) -> str:
    """One sshd line the linux-auth collector parses (ok) or a line no pattern matches."""
    if not ok:
        return f"Jan  1 00:00:{i % 60:02d} host kernel: [{i}.000] unrelated kernel chatter {i}\n"
    return (f"Jan  1 00:00:{i % 60:02d} host sshd[{1000 + i}]: Failed password for user{i % 7} "
            f"from 10.0.{i % 250}.{i % 200} port {20000 + i} ssh2\n")


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as f:
        f.writelines(lines)


class OpsEnv:
    """A config under tmp_path with its own copies of collectors/rules/alerts that a test may break."""

    def __init__(self, tmp_path: Path) -> None:
        self.base = tmp_path
        self.log = tmp_path / "auth.log"
        self.log.touch()
        self.state = tmp_path / "state"
        # The shipped collectors and routes; rules start empty so the rule pack's own tests own its content.
        for name in ("collectors", "alerts"):
            shutil.copytree(SHIPPED / name, tmp_path / name, dirs_exist_ok=True)
        (tmp_path / "rules").mkdir()
        alerts = tmp_path / "alerts"
        if not (alerts / "routes.yaml").exists():
            (alerts / "routes.yaml").write_text(_MIN_ROUTES)
            (alerts / "receivers.yaml").write_text(_MIN_RECEIVERS)
        self.config = tmp_path / "sentinel.yaml"
        self.metrics_port = free_port()
        self.write_config()

    def doc(self, **overrides: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "state_dir": str(self.state),
            "collectors_dir": str(self.base / "collectors"),
            "rules_dir": str(self.base / "rules"),
            "alerts_dir": str(self.base / "alerts"),
            "pipeline": {"start_position": "beginning", "poll_interval_ms": 50, "batch_max_lines": 200},
            "metrics": {"enabled": True, "listen": f"127.0.0.1:{self.metrics_port}"},
            "api": {"enabled": False},
            "sources": [{"collector": "linux-auth", "paths": [str(self.log)]}],
        }
        doc.update(overrides)
        return doc

    def write_config(self, **overrides: Any) -> None:
        self.config.write_text(yaml.safe_dump(self.doc(**overrides), sort_keys=False))

    def events_stored(self) -> int:
        """Events in the daemon's database (0 before the daemon created it)."""
        path = self.state / "events.db"
        if not path.exists():
            return 0
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # schema not created yet
        finally:
            conn.close()


class DaemonProcess:
    """``sentinel run`` as a real subprocess (so signals, sd_notify and exit codes are real)."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, **(env or {})}
        self.stderr_path = config.parent / "daemon.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli.main", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=self._stderr, env=full_env, cwd=str(config.parent),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()


class NotifyListener:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; records every message."""

    def __init__(self, path: Path | None = None, abstract: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self.sock.bind(b"\0" + abstract.encode())
            self.address = "@" + abstract
        else:
            assert path is not None
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(fields)

    def wait_for(self, pred: Callable[[dict[str, str]], bool], timeout: float = 30.0, after: int = 0) -> dict[str, str]:
        """The first message (from index ``after``) satisfying ``pred``; fails the test on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages[after:]:
                if pred(msg):
                    return msg
            time.sleep(0.02)
        raise AssertionError(f"no matching sd_notify message within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def wait_until(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def scrape(port: int, path: str = "/metrics") -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read().decode()


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in exposition text, e.g. ``metric_value(t, 'x_total', 'result="success"')``."""
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
