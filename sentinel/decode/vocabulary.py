"""What a set of collector definitions can emit: field names and the values of the enumerated fields."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sentinel.decode.spec import CollectorSpec, LookupSpec
from sentinel.events.ecs import FIELD_TYPES
from sentinel.events.vocabulary import ENUMERATED, FieldVocabulary

# What the decoder sets on every event whatever the collector says (see decode/engine.py and safely.py).
DECODER_VALUES = {"event.kind": frozenset({"event", "pipeline_error"})}


def vocabulary_of(specs: Iterable[CollectorSpec]) -> FieldVocabulary:
    """ECS fields sentinel writes, plus every field a collector maps, sets, looks up or captures in a regex."""
    fields = set(FIELD_TYPES)
    values: dict[str, set[str]] = {name: set(DECODER_VALUES.get(name, ())) for name in ENUMERATED}
    open_fields: set[str] = set()
    for spec in specs:
        for sets, maps, lookups, regex in [(spec.set, spec.map, spec.lookup, None)] + [
                (p.set, p.map, p.lookup, p.regex) for p in spec.patterns]:
            for name, value in sets.items():
                fields.add(name)
                if name in values:
                    values[name].update(_texts(value))
            for name in maps:
                fields.add(name)
                open_fields.add(name)
            for name, lookup in lookups.items():
                fields.add(name)
                if name in values:
                    values[name].update(_lookup_values(lookup))
            for group in _groups(regex):
                fields.add(group)
                open_fields.add(group)
    return FieldVocabulary(frozenset(fields), {name: frozenset(v) for name, v in values.items()
                                               if name not in open_fields})


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if v is not None]


def _lookup_values(lookup: LookupSpec) -> list[str]:
    out = [t for v in lookup.table.values() for t in _texts(v)]
    return out + _texts(lookup.default)


def _groups(regex: str | None) -> list[str]:
    if not regex:
        return []
    try:
        names = re.compile(regex).groupindex
    except re.error:
        return []  # reported by the collector's own check
    return [n.replace("__", ".") for n in names if not n.startswith("_")]
