"""``sentinel rules``, ``sentinel test-rule`` and ``sentinel accounts dormant`` as an analyst runs them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from sentinel.cli.main import main
from sentinel.daemon.assemble import detection_processors
from sentinel.daemon.build import database_path
from sentinel.store.database import Database
from tests.detect_events import DAY, ev
from tests.fixtures.common import MakeConfig


def test_rules_lists_the_pack(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(detection={"disabled_rules": ["sudo-failure"]})
    assert main(["rules", "--config", str(cfg.path)]) == 0
    out = capsys.readouterr().out
    assert "account-terminated-activity" in out and "critical" in out
    assert "sudo-failure" not in out and "32 rule(s) enabled" in out


def test_rules_hipaa_matrix(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config()
    assert main(["rules", "--hipaa", "--config", str(cfg.path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert "mfa-push-bombing" in lines["164.312(d)"]
    assert "auth-root-login" in lines["164.312(a)(2)(i)"]
    assert "endpoint-audit-logging-stopped" in lines["164.312(b)"]
    assert "no rule" in lines["164.312(a)(2)(iii)"]  # automatic logoff is a setting, not a log pattern


def test_test_rule_with_jsonl_events(tmp_path: Path, make_config: MakeConfig,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # A failed Okta Verify push, as every Okta form logs it (user.authentication.auth_via_mfa).
    events = [ev("mfa_verify", i * 60, "alice@corp.example", "failure", source__ip="198.51.100.7",
                 sentinel__authentication__factor="push") for i in range(4)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e.fields) for e in events) + b"\n")
    cfg = make_config()
    assert main(["test-rule", "mfa-push-bombing", "--events", str(path), "--config", str(cfg.path)]) == 0
    out = capsys.readouterr().out
    assert "4 events, 4 matched the filter, 1 alert(s)" in out
    # Fired at the third push; the fourth, inside its suppression, joins it: the summary gives the real figures.
    assert "alice@corp.example denied 4 MFA pushes within 3m" in out
    assert "why:      count = 3 within 10m (threshold 3)" in out
    assert out.count("mfa_verify  failure  user=alice@corp.example") == 4


def test_test_rule_with_a_raw_log_and_collector(tmp_path: Path, make_config: MakeConfig,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "auth.log"
    # Real accounts: guesses at names the server does not know ("invalid user") are a scanner's, not a spray.
    lines = [f"Mar  2 09:00:{i:02d} web1 sshd[2738]: Failed password for u{i} from 203.0.113.9 "
             f"port {52100 + i} ssh2" for i in range(14)]
    log.write_text("\n".join(lines) + "\n")
    cfg = make_config()
    assert main(["test-rule", "auth-password-spray", "--log", str(log), "--collector", "linux-auth",
                 "--config", str(cfg.path)]) == 0
    out = capsys.readouterr().out
    assert "14 events, 14 matched the filter, 1 alert(s)" in out
    # Fired at the twelfth account; the two after it join the alert, so it gives the real figures.
    assert "14 distinct accounts failed to sign in from 203.0.113.9 within 13s" in out


def test_test_rule_unknown_rule(make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "e.jsonl").write_text("")
    cfg = make_config()
    assert main(["test-rule", "no-such-rule", "--events", str(tmp_path / "e.jsonl"), "--config", str(cfg.path)]) == 1
    assert "unknown or disabled rule 'no-such-rule'" in capsys.readouterr().err


def test_accounts_dormant_from_the_daemons_rule_state(make_config: MakeConfig,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config()
    db = Database(database_path(cfg))
    (engine,) = detection_processors(cfg, db)
    events = [ev("ssh_login", 0, "olduser", "success"), ev("user_login", 10, "Idle@corp.example", "success"),
              ev("ssh_login", 95 * DAY, "active", "success")]
    with db.transaction() as tx:
        engine.process(tx, events, 0.0)
    db.close()
    as_of = "2026-06-10T00:00:00Z"  # 100 days after the first logins, 5 after "active"
    assert main(["accounts", "dormant", "--days", "90", "--format", "csv", "--as-of", as_of,
                 "--config", str(cfg.path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["account"] for r in rows) == ["Idle@corp.example", "olduser"]
    assert all(int(r["idle_days"]) >= 90 for r in rows)
    assert main(["accounts", "dormant", "--days", "90", "--format", "json", "--as-of", as_of,
                 "--config", str(cfg.path)]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert len(doc["accounts"]) == 2
    assert main(["accounts", "dormant", "--days", "1", "--as-of", as_of, "--config", str(cfg.path)]) == 0
    assert "3 account(s) idle for at least 1 days" in capsys.readouterr().out
