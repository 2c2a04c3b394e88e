"""Run the shipped collectors and rule pack over ``tests/company_sim.py`` and score the alerts against its truth.

Used by ``tests/test_detection_quality.py`` (a few weeks) and ``tests/bench_detect.py --quality`` (more).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sentinel.daemon.collectors import load_collectors
from sentinel.decode.engine import Decoder
from sentinel.events.alerts import Alert
from sentinel.events.model import Event
from sentinel.events.records import RawRecord
from tests.company_sim import COLLECTOR_OF, Planted, Truth, simulate
from tests.detect_events import ROOT, Harness


@dataclass
class Score:
    truth: Truth
    alerts: list[Alert]
    coverage: dict[str, tuple[int, int]]  # source -> (lines matched by a pattern, lines)
    unmatched: dict[str, Counter[str]] = field(default_factory=dict)  # source -> sample kinds left unmatched
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    false_alarms: list[Alert] = field(default_factory=list)
    detected: dict[str, bool] = field(default_factory=dict)  # attack name -> its intended rule fired
    fooled: dict[str, list[str]] = field(default_factory=dict)  # look-alike name -> rules that fired on it

    @property
    def weeks(self) -> float:
        return self.truth.days / 7

    @property
    def fp_per_100_users_week(self) -> float:
        return len(self.false_alarms) / (self.truth.users / 100) / self.weeks


def _related(a: Alert, p: Planted) -> bool:
    key = a.group_key.lower()
    return p.key.lower() in key and p.start - 3600 <= a.first_seen <= p.end


def _kind(source: str, ev: Event) -> str:
    text = str(ev.fields.get("event.original", ""))
    if source in ("okta",):
        import orjson

        try:
            return str(orjson.loads(text).get("eventType"))
        except orjson.JSONDecodeError:
            return "?"
    return text.split(": ", 1)[0].split(" ")[-1].split("[")[0] if source == "linux-auth" else text[:60]


def decode_all(lines: dict[str, list[tuple[int, str]]], now: float) -> tuple[list[Event], dict[str, tuple[int, int]],
                                                                            dict[str, Counter[str]]]:
    collectors, errors = load_collectors(ROOT / "sentinel" / "shipped" / "collectors")
    assert not errors, errors
    streams: list[list[Event]] = []
    coverage: dict[str, tuple[int, int]] = {}
    unmatched: dict[str, Counter[str]] = {}
    for name, collector in COLLECTOR_OF.items():
        decoder = Decoder(collectors[collector].spec, "UTC", "quality")
        out: list[Event] = []
        matched = 0
        missed: Counter[str] = Counter()
        offset = 0
        for _, text in lines[name]:
            for part in text.split("\n") if name == "audit.log" else [text]:
                raw = part.encode()
                rec = RawRecord(collector, f"quality-{name}", name, offset, offset + len(raw) + 1, raw,
                                reference_time=now)
                offset += len(raw) + 1
                event, outcome = decoder.decode(rec, now)
                if outcome == "parsed":
                    matched += 1
                else:
                    missed[_kind(collector, event)] += 1
                out.append(event)
        coverage[collector] = (matched, sum(1 for _, t in lines[name] for _ in
                                            (t.split("\n") if name == "audit.log" else [t])))
        unmatched[collector] = missed
        streams.append(out)
    merged = list(heapq.merge(*streams, key=lambda e: e.timestamp))
    return merged, coverage, unmatched


def evaluate(tmp: Path, weeks: int, seed: int = 21, users: int = 100,
             start: datetime = datetime(2026, 2, 9, tzinfo=UTC)) -> Score:
    lines, truth = simulate(weeks, seed, users, start)
    now = truth.start.timestamp() + (truth.days + 1) * 86400
    events, coverage, unmatched = decode_all(lines, now)
    h = Harness(tmp, None, {"terminated_accounts": truth.terminated_list, "phi_workstations": []},
                zone="America/Chicago")
    alerts = h.feed(events, batch=2000)
    h.close()
    score = Score(truth, alerts, coverage, unmatched)
    for p in truth.attacks:
        score.detected[p.name] = any(a.rule_id == p.rule and _related(a, p) for a in alerts)
    for p in truth.lookalikes:
        score.fooled[p.name] = sorted({a.rule_id for a in alerts if _related(a, p)})
    for a in alerts:
        if a.labels.get("digest") == "true":
            continue
        if any(_related(a, p) for p in truth.attacks):
            score.tp[a.rule_id] += 1
        else:
            score.fp[a.rule_id] += 1
            score.false_alarms.append(a)
    return score


def report(score: Score) -> str:
    t = score.truth
    out = [f"{t.days} days, {t.users} users, {sum(n for _, n in score.coverage.values()):,} lines; "
           f"{len(score.alerts)} alerts"]
    out.append("per rule: alerts / true positives / false positives")
    rules = sorted(set(score.tp) | set(score.fp))
    for r in rules:
        out.append(f"  {r:40s} {score.tp[r] + score.fp[r]:4d} {score.tp[r]:4d} {score.fp[r]:4d}")
    out.append(f"false positives: {len(score.false_alarms)} = {score.fp_per_100_users_week:.2f} per 100 users per "
               "week (budget 1.00)")
    hit = sum(score.detected.values())
    out.append(f"attacks detected by their intended rule: {hit} of {len(score.detected)}")
    for p in t.attacks:
        out.append(f"  [{'x' if score.detected[p.name] else ' '}] {p.name} ({p.rule})")
    out.append("look-alikes (rules that fired on them):")
    for p in t.lookalikes:
        out.append(f"  {p.name}: {', '.join(score.fooled[p.name]) or 'quiet'}")
    out.append("decode coverage (lines matched by a pattern):")
    for src, (m, n) in score.coverage.items():
        worst = ", ".join(f"{k} {v}" for k, v in score.unmatched[src].most_common(6))
        out.append(f"  {src:14s} {m:7d}/{n:<7d} {100 * m / max(1, n):6.2f}%  {worst}")
    return "\n".join(out)
