"""Crash safety with the rule pack on and the shipped batch size: SIGKILL the daemon at random moments while it
catches up a brute-force storm that is still being appended to.

The file tests (tests/test_crash.py) run with detection off. Here every batch also carries rule state, running
alerts and new alerts, and is as large as the shipped ``pipeline.batch_max_lines`` makes it, so a kill throws
away the most work it can. Afterwards the daemon must have stored every line once, and raised exactly the
alerts an uninterrupted daemon raises on the same file: none lost with a batch that was rolled back, none raised
twice when the batch was read again, none changed by state that was half written.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sentinel.conf.loader import load_config
from tests.cloud.daemon import count
from tests.cloud.daemon import stored as stored_events
from tests.storm import storm_lines
from tests.storm_alerts import ACCOUNTS, ADDRESSES, raised
from tests.test_storm_alerts import by_line

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
LINES = 60_000  # a backlog of more than one shipped batch, then appends for half a minute


def _config(base: Path, log: Path, decode_workers: int) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    doc = {"state_dir": str(base / "state"), "collectors_dir": str(SHIPPED / "collectors"),
           "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
           # Everything else as shipped: batch size, batch wait, state bounds.
           "pipeline": {"start_position": "beginning", "decode_workers": decode_workers},
           "metrics": {"enabled": False}, "api": {"enabled": False}, "notify": {"enabled": False},
           "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}
    path = base / "sentinel.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Daemon:
    """``sentinel run`` as systemd starts it, with its output kept for the failure message."""

    def __init__(self, cfg: Path, out: Path) -> None:
        self.cmd = [sys.executable, "-m", "sentinel", "run", "-c", str(cfg), "--log-level", "WARNING"]
        self.out = out.open("ab")
        self.audit = cfg.parent / "state" / "audit.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None

    def starts(self) -> int:
        return self.audit.read_text().count('"action":"start"') if self.audit.exists() else 0

    def start(self, wait_up: bool = True) -> None:
        before = self.starts()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.out, stderr=self.out)
        deadline = time.monotonic() + 60
        while wait_up and self.starts() <= before and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)

    def settle(self, db: Path, total: int, timeout: float = 600) -> None:
        """Wait until ``total`` events are stored, then a little longer (a duplicate would show up as more)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while count(db) < total and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.2)
        time.sleep(2.0)
        self.stop(signal.SIGTERM)
        self.out.close()


def _appender(log: Path, lines: list[str], rng: random.Random, error: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            at = 0
            while at < len(lines):
                n = rng.randint(200, 800)
                with log.open("a", encoding="utf-8") as f:
                    f.write("".join(line + "\n" for line in lines[at:at + n]))
                at += n
                time.sleep(rng.uniform(0.1, 0.6))
        except BaseException as exc:  # reported by the test
            error.append(exc)

    return threading.Thread(target=run, daemon=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("decode_workers", [0, 1], ids=["inline", "workers"])
def test_kills_with_the_rule_pack_on_lose_duplicate_and_change_no_alert(tmp_path: Path, decode_workers: int) -> None:
    lines = storm_lines(LINES, 18, ACCOUNTS, ADDRESSES)

    # The uninterrupted daemon on the whole file: the alerts to expect.
    ref_log = tmp_path / "ref" / "auth.log"
    ref_log.parent.mkdir()
    ref_log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    ref_cfg = _config(tmp_path / "ref", ref_log, decode_workers)
    ref = Daemon(ref_cfg, tmp_path / "ref.out")
    ref.start()
    ref.settle(tmp_path / "ref" / "state" / "events.db", LINES)
    want = by_line(raised(load_config(ref_cfg)))
    # Windows, sequences, suppression and spray all take part (as in tests/test_storm_alerts.py).
    assert {"auth-brute-force-user", "auth-password-spray", "auth-success-after-failures",
            "sudo-failure"} <= {a["rule"] for a in want}
    assert len(want) > 200

    # The same file, a third of it a backlog and the rest appended while the daemon is killed again and again.
    rng = random.Random(2027 + decode_workers)
    log = tmp_path / "killed" / "auth.log"
    log.parent.mkdir()
    backlog = LINES // 3
    log.write_text("".join(line + "\n" for line in lines[:backlog]), encoding="utf-8")
    cfg = _config(tmp_path / "killed", log, decode_workers)
    db = tmp_path / "killed" / "state" / "events.db"
    daemon = Daemon(cfg, tmp_path / "killed.out")
    errors: list[BaseException] = []
    appender = _appender(log, lines[backlog:], rng, errors)
    daemon.start()
    appender.start()
    kills = terms = 0
    seen: list[int] = []
    while appender.is_alive() or kills < 12 or (count(db) < LINES * 0.9 and kills < 40):
        # Mostly while it reads, evaluates and commits; now and then while it is still starting.
        time.sleep(rng.uniform(0.0, 2.5) if rng.random() < 0.9 else 0.0)
        if rng.random() < 0.1:
            daemon.stop(signal.SIGTERM)
            terms += 1
        else:
            daemon.stop(signal.SIGKILL)
            kills += 1
        seen.append(count(db))
        daemon.start(wait_up=rng.random() < 0.9)
    appender.join()
    assert not errors, errors
    daemon.settle(db, LINES)

    stored = Counter(e["event.original"] for e in stored_events(db))
    expected = Counter(lines)
    output = (tmp_path / "killed.out").read_text(errors="replace")
    print(f"\nworkers {decode_workers}: SIGKILL {kills}, SIGTERM {terms}; events stored at each kill {seen}; "
          f"alerts {len(want)}")
    assert kills >= 12
    assert len(set(seen)) > 5, f"the kills did not fall while the backlog was being stored: {seen}"
    assert stored == expected, (f"{sum((expected - stored).values())} lines lost, "
                                f"{sum((stored - expected).values())} stored twice or unexpected\n{output[-3000:]}")
    got = by_line(raised(load_config(cfg)))
    missing = [a for a in want if a not in got]
    extra = [a for a in got if a not in want]
    assert got == want, (f"{len(got)} alerts where the uninterrupted daemon raised {len(want)}: "
                         f"{len(missing)} missing (first {missing[:1]}), {len(extra)} extra or changed "
                         f"(first {extra[:1]})\n{output[-3000:]}")
