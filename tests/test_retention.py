"""Retention a log writer cannot exploit: events go when old by their own time AND by their arrival;
year-less stamps that may be in the future are tagged."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import FakeClock
from tests.ingest_helpers import append, drain, open_daemon, stored

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0


def test_backdated_lines_survive_retention_until_they_are_old_by_arrival(tmp_path: Path,
                                                                        make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}],
                      storage={"sqlite": {"retention_days": 30, "retention_check_seconds": 60}},
                      detection={"enabled": False})
    clock = FakeClock(NOW)
    d = open_daemon(cfg, clock)
    try:
        # An attacker who can write a log line stamps it seven years back, hoping the next pass deletes it.
        append(log, [f"2019-01-0{i + 1}T00:00:00Z web1 sshd[{i}]: Failed password for root from 203.0.113.9 "
                     f"port {4000 + i} ssh2" for i in range(5)])
        assert drain(d, clock) == 5
        for _ in range(3):  # several passes, minutes and days apart
            clock.advance(DAY)
            d.idle()
        assert len(stored(cfg)) == 5
        assert d.metrics.retention_deleted.labels("age")._value.get() == 0
        clock.advance(30 * DAY)  # now they are old by arrival too
        d.idle()
        assert stored(cfg) == []
        assert d.metrics.retention_deleted.labels("age")._value.get() == 5
    finally:
        d.close()


def test_a_syslog_stamp_days_ahead_is_tagged_not_silently_last_year(tmp_path: Path,
                                                                    make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}], detection={"enabled": False})
    clock = FakeClock(NOW)
    d = open_daemon(cfg, clock)
    try:
        append(log, ["Jan  3 00:00:00 web1 sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2",
                     "Dec 31 23:59:00 web1 sshd[2]: Failed password for root from 203.0.113.9 port 2 ssh2",
                     "Feb 20 10:00:00 web1 sshd[3]: Failed password for root from 203.0.113.9 port 3 ssh2"])
        os.utime(log, (NOW, NOW))  # year-less stamps are read against the file's time: written "now"
        drain(d, clock)
    finally:
        d.close()
    ahead, new_year, spring = stored(cfg)
    # Two days ahead: read as last January (the only year rule possible), but tagged for the analyst.
    assert ahead["@timestamp"] == "2025-01-03T00:00:00.000Z" and "timestamp_implausible" in ahead["tags"]
    # A line from the minute before midnight read just after it is ordinary.
    assert new_year["@timestamp"] == "2025-12-31T23:59:00.000Z" and "timestamp_implausible" not in (
        new_year.get("tags") or [])
    # Ten months old: a plausible old line (a replayed file), not doubtful.
    assert spring["@timestamp"] == "2025-02-20T10:00:00.000Z" and not spring.get("tags")
