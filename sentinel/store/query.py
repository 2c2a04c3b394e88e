"""Parse analysts' simple field queries: ``user.name=alice event.outcome=failure source.ip!=10.0.0.1``."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sentinel.errors import SentinelError

TERM = re.compile(r"^(?P<name>[@\w.]+)(?P<op>!=|>=|<=|=|>|<)(?P<value>.*)$")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class QueryError(SentinelError):
    pass


@dataclass(frozen=True)
class Query:
    terms: list[tuple[str, str, Any]] = field(default_factory=list)
    since: float | None = None
    until: float | None = None
    text: str | None = None
    limit: int = 100


def parse_terms(items: list[str]) -> list[tuple[str, str, Any]]:
    terms: list[tuple[str, str, Any]] = []
    for item in items:
        if item.endswith("=*") and "!" not in item:
            terms.append((item[:-2], "exists", None))
            continue
        m = TERM.match(item)
        if m is None:
            raise QueryError(f"cannot read {item!r}: expected FIELD=VALUE (also != > >= < <=)")
        value: Any = m.group("value")
        if m.group("op") in (">", ">=", "<", "<="):
            try:
                value = float(value)
            except ValueError:
                raise QueryError(f"{item!r}: expected a number after {m.group('op')}") from None
        terms.append((m.group("name"), m.group("op"), value))
    return terms


def parse_time(text: str | None, now: float | None = None) -> float | None:
    """``1h`` / ``7d`` (ago) or an ISO 8601 time."""
    if not text:
        return None
    now = time.time() if now is None else now
    m = DURATION.match(text)
    if m:
        return now - float(m.group(1)) * UNITS[m.group(2)]
    from sentinel.events.timestamps import any_timestamp

    try:
        return any_timestamp(text)
    except ValueError:
        raise QueryError(f"cannot read time {text!r}: expected e.g. 15m, 2h, 7d or 2026-01-31T08:00:00Z") from None
