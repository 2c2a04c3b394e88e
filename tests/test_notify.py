"""Delivery through real apprise to a local HTTP receiver: grouping, dedup, redaction, retries, fallback, storms."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from sentinel.alertapi.server import AlertApi
from sentinel.daemon.assemble import assemble
from sentinel.store.alerts import write_alerts
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import NotifyRig, Receiver, build_rig, make_alert, write_alerts_dir


def routes(group_wait: str = "30s", group_interval: str = "5m", repeat: str = "4h") -> str:
    return f"""
defaults: {{group_by: [rule, user.name], group_wait: {group_wait}, group_interval: {group_interval},
           repeat_interval: {repeat}}}
route:
  receivers: [hook]
"""


def receivers(r: Receiver, extra: str = "", fallback: str | None = None, max_attempts: int = 3) -> str:
    fb = f"\n    fallback: {fallback}" if fallback else ""
    return f"""
receivers:
  - name: hook
    urls: ["json://{r.url}/hook"]
    max_attempts: {max_attempts}{fb}
{extra}"""


def count_in(message: str) -> int:
    m = re.search(r"alerts: (\d+)", message)
    assert m, message
    return int(m.group(1))


@pytest.fixture
def rig(tmp_path: Path, receiver: Receiver) -> NotifyRig:
    return build_rig(tmp_path, routes(), receivers(receiver))


def test_a_group_arrives_once_with_its_count_and_dedup_key(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(i, at=rig.clock.now + i) for i in range(5)])
    assert rig.step() == 0, "nothing before group_wait"
    rig.step(10)
    assert receiver.accepted == []
    assert rig.step(25) == 1
    [req] = receiver.accepted
    doc = req.json()
    assert count_in(doc["message"]) == 5
    assert "(1 distinct)" in doc["message"], "same rule and user: one distinct alert key"
    assert doc["dedup_key"].startswith("sentinel-") and req.headers["X-Sentinel-Dedup-Key"] == doc["dedup_key"]
    assert "phi-bulk-export" in doc["message"] and "u1001" in doc["title"]
    assert "sentinel alerts show phi-bulk-export-u1001-" in doc["message"], "the evidence command is in the message"
    # Nothing more while nothing new arrives.
    assert rig.step(60) == 0
    assert rig.rows("SELECT COUNT(*) FROM notification_attempts WHERE outcome = 'delivered'") == [(1,)]


def test_separate_groups_per_user_and_rule(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0, user="u1"), make_alert(1, user="u2"), make_alert(2, user="u1", rule="mfa-failures")])
    rig.step(31)
    titles = sorted(r.json()["title"] for r in receiver.accepted)
    assert len(titles) == 3
    assert sum("u1" in t and "mfa" in t for t in titles) == 1


def test_a_duplicate_alert_key_waits_for_the_repeat_interval(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0)])
    rig.step(31)
    assert len(receiver.accepted) == 1
    # The rule fires again for the same key (new alert id): no new message, even after group_interval.
    rig.add([make_alert(1, at=rig.clock.now)])
    assert rig.step(6 * 60) == 0
    assert rig.step(3600) == 0
    # At repeat_interval the still-open group is re-sent once, counting the duplicate.
    assert rig.step(4 * 3600) == 1
    repeat = receiver.accepted[1].json()["message"]
    assert repeat.startswith("repeat") and count_in(repeat) == 2
    # Acknowledged alerts are not repeated.
    from sentinel.route.lifecycle import acknowledge

    with rig.db.transaction() as tx:
        for a in ("phi-bulk-export-u1001-000000", "phi-bulk-export-u1001-000001"):
            acknowledge(tx, a, "oncall", rig.clock.now)
    assert rig.step(5 * 3600) == 0


def test_new_alerts_after_a_flush_wait_for_group_interval(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0)])
    rig.step(31)
    rig.add([make_alert(1, at=rig.clock.now, group_key="other-key")])
    assert rig.step(60) == 0, "group_interval (5m) has not passed"
    assert rig.step(4 * 60) == 1
    assert count_in(receiver.accepted[1].json()["message"]) == 1


def test_phi_is_redacted_before_it_leaves(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, routes(), receivers(receiver), names=["Maria Gonzalez"])
    # The patient name in the event's PHI field is learned from the audit log; the other from the names file.
    with rig.db.transaction() as tx:
        tx.execute("INSERT INTO events (id, ts, source, host, user, action, outcome, ip, parsed, doc) "
                   "VALUES ('ev1', 1, 'billing', 'h', 'jsmith@clinic.example', 'phi_export', 'success', NULL, 1, ?)",
                   ('{"phi.patient_name": "Whitfield, Eleanor", "phi.patient_ids": ["P-778812"]}',))
    leaky = ("export of Eleanor Whitfield (P-778812) and Maria Gonzalez, SSN 123-45-6789, MRN: 99812-A, "
             "DOB: 04/12/1961, phone (555) 201-3344, contact eleanor.w@mail.example")
    rig.add([make_alert(0, user="jsmith@clinic.example", summary=leaky, event_ids=["ev1"])])
    rig.step(31)
    [req] = receiver.accepted
    text = req.body.decode()
    for secret in ("Eleanor", "Whitfield", "P-778812", "Maria", "Gonzalez", "123-45-6789", "99812-A", "1961",
                   "201-3344", "eleanor.w@mail.example"):
        assert secret not in text, f"{secret} leaked: {text}"
    assert "[REDACTED]" in text
    assert "jsmith@clinic.example" in req.json()["title"], "the user id (a routing label) stays"


def test_storm_is_one_message_per_group_per_interval(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, routes(), receivers(receiver))
    users = [f"u{i:02d}" for i in range(10)]
    start = rig.clock.now
    # 10,000 alerts for one rule within one minute, spread over 10 users (10 groups), routed every second.
    for second in range(60):
        batch = [make_alert(second * 1000 + k, user=users[k % 10], at=rig.clock.now, group_key=f"k{second}-{k}")
                 for k in range(167 if second < 59 else 10_000 - 59 * 167)]
        rig.add(batch)
        rig.step(1)
    first_minute = list(receiver.accepted)
    assert len(first_minute) <= len(users), "at most one message per group in the first group_wait/interval"
    rig.step(start + 31 + 300 - rig.clock.now)  # the next group_interval
    assert rig.step(1) == 0
    msgs = receiver.accepted
    per_group: dict[str, list[int]] = {}
    for r in msgs:
        per_group.setdefault(r.json()["dedup_key"], []).append(count_in(r.json()["message"]))
    assert len(per_group) == 10
    assert all(len(v) <= 2 for v in per_group.values()), "one message at group_wait, one at group_interval"
    assert sum(sum(v) for v in per_group.values()) == 10_000, "every alert is counted in some message"
    assert rig.rows("SELECT COUNT(*) FROM outbox") == [(0,)]


def test_500s_retry_with_backoff_then_the_fallback_gets_it(tmp_path: Path, receiver: Receiver) -> None:
    backup = Receiver().start()
    try:
        extra = f"""  - name: backup
    urls: ["json://{backup.url}/backup"]
"""
        rig = build_rig(tmp_path, routes(), receivers(receiver, extra, fallback="backup", max_attempts=3))
        receiver.fail_with(500)
        rig.add([make_alert(0)])
        rig.step(31)
        assert rig.rows("SELECT status, attempts FROM notifications") == [("pending", 1)]
        nxt = rig.rows("SELECT next_attempt FROM notifications")[0][0]
        assert 0.75 <= nxt - rig.clock.now <= 1.25, "first retry after base ± jitter"
        assert rig.step(0.5) == 0 and len(receiver.requests) == 1, "not retried before its time"
        rig.step(1)
        rig.step(3)
        assert len(receiver.requests) == 3
        assert rig.step(1) == 1, "after max_attempts the fallback delivers"
        assert len(backup.accepted) == 1 and backup.accepted[0].path == "/backup"
        rows = rig.rows("SELECT receiver, status, attempts, fallback_of FROM notifications ORDER BY id")
        assert rows[0][:3] == ("hook", "rerouted", 3) and rows[1][:3] == ("backup", "delivered", 1)
        attempts = rig.rows("SELECT receiver, outcome, error FROM notification_attempts ORDER BY id")
        assert [a[:2] for a in attempts] == [("hook", "failed")] * 3 + [("backup", "delivered")]
        assert all(a[2] for a in attempts[:3]), "each failure records an error"
        assert rig.step(3600) == 0 and len(backup.accepted) == 1
    finally:
        backup.stop()


def test_receiver_down_then_back_nothing_dropped_nothing_twice(rig: NotifyRig, receiver: Receiver) -> None:
    receiver.down()
    rig.add([make_alert(i, user=f"u{i}") for i in range(4)])
    rig.step(31)
    for _ in range(8):  # well past max_attempts: without a fallback it keeps trying
        rig.step(60)
    assert rig.rows("SELECT COUNT(*) FROM notifications WHERE status = 'pending' AND attempts >= 3") == [(4,)]
    receiver.up()
    rig.step(60)
    rig.step(120)
    assert len(receiver.accepted) == 4
    keys = [r.json()["notification_key"] for r in receiver.accepted]
    assert len(set(keys)) == 4
    assert rig.rows("SELECT COUNT(*) FROM notifications WHERE status = 'delivered'") == [(4,)]
    outcomes = dict(rig.rows("SELECT outcome, COUNT(*) FROM notification_attempts GROUP BY outcome"))
    assert outcomes["delivered"] == 4 and outcomes["failed"] + outcomes["deferred"] >= 4 * 3


def test_a_hanging_receiver_times_out_and_is_retried(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, routes(), receivers(receiver), request_timeout_seconds=0.5)
    receiver.hang(2.0)
    rig.add([make_alert(0)])
    rig.step(31)
    [(outcome, error)] = rig.rows("SELECT outcome, error FROM notification_attempts")
    assert outcome == "failed" and error
    receiver.heal()
    rig.step(5)
    assert len(receiver.accepted) == 1


def test_secrets_are_resolved_and_never_logged(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    token = "hooktoken-7f3a9c2e51"
    monkeypatch.setenv("TEST_HOOK_TOKEN", token)
    text = f"""
receivers:
  - name: hook
    urls: ["json://{receiver.url}/${{TEST_HOOK_TOKEN}}"]
"""
    rig = build_rig(tmp_path, routes(), text)
    rig.add([make_alert(0)])
    receiver.fail_with(500)
    import logging

    from sentinel.cli.logsetup import _TextFormatter

    with caplog.at_level(logging.DEBUG):
        rig.step(31)
    receiver.heal()
    rig.step(5)
    assert receiver.accepted[0].path == f"/{token}", "the reference was resolved"
    stored = str(rig.rows("SELECT * FROM notification_attempts")) + str(rig.rows("SELECT * FROM notifications"))
    assert token not in stored
    formatted = "\n".join(_TextFormatter().format(r) for r in caplog.records)
    assert token not in formatted
    assert token not in (tmp_path / "alerts" / "receivers.yaml").read_text()


def test_the_daemon_runs_routing_delivery_and_the_api(tmp_path: Path, receiver: Receiver,
                                                      make_config: MakeConfig) -> None:
    alerts_dir = tmp_path / "daemon-alerts"
    write_alerts_dir(alerts_dir, routes(group_wait="0s"), receivers(receiver))
    cfg = make_config(alerts_dir=str(alerts_dir), api={"enabled": True, "listen": "127.0.0.1:0"},
                      notify={"poll_interval_ms": 50}, detection={"enabled": False})
    daemon = assemble(cfg)
    try:
        daemon.start_workers()
        assert daemon.db is not None
        with daemon.db.transaction() as tx:
            write_alerts(tx, [make_alert(0, at=time.time())])
        [req] = receiver.wait_for(1, timeout=10)
        assert count_in(req.json()["message"]) == 1
        api = next(w for w in daemon.workers if isinstance(w, AlertApi))
        token = (cfg.state_dir / "api.token").read_text().strip()
        request = urllib.request.Request(f"http://127.0.0.1:{api.port}/api/alerts",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert [a["id"] for a in json.loads(resp.read())["alerts"]] == ["phi-bulk-export-u1001-000000"]
    finally:
        daemon.close()


def test_channels_with_an_incident_key_get_the_stable_dedup_key() -> None:
    import apprise

    from sentinel.notify.delivery import with_keys

    pd = apprise.Apprise.instantiate(with_keys("pagerduty://integrationkey1@apikey123456", "sentinel-g1", "g:g1:3", 5))
    assert pd is not None and pd.dedup == "sentinel-g1"
    og = apprise.Apprise.instantiate(with_keys("opsgenie://apikey123456", "sentinel-g1", "g:g1:3", 5))
    assert og is not None and og.alias == "sentinel-g1"
    js = apprise.Apprise.instantiate(with_keys("json://127.0.0.1:9/hook?x=1", "sentinel-g1", "g:g1:3", 5))
    assert js is not None and js.payload_extras == {"dedup_key": "sentinel-g1", "notification_key": "g:g1:3"}
    assert js.headers["X-Sentinel-Dedup-Key"] == "sentinel-g1"
