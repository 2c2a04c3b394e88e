"""The time-window pollers (Graph sign-ins, Workspace activities). Events a provider publishes later than the
overlap: the late pass asks for them again, and each is stored once, also when the daemon is killed while a
pass pages. An event dated years ahead, and a page link the provider refuses, do not stop the stream.

Run by the real daemon against the local servers implementing Graph's and the Reports API's contracts. The
servers filter by event time, as the real APIs do, so an event added dated half an hour back is one that
reached the API half an hour late."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from sentinel.collect.api.auth import ClientCredentials
from sentinel.collect.api.graph import GraphAuditLogs
from sentinel.collect.api.http import Http, HttpSettings, Retry
from sentinel.collect.api.times import to_iso
from sentinel.collect.api.window import LatePass
from tests.cloud.daemon import count, metric, start, stop, stored, wait_for_count, write_config
from tests.cloud.graph_server import TENANT, GraphServer, sign_in
from tests.cloud.workspace_server import WorkspaceServer, login
from tests.ports import free_port

ENV = {"GRAPH_SECRET": "s3cret-value"}
# A late pass every 3 s (an hour by default), reaching an hour back (six by default).
LATE = {"late_window_hours": 1, "late_every_minutes": 0.05, "overlap_seconds": 60, "poll_interval_seconds": 0.2,
        "backoff_min_seconds": 0.05, "backoff_max_seconds": 0.5, "page_size": 100}


def _graph(tmp: Path, server: GraphServer, port: int | None = None, **api: Any) -> Path:
    settings = {"provider": "graph", "url": server.url, "token_url": server.token_url, "tenant_id": TENANT,
                "client_id": "app-1", "client_secret": "${GRAPH_SECRET}", "ca_file": str(server.cert),
                "streams": ["signIns"], **LATE, **api}
    return write_config(tmp, "entra", settings, metrics_port=port, batch_max_lines=50)


def _ids(db: Path, field: str) -> Counter[str]:
    return Counter(str(e.get(field)) for e in stored(db))


@pytest.mark.slow
def test_graph_sign_ins_published_later_than_the_overlap_are_stored_once_through_kills(tmp_path: Path) -> None:
    server = GraphServer(tmp_path / "tls")
    now = time.time()
    server.add("signIns", [sign_in(i, now - 3000 + 5 * i) for i in range(600)])
    db = tmp_path / "state" / "events.db"
    port = free_port()
    config = _graph(tmp_path, server, port)
    proc = start(config, ENV)
    try:
        assert wait_for_count(db, 600, 60, proc) == 600, (tmp_path / "daemon.log").read_text()
        # Reaching Graph 15 to 30 minutes late: older than every live query's start (newest - 60 s) from now on.
        late = time.time()
        server.add("signIns", [sign_in(1000 + j, late - 1800 + 3 * j) for j in range(300)])
        server.add("signIns", [sign_in(2000 + j, time.time() + j / 10) for j in range(20)])
        assert wait_for_count(db, 920, 30, proc) == 920, (tmp_path / "daemon.log").read_text()
        assert metric(port, "sentinel_api_late_pass_events_total", source="entra", stream="signIns") >= 300
        # More late sign-ins, then SIGKILLs while passes page through them (100 a page, a pass every 3 s).
        rng = random.Random(1203)
        total, k = 920, 3000
        for _ in range(6):
            n = rng.randint(150, 400)
            at = time.time() - rng.uniform(600, 3000)
            server.add("signIns", [sign_in(k + j, at + j) for j in range(n)])
            k, total = k + n, total + n
            time.sleep(rng.uniform(2.5, 5.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = start(config, ENV)
        got = wait_for_count(db, total, 60, proc)
        time.sleep(4.0)  # another late pass over the same hour: a repeat would show above the total
        got = count(db)
    finally:
        stop(proc)
        server.close()
    ids = _ids(db, "sentinel.session.id")
    assert not [i for i, c in ids.items() if c > 1]
    assert got == total == len(ids), (got, total, len(ids))


def test_graph_without_late_passes_never_asks_for_them_again(tmp_path: Path) -> None:
    """The control: with ``late_window_hours: 0`` the same late sign-ins are never fetched (what every version
    before the late pass did, silently)."""
    server = GraphServer(tmp_path / "tls")
    now = time.time()
    server.add("signIns", [sign_in(i, now - 3000 + 5 * i) for i in range(600)])
    db = tmp_path / "state" / "events.db"
    proc = start(_graph(tmp_path, server, late_window_hours=0), ENV)
    try:
        assert wait_for_count(db, 600, 60, proc) == 600, (tmp_path / "daemon.log").read_text()
        server.add("signIns", [sign_in(1000 + j, time.time() - 1800 + 3 * j) for j in range(300)])
        server.add("signIns", [sign_in(2000 + j, time.time() + j / 10) for j in range(20)])
        wait_for_count(db, 620, 30, proc)
        time.sleep(6.0)  # two late-pass intervals of the test above
        got = count(db)
    finally:
        stop(proc)
        server.close()
    assert got == 620


def test_workspace_activities_published_hours_late_are_stored_once(tmp_path: Path) -> None:
    server = WorkspaceServer(tmp_path / "tls")
    now = time.time()
    server.add([login(i, now - 3000 + 5 * i) for i in range(500)])
    api = {"provider": "workspace", "url": server.url, "credentials": f"file:{server.key_file}",
           "subject": server.subject, "ca_file": str(server.cert), "streams": ["login"], **LATE,
           "late_window_hours": 3}
    config = write_config(tmp_path, "google-workspace", api, batch_max_lines=50)
    db = tmp_path / "state" / "events.db"
    proc = start(config, ENV)
    try:
        assert wait_for_count(db, 500, 60, proc) == 500, (tmp_path / "daemon.log").read_text()
        # Published two hours late (Google documents lags of hours), and one beyond the three-hour window.
        server.add([login(1000 + j, time.time() - 7200 + 10 * j) for j in range(250)])
        server.add([login(5000, time.time() - 4 * 3600)])
        got = wait_for_count(db, 750, 30, proc)
        time.sleep(4.0)
        got = count(db)
    finally:
        stop(proc)
        server.close()
    ids = _ids(db, "event.id")
    assert got == 750 and len(ids) == 750


@pytest.fixture
def graph_http(tmp_path: Path) -> Any:
    server = GraphServer(tmp_path / "tls")
    auth = ClientCredentials(server.token_url, "app-1", "s3cret-value", "https://graph.microsoft.com/.default")
    http = Http(HttpSettings(ca_file=str(server.cert)), auth)
    yield server, http
    http.close()
    server.close()


def _drain(provider: GraphAuditLogs, http: Http, cursor: str, now: float) -> tuple[list[str], str, bool]:
    """Fetch pages up to the live end: the ids, the cursor after, and whether they were a late pass's."""
    ids: list[str] = []
    late = False
    while True:
        page = provider.fetch(http, "signIns", cursor, now)
        ids += [item.id for item in page.items]
        late = late or page.late
        cursor = page.next
        if not page.more:
            return ids, cursor, late


def test_a_late_pass_runs_on_its_schedule_from_its_window_never_before_the_backfill(graph_http: Any) -> None:
    server, http = graph_http
    t0 = time.time()
    # Sign-ins of the last four hours; the backfill reaches two hours back.
    server.add("signIns", [sign_in(i, t0 - 4 * 3600 + 60 * i + 30) for i in range(240)])
    provider = GraphAuditLogs(server.url, ("signIns",), 50, backfill_seconds=2 * 3600, overlap_seconds=300,
                              late=LatePass(window_seconds=3 * 3600, every_seconds=600))
    first, cursor, late = _drain(provider, http, "", t0)
    assert len(first) == 120 and not late
    # Published late: one 40 minutes back, one 2.5 hours back (before the backfill's start).
    forty, before = sign_in(900, t0 - 2400), sign_in(901, t0 - 9000)
    server.add("signIns", [forty, before])
    ids, cursor, late = _drain(provider, http, cursor, t0 + 300)  # before the pass is due: the live query
    assert not late and forty["id"] not in ids
    ids, cursor, late = _drain(provider, http, cursor, t0 + 600)
    state = orjson.loads(cursor)
    assert late and state["late"] is None and state["late_at"] == t0 + 600
    assert len(ids) == 121, "the pass reached back to the backfill's start, not three hours"
    assert set(ids) - set(first) == {forty["id"]} and state["since"] >= to_iso(t0 - 300 - 60)
    ids, cursor, late = _drain(provider, http, cursor, t0 + 900)
    assert not late  # the next pass is due 600 s after this one


def test_an_event_dated_years_ahead_does_not_move_the_next_queries_past_the_events_after_it(graph_http: Any) -> None:
    server, http = graph_http
    t0 = time.time()
    future = sign_in(1, time.mktime((2099, 1, 1, 0, 0, 0, 0, 0, 0)))
    server.add("signIns", [sign_in(0, t0 - 60), future])
    provider = GraphAuditLogs(server.url, ("signIns",), 50, overlap_seconds=300)
    ids, cursor, _ = _drain(provider, http, "", t0)
    assert len(ids) == 2
    after = [sign_in(2 + j, t0 + 1 + j) for j in range(5)]
    server.add("signIns", after)
    ids, cursor, _ = _drain(provider, http, cursor, t0 + 10)
    assert {e["id"] for e in after} <= set(ids)
    assert orjson.loads(cursor)["since"] <= to_iso(t0 + 10)


def test_a_refused_page_link_starts_its_query_again_instead_of_stopping_the_stream(graph_http: Any) -> None:
    server, http = graph_http
    t0 = time.time()
    signs = [sign_in(i, t0 - 600 + i) for i in range(250)]
    server.add("signIns", signs)
    provider = GraphAuditLogs(server.url, ("signIns",), 100, overlap_seconds=300)
    page = provider.fetch(http, "signIns", "", t0)
    assert page.more and len(page.items) == 100
    # The daemon stops here; while it is down the link it committed stops being taken ("Invalid Skip Token").
    server.expire_links()
    ids, cursor, _ = _drain(provider, http, page.next, t0 + 3600)
    assert server.refused_links == 1
    assert {item.id for item in page.items} | set(ids) == {e["id"] for e in signs}
    assert orjson.loads(cursor)["page"] is None


def test_a_provider_refusing_every_page_link_is_retried_with_backoff_not_restarted_back_to_back(
        graph_http: Any) -> None:
    server, http = graph_http
    t0 = time.time()
    server.add("signIns", [sign_in(i, t0 - 600 + i) for i in range(250)])
    provider = GraphAuditLogs(server.url, ("signIns",), 100, overlap_seconds=300)
    page = provider.fetch(http, "signIns", "", t0)
    server.refuse_every_link = True
    restarted = provider.fetch(http, "signIns", page.next, t0)  # the query again from its start, once
    assert restarted.more and len(restarted.items) == 100
    with pytest.raises(Retry):  # refused again: a failure like any other, for the poller's backoff
        provider.fetch(http, "signIns", restarted.next, t0)
    server.refuse_every_link = False
    ids, cursor, _ = _drain(provider, http, restarted.next, t0)
    assert len(set(ids) | {i.id for i in restarted.items}) == 250 and "restarted" not in orjson.loads(cursor)
