"""The security metrics' guarantees without a daemon: closed label vocabularies, a rolled-back batch counted
once, acknowledgements observed once whichever process made them, incident clocks that disappear when
nothing runs, and HIPAA coverage that survives a restart and lapses after 24 hours without evaluations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from sentinel.daemon.security_counts import SecurityCounter, destination_type, sign_in_method
from sentinel.events.alerts import Alert
from sentinel.metrics.registry import DESTINATION_TYPES, SIGN_IN_METHODS, Metrics
from sentinel.route.gauges import LOOK_BACK_SECONDS, AlertGauges
from sentinel.route.lifecycle import acknowledge, resolve
from sentinel.route.state import ensure_schema
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from tests.detect_events import BASE, DAY, Harness, ev, export


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


@pytest.mark.parametrize(("raw", "method"), [
    ("password", "password"), ("PASSWORD", "password"), ("keyboard-interactive/pam", "keyboard_interactive"),
    ("publickey", "publickey"), ("ASSERTION", "sso"), ("X509_CERTIFICATE", "certificate"), ("OTP", "mfa"),
    ("none", "unknown"), (None, "unknown"), ("", "unknown"), (42, "unknown"),
    ("jdoe@example.com", "other"), ("10.0.0.1", "other"), ("a" * 500, "other"),
])
def test_sign_in_methods_fold_into_the_closed_vocabulary(raw: object, method: str) -> None:
    assert sign_in_method(raw) == method
    assert method in SIGN_IN_METHODS


@pytest.mark.parametrize(("raw", "kind"), [
    ("email", "email"), ("PRINTER", "printer"), ("usb", "removable_media"), ("removable_media", "removable_media"),
    ("s3", "cloud_storage"), ("claims@payer-example.com", "other"), ("prn-3f-west", "other"),
    ("MRN-100234", "other"), (None, "unknown"), ({"type": "email"}, "unknown"),
])
def test_destination_types_fold_into_the_closed_vocabulary(raw: object, kind: str) -> None:
    assert destination_type(raw) == kind
    assert kind in DESTINATION_TYPES


def _batch() -> list:
    return [ev("ssh_login", 1, "alice", "failure", sentinel__authentication__method="password"),
            ev("ssh_login", 2, "alice", "success", sentinel__authentication__method="publickey"),
            ev("user_login", 3, "bob", "failure", source="okta"),
            ev("mfa_challenge", 4, "bob", "unknown"), ev("mfa_push_denied", 5, "bob", "failure"),
            ev("mfa_verify", 6, "bob", "failure"), ev("mfa_verify", 7, "bob", "success"),
            export(8, "carol", 340, dest="claims@payer-example.com", dest_type="email"),
            export(9, "carol", 40, dest="prn-3f-west", dest_type="printer", action="phi_print"),
            ev("phi_export", 10, "carol", "failure", phi__record_count=9000, phi__export__destination_type="usb"),
            ev("phi_view", 11, "dave", "success", phi__record_count=1),
            ev("phi_search", 12, "dave", "success", phi__record_count=25)]


def test_a_batch_is_counted_only_once_it_commits(tmp_path: Path) -> None:
    """A batch whose transaction rolls back is read again: it must be counted once, not twice."""
    m = Metrics()
    counter = SecurityCounter(m)
    db = Database(tmp_path / "events.db")
    events = _batch()
    with pytest.raises(RuntimeError), db.transaction() as tx:
        counter.process(tx, events, BASE)
        raise RuntimeError("a later processor failed: the batch rolls back and no after-commit hook runs")
    assert value(m, "sentinel_sign_ins_total", source="linux-auth", outcome="failure", method="password") is None
    with db.transaction() as tx:  # the same lines, read again after the restart of the batch
        counter.process(tx, events, BASE)
    counter.committed()
    counter.committed()  # a checkpoint-only commit afterwards adds nothing
    assert value(m, "sentinel_sign_ins_total", source="linux-auth", outcome="failure", method="password") == 1
    assert value(m, "sentinel_sign_ins_total", source="linux-auth", outcome="success", method="publickey") == 1
    assert value(m, "sentinel_sign_ins_total", source="okta", outcome="failure", method="unknown") == 1
    for kind in ("challenge", "denial", "failure", "success"):
        assert value(m, "sentinel_mfa_events_total", source="okta", kind=kind) == 1
    assert value(m, "sentinel_phi_records_exported_total", action="phi_export", destination_type="email") == 340
    assert value(m, "sentinel_phi_records_exported_total", action="phi_print", destination_type="printer") == 40
    # A refused export moved nothing: no 9000 records, no removable-media series.
    assert value(m, "sentinel_phi_records_exported_total", action="phi_export",
                 destination_type="removable_media") is None
    assert value(m, "sentinel_phi_records_accessed_total", action="phi_view") == 1
    assert value(m, "sentinel_phi_records_accessed_total", action="phi_search") == 25
    text = generate_latest(m.registry).decode()
    for leaked in ("alice", "carol", "claims@", "prn-3f-west", "MRN-", "10.1.2.30"):
        assert leaked not in text
    db.close()


def _alert(i: int, severity: str, created: float) -> Alert:
    return Alert(id=f"a{i}", rule_id="phi-bulk-export", title="t", severity=severity, group_key=f"user.name=u{i}",
                 first_seen=created, last_seen=created, count=1, event_ids=[], summary="s", labels={}, details={},
                 created=created)


def test_acknowledgements_and_resolutions_are_observed_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    ensure_schema(db.conn)
    start = time.time()
    m = Metrics()
    gauges = AlertGauges(m, since=start)
    with db.transaction() as tx:
        write_alerts(tx, [_alert(i, sev, start - 600) for i, sev in enumerate(("high", "high", "critical", "low"))])
        acknowledge(tx, "a3", "ann", start - 60)  # before this daemon started: counted by an earlier process
    gauges.refresh(db.conn, start + 1)
    assert value(m, "sentinel_alerts_open", severity="high") == 2
    assert value(m, "sentinel_alerts_unacknowledged", severity="high") == 2
    assert value(m, "sentinel_alerts_unacknowledged", severity="low") == 0
    assert value(m, "sentinel_alert_acknowledge_duration_seconds_count", severity="low") == 0
    with db.transaction() as tx:  # the CLI acknowledges with a timestamp older than the last refresh
        acknowledge(tx, "a0", "ann", start + 0.5)
        resolve(tx, "a2", "ann", start + 2)
    for at in (start + 3, start + 8, start + 30):
        gauges.refresh(db.conn, at)
    assert value(m, "sentinel_alert_acknowledge_duration_seconds_count", severity="high") == 1
    assert value(m, "sentinel_alert_acknowledge_duration_seconds_sum", severity="high") == pytest.approx(600.5)
    # Resolving an unacknowledged alert acknowledges it at the same moment.
    assert value(m, "sentinel_alert_acknowledge_duration_seconds_count", severity="critical") == 1
    assert value(m, "sentinel_alert_resolve_duration_seconds_count", severity="critical") == 1
    assert value(m, "sentinel_alerts_open", severity="critical") == 0
    assert value(m, "sentinel_alerts_unacknowledged", severity="high") == 1
    # Long after, with refreshes beyond the look-back window, nothing is observed again.
    gauges.refresh(db.conn, start + 10 * LOOK_BACK_SECONDS)
    assert value(m, "sentinel_alert_acknowledge_duration_seconds_count", severity="high") == 1
    db.close()


def test_the_incident_clock_shows_the_nearest_running_deadline_and_goes_away(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    ensure_schema(db.conn)
    now = time.time()
    m = Metrics()
    gauges = AlertGauges(m, since=now)
    with db.transaction() as tx:
        write_alerts(tx, [_alert(1, "high", now - 3600), _alert(2, "critical", now - 60)])
        tx.executemany("INSERT INTO incidents VALUES (?,?,?,?)",
                       [("a1", now - 3600, now + 20 * 3600, now + 59 * DAY), ("a2", now - 60, now + 3600,
                                                                              now + 60 * DAY)])
    gauges.refresh(db.conn, now)
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="business_associate") == pytest.approx(3600)
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="breach") == pytest.approx(59 * DAY)
    with db.transaction() as tx:
        acknowledge(tx, "a2", "ann", now + 10)
    gauges.refresh(db.conn, now + 10)  # a2's BA clock stopped; a1's is now the nearest, and it is overdue later
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="business_associate") == \
        pytest.approx(20 * 3600 - 10)
    gauges.refresh(db.conn, now + 21 * 3600)
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="business_associate") == \
        pytest.approx(-3600)
    with db.transaction() as tx:
        resolve(tx, "a1", "ann", now + 22 * 3600)
        resolve(tx, "a2", "ann", now + 22 * 3600)
    gauges.refresh(db.conn, now + 22 * 3600)
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="business_associate") is None
    assert value(m, "sentinel_incident_clock_deadline_seconds", clock="breach") is None
    db.close()


def test_coverage_survives_a_restart_and_lapses_after_a_day(tmp_path: Path) -> None:
    m = Metrics()
    h = Harness(tmp_path, ["mfa-push-bombing", "phi-bulk-export"], metrics=m)
    with h.db.transaction() as tx:
        h.engine.process(tx, [ev("mfa_push_denied", 1, "bob", "failure")], BASE)
    assert value(m, "sentinel_hipaa_control_covered", control="164.312(d)") == 1  # mfa-push-bombing
    assert value(m, "sentinel_hipaa_control_covered", control="164.312(b)") == 0  # phi-bulk-export saw nothing
    assert value(m, "sentinel_hipaa_control_covered", control="164.312(a)(2)(iii)") == 0  # no rule at all
    assert value(m, "sentinel_rule_last_evaluation_timestamp_seconds", rule="mfa-push-bombing") == BASE

    fresh = Metrics()  # the daemon restarted: coverage comes back from the committed activity rows
    h.metrics = fresh
    h.engine = h.new_engine()
    h.engine.refresh_coverage(BASE + 3600)
    assert value(fresh, "sentinel_hipaa_control_covered", control="164.312(d)") == 1
    h.engine.refresh_coverage(BASE + DAY + 1)  # a day without an evaluation: the control is no longer monitored
    assert value(fresh, "sentinel_hipaa_control_covered", control="164.312(d)") == 0
    day = int(BASE // DAY)
    assert h.db.conn.execute("SELECT evaluations FROM rule_activity WHERE rule = 'mfa-push-bombing' AND day = ?",
                             (day,)).fetchone() == (1,)
    h.close()
