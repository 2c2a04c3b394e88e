"""A committed alert wakes routing at once: the notify poll is only the backstop (issue #18)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.bench_notify import E2E_RULE
from tests.fixtures.receiver import Receiver, write_alerts_dir

ROOT = Path(__file__).resolve().parents[1]
BACKSTOP_MS = 60_000  # a poll this slow would make every notification below late by up to a minute


def test_an_alert_is_notified_long_before_the_backstop_poll(tmp_path: Path) -> None:
    receiver = Receiver().start()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "each.yaml").write_text(E2E_RULE)
    write_alerts_dir(tmp_path / "alerts",
                     "defaults: {group_by: [rule, user.name], group_wait: 0s, group_interval: 1m, "
                     "repeat_interval: 24h}\nroute:\n  receivers: [hook]\n",
                     f'receivers:\n  - name: hook\n    urls: ["json://{receiver.url}/hook"]\n')
    log = tmp_path / "auth.log"
    log.touch()
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "collectors_dir": str(ROOT / "sentinel" / "shipped" / "collectors"),
        "rules_dir": str(tmp_path / "rules"), "alerts_dir": str(tmp_path / "alerts"),
        "metrics": {"enabled": False}, "api": {"enabled": False},
        "notify": {"poll_interval_ms": BACKSTOP_MS},
        "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}))
    daemon = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg), "--log-level", "WARNING"],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        time.sleep(3)  # started, and both notify loops are in their first (60 s) wait
        delays = []
        for i in range(3):
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"Nov 27 09:00:0{i} web01 sshd[{100 + i}]: Failed password for user{i} from 203.0.113.9 "
                         f"port {4000 + i} ssh2\n")
            appended = time.time()
            got = receiver.wait_for(i + 1, timeout=BACKSTOP_MS / 2000)
            assert len(got) == i + 1, f"line {i} not notified within half the backstop poll"
            assert f"user{i}" in got[-1].json()["message"]
            delays.append(got[-1].at - appended)
        assert max(delays) < BACKSTOP_MS / 2000
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        receiver.stop()
