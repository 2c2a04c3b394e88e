"""The daemon's life as systemd and an operator see it: sd_notify, SIGHUP reloads, SIGTERM drain, audit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.audit.chain import AuditLog, verify
from tests.ops_helpers import (
    DaemonProcess,
    NotifyListener,
    OpsEnv,
    append,
    auth_line,
    metric_value,
    scrape,
    wait_until,
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel.cli.main", *args], capture_output=True, text=True,
                          timeout=60)


def _reloads(env: OpsEnv) -> list[dict]:
    return [r.details for r in AuditLog(env.state / "audit.jsonl").records() if r.action == "config_reload"]


@pytest.fixture
def env(tmp_path: Path) -> OpsEnv:
    return OpsEnv(tmp_path)


def test_sd_notify_ready_watchdog_stopping_over_abstract_socket(env: OpsEnv, tmp_path: Path) -> None:
    listener = NotifyListener(abstract=f"sentinel-test-{tmp_path.name}")
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "400000"})
    try:
        ready = listener.wait_for(lambda m: m.get("READY") == "1")
        assert ready["STATUS"].startswith("running: 1 sources")
        first = listener.messages.index(ready)
        listener.wait_for(lambda m: m.get("WATCHDOG") == "1", after=first)
        pings = [m for m in listener.messages if m.get("WATCHDOG") == "1"]
        wait_until(lambda: len([m for m in listener.messages if m.get("WATCHDOG") == "1"]) >= len(pings) + 2,
                   5, "repeated watchdog pings at half of WATCHDOG_USEC")
        daemon.signal(signal.SIGTERM)
        stopping = listener.wait_for(lambda m: m.get("STOPPING") == "1")
        assert "SIGTERM" in stopping["STATUS"]
        assert daemon.wait() == 0
    finally:
        daemon.stop()
        listener.close()


def test_reload_valid_then_invalid_collector_then_invalid_rule(env: OpsEnv, tmp_path: Path) -> None:
    listener = NotifyListener(path=tmp_path / "notify.sock")
    append(env.log, [auth_line(i) for i in range(20)])
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        wait_until(lambda: env.events_stored() == 20, what="first 20 events")

        # 1. a valid change: the collector file's content changes; the reload swaps it in.
        collector = env.base / "collectors" / "linux-auth.yaml"
        collector.write_text(collector.read_text() + "\n# tuned by the operator\n")
        mark = len(listener.messages)
        daemon.signal(signal.SIGHUP)
        reloading = listener.wait_for(lambda m: m.get("RELOADING") == "1", after=mark)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        listener.wait_for(lambda m: m.get("READY") == "1", after=mark)
        wait_until(lambda: len(_reloads(env)) == 1, what="audit record of the reload")
        ok = _reloads(env)[0]
        assert ok["result"] == "success"
        assert str(collector) in ok["changed"] and len(ok["changed"][str(collector)]) == 64
        text = scrape(env.metrics_port)
        assert metric_value(text, "sentinel_config_reloads_total", 'result="success"') == 1.0
        assert metric_value(text, "sentinel_config_last_reload_successful") == 1.0

        # 2. an invalid collector: rejected with file and line, the old set keeps ingesting.
        broken = env.base / "collectors" / "broken.yaml"
        broken.write_text("name: broken\ndescription: test\nformat: syslog\n"
                          "patterns:\n  - name: bad\n    regex: '(unclosed'\n")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: len(_reloads(env)) == 2, what="audit record of the failed reload")
        failed = _reloads(env)[1]
        assert failed["result"] == "failure"
        assert any(f"{broken}:6" in e and "regular expression" in e for e in failed["errors"]), failed["errors"]
        assert "reload rejected" in daemon.stderr() and "broken.yaml" in daemon.stderr()
        append(env.log, [auth_line(i) for i in range(20, 30)])
        wait_until(lambda: env.events_stored() == 30, what="ingestion to go on after a rejected reload")
        text = scrape(env.metrics_port)
        assert metric_value(text, "sentinel_config_reloads_total", 'result="failure"') == 1.0
        assert metric_value(text, "sentinel_config_last_reload_successful") == 0.0

        # 3. an invalid rule file (not even YAML): rejected too.
        broken.unlink()
        bad_rule = env.base / "rules" / "bad.yaml"
        bad_rule.write_text("id: [unclosed\n")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: len(_reloads(env)) == 3, what="audit record of the rule reload")
        assert _reloads(env)[2]["result"] == "failure"
        assert any(str(bad_rule) in e for e in _reloads(env)[2]["errors"])
        assert daemon.proc.poll() is None

        # 4. fixed again, through `sentinel reload`, which waits for the result in the audit trail.
        bad_rule.unlink()
        done = _cli("reload", "--config", str(env.config), "--timeout", "20")
        assert done.returncode == 0, done.stderr
        assert "reloaded" in done.stdout
        assert metric_value(scrape(env.metrics_port), "sentinel_config_last_reload_successful") == 1.0
    finally:
        daemon.stop()
        listener.close()
    assert verify(env.state / "audit.jsonl").ok
    actions = [r.action for r in AuditLog(env.state / "audit.jsonl").records()]
    assert actions == ["start", "config_reload", "config_reload", "config_reload", "config_reload", "stop"]


def test_sigterm_drains_every_line_written_before_it(env: OpsEnv, tmp_path: Path) -> None:
    listener = NotifyListener(path=tmp_path / "notify.sock")
    append(env.log, [auth_line(i) for i in range(1000)])
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        # Written in one go right before the signal: none of it can have been read yet.
        append(env.log, [auth_line(i, ok=i % 10 != 0) for i in range(1000, 6000)])
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.stop()
        listener.close()
    assert env.events_stored() == 6000
    stop = [r for r in AuditLog(env.state / "audit.jsonl").records() if r.action == "stop"]
    assert stop and stop[-1].details["drain_complete"] is True
    assert any(m.get("STOPPING") == "1" for m in listener.messages)
    assert not (env.state / "sentinel.pid").exists()


def test_reload_cli_without_a_daemon_says_so(env: OpsEnv) -> None:
    done = _cli("reload", "--config", str(env.config))
    assert done.returncode == 1
    assert "no pid file" in done.stderr


def test_audit_log_cli_shows_records(env: OpsEnv) -> None:
    log = AuditLog(env.state / "audit.jsonl")
    log.append("ack", actor="alice", alert_id="a1")
    log.append("silence", actor="bob", matcher="rule=ssh-brute-force", duration_seconds=3600)
    done = _cli("audit", "log", "--config", str(env.config), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["action"], r["actor"]) for r in rows] == [("ack", "alice"), ("silence", "bob")]


def test_a_burst_of_signals_never_hangs_the_daemon(env: OpsEnv, tmp_path: Path) -> None:
    """Thousands of SIGHUPs land while the main loop is inside its wait: it keeps storing, then stops.

    A 1 ms poll keeps the loop in ``Event.wait``/``clear`` most of the time: where a handler that sets
    that event from the interrupted thread deadlocks on its lock (seen as a SIGTERM that never stopped).
    """
    env.write_config(pipeline={"start_position": "beginning", "poll_interval_ms": 1, "batch_max_lines": 200})
    listener = NotifyListener(path=tmp_path / "notify.sock")
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        for round_ in range(10):
            for _ in range(500):
                daemon.signal(signal.SIGHUP)
            append(env.log, [auth_line(round_)])
            wait_until(lambda n=round_ + 1: env.events_stored() == n, timeout=30,
                       what=f"line {round_ + 1} stored after {500 * (round_ + 1)} SIGHUPs")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        daemon.stop()
        listener.close()
    actions = [r.action for r in AuditLog(env.state / "audit.jsonl").records()]
    assert actions[0] == "start" and actions[-1] == "stop"
    assert "config_reload" in actions
