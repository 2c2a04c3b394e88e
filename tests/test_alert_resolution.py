"""Resolving alerts: by hand (CLI, API) or after the rule's quiet period; resolved messages through real apprise
to a local HTTP receiver under the same dedup key; dispositions in the audit trail; bound silences; the tuning
figures of the report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import apprise
import orjson
import pytest

from sentinel.alertapi.server import AlertApi
from sentinel.daemon.assemble import assemble
from sentinel.daemon.build import database_path
from sentinel.notify.delivery import with_keys
from sentinel.route.lifecycle import LifecycleError, get_alert, resolve
from sentinel.route.report import build_report
from sentinel.route.silences import active_silences, silence_alert
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database, immediate
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import NotifyRig, Receiver, build_rig, make_alert, write_alerts_dir

ROOT = Path(__file__).resolve().parents[1]

ROUTES = """
defaults: {group_by: [rule, user.name], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
route:
  receivers: [hook]
"""


def receivers(r: Receiver) -> str:
    return f"""
receivers:
  - name: hook
    urls: ["json://{r.url}/hook"]
"""


def _sentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


@pytest.fixture
def rig(tmp_path: Path, receiver: Receiver) -> NotifyRig:
    return build_rig(tmp_path, ROUTES, receivers(receiver), resolve_after={"phi-bulk-export": 600.0})


def test_resolved_after_a_daemon_restart_reaches_the_receiver_under_the_same_key(
        tmp_path: Path, receiver: Receiver, make_config: MakeConfig) -> None:
    alerts_dir = write_alerts_dir(tmp_path / "daemon-alerts", ROUTES.replace("30s", "0s"), receivers(receiver))
    cfg = make_config(alerts_dir=str(alerts_dir), api={"enabled": True, "listen": "127.0.0.1:0"},
                      notify={"poll_interval_ms": 50}, detection={"enabled": False})
    by_cli, by_api = make_alert(0, user="u1", at=time.time()), make_alert(1, user="u2", at=time.time())
    daemon = assemble(cfg)
    try:
        daemon.start_workers()
        assert daemon.db is not None
        with daemon.db.transaction() as tx:
            write_alerts(tx, [by_cli, by_api])
        raised = receiver.wait_for(2, timeout=15)
        assert len(raised) == 2
    finally:
        daemon.close()
    key_of = {("u1" if "u1" in r.json()["title"] else "u2"): r.json()["dedup_key"] for r in raised}
    assert len(set(key_of.values())) == 2

    # Resolved by a person while the daemon is down; the next daemon delivers the message.
    done = _sentinel("alerts", "resolve", "-c", str(cfg.path), by_cli.id, "--by", "oncall.ann",
                     "--disposition", "false_positive", "--note", "patient Jane Roe asked for her own chart")
    assert done.returncode == 0, done.stderr
    assert "false_positive" in done.stdout
    daemon = assemble(cfg)
    try:
        daemon.start_workers()
        got = receiver.wait_for(3, timeout=15)
        assert len(got) == 3
        first = got[2].json()
        assert first["title"].startswith("[RESOLVED]") and "u1" in first["title"]
        assert first["dedup_key"] == key_of["u1"], "the resolved message names the incident it ends"
        assert first["event"] == "resolve"
        assert "disposition false_positive" in first["message"] and "by oncall.ann" in first["message"]
        assert "Jane Roe" not in json.dumps(first), "the note is free text: only a template that names it shows it"

        # And through the API of the running daemon.
        api = next(w for w in daemon.workers if isinstance(w, AlertApi))
        token = (cfg.state_dir / "api.token").read_text().strip()
        req = urllib.request.Request(f"http://127.0.0.1:{api.port}/api/alerts/{by_api.id}/resolve",
                                     data=json.dumps({"by": "oncall.bob", "disposition": "true_positive"}).encode(),
                                     headers={"Authorization": f"Bearer {token}"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "resolved" and doc["disposition"] == "true_positive" and doc["resolution"] == "manual"
        got = receiver.wait_for(4, timeout=15)
        assert len(got) == 4
        second = got[3].json()
        assert second["dedup_key"] == key_of["u2"] and second["title"].startswith("[RESOLVED]")
        time.sleep(0.5)
        assert len(receiver.accepted) == 4, "each resolution is told once"
    finally:
        daemon.close()

    records = [orjson.loads(line) for line in (cfg.state_dir / "audit.jsonl").read_text().splitlines()]
    resolves = [r for r in records if r["action"] == "resolve"]
    assert [(r["actor"], r["details"]["alert_id"], r["details"]["disposition"]) for r in resolves] == [
        ("oncall.ann", by_cli.id, "false_positive"), ("oncall.bob", by_api.id, "true_positive")]
    assert resolves[0]["details"]["note"] == "patient Jane Roe asked for her own chart"
    verify = _sentinel("audit", "verify", "-c", str(cfg.path))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_auto_resolve_waits_for_the_key_to_go_quiet(rig: NotifyRig, receiver: Receiver) -> None:
    t0 = rig.clock.now
    rig.add([make_alert(0, at=t0), make_alert(0, user="u2", rule="mfa-failures", at=t0)])
    assert rig.step(31) == 2
    # The same key fires again 5 minutes later: the quiet period starts over.
    rig.add([make_alert(1, at=rig.clock.advance(300))])
    rig.step(400)  # t0 + 731: 400s after the last one, resolve_after is 600s
    assert rig.rows("SELECT status FROM alerts WHERE rule_id = 'phi-bulk-export'") == [("open",), ("open",)]
    assert len(receiver.accepted) == 2
    rig.step(201)  # t0 + 932
    assert rig.rows("SELECT id, status, acked_at, resolved_by FROM alerts WHERE rule_id = 'phi-bulk-export' "
                    "ORDER BY id") == [("phi-bulk-export-u1001-000000", "resolved", None, "sentinel"),
                                       ("phi-bulk-export-u1001-000001", "resolved", None, "sentinel")]
    assert rig.rows("SELECT how, disposition FROM alert_resolutions") == [("auto", None), ("auto", None)]
    # A rule without resolve_after stays open however long it is quiet.
    assert rig.rows("SELECT status FROM alerts WHERE rule_id = 'mfa-failures'") == [("open",)]
    got = receiver.accepted
    assert len(got) == 3
    doc = got[2].json()
    assert doc["title"].startswith("[RESOLVED]") and doc["event"] == "resolve"
    assert doc["dedup_key"] == next(r.json()["dedup_key"] for r in got[:2] if "phi" in r.json()["title"])
    assert "(auto)" in doc["message"] and "still firing in this group: 0" in doc["message"]
    assert rig.step(3600) == 0, "nothing more: resolved alerts do not repeat"


def test_a_group_is_closed_only_when_its_last_alert_resolves(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, ROUTES.replace("[rule, user.name]", "[rule]"), receivers(receiver))
    a, b = make_alert(0, user="u1", at=rig.clock.now), make_alert(1, user="u2", at=rig.clock.now)
    rig.add([a, b])
    assert rig.step(31) == 1
    key = receiver.accepted[0].json()["dedup_key"]
    with immediate(rig.db.conn):
        resolve(rig.db.conn, a.id, "ann", rig.clock.now, "duplicate")
    rig.step(1)
    partial = receiver.accepted[1].json()
    assert partial["dedup_key"] == key and "event" not in partial, "u2's alert still fires: the incident stays open"
    assert "still firing in this group: 1" in partial["message"]
    with immediate(rig.db.conn):
        resolve(rig.db.conn, b.id, "ann", rig.clock.now, "true_positive")
    rig.step(1)
    final = receiver.accepted[2].json()
    assert final["dedup_key"] == key and final["event"] == "resolve"


def test_an_alert_resolved_before_its_group_flushed_sends_nothing(rig: NotifyRig, receiver: Receiver) -> None:
    a = make_alert(0, at=rig.clock.now)
    rig.add([a])
    with immediate(rig.db.conn):
        resolve(rig.db.conn, a.id, "ann", rig.clock.now, "benign")
    assert rig.step(31) == 0 and rig.step(3600) == 0
    assert receiver.accepted == []


def test_resolution_commits_with_its_messages_or_not_at_all(rig: NotifyRig, receiver: Receiver) -> None:
    a = make_alert(0, at=rig.clock.now)
    rig.add([a])
    rig.step(31)
    conn = rig.db.conn
    with pytest.raises(RuntimeError), immediate(conn):
        resolve(conn, a.id, "ann", rig.clock.now, "false_positive", "oops")
        raise RuntimeError("crash before commit")
    assert get_alert(conn, a.id).status == "open"
    assert rig.rows("SELECT COUNT(*) FROM alert_resolutions") == [(0,)]
    assert rig.rows("SELECT COUNT(*) FROM notifications WHERE kind = 'resolved'") == [(0,)]
    with pytest.raises(LifecycleError, match="unknown disposition"), immediate(conn):
        resolve(conn, a.id, "ann", rig.clock.now, "maybe")
    with immediate(conn):
        resolve(conn, a.id, "ann", rig.clock.now, "false_positive")
    assert rig.rows("SELECT COUNT(*) FROM notifications WHERE kind = 'resolved'") == [(1,)]
    with pytest.raises(LifecycleError, match="already resolved"), immediate(conn):
        resolve(conn, a.id, "ann", rig.clock.now)


def test_a_silence_bound_to_an_alert_ends_with_it(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, ROUTES, receivers(receiver))  # no resolve_after: only the person resolves
    a = make_alert(0, at=rig.clock.now)
    rig.add([a])
    rig.step(31)
    conn = rig.db.conn
    with immediate(conn):
        s = silence_alert(conn, a.id[:10], [], 7 * 86400, "ann", "working on it", rig.clock.now)
    assert s.alert_id == a.id
    assert sorted(str(m) for m in s.matchers) == ["host.name=billing-app-1", "rule=phi-bulk-export",
                                                   "user.name=u1001"]
    # It silences the key's next alert (seen when the group next flushes)...
    rig.add([make_alert(1, at=rig.clock.advance(400))])
    rig.step(4 * 3600)
    assert rig.rows("SELECT state FROM route_members WHERE alert_id = ?", make_alert(1).id) == [("silenced",)]
    assert [x.id for x in active_silences(conn, rig.clock.now)] == [s.id]
    # ...and ends when the alert resolves, in the same transaction.
    with immediate(conn):
        resolve(conn, a.id, "ann", rig.clock.now, "true_positive")
    assert active_silences(conn, rig.clock.now) == []
    assert rig.rows("SELECT expired_at FROM silences") == [(rig.clock.now,)]
    with pytest.raises(ValueError, match="already resolved"), immediate(conn):
        silence_alert(conn, a.id, [], 3600, "ann", "too late", rig.clock.now)


def test_pagerduty_and_opsgenie_resolve_the_incident_with_the_same_key() -> None:
    pd = apprise.Apprise.instantiate(with_keys("pagerduty://integrationkey1@apikey123456?action=map", "sentinel-g1",
                                               "res:g1:a1", 5, resolve=True))
    assert pd is not None and pd.dedup == "sentinel-g1" and pd.action == "resolve"
    og = apprise.Apprise.instantiate(with_keys("opsgenie://apikey123456", "sentinel-g1", "res:g1:a1", 5,
                                               resolve=True))
    assert og is not None and og.alias == "sentinel-g1" and og.action == "close"
    raised = apprise.Apprise.instantiate(with_keys("pagerduty://integrationkey1@apikey123456", "sentinel-g1",
                                                   "g:g1:1", 5))
    assert raised is not None and raised.action != "resolve"


def _scenario(db: Database, now: float) -> None:
    """noisy-rule: 4 alerts, 3 false positives, 1 true; quiet-rule: 2 alerts, 1 benign + 1 open; acked times known."""
    alerts = [make_alert(i, rule="noisy-rule", user=f"u{i}", at=now - 3600 + i) for i in range(4)]
    alerts += [make_alert(10, rule="quiet-rule", at=now - 1800), make_alert(11, rule="quiet-rule", at=now - 1700)]
    with db.transaction() as tx:
        write_alerts(tx, alerts)
        # Acknowledge after 60, 120, 180 and 240 seconds; resolve with the dispositions.
        for i, (a, disp) in enumerate(zip(alerts[:4], ["false_positive", "false_positive", "true_positive",
                                                       "false_positive"], strict=True)):
            tx.execute("UPDATE alerts SET status = 'acknowledged', acked_by = 'ann', acked_at = ? WHERE id = ?",
                       (a.created + 60 * (i + 1), a.id))
            resolve(tx, a.id, "ann", a.created + 600, disp)
        resolve(tx, alerts[4].id, "bob", alerts[4].created + 30, "benign")  # unacked: counts as acked at 30s


def test_report_tuning_figures_per_rule(tmp_path: Path) -> None:
    import sentinel.route.state  # noqa: F401 - registers the routing tables

    db = Database(tmp_path / "events.db")
    now = 1_790_000_000.0
    _scenario(db, now)
    rep = build_report(db.conn, now - 86400, now, now)
    tuning = {t["rule"]: t for t in rep["tuning"]}
    noisy, quiet = tuning["noisy-rule"], tuning["quiet-rule"]
    assert noisy["alerts"] == 4 and noisy["resolved"] == 4
    assert noisy["dispositions"] == {"true_positive": 1, "false_positive": 3, "benign": 0, "duplicate": 0}
    assert noisy["false_positive_rate"] == pytest.approx(0.75)
    assert noisy["median_time_to_acknowledge_seconds"] == pytest.approx(150.0)
    assert quiet["alerts"] == 2 and quiet["open"] == 1 and quiet["without_disposition"] == 1
    assert quiet["false_positive_rate"] == 0.0 and quiet["median_time_to_acknowledge_seconds"] == pytest.approx(30)
    assert [t["rule"] for t in rep["tuning"]] == ["noisy-rule", "quiet-rule"], "the noisiest rule first"
    db.close()


def test_report_cli_shows_the_tuning_table(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel.cli.main import main

    cfg = make_config()
    db = Database(database_path(cfg))
    now = time.time()
    _scenario(db, now)
    db.close()
    assert main(["report", "--config", str(cfg.path), "--from", "2d"]) == 0
    out = capsys.readouterr().out
    assert "## Rule tuning: dispositions and false positives" in out
    tuning = out[out.index("## Rule tuning"):]
    row = next(line for line in tuning.splitlines() if line.startswith("| noisy-rule |"))
    assert [c.strip() for c in row.strip("|").split("|")] == ["noisy-rule", "4", "1", "3", "0", "0", "0", "0", "75%",
                                                              "2m30s"]
    assert main(["report", "--config", str(cfg.path), "--from", "2d", "--format", "json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert {t["rule"]: t["false_positive_rate"] for t in doc["tuning"]} == {"noisy-rule": 0.75, "quiet-rule": 0.0}


def test_bound_silences_through_the_cli_and_the_api(make_config: MakeConfig,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel.alertapi.server import load_token
    from sentinel.cli.main import main
    from tests.fixtures.receiver import FakeClock

    cfg = make_config()
    db = Database(database_path(cfg))
    now = time.time()
    a, b = make_alert(0, at=now), make_alert(1, user="u2", at=now)
    with db.transaction() as tx:
        write_alerts(tx, [a, b])
    c = str(cfg.path)
    assert main(["silence", "add", "--config", c, "--alert", a.id, "--reason", "investigating", "--author", "ann"]) == 0
    out = capsys.readouterr().out
    assert f"or until alert {a.id} resolves" in out and "user.name=u1001" in out
    assert main(["silence", "add", "--config", c, "--reason", "no matcher", "--author", "ann"]) != 0
    assert "give at least one MATCHER, or --alert" in capsys.readouterr().err
    token = load_token(cfg.state_dir / "api.token")
    api = AlertApi(database_path(cfg), "127.0.0.1:0", token, FakeClock(now))
    api.start()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{api.port}/api/silences", method="POST",
                                     data=json.dumps({"alert_id": b.id, "author": "bob",
                                                      "reason": "ticket 42"}).encode(),
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["alert_id"] == b.id and "user.name=u2" in doc["matchers"]
        assert len(active_silences(db.conn, time.time() + 1)) == 2
        req = urllib.request.Request(f"http://127.0.0.1:{api.port}/api/alerts/{b.id}/resolve", method="POST",
                                     data=json.dumps({"by": "bob", "disposition": "benign", "note": "ok"}).encode(),
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["disposition"] == "benign"
    finally:
        api.stop()
    left = active_silences(db.conn, time.time() + 1)
    assert [s.alert_id for s in left] == [a.id], "b's silence ended with b; a's still runs"
    assert main(["alerts", "resolve", "--config", c, a.id, "--disposition", "true_positive"]) == 0
    assert active_silences(db.conn, time.time() + 1) == []
    db.close()


def test_everyone_who_was_paged_hears_it_resolved(tmp_path: Path, receiver: Receiver) -> None:
    """The group's receivers (pager and chat) and the escalation step's receiver (lead), each once, each under the
    key it was paged with."""
    from tests.fixtures.receiver import FakeClock
    from tests.test_route import ROUTES as TREE
    from tests.test_route import at, receivers_yaml

    rig = build_rig(tmp_path, TREE, receivers_yaml(receiver), FakeClock(at("2026-03-11T10:00:00")),
                    followup_interval_seconds=1)
    a = make_alert(0, severity="critical", user="u1", at=rig.clock.now)
    rig.add([a])
    rig.step(31)
    rig.step(15 * 60)
    raised = {q.path.lstrip("/"): q.json()["dedup_key"] for q in receiver.accepted}
    assert sorted(raised) == ["chat", "lead", "pager"]
    assert raised["lead"] == f"sentinel-alert-{a.id}"
    with immediate(rig.db.conn):
        resolve(rig.db.conn, a.id, "ann", rig.clock.now, "true_positive")
    rig.step(1)
    resolved = [q for q in receiver.accepted if q.json()["title"].startswith("[RESOLVED]")]
    assert sorted((q.path.lstrip("/"), q.json()["dedup_key"]) for q in resolved) == sorted(raised.items())
    assert all(q.json()["event"] == "resolve" for q in resolved)
    rig.step(45 * 60)
    assert not [q for q in receiver.accepted if q.path == "/officer"], "a resolved alert escalates no further"
