"""A committed alert wakes routing at once: the notify poll is only the backstop (issue #18)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.bench_notify import start_end_to_end
from tests.fixtures.receiver import Receiver

BACKSTOP_MS = 60_000  # a poll this slow would make every notification below late by up to a minute


def test_an_alert_is_notified_long_before_the_backstop_poll(tmp_path: Path) -> None:
    receiver = Receiver().start()
    log, daemon = start_end_to_end(tmp_path, receiver, notify={"poll_interval_ms": BACKSTOP_MS})
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
