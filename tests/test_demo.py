"""``sentinel demo`` end to end: the real CLI, the real daemon, a scratch directory, from any working directory."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SOURCES = {"linux-auth", "auditd", "okta", "entra", "billing-audit", "osquery"}


def demo_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentinel.cli.main", "demo", *args]


def stored(db: Path) -> tuple[dict[str, int], int, set[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = dict(conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall())
        unparsed = conn.execute("SELECT coalesce(sum(count), 0) FROM source_stats WHERE outcome = 'unparsed'")
        rules = {r for (r,) in conn.execute("SELECT DISTINCT rule_id FROM alerts")}
        return events, unparsed.fetchone()[0], rules
    finally:
        conn.close()


@pytest.mark.slow
def test_demo_stores_events_from_every_source_and_raises_alerts(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    proc = subprocess.run(demo_cmd("--duration", "8", "--dir", str(demo), "--days", "8", "--users", "40",
                                   "--interval", "2"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # 8 days, or more when the rules' learning periods need them (the note says why).
    assert ("Generating 8 days of logs" in out or "days of history instead of 8, so the rules' learning periods "
            "end before the planted incidents" in out) and "Demo finished" in out
    assert f"sentinel search -c {demo / 'sentinel.yaml'}" in out
    events, unparsed, rules = stored(demo / "state" / "events.db")
    assert set(events) == SOURCES, events
    assert all(n > 0 for n in events.values())
    assert unparsed == 0
    # History lines plus the live stream: more events than the generated files had at the start.
    assert sum(events.values()) > 10_000
    shipped_rules = Path(__file__).resolve().parent.parent / "sentinel" / "shipped" / "rules"
    rule_ids = {p.stem for p in shipped_rules.rglob("*.yaml")}
    if "account-terminated-activity" in rule_ids:
        assert "account-terminated-activity" in rules, rules
    assert (demo / "logs" / "ground-truth.json").exists()

    # The directory can be explored afterwards with the commands the demo printed.
    search = subprocess.run([sys.executable, "-m", "sentinel.cli.main", "search", "-c", str(demo / "sentinel.yaml"),
                             "sentinel.source=okta", "--since", "30d", "--limit", "3"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert search.returncode == 0, search.stderr
    assert "showing 3 of" in search.stderr and "(use --limit)" in search.stderr


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_cleanly_with_a_summary(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    log = tmp_path / "out.txt"
    with log.open("w") as fh:
        proc = subprocess.Popen(demo_cmd("--duration", "120", "--dir", str(demo), "--days", "2", "--users", "30",
                                         "--interval", "1"),
                                cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 120
            while "events (" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            assert "events (" in log.read_text(), log.read_text()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "stopping" in text and "Demo finished" in text
    events, _, _ = stored(demo / "state" / "events.db")
    assert events


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run(demo_cmd("--dir", str(tmp_path), "--duration", "1"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "not made by 'sentinel demo'" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
