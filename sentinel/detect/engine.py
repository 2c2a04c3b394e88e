"""The rule engine: a BatchProcessor that evaluates every rule on each batch inside its transaction.

State, alerts and the batch's events commit together. A batch generation number, written with the
state, tells the engine when the previous batch's transaction rolled back after it ran: it then reloads
its state from the database instead of carrying changes that never committed.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from sentinel.conf.models import DetectionSettings, RuleSources
from sentinel.detect import followup
from sentinel.detect.compiled import CompiledRule
from sentinel.detect.kinds import Context, Evaluator, Finding, Follow, build_evaluator
from sentinel.detect.lists import NamedLists
from sentinel.detect.state import (
    SUPPRESSED,
    KeyStore,
    drop_rule,
    ensure_schema,
    last_activity,
    read_meta,
    record_activity,
    write_meta,
)
from sentinel.detect.template import render
from sentinel.events.alerts import MAX_EVENT_IDS, Alert
from sentinel.events.ids import alert_id
from sentinel.events.model import Event, iso
from sentinel.metrics.registry import HIPAA_CONTROLS, Metrics
from sentinel.store.alerts import revise_digest, write_alerts

log = logging.getLogger(__name__)

# How often (wall clock) the list files are checked for changes between reloads.
LIST_CHECK_SECONDS = 10.0
# A HIPAA control counts as monitored while one of its enabled rules evaluated events this recently.
COVERAGE_SECONDS = 86400.0


@dataclass
class RuleRuntime:
    rule: CompiledRule
    evaluator: Evaluator
    store: KeyStore
    evictions_reported: int = 0
    # Set when later matching events join the rule's open alert (it suppresses, and its type follows).
    keyer: Follow | None = None

    def __post_init__(self) -> None:
        # Read for every rule of every event: plain attributes, not a property behind two lookups.
        self.rule_id = self.rule.id
        self.predicate = self.rule.predicate


@dataclass
class Evaluated:
    """A batch evaluated in memory and not written yet: its alerts, joins to open alerts and counts."""

    alerts: list[Alert] = field(default_factory=list)
    joined: dict[str, followup.Joined] = field(default_factory=dict)
    routed: Counter[int] = field(default_factory=Counter)  # events per rule list (keyed by the list's id)
    lists: dict[int, list[RuleRuntime]] = field(default_factory=dict)
    matched: Counter[str] = field(default_factory=Counter)


class RuleEngine:
    """Evaluates compiled rules over batches of events; implements the pipeline's BatchProcessor."""

    def __init__(self, rules: Sequence[CompiledRule], settings: DetectionSettings, conn: sqlite3.Connection,
                 metrics: Metrics | None = None, lists: NamedLists | None = None,
                 clock: Callable[[], float] = time.time, zone: str = "UTC") -> None:
        self.settings = settings
        self.zone = zone
        self.metrics = metrics or Metrics()
        self.lists = lists
        self.clock = clock
        self.queued = 0  # alerts put in the outbox by batches since take_queued() last asked
        self.runtimes: list[RuleRuntime] = []
        self.by_action: dict[str, list[RuleRuntime]] = {}
        self.any_action: list[RuleRuntime] = []
        self.watermarks: dict[str, float] = {}
        self.last_evaluated: dict[str, float] = {}
        self.generation = 0
        # Set while several batches share one transaction (replay): their state is written once, by whoever set
        # it, with write_state() before the commit. A key changed by several of them is packed and written once.
        self.holding = False
        self._last_list_check = 0.0
        self._last_dormant_scan = 0.0
        self._last_learning_scan = 0.0
        self._learning_scanned = False
        ensure_schema(conn)
        self._install(rules)
        self.load(conn)

    # --- set-up and state -------------------------------------------------------------------------

    def _install(self, rules: Sequence[CompiledRule]) -> None:
        self.runtimes = [RuleRuntime(r, build_evaluator(r, self.zone), self._keystore(r.id)) for r in rules]
        for rt in self.runtimes:
            if rt.rule.spec.suppress is not None:
                rt.keyer = rt.evaluator.follow
        self.by_action = {}
        self.any_action = []
        for rt in self.runtimes:
            if rt.rule.actions is None:
                self.any_action.append(rt)
        for rt in self.runtimes:
            for action in rt.rule.actions or ():
                self.by_action.setdefault(action, [])
        for action, lst in self.by_action.items():
            # Keep pack order so alerts of one batch come out in a stable order.
            lst.extend(rt for rt in self.runtimes if rt.rule.actions is None or action in rt.rule.actions)

    def _keystore(self, rule_id: str) -> KeyStore:
        s = self.settings
        return KeyStore(rule_id, s.max_keys_per_rule, int(s.max_state_mb_per_rule * 1024 * 1024))

    def load(self, conn: sqlite3.Connection) -> None:
        """(Re)load every rule's state, watermarks and generation from the database."""
        fingerprints = orjson.loads(read_meta(conn, "fingerprints") or "{}")
        self._changed_rules: set[str] = set()
        for rt in self.runtimes:
            if fingerprints.get(rt.rule.id, rt.rule.fingerprint) != rt.rule.fingerprint:
                # The rule's type or parameters changed: its old state means something else now, so it
                # starts empty and the old rows go with the next batch.
                rt.store = self._keystore(rt.rule.id)
                self._changed_rules.add(rt.rule.id)
            else:
                rt.store.load(conn)
        self.watermarks = orjson.loads(read_meta(conn, "watermarks") or "{}")
        self.generation = int(read_meta(conn, "generation") or 0)
        self.last_evaluated = last_activity(conn)

    def reload(self, rules: Sequence[CompiledRule], conn: sqlite3.Connection) -> None:
        """Swap in a new rule set (config reload); state of unchanged rules carries over from the database."""
        self._install(rules)
        self.load(conn)
        if self.lists is not None:
            self.lists.reload()

    def runtime(self, rule_id: str) -> RuleRuntime:
        for rt in self.runtimes:
            if rt.rule.id == rule_id:
                return rt
        raise KeyError(rule_id)

    # --- the batch --------------------------------------------------------------------------------

    def process(self, tx: sqlite3.Connection, events: Sequence[Event], now: float) -> None:
        """Evaluate the batch, write its alerts and the changed state in the caller's transaction."""
        self.begin(tx)
        self.evaluate(events, now)(tx)

    def begin(self, tx: sqlite3.Connection) -> None:
        """Before a batch is evaluated: reload the state when the previous batch's transaction did not
        commit. From here until its commit the batch's generation is the one held, so a batch failing at any
        later step (evaluating, storing, writing, committing) is caught by the next one."""
        if int(read_meta(tx, "generation") or 0) != self.generation:
            log.warning("previous detection batch did not commit; reloading rule state from the database")
            self.load(tx)
        self.generation += 1

    def discard(self, tx: sqlite3.Connection) -> None:
        """Forget a batch evaluated but not written (its events were not all new after all) and begin again."""
        self.load(tx)
        self.generation += 1

    def evaluate(self, events: Sequence[Event], now: float) -> Callable[[sqlite3.Connection], None]:
        """Run every rule over the batch in memory, without the database: the store may be writing the batch
        on the same connection meanwhile. Returns the batch's writes (its alerts, state and counts), to run in
        its transaction."""
        self._maybe_reload_lists()
        out = Evaluated()
        alerts = out.alerts
        joined = out.joined
        # Events per rule list (one list per event.action): every rule of a list evaluated each of them.
        routed = out.routed
        lists = out.lists
        matched = out.matched
        allowance = self.settings.late_event_allowance_seconds
        ctx = Context(allowance)
        watermarks = self.watermarks
        ordered = sorted((e for e in events if e.parsed and e.fields.get("event.kind") != "pipeline_error"),
                         key=lambda e: e.timestamp)
        for ev in ordered:
            src = ev.source
            mark = watermarks.get(src, 0.0)
            if ev.timestamp > mark:
                watermarks[src] = mark = ev.timestamp
            ctx.late = ev.timestamp < mark - allowance
            ctx.keys = {}
            fields = ev.fields
            runtimes = self.by_action.get(fields.get("event.action"), self.any_action)  # type: ignore[arg-type]
            routed[id(runtimes)] += 1
            lists[id(runtimes)] = runtimes
            for rt in runtimes:
                rid = rt.rule_id
                try:
                    if not rt.predicate(fields):
                        continue
                    matched[rid] += 1
                    if rt.keyer is not None and self._join(rt, ev, joined, ctx):
                        continue
                    for finding in rt.evaluator.observe(ev, rt.store, ctx):
                        alert = self._alert(rt, finding, now)
                        if alert is not None:
                            alerts.append(alert)
                except Exception as exc:  # one failing rule never stops the others
                    self.metrics.rule_errors.labels(rid).inc()
                    log.error("rule %s failed on an event: %s", rid, type(exc).__name__)
        return partial(self._write, done=out, now=now)

    def _write(self, tx: sqlite3.Connection, done: Evaluated, now: float) -> None:
        alerts = done.alerts
        evaluated: Counter[str] = Counter()
        for key, n in done.routed.items():
            for rt in done.lists[key]:
                evaluated[rt.rule.id] += n
        alerts.extend(self._digests(now))
        written = write_alerts(tx, alerts) if alerts else 0
        self._revise_digests(tx, now)
        if done.joined:
            followup.apply(tx, done.joined)
        if not self.holding:
            self.write_state(tx, now)
        record_activity(tx, evaluated, done.matched, now)
        for rid, n in evaluated.items():
            if n:
                self.last_evaluated[rid] = now
        write_meta(tx, "generation", str(self.generation))
        write_meta(tx, "watermarks", orjson.dumps(self.watermarks).decode())
        write_meta(tx, "fingerprints", orjson.dumps({rt.rule.id: rt.rule.fingerprint
                                                     for rt in self.runtimes}).decode())
        self._count(evaluated, done.matched, alerts, written)
        self.queued += written
        self.refresh_coverage(now)

    def write_state(self, tx: sqlite3.Connection, now: float) -> None:
        """Write every rule's changed state in the caller's transaction (after each batch, or once after the
        batches of a transaction while ``holding``)."""
        for rt in self.runtimes:
            if rt.rule.id in self._changed_rules:
                drop_rule(tx, rt.rule.id)
            rt.store.flush(tx, now)
        self._changed_rules = set()

    def take_queued(self) -> int:
        """How many alerts were queued since the last call (after a commit: whether routing has work now)."""
        n, self.queued = self.queued, 0
        return n

    def coverage(self, now: float) -> dict[str, bool]:
        """Per HIPAA control (the known ones and any an enabled rule names): whether an enabled rule
        supporting it evaluated events within the last ``COVERAGE_SECONDS``."""
        out = dict.fromkeys(HIPAA_CONTROLS, False)
        last = dict(self.last_evaluated)  # read from the metrics thread too: a copy, not the live dict
        for rt in self.runtimes:
            ran = last.get(rt.rule.id, float("-inf")) >= now - COVERAGE_SECONDS
            for control in hipaa_controls(rt.rule.spec.tags):
                out[control] = out.get(control, False) or ran
        return out

    def refresh_coverage(self, now: float) -> None:
        for control, covered in self.coverage(now).items():
            self.metrics.control_covered.labels(control).set(1 if covered else 0)

    def _count(self, evaluated: Counter[str], matched: Counter[str], alerts: list[Alert], written: int) -> None:
        m = self.metrics
        for rid, n in evaluated.items():
            m.rule_evaluations.labels(rid).inc(n)
            m.rule_last_evaluation.labels(rid).set(self.last_evaluated.get(rid, 0.0))
        for rid, n in matched.items():
            m.rule_matches.labels(rid).inc(n)
        if written:
            for a in alerts:
                m.alerts.labels(a.rule_id, a.severity).inc()
        wall = self.clock()
        # Counting learners walks every key: at most once a minute (and on the first batch).
        scan = self.watermarks and (wall - self._last_learning_scan >= 60.0 or not self._learning_scanned)
        if scan:
            self._last_learning_scan = wall
            self._learning_scanned = True
            at = max(self.watermarks.values())
        for rt in self.runtimes:
            m.rule_state_keys.labels(rt.rule.id).set(len(rt.store))
            m.rule_state_bytes.labels(rt.rule.id).set(rt.store.nbytes)
            learning = rt.evaluator.learning_count
            if scan and learning is not None:
                m.rule_entities_learning.labels(rt.rule.id).set(learning(rt.store, at))
            new = rt.store.evictions - rt.evictions_reported
            if new:
                m.rule_state_evictions.labels(rt.rule.id).inc(new)
                rt.evictions_reported = rt.store.evictions

    def _maybe_reload_lists(self) -> None:
        if self.lists is None:
            return
        wall = self.clock()
        if wall - self._last_list_check >= LIST_CHECK_SECONDS:
            self._last_list_check = wall
            for err in self.lists.reload():
                log.warning("%s", err)

    # --- alerts -----------------------------------------------------------------------------------

    @staticmethod
    def _join(rt: RuleRuntime, ev: Event, joined: dict[str, followup.Joined], ctx: Context) -> bool:
        """Count ``ev`` into its key's alert if one is inside its suppression period (then the rule's window
        does not see it: it is part of that alert, not the start of the next)."""
        assert rt.keyer is not None
        hit = False
        for key in rt.keyer(ev, ctx.keys):
            state = rt.store.get(SUPPRESSED + key)
            if state is not None and "a" in state and ev.timestamp < state["u"]:
                followup.join(rt.rule.spec, state, ev, joined)
                rt.store.put(SUPPRESSED + key, state)
                hit = True
        return hit

    def _alert(self, rt: RuleRuntime, f: Finding, now: float) -> Alert | None:
        spec = rt.rule.spec
        skey = SUPPRESSED + f.key
        if spec.suppress is not None:
            state = rt.store.get(skey)
            if state is not None and f.event.timestamp < state["u"]:
                return None
        computed: dict[str, Any] = {"rule": spec.id, "title": spec.title, "severity": spec.severity,
                                    "count": f.count, "first_seen": iso(f.first_seen), "last_seen": iso(f.last_seen)}
        computed.update(f.computed)
        labels = {**spec.labels, "rule": spec.id, "severity": spec.severity}
        single = rt.evaluator.single_event
        for name in ("host.name", "user.name"):
            value = f.event.fields.get(name)
            # From an aggregate only when it is the group key: the last event's user says nothing about a spray.
            if value and (single or name in spec.group_by):
                labels[name] = str(value)
        details = dict(f.details)
        details["why"] = rt.evaluator.explain(f)
        details["entity"] = followup.entity(spec, f.event)
        alert = Alert(id=alert_id(spec.id, f.key, f.anchor), rule_id=spec.id, title=spec.title,
                      severity=spec.severity, group_key=f.key, first_seen=f.first_seen, last_seen=f.last_seen,
                      count=f.count, event_ids=f.event_ids[:MAX_EVENT_IDS],
                      summary=render(spec.summary, f.event.fields, computed), runbook=spec.runbook.strip(),
                      tags=list(spec.tags), labels=labels, details=details, created=now)
        if spec.suppress is not None:
            until = f.event.timestamp + spec.suppress.for_
            rt.store.put(skey, followup.opened(spec, f, alert, until) if rt.keyer is not None else {"u": until})
        return alert

    def _digests(self, now: float) -> list[Alert]:
        """The alerts rule types raise on their own timetable (the dormant access-review digest)."""
        out: list[Alert] = []
        for rt in self.runtimes:
            schedule = rt.evaluator.schedule
            if schedule is None:
                continue
            wall = self.clock()
            # Counting the idle accounts is O(keys): with a digest, else at most once a minute for the gauge.
            alerts, idle = schedule.due(rt.store, now, recount=wall - self._last_dormant_scan >= 60.0)
            if idle is not None:
                self._last_dormant_scan = wall
                self.metrics.dormant_accounts.set(idle)
            out.extend(alerts)
        return out

    def _revise_digests(self, tx: sqlite3.Connection, now: float) -> None:
        """Scheduled alerts already written that late data changed are recomputed in place (no new notification)."""
        for rt in self.runtimes:
            schedule = rt.evaluator.schedule
            if schedule is not None:
                for alert in schedule.revised(rt.store, now):
                    revise_digest(tx, alert)


def hipaa_controls(tags: Sequence[str]) -> list[str]:
    """The HIPAA controls in a rule's tags (``hipaa:164.312(b)`` → ``164.312(b)``)."""
    return [t[len("hipaa:"):] for t in tags if t.startswith("hipaa:")]


def engine_for_config(sources: RuleSources, conn: sqlite3.Connection, metrics: Metrics | None = None,
                      only: Sequence[str] | None = None) -> RuleEngine:
    """Load the configuration's rules and lists (raising ConfigErrors on any problem) into an engine."""
    from sentinel.detect.loader import load_for_config
    from sentinel.errors import ConfigErrors

    skipped: list[Any] = []
    rules, lists, errors = load_for_config(sources, skipped=skipped)
    if errors:
        raise ConfigErrors(errors)
    for problem in skipped:  # a Sigma rule sentinel cannot run: said at every start, never silently dropped
        log.warning("%s", problem)
    if only is not None:
        rules = [r for r in rules if r.id in only]
    return RuleEngine(rules, sources.detection, conn, metrics, lists, zone=sources.timezone)
