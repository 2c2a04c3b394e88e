"""``sentinel alerts``, ``sentinel silence`` and ``sentinel report`` against a real database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import sentinel.route.state  # noqa: F401 - registers the routing tables
from sentinel.cli.main import main
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.route.loader import load_routing
from sentinel.route.router import Router
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import make_alert

DAY = 86400.0


@pytest.fixture
def cfg(make_config: MakeConfig) -> LoadedConfig:
    cfg = make_config()
    now = time.time()
    db = Database(database_path(cfg))
    with db.transaction() as tx:
        write_alerts(tx, [make_alert(0, severity="critical", at=now - 3600),
                          make_alert(1, severity="high", user="u2", at=now - 2 * DAY),
                          make_alert(2, severity="low", user="u3", rule="new-device", at=now - 600)])
        events = [("e1", now - 200 * DAY, "billing", "olduser"), ("e2", now - 5 * DAY, "billing", "u1001"),
                  ("e3", now - 3 * DAY, "billing", "u1001"), ("e4", now - 1 * DAY, "billing", "u2"),
                  ("e5", now - 4 * DAY, "linux-auth", "root")]
        tx.executemany("INSERT INTO events (id, ts, source, host, user, action, outcome, ip, parsed, doc) "
                       "VALUES (?, ?, ?, 'h1', ?, 'x', 'success', NULL, 1, '{}')", events)
    # Route the outbox so incidents (deadlines) exist, as the worker would.
    Router(load_routing(cfg.alerts_dir)).consume(db.conn, now)
    db.close()
    return cfg


def run(cfg: LoadedConfig, *args: str) -> int:
    return main([*args[:2], "--config", str(cfg.path), *args[2:]] if args[0] in ("alerts", "silence")
                else [args[0], "--config", str(cfg.path), *args[1:]])


def test_list_shows_status_and_incident_deadlines(cfg: LoadedConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "alerts", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t")[-2:] == ["BA deadline", "breach deadline"]
    rows = {line.split("\t")[3] + "/" + line.split("\t")[2]: line.split("\t") for line in out[1:]}
    crit = rows["phi-bulk-export/critical"]
    assert crit[6] == "open" and crit[8] == "in 23h" and crit[9].startswith("in 59d")
    assert rows["phi-bulk-export/high"][8] == "OVERDUE 1d", "24h window passed two days after detection"
    assert rows["new-device/low"][8] == "-", "low alerts have no incident clock"


def test_ack_resolve_and_show(cfg: LoadedConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "alerts", "ack", "phi-bulk-export-u1001", "--by", "ann") == 0
    assert "acknowledged by ann" in capsys.readouterr().out
    assert run(cfg, "alerts", "ack", "phi-bulk-export-u1001", "--by", "ann") == 1
    assert "is acknowledged, not open" in capsys.readouterr().err
    assert run(cfg, "alerts", "resolve", "phi-bulk-export-u2-000001", "--by", "bob") == 0
    capsys.readouterr()
    assert run(cfg, "alerts", "show", "phi-bulk-export-u1001-000000", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "acknowledged" and doc["acked_by"] == "ann" and doc["ba_deadline"] > doc["detected_at"]
    assert run(cfg, "alerts", "list", "--status", "open", "--format", "json") == 0
    assert [a["rule"] for a in json.loads(capsys.readouterr().out)] == ["new-device"]
    assert run(cfg, "alerts", "show", "nosuchalert") == 1


def test_silence_add_list_expire(cfg: LoadedConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "silence", "add", "rule=new-device", "user.name=~u.*", "--duration", "2h", "--author", "ann",
               "--reason", "device rollout CHG-77") == 0
    sid = capsys.readouterr().out.split()[1]
    assert run(cfg, "silence", "list", "--format", "json") == 0
    [s] = json.loads(capsys.readouterr().out)
    assert s["id"] == sid and s["matchers"] == ["rule=new-device", "user.name=~u.*"]
    assert s["reason"] == "device rollout CHG-77" and s["author"] == "ann"
    assert run(cfg, "silence", "add", "nonsense", "--duration", "1h", "--reason", "x") == 1
    assert "bad matcher" in capsys.readouterr().err
    assert run(cfg, "silence", "expire", sid) == 0
    assert run(cfg, "silence", "list", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []


def test_report_markdown_and_json(cfg: LoadedConfig, capsys: pytest.CaptureFixture[str]) -> None:
    run(cfg, "alerts", "ack", "phi-bulk-export-u1001-000000", "--by", "ann")
    run(cfg, "silence", "add", "user.name=u3", "--duration", "1h", "--author", "ann", "--reason", "known scanner")
    capsys.readouterr()
    assert run(cfg, "report", "--from", "30d", "--format", "json", "--gap", "36h", "--dormant", "90d") == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["alerts"]["by_severity"] == {"critical": 1, "high": 1, "low": 1}
    assert rep["time_to_acknowledge"]["critical"]["acknowledged"] == 1
    assert 3500 < rep["time_to_acknowledge"]["critical"]["median_seconds"] < 3700
    assert rep["time_to_acknowledge"]["high"]["unacknowledged"] == 1
    assert [s["reason"] for s in rep["silences"]] == ["known scanner"]
    assert [a["user"] for a in rep["dormant_accounts"]["accounts"]] == ["olduser"]
    gaps = {(g["source"], round(g["seconds"] / DAY)) for g in rep["ingestion_gaps"]}
    # billing: nothing from the start of the period until 5 days ago (25d), then 2-day gaps; auth: only one event.
    assert ("billing", 25) in gaps and ("billing", 2) in gaps and ("linux-auth", 4) in gaps
    assert [i["within_ba_window"] for i in rep["incidents"]].count(True) == 1
    assert run(cfg, "report", "--from", "30d") == 0
    md = capsys.readouterr().out
    for heading in ("## Alerts by severity", "## Time to acknowledge", "## Silences", "## Dormant-account review",
                    "## Gaps in ingestion", "## Incident clock"):
        assert heading in md
    assert "| ann | known scanner | 0 |" in md
    assert "| olduser |" in md


def test_report_needs_an_ordered_period(cfg: LoadedConfig, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "report", "--from", "1d", "--to", "2d") == 1
    assert "--from before --to" in capsys.readouterr().err


def test_commands_on_a_missing_database(make_config: MakeConfig, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    cfg = make_config(state_dir=str(tmp_path / "empty"))
    assert main(["alerts", "list", "--config", str(cfg.path)]) == 1
    assert "no database" in capsys.readouterr().err


def test_report_prefers_the_detection_engines_dormant_digest(cfg: LoadedConfig,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel.events.alerts import Alert

    now = time.time()
    digest = Alert(id="digest-1", rule_id="dormant-account", title="dormant: access review digest",
                   severity="info", group_key="digest@1", first_seen=now, last_seen=now, count=1, event_ids=[],
                   summary="1 account(s) idle", labels={"rule": "dormant-account", "severity": "info",
                                                         "digest": "true"},
                   details={"accounts": [{"account": "svc-legacy", "last_activity": "2025-01-02T00:00:00Z",
                                          "idle_days": 300}], "total": 1, "idle_threshold_days": 90.0,
                            "as_of": "2026-01-01T00:00:00Z"}, created=now - 60)
    db = Database(database_path(cfg))
    with db.transaction() as tx:
        write_alerts(tx, [digest])
    db.close()
    assert run(cfg, "report", "--from", "30d", "--format", "json") == 0
    dormant = json.loads(capsys.readouterr().out)["dormant_accounts"]
    assert [a["user"] for a in dormant["accounts"]] == ["svc-legacy"]
    assert dormant["source"].startswith("rule dormant-account digest")
