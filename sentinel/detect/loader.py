"""Load the rule pack: every ``rules/**/*.yaml`` into a compiled rule, every problem with file:line: field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.conf.models import RuleSources
from sentinel.conf.yamlfile import LoadedYaml, load_each, load_yaml_file, parse_model
from sentinel.detect.compiled import CompiledRule
from sentinel.detect.fields import field_problems
from sentinel.detect.lists import NamedLists
from sentinel.detect.model import RuleSpec
from sentinel.detect.template import template_problems
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.events.conditions import ConditionError, Predicate, any_of, compile_condition
from sentinel.events.vocabulary import FieldVocabulary


def _actions(spec: Any) -> frozenset[str] | None:
    """The event.action values a filter requires (at its top level, or in every branch of an ``any`` / in one
    part of an ``all``), or None if it may accept any action."""
    if not isinstance(spec, Mapping):
        return None
    found = _own_actions(spec)
    every = spec.get("all")
    if found is None and isinstance(every, list):
        for part in every:
            found = _actions(part)
            if found is not None:
                break
    branches = spec.get("any")
    if isinstance(branches, list) and branches:
        union: set[str] = set()
        for branch in branches:
            got = _actions(branch)
            if got is None:
                return found
            union |= got
        # Both hold when the filter has event.action beside its ``any``: the event must satisfy both.
        return frozenset(union) if found is None else found & union
    return found


def _own_actions(spec: Mapping[str, Any]) -> frozenset[str] | None:
    value = spec.get("event.action")
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    if isinstance(value, Mapping) and set(value) == {"in"} and isinstance(value["in"], list):
        return frozenset(str(v) for v in value["in"])
    if isinstance(value, Mapping) and set(value) == {"eq"}:
        return frozenset({str(value["eq"])})
    return None


def _condition(spec: Any, doc: LoadedYaml, where: tuple[str | int, ...], lists: Mapping[str, frozenset[str]],
               errors: list[ConfigError]) -> Predicate | None:
    try:
        return compile_condition(spec, "", lists)
    except ConditionError as exc:
        loc: tuple[str | int, ...] = where
        # Point at the field's own line when the problem sits under a top-level field of the filter.
        if isinstance(spec, Mapping):
            head = exc.path.split(".", 1)[0].split("[", 1)[0]
            for key in spec:
                if exc.path == key or exc.path.startswith(f"{key}.") or exc.path.startswith(f"{key}["):
                    head = key
                    break
            loc = (*where, head)
        errors.append(ConfigError(f"invalid condition: {exc}", Location(doc.path, doc.line_of(loc),
                                                                        ".".join(str(p) for p in where))))
        return None


def _never(fields: Mapping[str, Any]) -> bool:
    return False


def compile_rule(doc: LoadedYaml, lists: Mapping[str, frozenset[str]],
                 vocabulary: FieldVocabulary | None = None) -> CompiledRule:
    """Validate one rule document (its fields against ``vocabulary`` when given); raises ConfigErrors with
    every problem found in it."""
    path = doc.path
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping with id, title, severity, type, filter, summary and runbook",
                          Location(path, 1))
    spec = parse_model(RuleSpec, doc)
    errors: list[ConfigError] = []
    predicate = _condition(spec.filter, doc, ("filter",), lists, errors)
    steps: list[Predicate] = []
    actions = _actions(spec.filter)
    if spec.sequence is not None:
        step_actions: set[str] = set()
        every_step_has_actions = True
        for i, step in enumerate(spec.sequence.steps):
            p = _condition(step.filter, doc, ("sequence", "steps", i, "filter"), lists, errors)
            if p is not None:
                steps.append(p)
            found = _actions(step.filter)
            if found is None:
                every_step_has_actions = False
            else:
                step_actions |= found
        if actions is None and every_step_has_actions:
            actions = frozenset(step_actions)
    if spec.new_value is not None and spec.new_value.fire_on is not None:
        p = _condition(spec.new_value.fire_on, doc, ("new_value", "fire_on"), lists, errors)
        if p is not None:
            steps.append(p)
    if spec.terminated is not None and predicate is not None:
        # The evaluator needs the activity (the filter), revokes, restores and the list: step predicates in that
        # order; the rule sees every event any of them accepts.
        t = spec.terminated
        steps.append(predicate)
        for name, cond in (("revoke", t.revoke), ("restore", t.restore), ("listed", t.listed)):
            p = _condition(cond, doc, ("terminated", name), lists, errors) if cond else _never
            if p is not None:
                steps.append(p)
        predicate = any_of(tuple(steps))
        actions = None
    for problem in template_problems(spec):
        errors.append(ConfigError(problem, doc.location(("summary",))))
    warnings: list[ConfigError] = []
    if vocabulary is not None:
        field_errors, warnings = field_problems(spec, doc, vocabulary)
        errors.extend(field_errors)
    if errors:
        raise ConfigErrors(errors)
    assert predicate is not None
    fingerprint = spec.model_dump_json(include={"type", "threshold", "sequence", "baseline", "new_value",
                                                "dormant", "hourly", "terminated", "group_by"})
    return CompiledRule(spec, Path(path), predicate, tuple(steps), actions, fingerprint, warnings=tuple(warnings))


def load_rules(directory: Path, lists: Mapping[str, frozenset[str]], vocabulary: FieldVocabulary | None = None
               ) -> tuple[list[CompiledRule], list[ConfigError]]:
    """Every ``*.yaml`` under ``directory`` (recursively); returns the rules that loaded and every error."""
    if not directory.is_dir():
        return [], [ConfigError("rules folder does not exist", Location(str(directory)))]
    return load_each(sorted(directory.rglob("*.yaml")),
                     lambda path: compile_rule(load_yaml_file(path), lists, vocabulary),
                     lambda rule: rule.id, "rule id", "id")


@dataclass(frozen=True)
class _TurnOff:
    """An operator's ``{id: X, enabled: false}`` document: turns off rule X from a lower layer."""

    id: str
    path: Path


def _turn_off(doc: LoadedYaml) -> _TurnOff | None:
    data = doc.data
    if isinstance(data, dict) and set(data) == {"id", "enabled"} and data["enabled"] is False \
            and isinstance(data["id"], str):
        return _TurnOff(data["id"], Path(doc.path))
    return None


@dataclass(frozen=True)
class LayeredRules:
    """The rules in force after each folder (lowest first) replaced, added or turned off rules of the ones below."""

    rules: list[CompiledRule]
    layers: tuple[Path, ...]
    replaced: dict[str, Path]  # rule id -> the lower layer's file the rule in force replaced
    turned_off: dict[str, Path]  # rule id -> the file that turned it off
    errors: list[ConfigError]
    skipped: list[ConfigError] = field(default_factory=list)  # valid Sigma rules sentinel cannot run, and why

    def origin(self, rule: CompiledRule, shipped: bool) -> str:
        """'shipped', or the rule's own file (and what it replaced)."""
        if shipped and len(self.layers) > 0 and rule.path.is_relative_to(self.layers[0]):
            return "shipped"
        if rule.id in self.replaced:
            return f"{rule.path} (replaces {'shipped ' if shipped else ''}{self.replaced[rule.id]})"
        return str(rule.path)


def load_rule_layers(directories: Sequence[Path], lists: Mapping[str, frozenset[str]],
                     vocabulary: FieldVocabulary | None = None) -> LayeredRules:
    """Every folder's rules in turn: a later folder's rule replaces one with the same id from the folders below,
    and a document holding only ``id`` and ``enabled: false`` turns that rule off."""
    merged: dict[str, CompiledRule] = {}
    replaced: dict[str, Path] = {}
    turned_off: dict[str, Path] = {}
    errors: list[ConfigError] = []
    skipped: list[ConfigError] = []
    for depth, directory in enumerate(directories):
        if not directory.is_dir():
            errors.append(ConfigError("rules folder does not exist", Location(str(directory))))
            continue

        def load(path: Path, depth: int = depth) -> CompiledRule | _TurnOff:
            doc = load_yaml_file(path)
            off = _turn_off(doc) if depth else None
            return off if off is not None else compile_rule(doc, lists, vocabulary)

        layer: list[CompiledRule | _TurnOff]
        layer, layer_errors = load_each(sorted(directory.rglob("*.yaml")), load, lambda item: item.id, "rule id",
                                        "id")
        errors.extend(layer_errors)
        sigma_files = sorted(directory.rglob("*.yml"))
        if sigma_files:
            layer.extend(_sigma_layer(sigma_files, {item.id for item in layer}, errors, skipped))
        for item in layer:
            below = merged.pop(item.id, None)
            if isinstance(item, _TurnOff):
                if below is None and item.id not in turned_off:
                    errors.append(ConfigError(f"no rule {item.id!r} in {', '.join(map(str, directories[:depth]))} "
                                              "to turn off", Location(str(item.path), None, "id")))
                turned_off[item.id] = item.path
                continue
            if below is not None:
                replaced[item.id] = replaced.get(item.id, below.path)
            turned_off.pop(item.id, None)
            merged[item.id] = item
    return LayeredRules(list(merged.values()), tuple(directories), replaced, turned_off, errors, skipped)


def _sigma_layer(paths: list[Path], taken: set[str], errors: list[ConfigError], skipped: list[ConfigError]
                 ) -> list[CompiledRule]:
    """A folder's Sigma rules (``*.yml``); pySigma is imported only when a folder holds some."""
    try:
        from sentinel.detect.sigma.loader import load_sigma
    except ImportError as exc:
        errors.extend(ConfigError(f"Sigma rules need pySigma ({exc.name} is missing): "
                                  "pip install 'phi-sentinel[sigma]'", Location(str(path))) for path in paths)
        return []
    loaded = load_sigma(paths)
    errors.extend(loaded.errors)
    skipped.extend(loaded.skipped)
    rules = []
    for rule in loaded.rules:
        if rule.id in taken:
            errors.append(ConfigError(f"rule id {rule.id!r} already defined in this folder",
                                      Location(str(rule.path), None, "id")))
            continue
        taken.add(rule.id)
        rules.append(rule)
    return rules


def rule_pack(sources: RuleSources, lists: NamedLists | None = None, vocabulary: FieldVocabulary | None = None
              ) -> tuple[LayeredRules, NamedLists, list[ConfigError]]:
    """The rule layers of a configuration, its lists, and every problem (rules, lists, disabled ids); with a
    ``vocabulary`` (what the loaded collectors emit), unknown fields too."""
    lists = lists if lists is not None else NamedLists.from_settings(sources.detection, sources.origin)
    errors = lists.reload()
    pack = load_rule_layers(sources.dirs, lists, vocabulary)
    errors.extend(pack.errors)
    known = {r.id for r in pack.rules} | set(pack.turned_off)
    for i, rid in enumerate(sources.detection.disabled_rules):
        if rid not in known and not pack.errors:
            errors.append(ConfigError(f"unknown rule id {rid!r}",
                                      Location(str(sources.origin.path), None, f"detection.disabled_rules[{i}]")))
    return pack, lists, errors


def load_for_config(sources: RuleSources, lists: NamedLists | None = None, vocabulary: FieldVocabulary | None = None,
                    skipped: list[ConfigError] | None = None) -> tuple[list[CompiledRule], NamedLists,
                                                                       list[ConfigError]]:
    """The enabled rules of a configuration, its lists, and every problem (rules, lists, disabled ids);
    ``skipped`` receives the Sigma rules that could not be loaded, with why."""
    pack, lists, errors = rule_pack(sources, lists, vocabulary)
    if skipped is not None:
        skipped.extend(pack.skipped)
    disabled = set(sources.detection.disabled_rules)
    enabled = [r for r in pack.rules if r.spec.enabled and r.id not in disabled]
    return enabled, lists, errors


def validate(sources: RuleSources, vocabulary: FieldVocabulary) -> tuple[list[str], list[ConfigError],
                                                                     list[ConfigError]]:
    """``sentinel check``: summary lines, errors and warnings of the rules and lists."""
    if not sources.detection.enabled:
        return ["rules: detection disabled"], [], []
    pack, lists, errors = rule_pack(sources, vocabulary=vocabulary)
    disabled = set(sources.detection.disabled_rules)
    rules = [r for r in pack.rules if r.spec.enabled and r.id not in disabled]
    sizes = ", ".join(f"{name} {len(lists[name])}" for name in lists)
    warnings = [w for rule in rules for w in rule.warnings] + pack.skipped
    folders = " + ".join(str(d) for d in sources.dirs)
    sigma = sum(1 for r in rules if "sigma" in r.extra)
    counted = f"{len(rules)} enabled" + (f" ({sigma} Sigma, {len(pack.skipped)} Sigma not loaded)"
                                         if sigma or pack.skipped else "")
    return [f"rules: {counted} from {folders}; lists: {sizes}"], errors, warnings
