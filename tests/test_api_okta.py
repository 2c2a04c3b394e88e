"""The Okta System Log poller, run by the real daemon against a local server implementing Okta's contract."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.daemon import count, metric, start, stop, stored, wait_for_count, write_config
from tests.cloud.okta_server import CLIENT_ID, OktaServer, log_event
from tests.ports import free_port

TOKEN_ENV = {"OKTA_TOKEN": "00abcSSWStoken"}


def _api(server: OktaServer, **extra: Any) -> dict[str, Any]:
    return {"provider": "okta", "url": server.url, "token": "${OKTA_TOKEN}", "ca_file": str(server.cert),
            "poll_interval_seconds": 0.2, "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.5, **extra}


def _uuids(db: Path) -> Counter[str]:
    return Counter(str(e["okta.uuid"]) for e in stored(db))


def test_backfill_then_live_polling_stores_each_event_once_decoded(tmp_path: Path) -> None:
    server = OktaServer(tmp_path / "tls")
    now = time.time()
    server.add([log_event(i, now - 3600 + i) for i in range(2500)])
    server.add([log_event(10_000, now - 3 * 86400)])  # before the backfill window: not read
    db = tmp_path / "state" / "events.db"
    proc = start(write_config(tmp_path, "okta", _api(server, page_size=200)), TOKEN_ENV)
    try:
        assert wait_for_count(db, 2500, 60, proc) == 2500, (tmp_path / "daemon.log").read_text()
        later = time.time()
        server.add([log_event(20_000 + i, later + i / 100, "user.authentication.auth_via_mfa", result="FAILURE",
                              debugContext={"debugData": {"factor": "OKTA_VERIFY_PUSH"}}) for i in range(30)])
        assert wait_for_count(db, 2530, 30, proc) == 2530
        time.sleep(1.0)  # live polls go on: a repeat would show as a count above 2530
    finally:
        stop(proc)
        server.close()
    ids = _uuids(db)
    assert len(ids) == 2530 and set(ids.values()) == {1}
    events = {e["okta.uuid"]: e for e in stored(db)}
    first = events[log_event(4, 0)["uuid"]]
    assert first["event.action"] == "user_login" and first["event.outcome"] == "success"
    assert first["source.geo.country_iso_code"] == "NL"  # "The Netherlands", as Okta's GeoIP writes it
    assert first["okta.event_type"] == "user.session.start" and first["user.name"] == "user4@example.com"
    assert "log.file.path" not in first
    mfa = events[log_event(20_003, 0)["uuid"]]
    assert (mfa["event.action"], mfa["event.outcome"], mfa["sentinel.authentication.factor"]) == (
        "mfa_verify", "failure", "push")


class _Feeder(threading.Thread):
    """Okta keeps logging while the poller is killed and restarted."""

    def __init__(self, server: OktaServer, first: int, total: int, start_at: float) -> None:
        super().__init__(daemon=True)
        self.server, self.first, self.total, self.start_at = server, first, total, start_at
        self.rng = random.Random(15)

    def run(self) -> None:
        i = self.first
        while i < self.total:
            n = min(self.rng.randint(20, 200), self.total - i)
            self.server.add([log_event(k, self.start_at + k / 50) for k in range(i, i + n)])
            i += n
            time.sleep(self.rng.uniform(0.05, 0.3))


@pytest.mark.slow
def test_sigkill_during_paging_then_restart_stores_every_event_exactly_once(tmp_path: Path) -> None:
    server = OktaServer(tmp_path / "tls", per_window=25, window_seconds=0.5)  # 429s along the way
    server.faults.cut_every = 9  # every ninth page cut off halfway
    server.faults.throttle_every = 13  # and unannounced 429s
    total = 8000
    now = time.time()
    server.add([log_event(k, now - 7200 + k / 10) for k in range(3000)])
    feeder = _Feeder(server, 3000, total, now)
    config = write_config(tmp_path, "okta", _api(server, page_size=100), batch_max_lines=70)
    db = tmp_path / "state" / "events.db"
    rng = random.Random(20261201)
    proc = start(config, TOKEN_ENV)
    kills = 0
    feeder.start()
    try:
        while feeder.is_alive() or kills < 12:
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.0, 0.5))
            proc = start(config, TOKEN_ENV)
        feeder.join()
        n = wait_for_count(db, len(server.events), 120, proc)
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    ids = _uuids(db)
    expected = {e["uuid"] for e in server.events}
    assert kills >= 10
    assert server.faults.cut >= 1 and server.faults.surprise >= 1, "the faults happened"
    assert server.throttled == 0, "X-Rate-Limit-Remaining: 0 made the poller wait for the reset, never overrun it"
    assert not [u for u, c in ids.items() if c > 1], "no event stored twice"
    assert not expected - set(ids), f"{len(expected - set(ids))} events lost"
    assert n == len(expected) == len(ids)


def test_a_thirty_minute_outage_of_429s_and_503s_is_a_counted_backlog_that_drains(tmp_path: Path) -> None:
    """Accelerated: the outage lasts 4 s of wall time while Okta logs 30 minutes of events (one a second)."""
    server = OktaServer(tmp_path / "tls")
    now = time.time()
    server.add([log_event(i, now - 3600 + i) for i in range(100)])
    port = free_port()
    db = tmp_path / "state" / "events.db"
    proc = start(write_config(tmp_path, "okta", _api(server, page_size=100), metrics_port=port), TOKEN_ENV)
    try:
        assert wait_for_count(db, 100, 30, proc) == 100, (tmp_path / "daemon.log").read_text()
        server.faults.outage_until = time.time() + 4
        outage_start = time.time()
        server.add([log_event(1000 + i, outage_start + i - 1800) for i in range(1800)])
        time.sleep(3)
        during = metric(port, "sentinel_api_backlog_seconds", source="okta", stream="logs")
        assert count(db) == 100, "nothing got through the outage"
        assert during > 1.0, "the backlog shows how long the provider has failed"
        assert wait_for_count(db, 1900, 60, proc) == 1900
        time.sleep(0.5)
        throttled = metric(port, "sentinel_api_errors_total", source="okta", kind="throttled")
        unavailable = metric(port, "sentinel_api_errors_total", source="okta", kind="unavailable")
        after = metric(port, "sentinel_api_backlog_seconds", source="okta", stream="logs")
        pages = metric(port, "sentinel_api_pages_total", source="okta")
        last = metric(port, "sentinel_api_last_success_timestamp_seconds", source="okta")
    finally:
        stop(proc)
        server.close()
    assert throttled >= 1 and unavailable >= 1, (throttled, unavailable)
    assert after == 0.0 and pages >= 19 and last >= outage_start + 4
    ids = _uuids(db)
    assert len(ids) == 1900 and set(ids.values()) == {1}


def test_oauth_service_app_backfill_and_live_with_tokens_expiring_mid_paging_stores_each_event_once(
        tmp_path: Path) -> None:
    # Tokens announce an hour but the server drops them after 0.3 s: paging 2500 events crosses many expiries,
    # each one a 401 the poller must answer by signing a new assertion, not by losing or repeating a page.
    server = OktaServer(tmp_path / "tls", oauth=True, token_lifetime=0.3)
    now = time.time()
    server.add([log_event(i, now - 3600 + i) for i in range(2500)])
    api = {"provider": "okta", "url": server.url, "client_id": CLIENT_ID,
           "private_key": f"file:{server.private_key_file}", "ca_file": str(server.cert),
           "poll_interval_seconds": 0.2, "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.5, "page_size": 50}
    db = tmp_path / "state" / "events.db"
    proc = start(write_config(tmp_path, "okta", api), {})
    try:
        assert wait_for_count(db, 2500, 90, proc) == 2500, (tmp_path / "daemon.log").read_text()
        during_backfill = server.expired_refused
        server.expire_tokens()
        later = time.time()
        server.add([log_event(20_000 + i, later + i / 100) for i in range(30)])
        assert wait_for_count(db, 2530, 30, proc) == 2530
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    log = (tmp_path / "daemon.log").read_text()
    assert during_backfill > 0 and server.expired_refused > during_backfill
    assert server.issued > during_backfill and server.rejected_assertions == 0
    ids = _uuids(db)
    assert len(ids) == 2530 and set(ids.values()) == {1}
    assert "BEGIN PRIVATE KEY" not in log and "eyJraWQ." not in log  # neither the key nor a token is logged
