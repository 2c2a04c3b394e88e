"""The normalised event: flat ECS field names (``user.name``) mapped to values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

Fields = dict[str, Any]


@dataclass(slots=True)
class Event:
    """One decoded log record.

    ``fields`` uses flat dotted ECS names because matching, indexing and storing all
    address fields by name; :func:`nest` builds the nested document Elasticsearch wants.
    """

    id: str
    timestamp: float
    source: str
    fields: Fields = field(default_factory=dict)
    parsed: bool = True

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def to_json(self) -> bytes:
        return orjson.dumps(self.fields)

    @classmethod
    def from_fields(cls, fields: Fields) -> Event:
        """Rebuild an event from its stored flat fields."""
        ts = fields.get("@timestamp")
        return cls(
            id=str(fields.get("event.id", "")),
            timestamp=parse_iso(ts) if isinstance(ts, str) else float(ts or 0.0),
            source=str(fields.get("event.module", fields.get("sentinel.source", ""))),
            fields=fields,
            parsed="unparsed" not in (fields.get("tags") or ()),
        )


@lru_cache(maxsize=4096)
def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")


@lru_cache(maxsize=8192)
def _iso_second(second: int) -> str:
    day, rest = divmod(second, 86400)
    hour, rest = divmod(rest, 3600)
    minute, sec = divmod(rest, 60)
    return f"{_iso_day(day)}{hour:02d}:{minute:02d}:{sec:02d}."


def iso(ts: float) -> str:
    """Epoch seconds as an RFC 3339 UTC string with milliseconds (hot: cached per second)."""
    seconds, millis = divmod(round(ts * 1000), 1000)
    return f"{_iso_second(seconds)}{millis:03d}Z"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def nest(flat: Fields) -> dict[str, Any]:
    """Turn ``{"user.name": "x"}`` into ``{"user": {"name": "x"}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.startswith("@"):
            out[key] = value
            continue
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def flatten(doc: dict[str, Any], prefix: str = "") -> Fields:
    """Inverse of :func:`nest` for documents read back from Elasticsearch."""
    out: Fields = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
