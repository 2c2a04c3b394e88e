"""Alerts that keep counting: while an alert's suppression period runs, later matching events for its key
join it (count, last seen, bounded evidence, the summary's figures) instead of vanishing into suppression.

A threshold rule fires at its threshold; a brute force of 40 attempts used to say "10 failed". The state
that suppresses repeats (``~key`` in the rule's key store) now also names the alert and its running
figures, and the engine updates the alert row in the same batch transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

from sentinel.detect.kinds import Finding, metric_value
from sentinel.detect.model import RuleSpec, format_duration
from sentinel.detect.state import State
from sentinel.detect.template import render
from sentinel.events.alerts import MAX_EVENT_IDS, Alert
from sentinel.events.model import Event, iso

# Rule types whose alert is "the same thing happening" for as long as its key keeps matching.
FOLLOWING = ("match", "threshold", "sequence")
# Distinct-value digests a running alert remembers (a spray's distinct accounts), beyond which it counts on
# without deduplicating (the figure is then an upper bound, said so in the alert).
MAX_FOLLOW_DISTINCT = 1000
# The standard fields an alert names its entity by.
ENTITY_FIELDS = ("source.ip", "user.name", "host.name")
# Streams whose newest counted offset a running alert remembers (so a replay of the same lines is not
# counted again); ids are "<16 hex: stream><12 hex: byte offset>" (sentinel.events.ids).
MAX_STREAMS = 16
_PREFIX = 16
_OFFSET = 12
# Alert rows read per query when a batch's joins are written (under SQLite's default 999 bound parameters).
_READ_CHUNK = 500


def _stream_offset(event_id: str) -> tuple[str, int] | None:
    if len(event_id) != _PREFIX + _OFFSET:
        return None
    try:
        return event_id[:_PREFIX], int(event_id[_PREFIX:], 16)
    except ValueError:
        return None


def _seen_before(state: State, event_id: str) -> bool:
    """Whether this event was counted already (its stream got as far before); records it if not."""
    parsed = _stream_offset(event_id)
    if parsed is None:
        return False
    prefix, offset = parsed
    reached: dict[str, int] = state.setdefault("o", {})
    if reached.get(prefix, -1) >= offset:
        return True
    reached[prefix] = offset
    if len(reached) > MAX_STREAMS:
        del reached[next(iter(reached))]
    return False


def entity(spec: RuleSpec, ev: Event) -> dict[str, Any]:
    """What the alert is about: its group-by fields, then the standard entity fields of its latest event."""
    out: dict[str, Any] = {}
    for name in (*spec.group_by, *ENTITY_FIELDS):
        value = ev.fields.get(name)
        if value not in (None, "", []) and name not in out:
            out[name] = value
    return out


def opened(spec: RuleSpec, f: Finding, alert: Alert, until: float) -> State:
    """The suppression state of a newly raised alert, carrying its running figures."""
    state: State = {"u": until, "a": alert.id, "n": f.count, "f": f.first_seen, "l": f.last_seen}
    for event_id in f.event_ids:
        _seen_before(state, event_id)
    if spec.type == "threshold" and spec.threshold is not None:
        state["v"] = float(f.details.get("value", f.count))
        if spec.threshold.metric == "distinct":
            state["dv"] = list(f.distinct[:MAX_FOLLOW_DISTINCT])
    return state


@dataclass
class Joined:
    """What joined one alert in this batch."""

    spec: RuleSpec
    state: State
    event: Event
    event_ids: list[str] = field(default_factory=list)


def join(spec: RuleSpec, state: State, ev: Event, batch: dict[str, Joined]) -> None:
    """Count ``ev`` into the alert ``state`` names (unless it was counted before: a replay)."""
    if _seen_before(state, ev.id):
        return
    state["n"] += 1
    if ev.timestamp > state["l"]:
        state["l"] = ev.timestamp
    if ev.timestamp < state["f"]:
        state["f"] = ev.timestamp
    if spec.type == "threshold" and spec.threshold is not None:
        value = metric_value(spec.threshold.metric, spec.threshold.field, ev)
        if spec.threshold.metric == "distinct" and value is not None:
            seen = state.setdefault("dv", [])
            for digest in value:
                if digest in seen:
                    continue
                if len(seen) < MAX_FOLLOW_DISTINCT:
                    seen.append(digest)
                else:
                    state["over"] = True
                state["v"] = state.get("v", 0.0) + 1.0
        elif value is not None:
            state["v"] = state.get("v", 0.0) + float(value)
    joined = batch.get(state["a"])
    if joined is None:
        joined = batch[state["a"]] = Joined(spec, state, ev)
    joined.event = ev
    if len(joined.event_ids) < MAX_EVENT_IDS:
        joined.event_ids.append(ev.id)


def computed_for(spec: RuleSpec, state: State) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": spec.id, "title": spec.title, "severity": spec.severity, "count": state["n"],
                           "first_seen": iso(state["f"]), "last_seen": iso(state["l"])}
    if spec.type == "threshold" and spec.threshold is not None:
        p = spec.threshold
        out.update({"value": state.get("v", float(state["n"])), "threshold": p.min,
                    "window": format_duration(state["l"] - state["f"]) if state["l"] > state["f"]
                    else format_duration(p.window), "metric": p.metric})
    elif spec.type == "sequence" and spec.sequence is not None:
        out.update({"window": format_duration(spec.sequence.window), "steps": len(spec.sequence.steps)})
    return out


def apply(tx: sqlite3.Connection, batch: dict[str, Joined]) -> int:
    """Write the batch's joins into the alert rows; returns how many alerts changed."""
    rows: dict[str, tuple[str, str, str]] = {}
    ids = list(batch)
    for at in range(0, len(ids), _READ_CHUNK):
        chunk = ids[at:at + _READ_CHUNK]
        rows.update((r[0], (r[1], r[2], r[3])) for r in tx.execute(
            f"SELECT id, event_ids, details, group_key FROM alerts WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    updates: list[tuple[Any, ...]] = []
    for alert_id, j in batch.items():
        row = rows.get(alert_id)
        if row is None:
            continue  # deleted by an operator: nothing to update
        event_ids: list[str] = orjson.loads(row[0])
        room = MAX_EVENT_IDS - len(event_ids)
        if room > 0:
            event_ids += [i for i in j.event_ids if i not in event_ids][:room]
        details: dict[str, Any] = orjson.loads(row[1])
        state = j.state
        details["entity"] = {**details.get("entity", {}), **{k: v for k, v in entity(j.spec, j.event).items()
                                                              if k not in j.spec.group_by}}
        details["events_after_alert"] = int(details.get("events_after_alert", 0)) + len(j.event_ids)
        if "v" in state:
            details["value"] = state["v"]
            if state.get("over"):
                details["value_is_upper_bound"] = True
        computed = computed_for(j.spec, state)
        group_key = row[2]
        computed["group"] = group_key.split("=", 1)[-1] if "|" not in group_key else group_key  # as at raise
        summary = render(j.spec.summary, j.event.fields, computed)
        updates.append((state["n"], state["l"], state["f"], orjson.dumps(event_ids).decode(), summary,
                        orjson.dumps(details, default=str).decode(), alert_id))
    tx.executemany("UPDATE alerts SET count = ?, last_seen = max(last_seen, ?), first_seen = min(first_seen, ?), "
                   "event_ids = ?, summary = ?, details = ? WHERE id = ?", updates)
    return len(updates)
