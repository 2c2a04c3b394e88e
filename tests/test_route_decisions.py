"""Routing's decisions without a database: group timing, dedup, repeats, silences, inhibition, incident
clocks and deadline reminders, each from plain values (what a responder sees follows from these)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sentinel.events.alerts import Alert
from sentinel.route.decisions import (
    MAX_LISTED,
    SEND,
    Inhibitor,
    incident_for,
    inhibit_severities,
    inhibited,
    inhibitors_of,
    member_state,
    next_flush_after,
    next_flush_on_join,
    plan_flush,
    reminder_step,
    triage,
    wants_repeat,
)
from sentinel.route.silences import Matcher, Silence
from sentinel.route.spec import Incident as IncidentSpec
from sentinel.route.spec import Inhibit
from sentinel.route.store import Group, StatusedAlert

T0 = 1_700_000_000.0
MIN = 60.0
HOUR = 3600.0


def group(**kw: object) -> Group:
    base = Group(id="g1", route_id="r0", receiver="oncall", labels={"rule": "phi-export"}, digest=False,
                 group_wait=30.0, group_interval=5 * MIN, repeat_interval=4 * HOUR, next_flush=None,
                 last_flush=None, flushes=0)
    return replace(base, **kw)  # type: ignore[arg-type]


def alert(aid: str, *, rule: str = "phi-export", key: str = "u1", severity: str = "high", user: str = "u1",
          host: str = "h1", created: float = T0, count: int = 1) -> Alert:
    return Alert(id=aid, rule_id=rule, title=f"{rule} by {user}", severity=severity, group_key=key,
                 first_seen=created - 10, last_seen=created, count=count, event_ids=[], summary="s",
                 labels={"user.name": user, "host.name": host}, created=created)


def silence(*matchers: Matcher, sid: str = "s1") -> Silence:
    return Silence(sid, matchers, T0 - HOUR, T0 + HOUR, "ana", "maintenance", T0 - HOUR, None)


# --- when a group is flushed ----------------------------------------------------------------------------------


def test_a_new_group_waits_group_wait() -> None:
    assert next_flush_on_join(group(), T0, None) == T0 + 30.0


def test_a_later_alert_waits_group_interval_after_the_last_message() -> None:
    g = group(last_flush=T0, flushes=1)
    assert next_flush_on_join(g, T0 + MIN, None) == T0 + 5 * MIN
    # Long after the interval: at once, never in the past.
    assert next_flush_on_join(g, T0 + HOUR, None) == T0 + HOUR


def test_a_join_only_brings_the_flush_closer() -> None:
    assert next_flush_on_join(group(next_flush=T0 + 10), T0, None) is None, "a later time must not postpone"
    assert next_flush_on_join(group(next_flush=T0 + 90), T0, None) == T0 + 30.0


def test_a_digest_group_flushes_at_the_digest_time_only() -> None:
    g = group(digest=True)
    assert next_flush_on_join(g, T0, T0 + 9 * HOUR) == T0 + 9 * HOUR
    with pytest.raises(ValueError, match="digest"):
        next_flush_on_join(g, T0, None)


# --- duplicates and repeats -----------------------------------------------------------------------------------


def test_a_key_already_notified_joins_as_a_duplicate() -> None:
    assert member_state(True) == "duplicate"
    assert member_state(False) == "pending"


def test_duplicates_alone_send_nothing() -> None:
    g = group(last_flush=T0, flushes=1)
    assert plan_flush(g, [], [alert("a2")], [], T0 + MIN) is None


def test_a_fresh_alert_sends_one_message_counting_its_duplicates() -> None:
    g = group(flushes=2)
    plan = plan_flush(g, [alert("a1")], [alert("a2"), alert("a3", key="u2")], [], T0)
    assert plan is not None
    assert (plan.kind, plan.key, plan.dedup_key, plan.seq) == ("alert", "g:g1:3", "sentinel-g1", 3)
    assert plan.members == ("a1", "a2", "a3")
    # a1 and a2 share the key phi-export|u1: listed once, counted twice.
    assert plan.payload["alert_count"] == 3 and plan.payload["distinct_count"] == 2
    assert sorted(plan.payload["occurrences"].values()) == [1, 2]


def test_the_repeat_waits_repeat_interval() -> None:
    g = group(last_flush=T0, flushes=1)
    firing = [alert("a1")]
    assert not wants_repeat(g, [], T0 + 4 * HOUR - 1)
    assert plan_flush(g, [], [], firing, T0 + 4 * HOUR - 1) is None
    assert wants_repeat(g, [], T0 + 4 * HOUR)
    plan = plan_flush(g, [], [], firing, T0 + 4 * HOUR)
    assert plan is not None and plan.kind == "repeat" and plan.payload["alert_ids"] == ["a1"]
    assert plan.members == (), "a repeat re-lists what fires; it adds no member to the message"


def test_no_repeat_when_nothing_fires_or_something_is_new_or_for_a_digest() -> None:
    g = group(last_flush=T0, flushes=1)
    assert plan_flush(g, [], [], [], T0 + 5 * HOUR) is None, "every alert acknowledged or resolved: silence"
    assert not wants_repeat(g, [alert("a9")], T0 + 5 * HOUR), "a fresh alert makes an ordinary message"
    assert not wants_repeat(group(digest=True, last_flush=T0), [], T0 + 5 * HOUR)


def test_after_a_flush_the_next_is_the_repeat_while_anything_fires() -> None:
    g = group(last_flush=T0, flushes=1)
    assert next_flush_after(g, T0 + HOUR, True, T0 + HOUR) == T0 + HOUR + 4 * HOUR
    assert next_flush_after(g, None, True, T0 + HOUR) == T0 + 4 * HOUR, "no message now: from the last one"
    assert next_flush_after(g, None, False, T0 + HOUR) is None, "nothing fires: wait for the next alert"


def test_a_message_lists_at_most_max_listed_alerts_but_counts_all() -> None:
    many = [alert(f"a{i}", key=f"u{i}") for i in range(MAX_LISTED + 20)]
    plan = plan_flush(group(), many, [], [], T0)
    assert plan is not None
    assert len(plan.payload["alert_ids"]) == MAX_LISTED
    assert plan.payload["alert_count"] == MAX_LISTED + 20 and len(plan.members) == MAX_LISTED + 20


def test_the_most_severe_alert_is_listed_first_and_names_the_message() -> None:
    plan = plan_flush(group(), [alert("low", severity="low", key="k1"), alert("crit", severity="critical",
                                                                               key="k2")], [], [], T0)
    assert plan is not None
    assert plan.payload["alert_ids"][0] == "crit" and plan.payload["severity"] == "critical"


# --- silences, inhibition, resolution before sending ----------------------------------------------------------


def test_a_resolved_or_vanished_alert_is_closed_not_sent() -> None:
    assert triage(None, [], [], []).state == "resolved"
    assert triage(StatusedAlert(alert("a1"), "resolved"), [], [], []).state == "resolved"
    assert triage(StatusedAlert(alert("a1"), "acknowledged"), [], [], []) == SEND


def test_a_matching_silence_suppresses_and_names_itself() -> None:
    s = silence(Matcher("user.name", "=", "u1"), Matcher("rule", "=~", "phi-.*"))
    verdict = triage(StatusedAlert(alert("a1"), "open"), [s], [], [])
    assert verdict.state == "silenced" and verdict.silence == s, "the silence is named so its count goes up"
    other_user = triage(StatusedAlert(alert("a2", user="u2"), "open"), [s], [], [])
    assert other_user == SEND, "every matcher must hold"


INHIBIT = Inhibit(source={"severity": "critical"}, target={"rule": "phi-export"}, equal=["user.name"])


def test_a_critical_for_the_same_user_inhibits() -> None:
    crit = alert("c1", rule="account-takeover", severity="critical", user="u1")
    sources = inhibitors_of(0, INHIBIT, [crit, alert("x", severity="low")])
    assert [s.alert_id for s in sources] == ["c1"]
    assert triage(StatusedAlert(alert("a1", user="u1"), "open"), [], sources, [INHIBIT]).state == "inhibited"
    assert triage(StatusedAlert(alert("a2", user="u2"), "open"), [], sources, [INHIBIT]) == SEND


def test_an_alert_never_inhibits_itself_and_a_missing_equal_label_inhibits_nothing() -> None:
    rule = Inhibit(source={"rule": "phi-export"}, target={"rule": "phi-export"}, equal=["user.name"])
    a1 = alert("a1")
    own = inhibitors_of(0, rule, [a1])
    assert not inhibited({"rule": "phi-export", "user.name": "u1"}, "a1", own, [rule])
    no_user = [Inhibitor(0, {"rule": "phi-export"}, "src")]
    assert not inhibited({"rule": "phi-export"}, "a2", no_user, [rule]), "both lack user.name: not 'equal'"


def test_a_silence_wins_over_inhibition() -> None:
    crit = alert("c1", rule="account-takeover", severity="critical")
    s = silence(Matcher("rule", "=", "phi-export"))
    verdict = triage(StatusedAlert(alert("a1"), "open"), [s], inhibitors_of(0, INHIBIT, [crit]), [INHIBIT])
    assert verdict.state == "silenced"


def test_inhibit_sources_are_read_by_the_severity_they_name() -> None:
    assert inhibit_severities(INHIBIT) == ["critical"]
    assert inhibit_severities(Inhibit(source={"severity": ["high", "critical"]}, target={})) == ["high", "critical"]
    assert inhibit_severities(Inhibit(source={"rule": "x"}, target={})) is None


# --- incident clock and reminders -----------------------------------------------------------------------------


def test_high_and_critical_alerts_start_an_incident_clock() -> None:
    spec = IncidentSpec()
    inc = incident_for(alert("a1", severity="critical"), spec, T0 + 99)
    assert inc is not None
    assert (inc.detected_at, inc.ba_deadline, inc.breach_deadline) == (T0, T0 + 86400, T0 + 60 * 86400)
    assert incident_for(alert("a2", severity="medium"), spec, T0) is None
    undated = incident_for(alert("a3", created=0.0), spec, T0 + 5)
    assert undated is not None and undated.detected_at == T0 + 5, "no creation time: detected when routed"


OFFSETS = [4 * HOUR, HOUR]  # sorted latest-first, as routing reads them


def test_reminders_come_at_each_offset_then_when_the_deadline_passes() -> None:
    deadline = T0 + 24 * HOUR
    assert reminder_step("ba", deadline, OFFSETS, deadline - 5 * HOUR) is None
    four = reminder_step("ba", deadline, OFFSETS, deadline - 4 * HOUR)
    assert four is not None and (four.step, four.superseded) == ("ba:14400", ())
    one = reminder_step("ba", deadline, OFFSETS, deadline - 30 * MIN)
    assert one is not None and one.step == "ba:3600"
    passed = reminder_step("breach", deadline, OFFSETS, deadline)
    assert passed is not None and passed.step == "breach:passed"


def test_a_reminder_missed_while_down_is_superseded_by_the_closer_one() -> None:
    deadline = T0 + 24 * HOUR
    late = reminder_step("ba", deadline, OFFSETS, deadline - 10 * MIN)
    assert late is not None and late.step == "ba:3600" and late.superseded == ("ba:14400",)
    after = reminder_step("ba", deadline, OFFSETS, deadline + 1)
    assert after is not None and after.step == "ba:passed"
    assert set(after.superseded) == {"ba:14400", "ba:3600"}, "only the 'passed' reminder goes out"
