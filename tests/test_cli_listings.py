"""Nothing silently cut: listings say what they left out, a misspelt field is named, short ids are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops_helpers import OpsEnv

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> OpsEnv:
    """200 sudo failures by 60 users, replayed with the sudo-failure rule: 200 events, 60 alerts."""
    env = OpsEnv(tmp_path_factory.mktemp("listings"))
    shipped_rule = SHIPPED / "rules" / "auth" / "sudo-failure.yaml"
    (env.base / "rules" / "sudo-failure.yaml").write_text(shipped_rule.read_text())
    lines = [f"Feb 24 00:{i // 60 % 60:02d}:{i % 60:02d} web1 sudo:   user{i % 60} : 3 incorrect password attempts ; "
             f"TTY=pts/1 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls\n" for i in range(200)]
    log = env.base / "sudo.log"
    log.write_text("".join(lines))
    done = cli("replay", "-c", str(env.config), "--collector", "linux-auth", "--quiet", "--workers", "0", str(log))
    assert done.returncode == 0, done.stderr
    return env


def test_search_says_how_many_it_left_out(stored: OpsEnv) -> None:
    done = cli("search", "-c", str(stored.config), "event.action=sudo_failure", "--since", "3650d")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 50
    assert "showing 50 of 200 events (use --limit)" in done.stderr
    done = cli("search", "-c", str(stored.config), "event.action=sudo_failure", "--limit", "500", "--format", "json")
    assert len(done.stdout.splitlines()) == 200 and "(200 events)" in done.stderr


def test_search_warns_about_an_unknown_field(stored: OpsEnv) -> None:
    done = cli("search", "-c", str(stored.config), "nosuch.field=1")
    assert "warning: unknown field `nosuch.field`" in done.stderr and "(0 events)" in done.stderr
    done = cli("search", "-c", str(stored.config), "user.nam=user1")
    assert "warning: unknown field `user.nam` (did you mean `user.name`?)" in done.stderr
    done = cli("search", "-c", str(stored.config), "user.name=user1")
    assert "warning" not in done.stderr and "(4 events)" in done.stderr


def test_alerts_list_says_how_many_it_left_out(stored: OpsEnv) -> None:
    done = cli("alerts", "list", "-c", str(stored.config), "--limit", "10")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 10
    assert "showing 10 of 60 alerts (use --limit)" in done.stderr
    done = cli("alerts", "list", "-c", str(stored.config), "--format", "json")
    assert len(json.loads(done.stdout)) == 60 and "(60 alerts)" in done.stderr


def test_a_too_short_alert_id_prefix_says_so(stored: OpsEnv) -> None:
    done = cli("alerts", "show", "-c", str(stored.config), "ab")
    assert done.returncode == 1
    assert "alert id prefix 'ab' is too short: give at least 6 characters" in done.stderr
    listing = cli("alerts", "list", "-c", str(stored.config), "--format", "json")
    full = json.loads(listing.stdout)[0]["id"]
    assert cli("alerts", "show", "-c", str(stored.config), full[:8]).returncode == 0


def test_audit_log_takes_format_json_and_keeps_the_json_alias(stored: OpsEnv, tmp_path: Path) -> None:
    from sentinel.audit.chain import AuditLog

    path = tmp_path / "audit.jsonl"
    AuditLog(path).append("start", actor="test", note="x")
    by_format = cli("audit", "log", "--file", str(path), "--format", "json")
    by_alias = cli("audit", "log", "--file", str(path), "--json")
    assert by_format.returncode == 0 and by_format.stdout == by_alias.stdout
    assert json.loads(by_format.stdout.splitlines()[0])["action"] == "start"
