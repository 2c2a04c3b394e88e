"""Index names and the ECS-typed mappings generated from ``sentinel.events.ecs.FIELD_TYPES``."""

from __future__ import annotations

import re
from typing import Any

from sentinel.events.ecs import FIELD_TYPES

# Longer keyword values stay in _source but are not indexed (Lucene's term limit is 32 KiB).
KEYWORD_IGNORE_ABOVE = 8191
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


def field_mapping(name: str, kind: str) -> dict[str, Any]:
    if name in STORED_ONLY:
        return {"type": "keyword", "index": False, "doc_values": False}
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if kind == "text":
        # message: full text, plus an exact keyword for aggregations on short messages
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}
    return {"type": kind}


def properties(field_types: dict[str, str] | None = None) -> dict[str, Any]:
    """Nested ``properties`` for the flat dotted field table."""
    root: dict[str, Any] = {}
    for name, kind in sorted((field_types or FIELD_TYPES).items()):
        if name.startswith("@"):
            root[name] = field_mapping(name, kind)
            continue
        parts = name.split(".")
        node = root
        for part in parts[:-1]:
            holder = node.setdefault(part, {"properties": {}})
            if "properties" not in holder:
                raise ValueError(f"field table: {name} nests under the leaf {part}")
            node = holder["properties"]
        node[parts[-1]] = field_mapping(name, kind)
    return root


def event_mappings() -> dict[str, Any]:
    """Mappings for event indices: the known ECS fields typed, unknown strings as keywords, no date guessing."""
    return {
        "dynamic": True,
        "date_detection": False,
        "dynamic_templates": [
            {"strings_as_keywords": {"match_mapping_type": "string",
                                     "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}}},
        ],
        "properties": properties(),
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


def alert_mappings() -> dict[str, Any]:
    return {"dynamic": False, "date_detection": False, "properties": properties(ALERT_FIELDS)}
