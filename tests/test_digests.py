"""Access-review digests that do not depend on the order history arrives in, and a historical
``accounts dormant --as-of``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.assemble import detection_processors
from sentinel.daemon.build import database_path
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import FakeClock
from tests.ingest_helpers import drain, open_daemon

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
D0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def _iso(day: float) -> str:
    return datetime.fromtimestamp(D0 + day * DAY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ssh(day: float, user: str) -> str:
    return f"{_iso(day)} web01 sshd[1]: Accepted password for {user} from 10.0.0.1 port 22 ssh2"


def _okta(day: float, user: str) -> str:
    return orjson.dumps({"uuid": f"{user}-{day}", "published": _iso(day), "eventType": "user.session.start",
                         "actor": {"id": "00u1", "type": "User", "alternateId": user},
                         "client": {"ipAddress": "198.51.100.7"}, "outcome": {"result": "SUCCESS"}}).decode()


def _history(base: Path) -> tuple[Path, Path]:
    """140 days: busy accounts in both sources, accounts that went quiet in each, one idle July-November."""
    auth, okta = base / "auth.log", base / "okta.jsonl"
    auth_lines = [(d, _ssh(d, "alice")) for d in range(120)] + [(0, _ssh(0, "olda")), (1, _ssh(1, "olda")),
                                                               (0.5, _ssh(0.5, "summer")), (140, _ssh(140, "summer"))]
    okta_lines = [(d + 0.25, _okta(d + 0.25, "bob@example.com")) for d in range(120)] + [
        (2, _okta(2, "oldo@example.com"))]
    auth.write_text("".join(line + "\n" for _, line in sorted(auth_lines)))
    okta.write_text("".join(line + "\n" for _, line in sorted(okta_lines)))
    return auth, okta


def _config(base: Path, make_config: MakeConfig, auth: Path, okta: Path) -> LoadedConfig:
    rules = base / "rules"
    rules.mkdir()
    shutil.copy(SHIPPED / "rules" / "accounts" / "account-dormant-activity.yaml", rules)
    return make_config(state_dir=str(base / "state"), rules_dir=str(rules), notify={"enabled": False},
                       sources=[{"collector": "linux-auth", "paths": [str(auth)]},
                                {"collector": "okta", "paths": [str(okta)]}])


def _replay(cfg: LoadedConfig, collector: str, path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sentinel.cli.main", "replay", "--config", str(cfg.path),
                          "--collector", collector, "--quiet", "--workers", "0", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def _digests(cfg: LoadedConfig) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(database_path(cfg))
    try:
        rows = conn.execute("SELECT group_key, count, details FROM alerts WHERE group_key LIKE 'digest@%' "
                            "ORDER BY first_seen").fetchall()
    finally:
        conn.close()
    return [(key, count, json.loads(details)["as_of"],
             sorted(a["account"] for a in json.loads(details)["accounts"])) for key, count, details in rows]


def test_digests_are_the_same_in_either_replay_order_and_in_a_daemon_backlog(tmp_path: Path,
                                                                             make_config: MakeConfig) -> None:
    results = {}
    for name in ("auth_first", "okta_first", "daemon"):
        base = tmp_path / name
        base.mkdir()
        auth, okta = _history(base)
        cfg = _config(base, make_config, auth, okta)
        if name == "auth_first":
            _replay(cfg, "linux-auth", auth)
            _replay(cfg, "okta", okta)
        elif name == "okta_first":
            _replay(cfg, "okta", okta)
            _replay(cfg, "linux-auth", auth)
        else:  # the daemon started on a backlog: all of it arrives in one 4,096-line batch
            d = open_daemon(cfg, FakeClock(D0 + 200 * DAY))
            assert d.db is not None
            d.processors.extend(detection_processors(cfg, d.db, d.metrics))
            try:
                drain(d)
            finally:
                d.close()
        results[name] = _digests(cfg)
    digests = results["daemon"]
    assert len(digests) == 20  # one per weekly boundary within the 140 days the data spans
    assert results["auth_first"] == digests and results["okta_first"] == digests
    # Idle for 90 days from July 1: olda (auth.log), oldo (Okta) and summer appear in the review.
    late = digests[-1]
    assert late[3] == ["olda", "oldo@example.com", "summer"] and late[1] == 3
    assert digests[0][1] == 0


def test_accounts_dormant_as_of_a_past_date_uses_the_history(tmp_path: Path, make_config: MakeConfig) -> None:
    auth, okta = _history(tmp_path)
    cfg = _config(tmp_path, make_config, auth, okta)
    _replay(cfg, "linux-auth", auth)

    def dormant(as_of: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "sentinel.cli.main", "accounts", "dormant", "--days", "90",
                              "--format", "json", "--as-of", as_of, "--config", str(cfg.path)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [a["account"] for a in json.loads(out.stdout)["accounts"]]

    # summer: active July 1, then not until November 18. As of October 15 it was 106 days idle.
    assert dormant("2026-10-15T00:00:00Z") == ["summer", "olda"]  # longest idle first
    assert dormant("2026-09-01T00:00:00Z") == []  # nobody idle 90 days yet
    assert dormant("2026-11-25T00:00:00Z") == ["olda"]  # summer is back
