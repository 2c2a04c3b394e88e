"""The detections issue #21 added or reworked, beyond the pack's one fire / one quiet case each: terminations learnt
from the identity provider through one identity map, the slow spray over an IPv6 /64, working hours across a DST
change, and rule state that carries all of it over a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sentinel.detect.kinds import source_network
from sentinel.events.model import Event
from tests.detect_events import BASE, DAY, HOUR, MINUTE, Harness, ev, export

TERMINATED = "account-terminated-activity"
ADMIN = "it.admin@harborclaims.com"


def _deactivate(at: float, login: str, display: str, action: str = "user_deactivated") -> Event:
    """Okta's user.lifecycle.deactivate (or suspend): the administrator acts on the target user."""
    return ev(action, at, ADMIN, "success", source="okta", user__target__name=f"{login}@harborclaims.com",
              user__target__full_name=display, user__full_name="IT Admin")


def test_an_okta_deactivation_is_learnt_and_a_later_ssh_login_is_critical(tmp_path: Path) -> None:
    h = Harness(tmp_path, [TERMINATED])
    alerts = h.feed([
        ev("ssh_login", 0, "jdoe", "success", source__ip="10.20.5.10"),
        _deactivate(DAY, "jdoe", "Jane Doe"),
        ev("ssh_login", 4 * DAY, "jdoe", "success", source__ip="203.0.113.77", host__name="bastion01"),
    ])
    assert [(a.rule_id, a.severity) for a in alerts] == [(TERMINATED, "critical")]
    assert alerts[0].details["terminated_by"] == "user_deactivated"
    assert alerts[0].details["terminated_at"] == BASE + DAY
    assert alerts[0].labels["user.name"] == "jdoe"
    assert alerts[0].summary == "terminated account jdoe: ssh_login (success) from 203.0.113.77 on bastion01"


def test_a_display_name_resolves_to_the_account_it_was_seen_with(tmp_path: Path) -> None:
    h = Harness(tmp_path, [TERMINATED])
    alerts = h.feed([
        _deactivate(0, "jdoe", "Jane  Doe"),
        # A source that names people by their display name, differently spaced and cased.
        ev("phi_view", 2 * DAY, "jane doe", "success"),
        # Another person of the same first name is not her.
        ev("phi_view", 2 * DAY + HOUR, "Jane Roe", "success"),
    ])
    assert [a.group_key for a in alerts] == ["user.name=jdoe"]


def test_entra_account_disabled_marks_the_account_for_every_source(tmp_path: Path) -> None:
    h = Harness(tmp_path, [TERMINATED])
    disabled = ev("user_login", 0, "kim@harborclaims.com", "failure", source="okta", event__module="azure",
                  event__code="50057", event__reason="account disabled")
    alerts = h.feed([disabled, ev("phi_export", DAY, "kim", "success", phi__record_count=40)])
    assert [a.rule_id for a in alerts] == [TERMINATED]
    assert alerts[0].details["revoke_event"] == disabled.id


def test_termination_survives_a_restart_and_a_restore_clears_it(tmp_path: Path) -> None:
    h = Harness(tmp_path, [TERMINATED])
    h.feed([_deactivate(0, "jdoe", "Jane Doe", "user_deactivated")])
    h.engine = h.new_engine()
    first = h.feed([ev("ssh_login", DAY, "jdoe", "failure", source__ip="203.0.113.77")])
    assert [a.rule_id for a in first] == [TERMINATED]
    h.feed([ev("user_reactivated", 2 * DAY, ADMIN, "success", user__target__name="JDoe@harborclaims.com")])
    assert h.feed([ev("ssh_login", 3 * DAY, "jdoe", "success", source__ip="10.20.5.10")]) == []


def test_the_operator_list_still_marks_accounts_the_idp_never_ended(tmp_path: Path) -> None:
    h = Harness(tmp_path, [TERMINATED], {"terminated_accounts": ["contractor7"]})
    alerts = h.feed([ev("ssh_login", 0, "contractor7", "success", source__ip="10.20.5.10")])
    assert alerts[0].details["terminated_by"] == "operator list"


def test_source_network_is_the_slash_24_or_slash_64() -> None:
    assert source_network("185.220.101.91") == "185.220.101.0/24"
    assert source_network("2001:db8:5:7:a::1") == "2001:db8:5:7::/64"
    assert source_network("not an address") is None


def test_slow_spray_rotating_over_an_ipv6_64_fires_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["auth-password-spray-slow"])
    guesses = [ev("user_login", i * 7 * MINUTE, f"staff{i}@harborclaims.com", "failure",
                  source__ip=f"2001:db8:5:7::{i % 6 + 1:x}") for i in range(30)]
    alerts = h.feed(guesses)
    assert [a.group_key for a in alerts] == ["@source_network=2001:db8:5:7::/64"]
    # It fires at the 15th account; the other 15 join the open alert, whose summary gives the real figures (#12).
    assert alerts[0].summary == "30 distinct accounts failed to sign in from network 2001:db8:5:7::/64 within 203m"


def _local(day: int, hour: float) -> float:
    """Seconds after BASE of ``hour`` o'clock in Chicago, ``day`` days after 2 March 2026 (DST starts on the 8th)."""
    d = datetime(2026, 3, 2 + day, tzinfo=ZoneInfo("America/Chicago"))
    return d.timestamp() + hour * 3600 - BASE


def test_working_hours_follow_the_clock_across_the_dst_change(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["phi-export-unusual-hours"], zone="America/Chicago")
    # Twelve weekdays of work from 08:00 to 16:00 Chicago time, straddling the change on Sunday 8 March.
    history = [ev("phi_view", _local(d, 8 + i), "early", "success", phi__patient_ids=[f"MRN-{d}{i}"])
               for d in range(16) if datetime(2026, 3, 2 + d).weekday() < 5 for i in range(9)]
    history += [export(_local(d, 11), "early", 100) for d in range(16) if datetime(2026, 3, 2 + d).weekday() < 5]
    # 07:15 in CDT is 12:15 UTC, an hour earlier in UTC than 07:15 in CST: still working hours.
    inside = export(_local(16, 7.25), "early", 100)
    outside = export(_local(16, 4.5), "early", 100)
    assert datetime.fromtimestamp(BASE + inside.timestamp - BASE, UTC).hour == 12
    alerts = h.feed(sorted([*history, inside, outside], key=lambda e: e.timestamp))
    assert [a.summary for a in alerts] == ["early exported 100 PHI records at 4:00, outside their usual export hours"]


def test_a_learning_rule_says_how_many_accounts_it_is_still_learning(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["phi-export-unusual-hours"])

    def learning() -> float | None:
        return h.metrics.registry.get_sample_value("sentinel_rule_entities_learning",
                                                   {"rule": "phi-export-unusual-hours"})

    views = [ev("phi_view", d * DAY + i * 600, user, "success", phi__patient_ids=["MRN-1"])
             for d in range(11) for user in ("veteran", "newbie") if user == "veteran" or d == 10 for i in range(6)]
    h.feed(sorted(views, key=lambda e: e.timestamp))
    # The veteran has ten days and 60 events; the newbie started today: one account still learning.
    assert learning() == 1.0
