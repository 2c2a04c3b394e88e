"""The cloud rules over a week of ordinary work at a 50-person billing company (tests/cloud_week.py), decoded by
the shipped collectors: quiet on the week, and each rule raises exactly its own alert once its incident is
planted into the same week."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sentinel.daemon.collectors import load_collectors
from sentinel.decode.engine import Decoder
from sentinel.events.alerts import Alert
from sentinel.events.model import Event
from sentinel.events.records import RawRecord
from tests.cloud_week import INCIDENTS, START, incident, week
from tests.detect_events import ROOT, Harness

CLOUD_RULES = sorted({name.split("/")[0] for name in INCIDENTS})


def _decode(records: list[tuple[str, float, str]]) -> list[Event]:
    collectors, errors = load_collectors(ROOT / "sentinel" / "shipped" / "collectors")
    assert not errors, errors
    decoders = {name: Decoder(collectors[name].spec, "UTC") for name in {c for c, _, _ in records}}
    now = START + 8 * 86400
    out = []
    for offset, (collector, _, line) in enumerate(records):
        raw = line.encode()
        rec = RawRecord(collector, f"week-{collector}", collector, offset, offset + 1, raw, reference_time=now)
        event, outcome = decoders[collector].decode(rec, now)
        assert outcome == "parsed", (collector, line, event.fields.get("sentinel.parse_error"))
        out.append(event)
    return sorted(out, key=lambda e: e.timestamp)


@pytest.fixture(scope="module")
def normal_week() -> list[Event]:
    return _decode(week())


def _run(tmp: Path, events: list[Event]) -> list[Alert]:
    h = Harness(tmp, CLOUD_RULES)
    try:
        return h.feed(events, batch=1000)
    finally:
        h.close()


def test_the_week_is_ordinary_work_across_every_provider(normal_week: list[Event]) -> None:
    by_source = Counter(e.source for e in normal_week)
    assert set(by_source) == {"okta", "entra", "entra-audit", "o365", "google-workspace", "billing-audit"}
    assert len({e.fields.get("user.name") for e in normal_week}) >= 50
    actions = Counter(e.fields.get("event.action") for e in normal_week)
    # The look-alikes of every incident are in the week: the rules see the action they filter on and stay quiet.
    for action in ("admin_role_granted", "oauth_app_granted", "file_shared_externally", "file_shared_publicly",
                   "file_downloaded", "mail_forwarding_set", "phi_export"):
        assert actions[action] > 0, action
    assert actions["file_downloaded"] > 1000 and actions["user_login"] > 1000


def test_the_cloud_rules_stay_quiet_on_a_normal_week(tmp_path: Path, normal_week: list[Event]) -> None:
    alerts = _run(tmp_path, normal_week)
    assert [(a.rule_id, a.summary) for a in alerts] == []


@pytest.mark.parametrize("name", sorted(INCIDENTS))
def test_an_incident_planted_in_the_week_raises_exactly_its_rule(tmp_path: Path, normal_week: list[Event],
                                                                 name: str) -> None:
    rule = name.split("/")[0]
    planted = _decode(incident(name))
    events = sorted(normal_week + planted, key=lambda e: e.timestamp)
    alerts = _run(tmp_path, events)
    assert [a.rule_id for a in alerts] == [rule], ([(a.rule_id, a.summary) for a in alerts], INCIDENTS[name])
    # The incident's user, the account given the role, or the administrator who set the forwarding.
    who = "ben.okafor" if name.endswith("/workspace-admin") else "rosa.alvarez"
    assert who in alerts[0].group_key.lower()
