"""Load the Sigma rules of a rules folder (``**/*.yml``) into compiled rules the engine runs like its own.

A single-event Sigma rule becomes a ``match`` rule; a correlation becomes a ``threshold`` (event_count,
value_count) or ``sequence`` (temporal_ordered, and temporal with its steps in any order) over its base rules'
predicates, so its state lives in the same rule state that commits with each batch. A rule that is valid Sigma but
that sentinel cannot run (an unknown logsource, an unmapped field, a condition it cannot judge as events arrive) is
*skipped* with its file and the reason; a file that is not valid Sigma is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from sentinel.detect.compiled import CompiledRule
from sentinel.detect.model import RuleSpec
from sentinel.detect.sigma.match import compile_tree
from sentinel.detect.sigma.pipeline import Logsource, SigmaPipeline, Unmappable, shipped_pipeline
from sentinel.errors import ConfigError, Location
from sentinel.events.conditions import Predicate

SEVERITY = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
# MITRE ATT&CK tactics by the names Sigma tags them with.
TACTICS = {
    "reconnaissance": "TA0043", "resource_development": "TA0042", "initial_access": "TA0001",
    "execution": "TA0002", "persistence": "TA0003", "privilege_escalation": "TA0004", "defense_evasion": "TA0005",
    "credential_access": "TA0006", "discovery": "TA0007", "lateral_movement": "TA0008", "collection": "TA0009",
    "command_and_control": "TA0011", "exfiltration": "TA0010", "impact": "TA0040",
}
_TECHNIQUE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class SigmaLoad:
    """The Sigma rules of one folder: the compiled ones, the files that are not valid Sigma, and the rules
    that are valid but cannot run here (with why)."""

    rules: list[CompiledRule] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    skipped: list[ConfigError] = field(default_factory=list)


def sentinel_tags(tags: Sequence[Any]) -> list[str]:
    """Sigma's ``attack.t1078.004`` / ``attack.initial_access`` -> ``attack:T1078.004`` / ``attack:TA0001``;
    other namespaces keep their name (``cve.2021-44228`` -> ``cve:2021-44228``)."""
    out: list[str] = []
    for tag in tags:
        namespace, name = tag.namespace.lower(), tag.name.lower()
        if namespace == "attack":
            m = _TECHNIQUE.match(name)
            if m is not None:
                out.append(f"attack:T{m.group(1)}" + (f".{m.group(2)}" if m.group(2) else ""))
            elif name.replace("-", "_") in TACTICS:
                out.append(f"attack:{TACTICS[name.replace('-', '_')]}")
            else:
                out.append(f"attack-{name[:1]}:{name}")  # groups (g0016), software (s0002)
        elif re.match(r"^[a-z][a-z0-9_-]*$", namespace) and name and not re.search(r"\s", name):
            out.append(f"{namespace}:{name}")
    return list(dict.fromkeys(out))


def rule_id(rule: SigmaRule | SigmaCorrelationRule, path: Path) -> str:
    if rule.id is not None:
        return f"sigma-{str(rule.id).lower()}"
    slug = _SLUG.sub("-", (rule.name or path.stem).lower()).strip("-")
    return f"sigma-{slug}"[:80]


def _runbook(rule: SigmaRule | SigmaCorrelationRule, path: Path) -> str:
    lines = [f"Sigma rule {path.name} (status {rule.status or 'unknown'})."]
    if rule.description:
        lines.append(rule.description.strip())
    if rule.falsepositives:
        lines.append("Known false positives: " + "; ".join(str(f) for f in rule.falsepositives))
    if rule.references:
        lines.append("References: " + " ".join(str(r) for r in rule.references))
    return "\n".join(lines)


def _spec(rule: SigmaRule | SigmaCorrelationRule, path: Path, kind: str, summary: str, enabled: bool = True,
          **params: Any) -> RuleSpec:
    level = rule.level.name.lower() if rule.level is not None else "medium"
    labels = {"sigma.id": str(rule.id or ""), "sigma.file": str(path)}
    return RuleSpec.model_validate({
        "id": rule_id(rule, path), "title": rule.title or path.stem, "description": rule.description or "",
        "severity": SEVERITY[level], "tags": sentinel_tags(rule.tags), "enabled": enabled, "type": kind,
        "summary": summary, "runbook": _runbook(rule, path), "labels": labels, **params,
    })


def _fingerprint(spec: RuleSpec) -> str:
    return spec.model_dump_json(include={"type", "threshold", "sequence", "group_by"})


@dataclass(frozen=True)
class _Base:
    """A single-event rule's compiled predicate and logsource (what a correlation builds on)."""

    predicate: Predicate
    source: Logsource


def compile_detection(rule: SigmaRule, pipeline: SigmaPipeline) -> _Base:
    """The rule's logsource gate and detection as one predicate; raises Unmappable with the reason."""
    ls = rule.logsource
    source = pipeline.resolve(ls.product, ls.service, ls.category)
    try:
        tree = rule.detection.parsed_condition[0].parse()
        if len(rule.detection.parsed_condition) > 1:
            trees = [c.parse() for c in rule.detection.parsed_condition]
            inner = [compile_tree(t, source) for t in trees]
            detect: Predicate = lambda ev: any(p(ev) for p in inner)  # noqa: E731
        else:
            detect = compile_tree(tree, source)
    except SigmaError as exc:
        raise Unmappable(f"condition: {exc}") from exc
    datasets = source.datasets
    where = [(name, frozenset(v.lower() for v in values)) for name, values in source.spec.where.items()]

    def predicate(ev: Any) -> bool:
        if ev.get("event.dataset") not in datasets:
            return False
        for name, allowed in where:
            value = ev.get(name)
            if not isinstance(value, str) or value.lower() not in allowed:
                return False
        return detect(ev)

    return _Base(predicate, source)


_SUMMARY = "{title}: {user.name|unknown account} on {host.name}"


def _single(rule: SigmaRule, path: Path, pipeline: SigmaPipeline, enabled: bool) -> CompiledRule:
    base = compile_detection(rule, pipeline)
    spec = _spec(rule, path, "match", _SUMMARY, enabled)
    return CompiledRule(spec, path, base.predicate, fingerprint=_fingerprint(spec),
                        extra={"sigma": {"kind": "rule", "logsource": _logsource_text(rule)}})


def _logsource_text(rule: SigmaRule) -> str:
    ls = rule.logsource
    return "/".join(v for v in (ls.product, ls.service, ls.category) if v)


def _group_fields(corr: SigmaCorrelationRule, bases: Sequence[tuple[SigmaRule, _Base]]) -> list[list[str]]:
    """Per base rule, the event fields of the correlation's group_by (aliases resolved)."""
    per_rule: list[list[str]] = []
    for rule, base in bases:
        names: list[str] = []
        for group in corr.group_by or []:
            sigma_field = group
            alias = corr.aliases.aliases.get(group)
            if alias is not None:
                for ref, name in alias.mapping.items():
                    if getattr(ref, "rule", None) is rule:
                        sigma_field = name
            names.append(base.source.fields(sigma_field)[0])
        per_rule.append(names)
    return per_rule


def _minimum(corr: SigmaCorrelationRule) -> int:
    cond = corr.condition
    op = getattr(cond, "op", None)
    count = getattr(cond, "count", None)
    if op is None or count is None:
        raise Unmappable("extended correlation conditions are not supported by sentinel")
    if op is SigmaCorrelationConditionOperator.GTE:
        return int(-(-count // 1))
    if op is SigmaCorrelationConditionOperator.GT:
        return int(count // 1) + 1
    raise Unmappable(f"correlation condition {op.name.lower()} is not supported: sentinel judges a window as "
                     "events arrive, so it can raise on reaching a count (gte, gt), not on staying below one")


def _correlation(corr: SigmaCorrelationRule, path: Path, bases: Sequence[tuple[SigmaRule, _Base]]) -> CompiledRule:
    kind = corr.type
    window = float(corr.timespan.seconds)
    groups = _group_fields(corr, bases)
    group_by = groups[0] if groups else []
    preds = tuple(base.predicate for _, base in bases)
    extra = {"sigma": {"kind": f"correlation {kind.name.lower()}", "rules": [r.title for r, _ in bases]}}

    def any_base(ev: Any) -> bool:
        return any(p(ev) for p in preds)

    if kind in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT):
        if any(g != group_by for g in groups):
            raise Unmappable("group_by aliases that name different event fields per rule are supported for "
                             "temporal correlations only")
        threshold: dict[str, Any] = {"min": _minimum(corr), "window": window, "metric": "count"}
        if kind is SigmaCorrelationType.VALUE_COUNT:
            fieldref = getattr(corr.condition, "fieldref", None)
            if not isinstance(fieldref, str):
                raise Unmappable("value_count needs one condition field")
            threshold.update(metric="distinct", field=bases[0][1].source.fields(fieldref)[0])
        summary = "{title}: {value} in {window} ({group})"
        spec = _spec(corr, path, "threshold", summary, threshold=threshold, group_by=group_by)
        return CompiledRule(spec, path, any_base, fingerprint=_fingerprint(spec), extra=extra)
    if kind in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
        if len(bases) < 2:
            raise Unmappable("a temporal correlation needs at least two rules")
        if getattr(corr.condition, "op", None) is not None and _minimum(corr) != len(bases):
            raise Unmappable("a temporal correlation that needs only some of its rules is not supported")
        steps = [{"name": rule.title, "filter": {}, **({"group_by": g} if g != group_by else {})}
                 for (rule, _), g in zip(bases, groups, strict=True)]
        sequence = {"window": window, "steps": steps, "ordered": kind is SigmaCorrelationType.TEMPORAL_ORDERED}
        summary = "{title}: {steps} rules within {window} ({user.name|unknown account})"
        spec = _spec(corr, path, "sequence", summary, sequence=sequence, group_by=group_by)
        return CompiledRule(spec, path, any_base, preds, fingerprint=_fingerprint(spec), extra=extra)
    raise Unmappable(f"correlation type {kind.name.lower()} is not supported by sentinel")


def _parse_file(path: Path, errors: list[ConfigError], skipped: list[ConfigError]) -> SigmaCollection | None:
    try:
        text = path.read_text(encoding="utf-8")
        docs = list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(ConfigError(f"cannot read Sigma rule file: {exc}", Location(str(path))))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        errors.append(ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                  Location(str(path), mark.line + 1 if mark is not None else None)))
        return None
    docs = [d for d in docs if d is not None]
    if not docs or not all(isinstance(d, dict) for d in docs):
        errors.append(ConfigError("expected Sigma rule documents (mappings with title, logsource and detection, "
                                  "or correlation)", Location(str(path), 1)))
        return None
    for doc in [d for d in docs if "filter" in d and "detection" not in d and "correlation" not in d]:
        # pySigma drops a meta filter it is not asked to apply: said here, so it is never silently ignored.
        skipped.append(ConfigError(f"Sigma filter {doc.get('title')!r} not loaded: filters are not supported by "
                                   "sentinel; write the exclusion into the rule's own condition", Location(str(path))))
        docs.remove(doc)
    if not docs:
        return None
    collection = SigmaCollection.from_dicts(docs, collect_errors=True, source=SigmaRuleLocation(path),
                                            resolve_references=False)
    problems = list(collection.errors) + [e for r in collection.rules for e in r.errors]
    for problem in problems:
        where = getattr(problem, "source", None)
        line = where.line if isinstance(where, SigmaRuleLocation) else None
        errors.append(ConfigError(f"not valid Sigma: {_message(problem)}", Location(str(path), line)))
    return None if problems else collection


def _message(exc: Exception) -> str:
    text = str(exc)
    return text.split(" in ", 1)[0] if " in /" in text else text


def load_sigma(paths: Sequence[Path], pipeline: SigmaPipeline | None = None) -> SigmaLoad:
    """Every Sigma file of ``paths`` (one collection, so a correlation may name rules of other files)."""
    pipeline = pipeline or shipped_pipeline()
    out = SigmaLoad()
    where: dict[int, Path] = {}
    rules: list[SigmaRule | SigmaCorrelationRule] = []
    for path in paths:
        collection = _parse_file(path, out.errors, out.skipped)
        if collection is None:
            continue
        for rule in collection.rules:
            where[id(rule)] = path
            rules.append(rule)
    everything = SigmaCollection(rules)  # type: ignore[arg-type]
    silenced: set[int] = set()  # base rules of a correlation that does not let them alert alone
    correlations: list[SigmaCorrelationRule] = []
    for rule in rules:
        if not isinstance(rule, SigmaCorrelationRule):
            continue
        try:
            rule.resolve_rule_references(everything)
        except SigmaError as exc:
            out.errors.append(ConfigError(f"not valid Sigma: {_message(exc)}", Location(str(where[id(rule)]))))
            continue
        correlations.append(rule)
        if not rule.generate:
            silenced.update(id(ref.rule) for ref in rule.rules or [])
    bases: dict[int, _Base | Unmappable] = {}
    for rule in rules:
        if isinstance(rule, SigmaCorrelationRule):
            continue
        path = where[id(rule)]
        try:
            compiled = _single(rule, path, pipeline, enabled=id(rule) not in silenced)
        except Unmappable as exc:
            bases[id(rule)] = exc
            out.skipped.append(ConfigError(f"Sigma rule {rule.title!r} not loaded: {exc}", Location(str(path))))
            continue
        bases[id(rule)] = _Base(compiled.predicate, pipeline.resolve(rule.logsource.product, rule.logsource.service,
                                                                     rule.logsource.category))
        out.rules.append(compiled)
    for corr in correlations:
        path = where[id(corr)]
        try:
            members: list[tuple[SigmaRule, _Base]] = []
            for ref in corr.rules or []:
                base = _base_of(ref, bases)
                members.append((ref.rule, base))  # type: ignore[arg-type]
            out.rules.append(_correlation(corr, path, members))
        except Unmappable as exc:
            out.skipped.append(ConfigError(f"Sigma correlation {corr.title!r} not loaded: {exc}",
                                           Location(str(path))))
    return out


def _base_of(ref: SigmaRuleReference, bases: dict[int, _Base | Unmappable]) -> _Base:
    if isinstance(ref.rule, SigmaCorrelationRule):
        raise Unmappable(f"rule {ref.reference!r} is itself a correlation: chained correlations are not supported")
    base = bases.get(id(ref.rule))
    if isinstance(base, Unmappable):
        raise Unmappable(f"its rule {ref.rule.title!r} cannot run: {base}")
    assert base is not None
    return base
