"""The alert HTTP API: token required, list/show/ack/resolve alerts, add/list/expire silences."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sentinel.route.state  # noqa: F401 - registers the routing tables
from sentinel.alertapi.server import AlertApi, load_token
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from tests.fixtures.receiver import FakeClock, make_alert


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[AlertApi, str, FakeClock]]:
    db = Database(tmp_path / "events.db")
    clock = FakeClock()
    with db.transaction() as tx:
        write_alerts(tx, [make_alert(0, severity="critical", at=clock.now), make_alert(1, user="u2", at=clock.now)])
    token = load_token(tmp_path / "api.token")
    server = AlertApi(db.path, "127.0.0.1:0", token, clock)
    server.start()
    yield server, token, clock
    server.stop()
    db.close()


def call(server: AlertApi, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_file_is_created_private(tmp_path: Path) -> None:
    token = load_token(tmp_path / "t" / "api.token")
    assert len(token) >= 32
    assert (tmp_path / "t" / "api.token").stat().st_mode & 0o777 == 0o600
    assert load_token(tmp_path / "t" / "api.token") == token


def test_requests_without_the_token_are_refused(api: tuple[AlertApi, str, FakeClock]) -> None:
    server, token, _ = api
    assert call(server, "GET", "/api/alerts", None)[0] == 401
    assert call(server, "GET", "/api/alerts", token[:-1] + "x")[0] == 401
    assert server.address[0] == "127.0.0.1"


def test_list_ack_resolve(api: tuple[AlertApi, str, FakeClock]) -> None:
    server, token, clock = api
    status, doc = call(server, "GET", "/api/alerts?status=open", token)
    assert status == 200 and len(doc["alerts"]) == 2
    alert_id = "phi-bulk-export-u1001-000000"
    assert call(server, "POST", f"/api/alerts/{alert_id}/ack", token, {})[0] == 400, "who acknowledges is required"
    clock.advance(120)
    status, doc = call(server, "POST", f"/api/alerts/{alert_id}/ack", token, {"by": "oncall-ann"})
    assert status == 200 and doc["status"] == "acknowledged" and doc["acked_by"] == "oncall-ann"
    assert doc["acked_at"] == clock.now
    assert call(server, "POST", f"/api/alerts/{alert_id}/ack", token, {"by": "x"})[0] == 400, "already acked"
    status, doc = call(server, "POST", f"/api/alerts/{alert_id}/resolve", token, {"by": "oncall-ann"})
    assert status == 200 and doc["status"] == "resolved"
    assert call(server, "GET", "/api/alerts/nope-nope-nope", token)[0] == 404
    status, doc = call(server, "GET", "/api/alerts?status=open", token)
    assert [a["id"] for a in doc["alerts"]] == ["phi-bulk-export-u2-000001"]


def test_silences(api: tuple[AlertApi, str, FakeClock]) -> None:
    server, token, clock = api
    bad = call(server, "POST", "/api/silences", token, {"matchers": ["user.name=u2"], "duration": "1h",
                                                          "author": "ann", "reason": ""})
    assert bad[0] == 400
    status, s = call(server, "POST", "/api/silences", token, {"matchers": ["user.name=u2"], "duration": "1h",
                                                               "author": "ann", "reason": "pen test"})
    assert status == 201 and s["ends_at"] == clock.now + 3600
    assert [x["id"] for x in call(server, "GET", "/api/silences", token)[1]["silences"]] == [s["id"]]
    assert call(server, "DELETE", f"/api/silences/{s['id']}", token)[0] == 200
    assert call(server, "GET", "/api/silences", token)[1]["silences"] == []
    assert len(call(server, "GET", "/api/silences?all=1", token)[1]["silences"]) == 1
