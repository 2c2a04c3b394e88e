"""Measure sentinel's Sigma support over a folder of SigmaHQ rules (default ``../shared/corpus/sigma``).

    python tests/sigma_corpus.py [FOLDER] [--bench N]

Prints how many rule files pySigma loads, how many rules sentinel's pipeline maps fully, and, for every mapped
rule, whether an event built from the rule's own detection raises its alert through the rule engine while a
near miss (the same event with one matched value changed) does not; then the reasons for every rule not mapped.
``--bench N`` instead times N events through the rule engine with every mapped rule, and with none.
The SigmaHQ rules are DRL 1.1: they are read where they lie, never copied into the project.
"""

from __future__ import annotations

import copy
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from sentinel.conf.models import DetectionSettings
from sentinel.detect.compiled import CompiledRule
from sentinel.detect.engine import RuleEngine
from sentinel.detect.sigma.loader import load_sigma
from sentinel.detect.sigma.pipeline import Logsource, shipped_pipeline
from sentinel.events.model import Event
from sentinel.store.schema import DDL

# ../shared next to the repository (the main checkout at /work/main), else where the project's corpora live.
CORPUS_CANDIDATES = (Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "sigma",
                     Path("/work/shared/corpus/sigma"))
CORPUS = next((p for p in CORPUS_CANDIDATES if p.is_dir()), CORPUS_CANDIDATES[0])
MAX_ALTERNATIVES = 64

# A literal of the condition in disjunctive normal form: (Sigma field or None for a keyword, value, negated).
Literal = tuple[str | None, SigmaType, bool]


def dnf(node: Any, negate: bool = False) -> list[list[Literal]]:
    """The condition as alternatives of conjunctions (at most MAX_ALTERNATIVES, enough to find one that holds)."""
    if isinstance(node, ConditionNOT):
        return dnf(node.args[0], not negate)
    if isinstance(node, ConditionAND | ConditionOR):
        conjunctive = isinstance(node, ConditionAND) != negate
        parts = [dnf(arg, negate) for arg in node.args]
        if not conjunctive:
            return [alt for part in parts for alt in part][:MAX_ALTERNATIVES]
        out: list[list[Literal]] = [[]]
        for part in parts:
            out = [a + b for a in out for b in part][:MAX_ALTERNATIVES]
        return out
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return [[(node.field, node.value, negate)]]
    if isinstance(node, ConditionValueExpression):
        return [[(None, node.value, negate)]]
    raise TypeError(type(node).__name__)


def regex_sample(pattern: str) -> str:
    """A string the (simple) regular expression matches: the first branch, the fewest repeats (at least one)."""
    import re._constants as c
    import re._parser as parser

    def walk(items: Any) -> str:
        out = []
        for op, arg in items:
            if op is c.LITERAL:
                out.append(chr(arg))
            elif op is c.ANY:
                out.append("x")
            elif op is c.IN:
                out.append(_class_sample(arg, c))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                low, _, sub = arg
                out.append(walk(sub) * max(low, 1))
            elif op is c.SUBPATTERN:
                out.append(walk(arg[-1]))
            elif op is c.BRANCH:
                out.append(walk(arg[1][-1]))
            elif op is c.AT:
                continue
            else:
                raise ValueError(f"cannot sample {op}")
        return "".join(out)

    return walk(parser.parse(pattern))


def _class_sample(items: Any, c: Any) -> str:
    negated = any(op is c.NEGATE for op, _ in items)
    if negated:
        banned = {chr(arg) for op, arg in items if op is c.LITERAL}
        return next(ch for ch in "abcxyz0" if ch not in banned)
    for op, arg in items:
        if op is c.LITERAL:
            return chr(arg)
        if op is c.RANGE:
            return chr(arg[0])
        if op is c.CATEGORY:
            return "5" if "DIGIT" in str(arg) else "a"
    return "a"


def sample(value: SigmaType) -> Any:
    """A value the Sigma value matches."""
    if isinstance(value, SigmaExpansion):
        return sample(value.values[0])
    if isinstance(value, SigmaString):
        return "".join("x" if p is SpecialChars.WILDCARD_SINGLE else "" if p is SpecialChars.WILDCARD_MULTI
                       else str(p) for p in value.s)
    if isinstance(value, SigmaBool):
        return value.boolean
    if isinstance(value, SigmaNumber):
        return value.number
    if isinstance(value, SigmaRegularExpression):
        return regex_sample(value.regexp.to_plain())
    if isinstance(value, SigmaCIDRExpression):
        return str(next(iter(value.network.hosts()), value.network.network_address))
    if isinstance(value, SigmaCompareExpression):
        n = value.number.number
        return {CompareOperators.GT: n + 1, CompareOperators.LT: n - 1}.get(value.op, n)
    raise ValueError(f"cannot sample {type(value).__name__}")


def _compose(values: list[SigmaType]) -> Any:
    """One value matching every one of ``values`` (wildcard strings on one field: prefix, middles, suffix)."""
    if len(values) == 1:
        return sample(values[0])
    plain = [v for v in values if isinstance(v, SigmaString) and not v.contains_special()]
    if plain:
        return sample(plain[0])
    strings = [v.values[0] if isinstance(v, SigmaExpansion) else v for v in values]
    head = tail = ""
    middle: list[str] = []
    for v in strings:
        if not isinstance(v, SigmaString):
            return sample(v)
        text = sample(v)
        starts, ends = v.startswith(SpecialChars.WILDCARD_MULTI), v.endswith(SpecialChars.WILDCARD_MULTI)
        if not starts and ends:
            head = text
        elif starts and not ends:
            tail = text
        else:
            middle.append(text)
    return head + " ".join(["", *middle, ""]) + tail


def build(conjunction: list[Literal], source: Logsource) -> dict[str, Any]:
    """An event meeting the conjunction's positive literals (negative ones are checked by running the rule)."""
    wanted: dict[str | None, list[SigmaType]] = {}
    absent: set[str] = set()
    refs: list[tuple[str, str]] = []
    for name, value, negated in conjunction:
        if negated:
            continue
        if isinstance(value, SigmaNull) or (isinstance(value, SigmaExists) and not value.exists):
            absent.add(str(name))
        elif isinstance(value, SigmaExists):
            wanted.setdefault(name, []).append(SigmaString("present"))
        elif isinstance(value, SigmaFieldReference):
            refs.append((str(name), value.field))
        else:
            wanted.setdefault(name, []).append(value)
    fields: dict[str, Any] = {"event.dataset": source.spec.datasets[0]}
    for where, allowed in source.spec.where.items():
        fields[where] = allowed[0]
    for name, values in wanted.items():
        if name is None:
            fields[source.spec.keywords] = " ".join(str(sample(v)) for v in values)
        else:
            fields[source.fields(name)[0]] = _compose(values)
    for name, other in refs:
        fields[source.fields(name)[0]] = fields.setdefault(source.fields(other)[0], "same-value")
    for name in absent:
        fields.pop(source.fields(name)[0], None)
    return fields


def _near_misses(fields: dict[str, Any], conjunction: list[Literal], source: Logsource) -> Iterator[dict[str, Any]]:
    """The event with one matched value changed (the most specific first: a selection's last value)."""
    for name, _value, negated in reversed(conjunction):
        if negated:
            continue
        key = source.spec.keywords if name is None else source.fields(name)[0]
        if key not in fields:
            continue
        miss = copy.deepcopy(fields)
        old = miss[key]
        if isinstance(old, bool):
            miss[key] = not old
        elif isinstance(old, int | float):
            miss[key] = old + 7919
        else:
            miss[key] = "near-miss" if name is not None else "an unrelated log line"
        yield miss


@dataclass
class Outcome:
    files: int = 0
    parsed: int = 0
    rules: int = 0
    mapped: int = 0
    fired: int = 0
    near_missed: int = 0
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _alerts(rule: CompiledRule, fields: dict[str, Any]) -> int:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(DDL)
    engine = RuleEngine([rule], DetectionSettings(), conn)
    event = Event("corpus-1", 1_767_225_600.0, "corpus", {**fields, "@timestamp": "2026-01-01T00:00:00.000Z",
                                                        "event.id": "corpus-1", "host.name": "corpus"})
    conn.execute("BEGIN")
    engine.process(conn, [event], 1_767_225_600.0)
    conn.execute("COMMIT")
    return int(conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def _events_for(rule: SigmaRule, compiled: CompiledRule) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    pipeline = shipped_pipeline()
    source = pipeline.resolve(rule.logsource.product, rule.logsource.service, rule.logsource.category)
    for condition in rule.detection.parsed_condition:
        for conjunction in dnf(condition.parse()):
            try:
                fields = build(conjunction, source)
            except ValueError:
                continue
            if not compiled.predicate(fields):
                continue
            for miss in _near_misses(fields, conjunction, source):
                if not compiled.predicate(miss):
                    return fields, miss
            return fields, None
    return None, None


def measure(folder: Path) -> Outcome:
    paths = sorted(folder.rglob("*.yml"))
    out = Outcome(files=len(paths))
    by_id: dict[str, SigmaRule] = {}
    for path in paths:
        collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True)
        if collection.errors or any(r.errors for r in collection.rules):
            continue
        out.parsed += 1
        for r in collection.rules:
            if isinstance(r, SigmaRule) and r.id is not None:
                by_id[f"sigma-{str(r.id).lower()}"] = r
    loaded = load_sigma(paths)
    out.errors = [str(e) for e in loaded.errors]
    out.skipped = [str(e) for e in loaded.skipped]
    out.rules = len(loaded.rules) + len(loaded.skipped)
    out.mapped = len(loaded.rules)
    for compiled in loaded.rules:
        rule = by_id.get(compiled.id)
        if rule is None or compiled.spec.type != "match":
            out.failures.append(f"{compiled.path.name}: no single-event Sigma rule to build events from")
            continue
        fires, miss = _events_for(rule, compiled)
        if fires is None or _alerts(compiled, fires) != 1:
            out.failures.append(f"{compiled.path.name}: no event built from its detection raises its alert")
            continue
        out.fired += 1
        if miss is None or _alerts(compiled, miss) != 0:
            out.failures.append(f"{compiled.path.name}: no near miss stays quiet")
            continue
        out.near_missed += 1
    return out


def bench(folder: Path, count: int) -> tuple[int, float, float]:
    """Events per second through the rule engine with every mapped rule of the corpus, and with none: the
    stream is the mapped rules' near misses with one firing event in a hundred (event times spread over a day)."""
    import time

    loaded = load_sigma(sorted(folder.rglob("*.yml")))
    by_id: dict[str, SigmaRule] = {}
    for path in sorted(folder.rglob("*.yml")):
        for r in SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True).rules:
            if isinstance(r, SigmaRule) and r.id is not None:
                by_id[f"sigma-{str(r.id).lower()}"] = r
    misses: list[dict[str, Any]] = []
    hits: list[dict[str, Any]] = []
    for compiled in loaded.rules:
        rule = by_id.get(compiled.id)
        if rule is not None:
            fires, miss = _events_for(rule, compiled)
            hits.extend([fires] if fires is not None else [])
            misses.extend([miss] if miss is not None else [])
    # One event in a hundred raises an alert: the rest are the near misses a busy host is made of.
    stream = [hits[(i // 100) % len(hits)] if i % 100 == 99 else misses[i % len(misses)] for i in range(count)]
    rates = []
    for rules in (loaded.rules, []):
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.executescript(DDL)
        engine = RuleEngine(rules, DetectionSettings(), conn)
        events = [Event(f"b{i}", 1_767_225_600.0 + i * 86400 / count, "bench",
                        {**stream[i], "event.id": f"b{i}", "host.name": "bench"}) for i in range(count)]
        started = time.perf_counter()
        for i in range(0, count, 1000):
            conn.execute("BEGIN")
            engine.process(conn, events[i:i + 1000], 1_767_312_000.0)
            conn.execute("COMMIT")
        rates.append(count / (time.perf_counter() - started))
    return len(loaded.rules), rates[0], rates[1]


def _reason(text: str) -> str:
    reason = text.split(" not loaded: ", 1)[-1]
    reason = re.sub(r" \(the pipeline knows .*\)$", "", reason)
    return re.sub(r" \(known: .*\) nor", " nor", reason)


def main(argv: list[str]) -> int:
    """``sigma_corpus.py [FOLDER] [--bench N]``"""
    args = argv[1:]
    count = 0
    if "--bench" in args:
        at = args.index("--bench")
        count = int(args[at + 1])
        del args[at:at + 2]
    folder = Path(args[0]) if args else CORPUS
    if not folder.is_dir():
        print(f"no Sigma corpus at {folder}")
        return 2
    if count:
        n, with_rules, without = bench(folder, count)
        print(f"rule engine, {count} events (the mapped rules' near misses, 1% firing events):")
        print(f"  {n} SigmaHQ rules: {with_rules:,.0f} events/s; no rules: {without:,.0f} events/s; "
              f"{(1 / with_rules - 1 / without) * 1e6 / max(n, 1):.2f} us per rule per event")
        return 0
    o = measure(folder)
    print(f"Sigma corpus {folder.resolve()}")
    print(f"  rule files:                         {o.files}")
    print(f"  loaded by pySigma:                  {o.parsed}")
    print(f"  rules mapped fully by sentinel:     {o.mapped} of {o.rules}")
    print(f"  built event raises the alert:       {o.fired} of {o.mapped}")
    print(f"  near miss stays quiet:              {o.near_missed} of {o.mapped}")
    for line in o.errors:
        print(f"  error: {line}")
    for line in o.failures:
        print(f"  failed: {line}")
    print("  not mapped, by reason:")
    for reason, n in Counter(_reason(s) for s in o.skipped).most_common():
        print(f"    {n:3d}  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
