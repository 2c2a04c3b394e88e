"""Every field a rule names, checked against the field vocabulary; enumerated values against what is emitted.

An unknown field is an error (the rule could never match it), except an ECS field or one under a vendor's
name space that none of the loaded collectors writes (a warning: the rule waits for such a collector); a value of
``event.action`` and the other enumerated fields that no loaded collector emits is a warning (a collector
added later may emit it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sentinel.conf.yamlfile import LoadedYaml, Path_
from sentinel.detect.model import RuleSpec
from sentinel.detect.template import LOCAL_HOUR, SOURCE_NETWORK
from sentinel.errors import ConfigError
from sentinel.events.ecs_conformance import VENDOR_NAMESPACES, ecs_fields
from sentinel.events.vocabulary import FieldVocabulary

_FIELD_ARGUMENTS = ("field_eq", "field_ne")  # operators whose argument is another field's name
_VALUE_OPERATORS = ("eq", "ne", "in", "not_in")


# Fields the engine derives per event: the hour in the organisation's time zone, the source address's network.
DERIVED_FIELDS = frozenset({LOCAL_HOUR, SOURCE_NETWORK})


def field_problems(spec: RuleSpec, doc: LoadedYaml, vocab: FieldVocabulary) -> tuple[list[ConfigError],
                                                                                     list[ConfigError]]:
    """(errors, warnings) for every field and enumerated value the rule names."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for name, value, where in _named(spec):
        if name in DERIVED_FIELDS:
            continue  # computed by the engine from an event's fields, not stored in it
        if not vocab.known(name):
            if name in ecs_fields():
                # A real ECS field only collectors this installation does not load write (email.to.address
                # from the cloud mail collectors): the rule waits for them, harmlessly.
                warnings.append(ConfigError(f"no loaded collector emits `{name}`, so this never matches until one "
                                            "does", doc.location(where)))
                continue
            # A vendor's dataset (azure.auditlogs, okta.debug_context): by its first two names.
            dataset = ".".join(name.split(".", 2)[:2])
            if name.split(".", 1)[0] in VENDOR_NAMESPACES and not vocab.emits_namespace(dataset):
                warnings.append(ConfigError(f"no loaded collector emits `{dataset}.*` fields, so `{name}` never "
                                            "matches until one does", doc.location(where)))
                continue
            errors.append(ConfigError(f"unknown field `{name}`{vocab.suggest(name)}; expected an ECS field or one "
                                      "a loaded collector emits", doc.location(where)))
            continue
        for text in value:
            if not vocab.emits(name, text):
                near = ", ".join(f"`{v}`" for v in vocab.closest_values(name, text))
                warnings.append(ConfigError(f"no loaded collector emits {name} `{text}`, so this never matches; "
                                            f"closest emitted: {near}", doc.location(where)))
    return errors, warnings


def _named(spec: RuleSpec) -> Iterator[tuple[str, list[str], Path_]]:
    """(field, values compared with it, YAML path) for each field the rule names."""
    yield from _condition(spec.filter, ("filter",))
    for i, name in enumerate(spec.group_by):
        yield name, [], ("group_by", i)
    if spec.threshold is not None and spec.threshold.field:
        yield spec.threshold.field, [], ("threshold", "field")
    if spec.baseline is not None and spec.baseline.field:
        yield spec.baseline.field, [], ("baseline", "field")
    if spec.new_value is not None:
        yield spec.new_value.field, [], ("new_value", "field")
    for i, step in enumerate(spec.sequence.steps if spec.sequence else ()):
        yield from _condition(step.filter, ("sequence", "steps", i, "filter"))
        for k, name in enumerate(step.group_by or ()):
            yield name, [], ("sequence", "steps", i, "group_by", k)


def _condition(cond: Any, where: Path_) -> Iterator[tuple[str, list[str], Path_]]:
    if not isinstance(cond, Mapping):
        return
    for key, value in cond.items():
        here = (*where, key)
        if key in ("all", "any") and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _condition(sub, (*here, i))
        elif key == "not":
            yield from _condition(value, here)
        else:
            yield str(key), _compared(value), here
            if isinstance(value, Mapping):
                for op in _FIELD_ARGUMENTS:
                    if isinstance(value.get(op), str):
                        yield value[op], [], (*here, op)


def _compared(value: Any) -> list[str]:
    """The literal values a field condition compares with (equality and membership only)."""
    if isinstance(value, Mapping):
        out: list[str] = []
        for op in _VALUE_OPERATORS:
            if op in value:
                out.extend(_compared(value[op]))
        return out
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
    if isinstance(value, str):
        return [value]
    return []
