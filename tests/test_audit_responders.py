"""Responders' decisions (acknowledge, resolve, silence) land in the hash-chained audit trail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from sentinel.daemon.build import database_path
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import make_alert

ROOT = Path(__file__).resolve().parents[1]


def _sentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_ack_resolve_and_silences_are_audited_and_verifiable(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = Database(database_path(cfg))
    alert = make_alert(1)
    with db.transaction() as tx:
        write_alerts(tx, [alert])
    db.close()
    c = str(cfg.path)
    assert _sentinel("alerts", "ack", "-c", c, alert.id, "--by", "oncall.ann").returncode == 0
    assert _sentinel("alerts", "resolve", "-c", c, alert.id, "--by", "oncall.ann").returncode == 0
    added = _sentinel("silence", "add", "-c", c, "rule=phi-bulk-export", "--duration", "2h", "--author", "sec.lead",
                      "--reason", "planned data migration")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    assert _sentinel("silence", "expire", "-c", c, silence_id).returncode == 0

    records = [orjson.loads(line) for line in (cfg.state_dir / "audit.jsonl").read_text().splitlines()]
    actions = [(r["action"], r.get("actor")) for r in records]
    assert actions == [("ack", "oncall.ann"), ("resolve", "oncall.ann"), ("silence_add", "sec.lead"),
                       ("silence_expire", actions[3][1])]
    assert records[0]["details"]["alert_id"] == alert.id
    assert records[2]["details"]["reason"] == "planned data migration"
    assert records[3]["details"]["silence_id"] == silence_id
    verify = _sentinel("audit", "verify", "-c", c)
    assert verify.returncode == 0, verify.stdout + verify.stderr
