"""One bulk request over pre-serialised spool rows, and the classification of its per-item results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

# Only what we classify on: keeps the response small when a bulk has 2,000 items.
FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"


@dataclass(frozen=True, slots=True)
class SpoolRow:
    seq: int
    id: str
    idx: str
    doc: bytes


@dataclass
class BulkOutcome:
    """Per-item results of one request: acknowledged (created or already there), retry, or rejected for good."""

    created: int = 0
    duplicates: int = 0
    retry: list[SpoolRow] = field(default_factory=list)
    retry_reasons: dict[int, str] = field(default_factory=dict)
    rejected: list[tuple[SpoolRow, int, str, str]] = field(default_factory=list)


def payload(rows: list[SpoolRow], op: str = "create") -> bytes:
    """NDJSON actions with the event id as ``_id``. ``create`` (events, new alerts): a resend can only hit
    409, never duplicate. ``index`` (an alert whose status changed): replaces the document."""
    parts: list[bytes] = []
    action = op.encode()
    for r in rows:
        parts.append(b'{"%s":{"_index":"%s","_id":"%s"}}\n' % (action, r.idx.encode(), r.id.encode()))
        parts.append(r.doc)
        parts.append(b"\n")
    return b"".join(parts)


def send(es: Elasticsearch, rows: list[SpoolRow], op: str = "create") -> BulkOutcome:
    """POST one bulk; raises on request-level failure (connection, 429/5xx for the whole request)."""
    resp = es.bulk(operations=payload(rows, op), filter_path=FILTER_PATH)  # type: ignore[arg-type]
    return classify(rows, resp.body)


def classify(rows: list[SpoolRow], body: dict[str, Any]) -> BulkOutcome:
    out = BulkOutcome()
    if not body.get("errors"):
        out.created = len(rows)
        return out
    items = body.get("items") or []
    if len(items) != len(rows):
        raise ValueError(f"bulk answered {len(items)} items for {len(rows)} documents")
    for row, item in zip(rows, items, strict=True):
        result = next(iter(item.values()))
        status = int(result.get("status", 0))
        if status in (200, 201):
            out.created += 1
        elif status == 409:
            out.duplicates += 1  # this _id is already indexed: a replay after a crash or a retried request
        elif status == 429 or status >= 500:
            out.retry.append(row)
            err = result.get("error") or {}
            out.retry_reasons[row.seq] = f"{status} {err.get('type', '')}: {err.get('reason', '')}"[:2000]
        else:
            err = result.get("error") or {}
            out.rejected.append((row, status, str(err.get("type", "unknown")), str(err.get("reason", ""))[:2000]))
    return out
