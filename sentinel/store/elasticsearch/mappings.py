"""Index names and the mappings of the fields in ``sentinel.events.ecs.FIELD_TYPES``: an ECS field is mapped as
ECS maps it (type, ``ignore_above``, ``.text`` multi-fields, from :mod:`sentinel.events.ecs_reference`); sentinel's
own and vendors' fields by their table type."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from sentinel.events.ecs import FIELD_TYPES
from sentinel.events.ecs_conformance import ecs_fields

# ECS's limit for keywords: longer values stay in _source but are not indexed.
KEYWORD_IGNORE_ABOVE = 1024
# What a node without ECS's newer field types (no mapper-extras or wildcard module) gets instead.
FALLBACK_TYPES: Mapping[str, str] = {"match_only_text": "text", "wildcard": "keyword"}
# Kept for evidence, never searched: not indexed, no doc values (as ECS recommends).
STORED_ONLY = frozenset({"event.original"})
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def source_slug(source: str) -> str:
    """A source (collector) name as it may appear in an index name."""
    return _UNSAFE.sub("_", source.lower()).strip("_-") or "unknown"


def events_alias(prefix: str, source: str) -> str:
    return f"{prefix}-events-{source_slug(source)}"


def alerts_alias(prefix: str) -> str:
    return f"{prefix}-alerts"


def events_pattern(prefix: str) -> str:
    return f"{prefix}-events-*"


def _typed(kind: str, unsupported: Collection[str]) -> str:
    return FALLBACK_TYPES.get(kind, kind) if kind in unsupported else kind


def field_mapping(name: str, kind: str, unsupported: Collection[str] = ()) -> dict[str, Any]:
    """The mapping of one field; ``unsupported``: ECS types the node lacks (mapped by :data:`FALLBACK_TYPES`)."""
    if name in STORED_ONLY:
        return {"type": "keyword", "index": False, "doc_values": False}
    ecs = ecs_fields().get(name)
    if ecs is not None:
        out: dict[str, Any] = {"type": _typed(ecs.type, unsupported)}
        if ecs.ignore_above and out["type"] == "keyword":
            out["ignore_above"] = ecs.ignore_above
        if ecs.multi_fields:
            out["fields"] = {sub: {"type": _typed(t, unsupported)} for sub, t in ecs.multi_fields}
        return out
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if kind == "text":
        return {"type": _typed("match_only_text", unsupported)}
    return {"type": kind}


def properties(field_types: dict[str, str] | None = None, unsupported: Collection[str] = ()) -> dict[str, Any]:
    """Nested ``properties`` for the flat dotted field table."""
    root: dict[str, Any] = {}
    for name, kind in sorted((field_types or FIELD_TYPES).items()):
        if name.startswith("@"):
            root[name] = field_mapping(name, kind, unsupported)
            continue
        parts = name.split(".")
        node = root
        for part in parts[:-1]:
            holder = node.setdefault(part, {"properties": {}})
            if "properties" not in holder:
                raise ValueError(f"field table: {name} nests under the leaf {part}")
            node = holder["properties"]
        node[parts[-1]] = field_mapping(name, kind, unsupported)
    return root


_STRINGS_AS_KEYWORDS = {"strings_as_keywords": {"match_mapping_type": "string",
                                                 "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}}}


def event_mappings(unsupported: Collection[str] = ()) -> dict[str, Any]:
    """Mappings for event indices: the known ECS fields typed, unknown strings as keywords, no date guessing."""
    return {
        "dynamic": True,
        "date_detection": False,
        "dynamic_templates": [_STRINGS_AS_KEYWORDS],
        "properties": properties(unsupported=unsupported),
    }


ALERT_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "event.kind": "keyword",
    "event.severity": "long",
    "event.start": "date",
    "event.end": "date",
    "rule.id": "keyword",
    "rule.name": "keyword",
    "sentinel.alert.id": "keyword",
    "sentinel.alert.severity": "keyword",
    "sentinel.alert.group_key": "keyword",
    "sentinel.alert.count": "long",
    "sentinel.alert.event_ids": "keyword",
    "sentinel.alert.summary": "text",
    "sentinel.alert.runbook": "keyword",
    "sentinel.alert.details": "flattened",
    "sentinel.alert.status": "keyword",
    "sentinel.alert.acked_by": "keyword",
    "sentinel.alert.acked_at": "date",
    "sentinel.alert.resolved_by": "keyword",
    "sentinel.alert.resolved_at": "date",
    "labels": "flattened",
    "tags": "keyword",
    "host.name": "keyword",
}


def alert_mappings(unsupported: Collection[str] = ()) -> dict[str, Any]:
    props = properties(ALERT_FIELDS, unsupported)
    # ECS maps labels as an object of keywords; the alert index maps nothing else dynamically.
    props["labels"] = {**props["labels"], "dynamic": True}
    return {"dynamic": False, "date_detection": False, "dynamic_templates": [_STRINGS_AS_KEYWORDS],
            "properties": props}
