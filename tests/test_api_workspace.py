"""The Google Workspace Reports API poller (login, admin, drive, token), run by the real daemon against a local
server implementing the Reports API's and Google's JWT-bearer token endpoint's contract."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.daemon import start, stop, stored, wait_for_count, write_config
from tests.cloud.workspace_server import WorkspaceServer, activity, login

ENV: dict[str, str] = {}


def _config(tmp: Path, server: WorkspaceServer, **pipeline: Any) -> Path:
    api = {"provider": "workspace", "url": server.url, "credentials": f"file:{server.key_file}",
           "subject": server.subject, "ca_file": str(server.cert), "page_size": 100, "overlap_seconds": 120,
           "poll_interval_seconds": 0.2, "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.5}
    return write_config(tmp, "google-workspace", api, **pipeline)


def _mixed(i: int, at: float) -> dict[str, Any]:
    kind = i % 4
    if kind == 0:
        return login(i, at)
    if kind == 1:
        return activity(i, at, "drive", "view", {"doc_title": f"notes-{i}.docx", "doc_id": f"d{i}",
                                                 "visibility": "private", "doc_type": "document"})
    if kind == 2:
        return activity(i, at, "admin", "CHANGE_GROUP_SETTING", {"GROUP_EMAIL": "claims@meridianbilling.example"})
    return activity(i, at, "token", "authorize", {"app_name": "Zoom", "client_id": "z.apps", "scope": ["openid"]})


def test_backfill_live_polling_and_an_expired_token_refreshed(tmp_path: Path) -> None:
    server = WorkspaceServer(tmp_path / "tls")
    now = time.time()
    server.add([_mixed(i, now - 4000 + i) for i in range(800)])
    db = tmp_path / "state" / "events.db"
    proc = start(_config(tmp_path, server), ENV)
    try:
        assert wait_for_count(db, 800, 60, proc) == 800, (tmp_path / "daemon.log").read_text()
        issued = server.issued
        server.expire_tokens()
        server.add([activity(5000, time.time(), "drive", "change_document_visibility",
                             {"doc_title": "claims-november.xlsx", "doc_id": "d1", "visibility": "people_with_link",
                              "old_visibility": "private", "doc_type": "spreadsheet"}),
                    activity(5001, time.time(), "admin", "ASSIGN_ROLE",
                             {"ROLE_NAME": "_SEED_ADMIN_ROLE", "USER_EMAIL": "bob@meridianbilling.example"},
                             kind="DELEGATED_ADMIN_SETTINGS"),
                    login(5002, time.time(), region="RO")])
        assert wait_for_count(db, 803, 30, proc) == 803
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    assert server.issued > issued and server.rejected_assertions == 0
    events = stored(db)
    assert len(events) == 803
    by_action = Counter(e["event.action"] for e in events)
    assert by_action["user_login"] == 201 and by_action["file_shared_publicly"] == 1
    assert by_action["admin_role_granted"] == 1 and by_action["oauth_app_granted"] == 200
    public = next(e for e in events if e["event.action"] == "file_shared_publicly")
    assert public["file.name"] == "claims-november.xlsx" and public["event.dataset"] == "google_workspace.drive"
    assert next(e for e in events if e.get("source.geo.country_iso_code") == "RO")["event.action"] == "user_login"


@pytest.mark.slow
def test_sigkill_during_paging_then_restart_stores_every_event_exactly_once(tmp_path: Path) -> None:
    server = WorkspaceServer(tmp_path / "tls")
    server.faults.cut_every = 6
    now = time.time()
    server.add([_mixed(i, now - 6000 + i) for i in range(3000)])
    config = _config(tmp_path, server, batch_max_lines=60)
    db = tmp_path / "state" / "events.db"
    rng = random.Random(4)
    proc = start(config, ENV)
    kills, k = 0, 3000
    try:
        while kills < 10:
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            n = rng.randint(10, 120)
            server.add([_mixed(j, time.time() - rng.uniform(0, 60)) for j in range(k, k + n)])
            k += n
            if kills == 4:  # an outage of 429s and 503s that the restarted poller meets, backs off from and drains
                server.faults.outage_requests = 24
            proc = start(config, ENV)
        got = wait_for_count(db, k, 120, proc)
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    ids = Counter(str(e["event.id"]) for e in stored(db))
    origins = Counter((e["@timestamp"], e.get("source.ip"), e.get("user.name")) for e in stored(db))
    assert server.faults.cut >= 1 and server.faults.refused >= 24
    assert not [o for o, c in origins.items() if c > 1], "no activity stored twice"
    assert got == k == len(ids)
