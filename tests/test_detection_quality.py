"""Detection quality on a realistic company (tests/company_sim.py): three weeks of 100 people ending on the day US
clocks move forward, decoded by the shipped collectors and run through the whole pack.

Every planted attack must be caught by the rule meant for it, no look-alike may trip that rule, the background
may raise at most 1 non-digest alert per 100 users per week, and every source must decode at least 99% of its
lines with a pattern. ``python tests/bench_detect.py --quality --weeks 8`` prints the same figures for longer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.quality_eval import Score, evaluate, report

pytestmark = pytest.mark.slow

WEEKS = 3
START = datetime(2026, 2, 16, tzinfo=UTC)  # Presidents' Day; month-end on the 27th; DST on 8 March, the last day
FP_BUDGET_PER_100_USERS_WEEK = 1.0


@pytest.fixture(scope="module")
def score(tmp_path_factory: pytest.TempPathFactory) -> Score:
    result = evaluate(Path(tmp_path_factory.mktemp("quality")), WEEKS, start=START)
    print("\n" + report(result))
    return result


def test_every_planted_attack_is_detected_by_its_rule(score: Score) -> None:
    assert len(score.detected) >= 9
    missed = [name for name, hit in score.detected.items() if not hit]
    assert missed == [], report(score)


def test_no_lookalike_trips_the_rule_it_imitates(score: Score) -> None:
    fooled = {p.name: p.rule for p in score.truth.lookalikes if p.rule in score.fooled[p.name]}
    assert fooled == {}, report(score)


def test_false_positives_stay_within_budget(score: Score) -> None:
    assert score.fp_per_100_users_week <= FP_BUDGET_PER_100_USERS_WEEK, (
        [f"{a.rule_id}: {a.summary}" for a in score.false_alarms])


def test_every_source_decodes_at_least_99_percent(score: Score) -> None:
    low = {src: f"{m}/{n}" for src, (m, n) in score.coverage.items() if n == 0 or m / n < 0.99}
    assert low == {}, score.unmatched


def test_background_covers_every_shipped_source(score: Score) -> None:
    assert {src for src, (_, n) in score.coverage.items() if n > 0} == {
        "linux-auth", "auditd", "okta", "entra", "billing-audit", "osquery"}
