"""What "ECS-conformant" means for sentinel, in one place: every collector (and the tests that check them)
uses these rules.

- A field under one of ECS's own names (``event.*``, ``log.*``, ``user.*``, ...) must be a field ECS defines.
- A field ECS lacks lives under sentinel's own name spaces or a vendor's (``okta.*``, ``auditd.*``, ...).
- ``event.kind/category/type/outcome`` take only ECS's allowed values, and each event's categories and types
  must fit together (every type expected by one of its categories, every category given one of its types).

The facts come from :mod:`sentinel.events.ecs_reference`, generated from ECS by ``scripts/ecs_facts.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sentinel.events.ecs_reference import ALLOWED_VALUES, CATEGORY_TYPES, ECS_VERSION, FIELD_TABLE

# Name spaces that are not ECS's: sentinel's own, and vendors' raw fields kept for their own rules (Sigma rules
# are written against okta.*, azure.signinlogs.*, auditd's records). A new collector adds its vendor here.
OWN_NAMESPACES = ("sentinel", "phi")
VENDOR_NAMESPACES = ("auditd", "okta", "azure", "o365", "google_workspace", "osquery", "cisco", "systemd",
                     "journald", "billing", "atna")

__all__ = ["ALLOWED_VALUES", "CATEGORY_TYPES", "ECS_VERSION", "EcsField", "ecs_fields", "field_problem",
           "value_problems"]


@dataclass(frozen=True)
class EcsField:
    name: str
    type: str
    ignore_above: int | None
    multi_fields: tuple[tuple[str, str], ...]
    array: bool


@cache
def ecs_fields() -> dict[str, EcsField]:
    """Every ECS field by its dotted name."""
    out: dict[str, EcsField] = {}
    for line in FIELD_TABLE.strip().splitlines():
        name, kind, above, multi, *rest = line.split(" ")
        multis = tuple(tuple(m.split(":", 1)) for m in multi.split(",")) if multi != "-" else ()
        out[name] = EcsField(name, kind, int(above) or None, multis, bool(rest))  # type: ignore[arg-type]
    return out


@cache
def _field_sets() -> frozenset[str]:
    return frozenset(name.split(".", 1)[0] for name in ecs_fields())


def _object_prefixes() -> frozenset[str]:
    return frozenset(n for n, f in ecs_fields().items() if f.type in ("object", "flattened", "nested"))


def field_problem(name: str) -> str | None:
    """Why ``name`` does not belong where it is; None when it does."""
    fields = ecs_fields()
    if name in fields:
        return None
    top = name.split(".", 1)[0]
    if top in OWN_NAMESPACES or top in VENDOR_NAMESPACES:
        return None
    parents = [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
    if any(p in _object_prefixes() for p in parents):
        return None  # keys below an ECS object field (labels.*, log.syslog.structured_data.*)
    if top in _field_sets():
        return f"{name} is under ECS's {top}.* but ECS has no such field"
    return (f"{name}: {top}.* is neither an ECS field set nor a declared name space "
            f"({', '.join(OWN_NAMESPACES + VENDOR_NAMESPACES)})")


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return [str(v) for v in items if v is not None]


def value_problems(doc: Mapping[str, Any]) -> list[str]:
    """ECS value violations of one event document (flat dotted keys)."""
    problems = []
    for name, allowed in ALLOWED_VALUES.items():
        for v in _values(doc.get(name)):
            if v not in allowed:
                problems.append(f"{name}: {v!r} is not an ECS value (allowed: {', '.join(allowed)})")
    problems += pair_problems(_values(doc.get("event.category")), _values(doc.get("event.type")))
    return problems


def pair_problems(categories: Iterable[str], types: Iterable[str]) -> list[str]:
    """Categories and types of one event that ECS does not expect together."""
    cats = [c for c in categories if c in CATEGORY_TYPES]
    kinds = list(types)
    if not cats or not kinds:
        return []
    problems = []
    for t in kinds:
        if not any(t in CATEGORY_TYPES[c] for c in cats):
            problems.append(f"event.type {t!r} is expected by none of event.category {cats}")
    for c in cats:
        if not any(t in CATEGORY_TYPES[c] for t in kinds):
            problems.append(f"event.category {c!r} expects one of {list(CATEGORY_TYPES[c])}, got {kinds}")
    return problems
