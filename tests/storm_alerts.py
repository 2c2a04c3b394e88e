"""The alerts the full rule pack raises on a small storm (tests/storm.py), as an analyst would compare them.

``python -m tests.storm_alerts`` rewrites ``tests/data/storm_alerts.json``: the reference the alert-equality test
(tests/test_storm_alerts.py) holds every later version of the engine to. It was first written by the code
before the storm optimisations of issue #18; rewrite it only for a deliberate change to what the rules raise.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from sentinel.conf.loader import load_config
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.daemon.replay import replay_files
from tests.storm import make_storm_log

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
FIXTURE = ROOT / "tests" / "data" / "storm_alerts.json"
LINES = 5000
# Fewer accounts and addresses than the benchmark's storm, so that 5,000 lines trip every kind of rule in the pack.
ACCOUNTS, ADDRESSES = 60, 80
# Above the accounts and addresses, below their pairs: rules keyed by one keep their windows, rules keyed by both
# evict at the bound all through the storm.
MAX_KEYS = 100
REFERENCE_TIME = 1_796_083_200.0  # 1 December 2026: the storm's "Nov 27" lines are of that year


def storm_config(base: Path, log: Path, max_keys: int = MAX_KEYS, batch_lines: int = 4096) -> LoadedConfig:
    base.mkdir(parents=True, exist_ok=True)
    doc = {"state_dir": str(base / "state"), "collectors_dir": str(SHIPPED / "collectors"),
           "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
           "pipeline": {"start_position": "beginning", "poll_interval_ms": 50, "batch_max_lines": batch_lines},
           "detection": {"max_keys_per_rule": max_keys},
           "metrics": {"enabled": False}, "api": {"enabled": False}, "notify": {"enabled": False},
           "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}
    (base / "sentinel.yaml").write_text(yaml.safe_dump(doc))
    return load_config(base / "sentinel.yaml")


def raised(cfg: LoadedConfig) -> list[dict[str, Any]]:
    """Every alert's identity and figures (not when it was written), in id order."""
    conn = sqlite3.connect(database_path(cfg))
    try:
        rows = conn.execute("SELECT id, rule_id, group_key, count, first_seen, last_seen, event_ids, summary, labels, "
                            "details FROM alerts ORDER BY id").fetchall()
        queued = {r[0] for r in conn.execute("SELECT alert_id FROM outbox")}
    finally:
        conn.close()
    return [{"id": r[0], "rule": r[1], "key": r[2], "count": r[3], "first_seen": r[4], "last_seen": r[5],
             "event_ids": orjson.loads(r[6]), "summary": r[7], "labels": orjson.loads(r[8]),
             "details": orjson.loads(r[9]), "queued": r[0] in queued} for r in rows]


def replayed(base: Path, batch_size: int, max_keys: int = MAX_KEYS, lines: int = LINES) -> list[dict[str, Any]]:
    """The storm replayed in batches of ``batch_size`` lines (decoded here); the alerts it raised."""
    log = base / "auth.log"
    base.mkdir(parents=True, exist_ok=True)
    make_storm_log(log, lines, accounts=ACCOUNTS, addresses=ADDRESSES)
    # Syslog stamps have no year: replay takes it from the file's time, so that is fixed too.
    os.utime(log, (REFERENCE_TIME, REFERENCE_TIME))
    cfg = storm_config(base, log, max_keys)
    replay_files(cfg, "linux-auth", [str(log)], progress=False, batch_size=batch_size, workers=0)
    return raised(cfg)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = replayed(Path(tmp), 4096)
    FIXTURE.write_bytes(orjson.dumps(got, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    print(f"{FIXTURE}: {len(got)} alerts", file=sys.stderr)


if __name__ == "__main__":
    main()
