"""Routing with a controllable clock: the tree, business hours, digest, silences, inhibition, escalation and
the incident clock. Messages are delivered through apprise to a local receiver where the test checks them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sentinel.route.durations import format_duration, parse_duration
from sentinel.route.lifecycle import acknowledge
from sentinel.route.silences import add_silence, expire_silence, parse_matcher
from tests.fixtures.receiver import FakeClock, NotifyRig, Receiver, build_rig, make_alert

ZONE = ZoneInfo("America/Chicago")


def at(text: str) -> float:
    """A local Chicago time as a timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


ROUTES = """
timezone: America/Chicago
business_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00"}
digest: {at: "08:00"}
defaults: {group_by: [rule, user.name], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
route:
  receivers: [chat]
  routes:
    - match: {severity: critical}
      receivers: [pager]
      group_wait: 0s
      continue: true
    - match: {severity: critical}
      receivers: [chat]
    - match: {severity: high}
      active: business_hours
      receivers: [chat]
    - match: {severity: high}
      active: off_hours
      receivers: [pager]
    - match: {severity: [low, info]}
      digest: true
      group_by: [severity]
      receivers: [chat]
inhibit:
  - source: {severity: critical}
    target: {severity: [info, low, medium, high]}
    equal: [user.name]
escalation:
  - match: {severity: critical}
    steps:
      - {after: 15m, receivers: [lead]}
      - {after: 45m, receivers: [officer]}
incident:
  window: 24h
  remind_before: [4h, 1h]
  receivers: [officer]
"""


def receivers_yaml(r: Receiver) -> str:
    return "receivers:\n" + "".join(
        f'  - name: {name}\n    urls: ["json://{r.url}/{name}"]\n' for name in ("chat", "pager", "lead", "officer"))


@pytest.fixture
def rig(tmp_path: Path, receiver: Receiver) -> NotifyRig:
    # Wednesday 10:00 in Chicago: business hours.
    return build_rig(tmp_path, ROUTES, receivers_yaml(receiver), FakeClock(at("2026-03-11T10:00:00")),
                     followup_interval_seconds=1)


def paths(r: Receiver) -> list[str]:
    return sorted(q.path.lstrip("/") for q in r.accepted)


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration(45) == 45 and parse_duration("60d") == 60 * 86400
    assert format_duration(5400) == "1h30m"
    for bad in ("5 minutes", "", "-3s", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_critical_pages_and_chats_via_continue(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0, severity="critical")])
    rig.step(0)
    assert paths(receiver) == ["pager"], "group_wait 0s on the pager route"
    rig.step(31)
    assert paths(receiver) == ["chat", "pager"]


def test_high_goes_to_chat_in_business_hours_and_pager_off_hours(tmp_path: Path, receiver: Receiver) -> None:
    rig = build_rig(tmp_path, ROUTES, receivers_yaml(receiver), FakeClock(at("2026-03-11T10:00:00")))
    rig.add([make_alert(0, severity="high")])
    rig.step(31)
    assert paths(receiver) == ["chat"]
    for n, local in ((1, "2026-03-11T22:00:00"), (2, "2026-03-14T11:00:00")):  # Wednesday night, Saturday
        rig.clock.now = at(local)
        rig.add([make_alert(n, severity="high", user=f"night{n}", at=rig.clock.now)])
        rig.step(31)
        assert [q.path for q in receiver.accepted if f"night{n}" in q.json()["title"]] == ["/pager"]


def test_low_and_info_wait_for_the_daily_digest(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(i, severity="low", user=f"u{i}", rule="new-country-login") for i in range(3)])
    rig.add([make_alert(9, severity="info", user="u9", rule="new-device")])
    rig.step(3600)
    rig.step(12 * 3600)  # Wednesday 23:00: still nothing
    assert receiver.accepted == []
    rig.clock.now = at("2026-03-12T08:00:00")
    rig.step(0)
    digests = [q.json() for q in receiver.accepted]
    assert len(digests) == 2, "one digest per severity group"
    listed = sorted(sum(line.startswith("- ") for line in d["message"].splitlines()) for d in digests)
    assert listed == [1, 3], "info: one alert; low: three users"
    assert all("digest" in d["title"] for d in digests)
    assert sum(int(d["title"].split(": ")[1].split()[0]) for d in digests) == 4


def test_silence_suppresses_until_expired(rig: NotifyRig, receiver: Receiver) -> None:
    with rig.db.transaction() as tx:
        s = add_silence(tx, [parse_matcher("rule=phi-bulk-export"), parse_matcher("user.name=~u1.*")], 3600,
                        "alice", "maintenance window CHG-1042", rig.clock.now)
    rig.add([make_alert(0, user="u100"), make_alert(1, user="u200")])
    rig.step(31)
    assert len(receiver.accepted) == 1 and "u200" in receiver.accepted[0].json()["title"]
    assert rig.rows("SELECT suppressed FROM silences") == [(1,)]
    assert rig.rows("SELECT state FROM route_members WHERE alert_id LIKE '%u100%'") == [("silenced",)]
    with rig.db.transaction() as tx:
        assert expire_silence(tx, s.id, rig.clock.now)
    rig.add([make_alert(2, user="u100", at=rig.clock.now, group_key="again")])
    rig.step(5 * 60)
    assert any("u100" in q.json()["title"] for q in receiver.accepted)


def test_silence_expires_by_itself(rig: NotifyRig, receiver: Receiver) -> None:
    with rig.db.transaction() as tx:
        add_silence(tx, [parse_matcher("user.name=u1")], 600, "alice", "testing", rig.clock.now)
    rig.add([make_alert(0, user="u1")])
    rig.step(31)
    assert receiver.accepted == []
    rig.clock.advance(700)
    rig.add([make_alert(1, user="u1", at=rig.clock.now, group_key="later")])
    rig.step(5 * 60)
    assert len(receiver.accepted) == 1


def test_bad_matchers_and_silences_are_refused() -> None:
    for bad in ("user.name", "=x", "a=~(", "user.name="):
        with pytest.raises(ValueError):
            parse_matcher(bad)


def test_a_critical_for_a_user_mutes_lower_tiers_for_that_user(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0, severity="critical", user="u1", rule="mfa-disabled"),
             make_alert(1, severity="high", user="u1"), make_alert(2, severity="high", user="u2")])
    rig.step(31)
    titles = [q.json()["title"] for q in receiver.accepted]
    assert sum("u1" in t and "phi bulk export" in t for t in titles) == 0, "inhibited"
    assert sum("u2" in t for t in titles) == 1
    assert sum("mfa disabled" in t for t in titles) == 2, "the critical itself pages and chats"
    assert rig.rows("SELECT state FROM route_members WHERE alert_id = 'phi-bulk-export-u1-000001'") == [("inhibited",)]


def test_unacknowledged_critical_escalates_step_by_step(rig: NotifyRig, receiver: Receiver) -> None:
    now = rig.clock.now
    rig.add([make_alert(0, severity="critical", user="u1", at=now),
             make_alert(1, severity="critical", user="u2", at=now)])
    rig.step(31)
    with rig.db.transaction() as tx:
        acknowledge(tx, "phi-bulk-export-u2-000001", "bob", rig.clock.now)
    rig.step(14 * 60)
    assert "lead" not in paths(receiver)
    rig.step(60)
    assert paths(receiver).count("lead") == 1
    esc = next(q.json() for q in receiver.accepted if q.path == "/lead")
    assert "ESCALATION 1" in esc["title"] and "u1" in esc["title"]
    assert "sentinel alerts ack phi-bulk-export-u1-000000" in esc["message"]
    rig.step(30 * 60)
    assert paths(receiver).count("lead") == 1, "each step once"
    assert paths(receiver).count("officer") == 1
    assert rig.rows("SELECT COUNT(*) FROM alert_followups WHERE alert_id LIKE '%u2%'") == [(0,)], "acked: no escalation"


def test_incident_clock_records_deadlines_and_reminds_before_them(rig: NotifyRig, receiver: Receiver) -> None:
    rig.add([make_alert(0, severity="high", at=rig.clock.now), make_alert(1, severity="medium", user="u9")])
    [(detected, ba, breach)] = rig.rows("SELECT detected_at, ba_deadline, breach_deadline FROM incidents")
    assert ba - detected == 24 * 3600 and breach - detected == 60 * 86400, "only high/critical have a clock"
    rig.step(19 * 3600)
    assert "officer" not in paths(receiver)
    rig.step(3600 + 1)  # 20h after detection: 4h before the BA deadline
    reminders = [q.json() for q in receiver.accepted if q.path == "/officer"]
    assert len(reminders) == 1 and "[DEADLINE]" in reminders[0]["title"] and "4h" in reminders[0]["title"]
    rig.step(3 * 3600)  # 1h before
    assert paths(receiver).count("officer") == 2
    with rig.db.transaction() as tx:
        acknowledge(tx, "phi-bulk-export-u1001-000000", "carol", rig.clock.now)
    rig.step(5 * 3600)
    assert paths(receiver).count("officer") == 2, "acknowledged: no more reminders"
