"""The Microsoft Graph audit-log poller (sign-ins, directory audits), run by the real daemon against a local
server implementing Graph's and the Entra token endpoint's contract."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.daemon import metric, start, stop, stored, wait_for_count, write_config
from tests.cloud.graph_server import TENANT, GraphServer, directory_audit, sign_in
from tests.ports import free_port

ENV = {"GRAPH_SECRET": "s3cret-value"}


def _api(server: GraphServer, streams: list[str], **extra: Any) -> dict[str, Any]:
    return {"provider": "graph", "url": server.url, "token_url": server.token_url, "tenant_id": TENANT,
            "client_id": "app-1", "client_secret": "${GRAPH_SECRET}", "ca_file": str(server.cert),
            "streams": streams, "poll_interval_seconds": 0.2, "overlap_seconds": 60, "late_every_minutes": 0.05,
            "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.5, **extra}


def _config(tmp: Path, server: GraphServer, port: int | None = None, **pipeline: Any) -> Path:
    return write_config(tmp, "entra", _api(server, ["signIns"], page_size=100), metrics_port=port,
                        more={"entra-audit": _api(server, ["directoryAudits"], page_size=50)}, **pipeline)


def _ids(db: Path) -> Counter[str]:
    out: Counter[str] = Counter()
    for e in stored(db):
        out[str(e.get("sentinel.session.id") or e.get("azure.auditlogs.id"))] += 1
    return out


def test_backfill_live_polling_and_an_expired_token_refreshed(tmp_path: Path) -> None:
    server = GraphServer(tmp_path / "tls")
    now = time.time()
    server.add("signIns", [sign_in(i, now - 3000 + i) for i in range(1200)])
    server.add("directoryAudits", [directory_audit(i, now - 3000 + i * 10) for i in range(120)])
    db = tmp_path / "state" / "events.db"
    port = free_port()
    proc = start(_config(tmp_path, server, port), ENV)
    try:
        assert wait_for_count(db, 1320, 60, proc) == 1320, (tmp_path / "daemon.log").read_text()
        issued = server.issued
        server.expire_tokens()  # the server stops taking them before their expires_in says
        server.add("signIns", [sign_in(5000 + i, time.time() + i / 10, error=500121, method="Mobile app notification",
                                       detail="MFA denied; user declined the authentication") for i in range(20)])
        server.add("directoryAudits", [directory_audit(5000, time.time())])
        assert wait_for_count(db, 1341, 30, proc) == 1341
        time.sleep(1.0)  # polls go on over the overlap window: a repeat would show above 1341
        tokens = metric(port, "sentinel_api_token_fetches_total")
    finally:
        stop(proc)
        server.close()
    assert server.expired_refusals >= 1 and server.issued > issued and tokens >= 3
    ids = _ids(db)
    assert len(ids) == 1341 and set(ids.values()) == {1}
    events = stored(db)
    denied = [e for e in events if e.get("event.code") == "500121"]
    assert len(denied) == 20 and {e["event.action"] for e in denied} == {"mfa_verify"}
    assert {e["event.outcome"] for e in denied} == {"failure"} and denied[0]["sentinel.authentication.factor"] == "push"
    granted = [e for e in events if e.get("event.action") == "admin_role_granted"]
    assert len(granted) == 121 and granted[0]["user.target.name"] == "user3@contoso.com"
    assert {e["source.geo.country_iso_code"] for e in events if e.get("event.dataset") == "azure.signinlogs"} == {"US"}


@pytest.mark.slow
def test_sigkill_during_paging_and_an_outage_store_every_event_exactly_once(tmp_path: Path) -> None:
    server = GraphServer(tmp_path / "tls", token_lifetime=4.0)  # tokens expire every few seconds meanwhile
    server.faults.cut_every = 7
    now = time.time()
    server.add("signIns", [sign_in(i, now - 5000 + i) for i in range(3000)])
    server.add("directoryAudits", [directory_audit(i, now - 5000 + i) for i in range(400)])
    config = _config(tmp_path, server, batch_max_lines=60)
    db = tmp_path / "state" / "events.db"
    rng = random.Random(1512)
    proc = start(config, ENV)
    kills, k = 0, 3000
    try:
        while kills < 11:
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            n = rng.randint(10, 150)
            server.add("signIns", [sign_in(j, time.time() - rng.uniform(0, 30)) for j in range(k, k + n)])
            k += n
            if kills == 5:  # an outage of 429s and 503s while it is down and after it comes back
                server.faults.outage_requests = 24
                # 1,800 sign-ins reaching Graph while it was down, dated over the previous 30 minutes: older than
                # sign-ins already fetched, so beyond the live query's overlap; the late pass (every 3 s here)
                # asks for them.
                later = time.time() - 1800
                server.add("signIns", [sign_in(j, later + (j - k)) for j in range(k, k + 1800)])
                k += 1800
            proc = start(config, ENV)
        total = (k) + 400
        got = wait_for_count(db, total, 120, proc)
        time.sleep(1.0)
    finally:
        stop(proc)
        server.close()
    ids = _ids(db)
    assert kills >= 10 and server.faults.cut >= 1 and server.faults.refused >= 24
    assert not [i for i, c in ids.items() if c > 1]
    assert got == total == len(ids), (got, total, len(ids))
