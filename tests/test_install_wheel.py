"""The wheel as an operator gets it: built, installed into a fresh environment that cannot see the checkout,
``sentinel init`` → ``check`` → the daemon raising an alert from a log file; then an upgrade that keeps the
operator's edited rule and brings a new shipped rule."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.install_helpers import (
    build_wheel,
    clean_env,
    copy_source,
    new_venv,
    run,
    set_version,
    timed_install,
    without_checkout,
)
from tests.ops_helpers import free_port, wait_until

pytestmark = pytest.mark.slow

NEW_RULE = """id: upgrade-probe-sudo-to-root-shell
title: Root shell through sudo
description: Added in the newer build to show an upgrade brings new shipped rules.
severity: low
tags: ["hipaa:164.312(b)"]
filter:
  event.action: sudo
type: match
group_by: [user.name]
summary: "{user.name} ran sudo"
runbook: Confirm the change was approved.
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _syslog(text: str) -> str:
    # The site's zone (init --timezone) is how sentinel reads syslog's zone-less timestamps.
    return f"{datetime.now(ZoneInfo('America/Chicago')).strftime('%b %e %H:%M:%S')} billing-app-01 {text}\n"


def test_wheel_install_init_check_alert_and_upgrade(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    dist = tmp_path / "dist"
    wheel1 = build_wheel(src, dist)
    assert wheel1.name == "phi_sentinel-0.1.0-py3-none-any.whl"
    names = zipfile.ZipFile(wheel1).namelist()
    for shipped in ("sentinel/shipped/collectors/linux-auth.yaml", "sentinel/shipped/rules/auth/auth-root-login.yaml",
                    "sentinel/shipped/alerts/routes.yaml", "sentinel/shipped/alerts/templates/default.yaml",
                    "sentinel/shipped/config/sentinel.yaml", "sentinel/shipped/config/grafana/sentinel.json",
                    "sentinel/shipped/config/prometheus/sentinel-alerts.yml",
                    "sentinel/shipped/config/logrotate/sentinel", "sentinel/shipped/systemd/sentinel.service",
                    "sentinel/shipped/systemd/sysusers.d/sentinel.conf",
                    "phi_sentinel-0.1.0.dist-info/licenses/LICENSE"):
        assert shipped in names, shipped

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_ = new_venv(tmp_path / "venv", elsewhere)
    seconds = timed_install(bin_ / "pip", wheel1, elsewhere)
    print(f"wheel {wheel1.stat().st_size} bytes; fresh install with dependencies {seconds:.1f} s")

    def sentinel(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(without_checkout([str(bin_ / "sentinel"), *args]), cwd=elsewhere, check=check)

    # The demo's old failure mode: without a checkout it could not find collectors/.
    located = run(without_checkout([str(bin_ / "python"), "-c",
                                    "import sentinel.shipped as s; print(s.shipped_path())"]), cwd=elsewhere)
    assert located.stdout.strip().startswith(str(tmp_path / "venv")), located.stdout

    site = tmp_path / "site"
    log = tmp_path / "logs" / "auth.log"
    log.parent.mkdir()
    log.touch()
    metrics = free_port()
    init = sentinel("init", "--prefix", str(site), "--timezone", "America/Chicago",
                    "--source", f"linux-auth={log}", "--metrics", f"127.0.0.1:{metrics}",
                    "--api", f"127.0.0.1:{free_port()}")
    cfg = site / "etc" / "sentinel" / "sentinel.yaml"
    assert f"sentinel check -c {cfg}" in init.stdout, init.stdout
    etc = cfg.parent
    assert (etc / "sentinel.env").stat().st_mode & 0o777 == 0o600
    assert (site / "var" / "lib" / "sentinel").stat().st_mode & 0o777 == 0o700
    assert "${SENTINEL_ONCALL_PAGER_URL}" in (etc / "alerts" / "receivers.yaml").read_text()
    assert [p.name for p in (etc / "rules").iterdir()] == []

    checked = sentinel("check", "-c", str(cfg))
    assert "configuration OK" in checked.stdout, checked.stdout

    # The operator edits a shipped rule (a copy with the same id) and turns another off.
    (shipped_rule,) = (tmp_path / "venv").glob("lib/python*/site-packages/sentinel/shipped/rules/auth/"
                                               "auth-root-login.yaml")
    edited = etc / "rules" / "auth-root-login.yaml"
    edited.write_text(shipped_rule.read_text().replace("title: Direct root login", "title: Root login (site)")
                      .replace("severity: high", "severity: critical"))
    (etc / "rules" / "off.yaml").write_text("id: sudo-failure\nenabled: false\n")
    edited_sha = _sha(edited)
    cfg_sha = _sha(cfg)
    listing = sentinel("rules", "-c", str(cfg)).stdout
    root_line = next(line for line in listing.splitlines() if line.startswith("auth-root-login "))
    assert "critical" in root_line and "Root login (site)" in root_line and f"[{edited} (replaces shipped" in root_line
    assert any(line.startswith("auth-brute-force-user ") and line.endswith("[shipped]")
               for line in listing.splitlines())
    assert f"sudo-failure                               off      (turned off by {etc / 'rules' / 'off.yaml'})" \
        in listing, listing

    daemon = subprocess.Popen(without_checkout([str(bin_ / "sentinel"), "run", "-c", str(cfg)]), cwd=elsewhere,
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _ready(metrics), 60, "the installed daemon's /readyz")
        with log.open("a") as fh:
            fh.write(_syslog("sshd[4242]: Accepted password for root from 198.51.100.7 port 50022 ssh2"))
        alerts: list[dict[str, object]] = []

        def raised() -> bool:
            nonlocal alerts
            alerts = json.loads(sentinel("alerts", "list", "-c", str(cfg), "--format", "json").stdout or "[]")
            return bool(alerts)

        wait_until(raised, 60, "an alert from the installed daemon")
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert [(a["rule"], a["severity"]) for a in alerts] == [("auth-root-login", "critical")], alerts

    # A newer build: its shipped copy of the edited rule changed too, and it ships one rule more.
    set_version(src, "0.2.0")
    rule_file = src / "sentinel" / "shipped" / "rules" / "auth" / "auth-root-login.yaml"
    rule_file.write_text(rule_file.read_text().replace("title: Direct root login", "title: Direct root login (v2)"))
    (src / "sentinel" / "shipped" / "rules" / "auth" / "upgrade-probe.yaml").write_text(NEW_RULE)
    wheel2 = build_wheel(src, dist)
    seconds = timed_install(bin_ / "pip", wheel2, elsewhere)
    print(f"upgrade to {wheel2.name}: {seconds:.1f} s")
    version = run([str(bin_ / "python"), "-c", "import importlib.metadata as m; print(m.version('phi-sentinel'))"],
                  cwd=elsewhere).stdout.strip()
    assert version == "0.2.0"

    assert _sha(edited) == edited_sha and _sha(cfg) == cfg_sha, "the upgrade left the operator's files alone"
    again = sentinel("init", "--prefix", str(site))
    assert "created" not in again.stdout, again.stdout
    assert _sha(edited) == edited_sha and _sha(cfg) == cfg_sha, "init again changed nothing"
    listing = sentinel("rules", "-c", str(cfg)).stdout
    lines = listing.splitlines()
    assert any(line.startswith("upgrade-probe-sudo-to-root-shell ") and line.endswith("[shipped]") for line in lines)
    root_line = next(line for line in lines if line.startswith("auth-root-login "))
    assert "Root login (site)" in root_line and "(v2)" not in root_line, root_line
    assert "turned off by" in listing
    assert "configuration OK" in sentinel("check", "-c", str(cfg)).stdout


def _ready(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        time.sleep(0.2)
        return False
