"""The rule pack raises the same alerts on a brute-force storm however the storm is cut into batches, and the
same alerts as the engine did before it was optimised for storms (issue #18).

The reference, tests/data/storm_alerts.json, was written by ``python -m tests.storm_alerts`` with the engine as it
was before the storm optimisations; every alert's id, rule, key, count, time span, event ids, summary, labels and
details must match it, and so must whether it was queued for notification. The state bound is set below what the
storm needs, so key eviction is part of what is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fixtures.receiver import FakeClock
from tests.ingest_helpers import drain, open_daemon
from tests.storm import make_storm_log
from tests.storm_alerts import ACCOUNTS, ADDRESSES, FIXTURE, LINES, REFERENCE_TIME, raised, replayed, storm_config


def reference() -> list[dict[str, Any]]:
    return orjson.loads(FIXTURE.read_bytes())


def difference(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    """What an analyst comparing the two alert lists would see first."""
    have, expected = {a["id"]: a for a in got}, {a["id"]: a for a in want}
    missing = [expected[i] for i in expected.keys() - have.keys()]
    extra = [have[i] for i in have.keys() - expected.keys()]
    changed = [(expected[i], have[i]) for i in expected.keys() & have.keys() if expected[i] != have[i]]
    return (f"{len(missing)} missing (first: {missing[:1]}), {len(extra)} extra (first: {extra[:1]}), "
            f"{len(changed)} changed (first: {changed[:1]})")


def test_reference_covers_every_keyed_rule_type() -> None:
    # Otherwise the comparison below would prove little: windows, sequences, suppression and spray all take part.
    rules = {a["rule"] for a in reference()}
    assert {"auth-brute-force-user", "auth-password-spray", "auth-password-spray-slow",
            "auth-success-after-failures", "sudo-failure"} <= rules
    assert len(reference()) > 200


@pytest.mark.parametrize("batch", [4096, 1000, 97])
def test_replay_raises_the_reference_alerts_whatever_the_batch_size(tmp_path: Path, batch: int) -> None:
    got = replayed(tmp_path, batch)
    want = reference()
    assert got == want, difference(got, want)


def by_line(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts with their events named by byte offset alone: the daemon's event ids (and so alert ids) start
    with its own stream id for the file, replay's with one derived from the content."""
    out = [{**{k: v for k, v in a.items() if k != "id"}, "event_ids": [e[16:] for e in a["event_ids"]]}
           for a in alerts]
    return sorted(out, key=lambda a: (a["rule"], a["key"], a["first_seen"], a["event_ids"]))


def test_the_daemon_catching_up_raises_the_reference_alerts(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    make_storm_log(log, LINES, accounts=ACCOUNTS, addresses=ADDRESSES)
    cfg = storm_config(tmp_path, log, batch_lines=333)
    clock = FakeClock(REFERENCE_TIME)
    d = open_daemon(cfg, clock)
    try:
        from sentinel.daemon.assemble import detection_processors

        assert d.db is not None
        d.processors.extend(detection_processors(cfg, d.db, d.metrics))
        assert drain(d, clock, rounds=400) == LINES
    finally:
        d.close()
    got = by_line(raised(cfg))
    want = by_line(reference())
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        assert mine == theirs
