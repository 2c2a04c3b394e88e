"""Turn a notification row into (title, body): PHI-safe context → template → redaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sentinel.events.alerts import Alert
from sentinel.notify.redact import Redactor, phi_tokens_from_events
from sentinel.notify.templates import TemplateSet
from sentinel.route.durations import format_duration
from sentinel.route.store import RouteStore
from sentinel.store.docs import ShapeReader

# Event documents read per message to learn the patient names/ids to mask (bounded: messages stay cheap).
MAX_EVIDENCE_DOCS = 500
MAX_NAMES_IN_LINE = 5


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _join(values: list[str]) -> str:
    distinct = list(dict.fromkeys(v for v in values if v))
    if not distinct:
        return "-"
    more = len(distinct) - MAX_NAMES_IN_LINE
    return ", ".join(distinct[:MAX_NAMES_IN_LINE]) + (f" (+{more} more)" if more > 0 else "")


def _minutes_left(deadline: float | None, now: float) -> str:
    if deadline is None:
        return "-"
    left = float(deadline) - now
    return format_duration(round(left / 60) * 60) if left > 0 else "0s (passed)"


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


def evidence_docs(conn: sqlite3.Connection, alerts: list[Alert]) -> list[dict[str, Any]]:
    """The stored events behind the alerts (only to learn what to mask; never rendered)."""
    ids = [eid for a in alerts for eid in a.event_ids][:MAX_EVIDENCE_DOCS]
    docs: list[dict[str, Any]] = []
    reader = ShapeReader(conn)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        try:
            rows = conn.execute(f"SELECT shape, doc FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            docs.extend(reader.fields(shape, doc) for shape, doc in rows)
        except sqlite3.OperationalError:
            break  # the Elasticsearch backend keeps no events table locally
    return docs


def build_context(kind: str, payload: Mapping[str, Any], alerts: list[Alert], key: str, dedup_key: str,
                  evidence_command: str, now: float) -> dict[str, str]:
    """Every field a template may name, from counts, labels and times only."""
    occurrences: Mapping[str, int] = payload.get("occurrences", {})
    first = alerts[0] if alerts else None
    lines = []
    for a in alerts:
        n = occurrences.get(a.id, 1)
        lines.append(f"- {a.severity} {a.rule_id} user={a.labels.get('user.name', '-')} "
                     f"host={a.labels.get('host.name', '-')} events={a.count}"
                     + (f" repeats={n}" if n > 1 else "") + f" id={a.id}")
    hidden = int(payload.get("distinct_count", len(alerts))) - len(alerts)
    if hidden > 0:
        lines.append(f"- … and {hidden} more distinct alert(s)")
    window = payload.get("window") or [None, None]
    severity = str(payload.get("severity") or (first.severity if first else "-"))
    ctx = {
        "kind": kind,
        "rule": _join([a.rule_id for a in alerts]),
        "title": _join([a.title for a in alerts]),
        "severity": severity,
        "severity_upper": severity.upper(),
        "user": _join([str(a.labels.get("user.name", "")) for a in alerts]),
        "host": _join([str(a.labels.get("host.name", "")) for a in alerts]),
        "group": ", ".join(f"{k}={v}" for k, v in (payload.get("group") or {}).items()) or "-",
        "alert_count": str(payload.get("alert_count", len(alerts))),
        "distinct_count": str(payload.get("distinct_count", len(alerts))),
        "event_count": str(payload.get("event_count", sum(a.count for a in alerts))),
        "window_start": iso(window[0]),
        "window_end": iso(window[1]),
        "runbook": _join([a.runbook for a in alerts]),
        "summary": first.summary if first else "-",
        "alerts": "\n".join(lines) or "-",
        "evidence": evidence_command.format(alert_id=first.id if first else "", rule=first.rule_id if first else ""),
        "alert_id": first.id if first else "-",
        "dedup_key": dedup_key,
        "notification_key": key,
        "escalation_step": str(payload.get("step", "-")),
        "deadline_name": str(payload.get("deadline_name", "-")),
        "deadline": iso(payload.get("deadline")),
        "time_left": _minutes_left(payload.get("deadline"), now),
        "detected_at": iso(payload.get("detected_at") or (first.created if first else None)),
        "status": "-",
        "resolved_at": iso(payload.get("resolved_at")),
        "resolved_by": str(payload.get("resolved_by") or "-"),
        "resolution": str(payload.get("how") or "-"),
        "disposition": str(payload.get("disposition") or "-"),
        "still_firing": str(payload.get("still_firing", "-")),
        "note": "-",
    }
    return ctx


def _note(conn: sqlite3.Connection, alert_id: str) -> str:
    """The resolution note (free text a person typed: it shows only where a template names it)."""
    try:
        row = conn.execute("SELECT note FROM alert_resolutions WHERE alert_id = ?", (alert_id,)).fetchone()
    except sqlite3.OperationalError:
        return "-"
    return str(row[0]) if row and row[0] else "-"


class Renderer:
    """Renders with a receiver's template set, then redacts with everything the message is allowed to keep."""

    def __init__(self, templates: dict[str, TemplateSet], redactor: Redactor, evidence_command: str) -> None:
        self.templates = templates
        self.redactor = redactor
        self.evidence_command = evidence_command

    def render(self, conn: sqlite3.Connection, template: str, kind: str, payload: Mapping[str, Any], key: str,
               dedup_key: str, now: float) -> Rendered:
        ids = list(payload.get("alert_ids", []))
        found = RouteStore(conn).alerts(ids)
        alerts = [found[i].alert for i in ids if i in found]
        tset = self.templates.get(template) or self.templates["default"]
        tmpl = tset["alert"] if kind in ("alert", "repeat") else tset[kind]
        ctx = build_context(kind, payload, alerts, key, dedup_key, self.evidence_command, now)
        if alerts and kind in ("escalation", "reminder", "resolved"):
            ctx["status"] = found[alerts[0].id].status
        if alerts and kind == "resolved":
            ctx["note"] = _note(conn, alerts[0].id)
        title, body = tmpl.render(ctx)
        keep = {key, dedup_key, *(a.id for a in alerts)}
        for a in alerts:
            keep.update(str(a.labels.get(k, "")) for k in ("user.name", "host.name"))
        tokens = phi_tokens_from_events(evidence_docs(conn, alerts))
        return Rendered(self.redactor.redact(title, keep, tokens), self.redactor.redact(body, keep, tokens))
