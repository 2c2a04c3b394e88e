"""The Office 365 Management Activity API poller (Exchange, SharePoint/OneDrive, Azure AD), run by the real
daemon against a local server implementing the API's subscription, content-listing and blob contract."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.daemon import start, stop, stored, wait_for_count, write_config
from tests.cloud.graph_server import TENANT
from tests.cloud.o365_server import O365Server, inbox_rule, record

ENV = {"O365_SECRET": "s3cret-value"}
TYPES = ["Audit.Exchange", "Audit.SharePoint", "Audit.AzureActiveDirectory"]


def _config(tmp: Path, server: O365Server, backfill_hours: float = 24, **pipeline: Any) -> Path:
    api = {"backfill_hours": backfill_hours, "provider": "o365", "url": server.url, "token_url": server.token_url,
           "tenant_id": TENANT,
           "client_id": "app-1", "client_secret": "${O365_SECRET}", "ca_file": str(server.cert), "streams": TYPES,
           "overlap_seconds": 30, "poll_interval_seconds": 0.2, "backoff_min_seconds": 0.05,
           "backoff_max_seconds": 0.5}
    return write_config(tmp, "o365", api, **pipeline)


def _ids(db: Path) -> Counter[str]:
    return Counter(str(e["o365.audit.Id"]) for e in stored(db))


def _backlog(server: O365Server, first: int, blobs: int, per_blob: int, start: float) -> int:
    i = first
    for b in range(blobs):
        at = start + b * 60
        server.add("Audit.SharePoint", [record(i + k, at, "FileAccessed") for k in range(per_blob)], created=at)
        i += per_blob
        server.add("Audit.AzureActiveDirectory", [record(i, at, "UserLoggedIn", "AzureActiveDirectory")], created=at)
        i += 1
    return i


def test_backfill_across_windows_then_live_blobs(tmp_path: Path) -> None:
    server = O365Server(tmp_path / "tls")
    now = time.time()
    # 30 hours back: the backfill takes two listing windows (the API allows 24 hours per request).
    n = _backlog(server, 0, 20, 30, now - 30 * 3600)
    n = _backlog(server, n, 10, 30, now - 3600)
    db = tmp_path / "state" / "events.db"
    server.add("Audit.SharePoint", [record(8000, now - 50 * 3600)], created=now - 50 * 3600)  # before the backfill
    proc = start(_config(tmp_path, server, backfill_hours=48), ENV)
    try:
        want = len(server.all_records()) - 1
        assert wait_for_count(db, want, 60, proc) == want, (tmp_path / "daemon.log").read_text()
        server.add("Audit.Exchange", [inbox_rule(9000, time.time(), "alice@contoso.com", "alice.home@gmail.com")])
        server.add("Audit.SharePoint", [record(9001, time.time(), "AnonymousLinkCreated", "OneDrive",
                                               file="claims-nov.xlsx")])
        server.expire_tokens()
        assert wait_for_count(db, want + 2, 30, proc) == want + 2
        time.sleep(1.5)  # the overlapping window lists those blobs again: a repeat would show above want + 2
    finally:
        stop(proc)
        server.close()
    ids = _ids(db)
    assert len(ids) == want + 2 and set(ids.values()) == {1}
    assert server.subscribed == set(TYPES) and server.issued >= 2
    events = {e["o365.audit.Operation"]: e for e in stored(db)}
    fwd = events["New-InboxRule"]
    assert (fwd["event.action"], fwd["email.to.address"], fwd["user.name"]) == (
        "mail_forwarding_set", "alice.home@gmail.com", "alice@contoso.com")
    assert events["AnonymousLinkCreated"]["event.action"] == "file_shared_publicly"
    assert events["UserLoggedIn"]["event.action"] == "user_login"


@pytest.mark.slow
def test_sigkill_while_fetching_blobs_then_restart_stores_every_record_exactly_once(tmp_path: Path) -> None:
    server = O365Server(tmp_path / "tls")
    server.faults.cut_every = 5
    now = time.time()
    k = _backlog(server, 0, 60, 40, now - 5 * 3600)
    config = _config(tmp_path, server, batch_max_lines=50)
    db = tmp_path / "state" / "events.db"
    rng = random.Random(365)
    proc = start(config, ENV)
    kills = 0
    try:
        while kills < 10:
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            n = rng.randint(5, 60)
            server.add("Audit.Exchange", [record(j, time.time(), "MailItemsAccessed", "Exchange",
                                                 ResultStatus="Succeeded") for j in range(k, k + n)])
            k += n
            if kills == 4:
                server.faults.outage_requests = 24
            proc = start(config, ENV)
        want = len(server.all_records())
        got = wait_for_count(db, want, 120, proc)
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    ids = _ids(db)
    assert server.faults.cut >= 1 and server.faults.refused >= 24
    assert not [i for i, c in ids.items() if c > 1]
    assert got == want == len(ids)
