"""What routing decides, as pure functions: plain frozen values in, the decision out; no database, no clock.

Timing follows Alertmanager: a new group waits ``group_wait``; later alerts join the next message no earlier
than ``group_interval`` after the last one; a group whose alerts are still open is re-sent every
``repeat_interval``. An alert whose key (rule + the rule's group key) was already notified and is still open
is a duplicate: it is counted in the next message but never triggers one by itself. A silenced, inhibited or
resolved alert is recorded in its group but never sent. The router loads the values from ``RouteStore``,
asks these functions, and writes back what they decided.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sentinel.events.alerts import SEVERITY_RANK, Alert
from sentinel.route.silences import Silence, silenced_by
from sentinel.route.spec import Incident as IncidentSpec
from sentinel.route.spec import Inhibit
from sentinel.route.store import Group, Incident, StatusedAlert
from sentinel.route.tree import alert_labels, matches

# A message lists at most this many distinct alerts; the counts always cover all of them.
MAX_LISTED = 50

Labels = dict[str, str | list[str]]


def alert_key(alert: Alert) -> str:
    """What makes two alerts "the same" for deduplication: the rule and the rule's own group key."""
    return f"{alert.rule_id}|{alert.group_key}"


def summarize(alerts: Sequence[Alert], occurrences: Counter[str]) -> dict[str, Any]:
    """The PHI-free facts a message is rendered from: counts, time window, which alerts (ids only)."""
    by_key: dict[str, Alert] = {}
    for a in sorted(alerts, key=lambda a: (-SEVERITY_RANK.get(a.severity, 0), a.created)):
        by_key.setdefault(alert_key(a), a)
    listed = list(by_key.values())[:MAX_LISTED]
    return {
        "alert_ids": [a.id for a in listed],
        "occurrences": {a.id: occurrences.get(alert_key(a), 1) for a in listed},
        "alert_count": len(alerts),
        "distinct_count": len(by_key),
        "event_count": sum(a.count for a in alerts),
        "severity": max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 0)),
        "window": [min(a.first_seen for a in alerts), max(a.last_seen for a in alerts)],
    }


# --- an alert joins a group ------------------------------------------------------------------------------------


def member_state(key_already_notified: bool) -> str:
    """A joining alert waits for the group's flush, unless an open alert with its key was already notified."""
    return "duplicate" if key_already_notified else "pending"


def next_flush_on_join(group: Group, now: float, digest_at: float | None) -> float | None:
    """The group's new ``next_flush`` when a pending alert joins it at ``now``, or None to keep the one it has
    (a join only ever brings the flush closer). ``digest_at`` is the next digest time, used by a digest group."""
    if group.digest:
        if digest_at is None:
            raise ValueError(f"group {group.id} is a digest group: give the next digest time")
        candidate = digest_at
    elif group.last_flush is None:
        candidate = now + group.group_wait
    else:
        candidate = max(now, group.last_flush + group.group_interval)
    if group.next_flush is None or candidate < group.next_flush:
        return candidate
    return None


def incident_for(alert: Alert, spec: IncidentSpec, now: float) -> Incident | None:
    """The incident clock an alert starts (high/critical by default): business-associate and breach deadlines
    counted from when it was detected."""
    if alert.severity not in spec.severities:
        return None
    detected = alert.created or now
    return Incident(alert.id, detected, detected + spec.window, detected + spec.breach_limit)


# --- a group is flushed ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inhibitor:
    """An open alert matching inhibit rule number ``rule``'s source, with its labels."""

    rule: int
    labels: Labels
    alert_id: str


def inhibit_severities(rule: Inhibit) -> list[str] | None:
    """The severities an inhibit rule's source names (None: any), so candidates can be read by index."""
    wanted = rule.source.get("severity")
    if wanted is None:
        return None
    return [str(o) for o in (wanted if isinstance(wanted, list) else [wanted])]


def inhibitors_of(index: int, rule: Inhibit, candidates: Sequence[Alert]) -> list[Inhibitor]:
    """The candidates that match the rule's source."""
    out: list[Inhibitor] = []
    for a in candidates:
        labels = alert_labels(a)
        if matches(rule.source, labels):
            out.append(Inhibitor(index, labels, a.id))
    return out


def inhibited(labels: Labels, alert_id: str, inhibitors: Sequence[Inhibitor], rules: Sequence[Inhibit]) -> bool:
    """Whether another alert that matches a rule's source mutes this one: the rule's target matches it and
    every ``equal`` label is present and the same on both."""
    for src in inhibitors:
        rule = rules[src.rule]
        if src.alert_id == alert_id or not matches(rule.target, labels):
            continue
        if all(labels.get(k) is not None and labels.get(k) == src.labels.get(k) for k in rule.equal):
            return True
    return False


@dataclass(frozen=True)
class Verdict:
    """What happens to an unsent member at a flush: ``state`` None means it goes in the message; otherwise it
    is closed in that state (resolved, silenced by ``silence``, inhibited)."""

    state: str | None
    silence: Silence | None = None


SEND = Verdict(None)


def triage(found: StatusedAlert | None, silences: Sequence[Silence], inhibitors: Sequence[Inhibitor],
           rules: Sequence[Inhibit]) -> Verdict:
    """Resolved (or gone) before it was sent, silenced, inhibited, or sent — checked in that order."""
    if found is None or found.status == "resolved":
        return Verdict("resolved")
    labels = alert_labels(found.alert)
    if (s := silenced_by(list(silences), labels)) is not None:
        return Verdict("silenced", s)
    if inhibited(labels, found.alert.id, inhibitors, rules):
        return Verdict("inhibited")
    return SEND


def repeats(group: Group) -> bool:
    """A digest is sent once per digest time; every other group repeats while its alerts are open."""
    return not group.digest


def wants_repeat(group: Group, fresh: Sequence[Alert], now: float) -> bool:
    """Nothing new, and ``repeat_interval`` has passed since the last message: re-send what still fires."""
    return (not fresh and group.last_flush is not None and now >= group.last_flush + group.repeat_interval
            and repeats(group))


@dataclass(frozen=True)
class Flush:
    """One group message to queue: its row key, the payload it renders from, and the members it carries."""

    key: str
    dedup_key: str
    kind: str
    payload: dict[str, Any]
    seq: int
    members: tuple[str, ...]  # alert ids now counted in a message (the fresh and duplicate ones)


def plan_flush(group: Group, fresh: Sequence[Alert], duplicates: Sequence[Alert], firing: Sequence[Alert],
               now: float) -> Flush | None:
    """The message a due group sends, or None. ``fresh``: pending members to send; ``duplicates``: members
    whose key was already notified (counted, never a reason to send); ``firing``: the group's open, notified
    alerts, read only when :func:`wants_repeat` says a repeat is due."""
    kind = "digest" if group.digest else "alert"
    chosen: Sequence[Alert] = [*fresh, *duplicates]
    if wants_repeat(group, fresh, now) and firing:
        kind = "repeat"
        chosen = firing
    if not fresh and kind != "repeat":
        return None
    occurrences = Counter(alert_key(a) for a in chosen)
    payload = {"kind": kind, "group_id": group.id, "route_id": group.route_id, "group": group.labels,
               **summarize(chosen, occurrences)}
    seq = group.flushes + 1
    return Flush(f"g:{group.id}:{seq}", f"sentinel-{group.id}", kind, payload, seq,
                 tuple(a.id for a in [*fresh, *duplicates]))


def next_flush_after(group: Group, flushed_at: float | None, still_firing: bool, now: float) -> float | None:
    """After a flush (``flushed_at``: when a message went, None if none did): the next one is a repeat
    ``repeat_interval`` after the last message while anything still fires, else not until an alert joins."""
    if not still_firing:
        return None
    last = flushed_at if flushed_at is not None else group.last_flush
    return (last if last is not None else now) + group.repeat_interval


# --- follow-ups ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderStep:
    """The reminder due for one deadline: ``step`` names it (``ba:3600``, ``breach:passed``); ``superseded``
    are the earlier reminders it replaces (skipped while the daemon was down), recorded as done."""

    step: str
    superseded: tuple[str, ...]


def reminder_step(code: str, deadline: float, offsets: Sequence[float], now: float) -> ReminderStep | None:
    """Before a deadline passes, the closest reminder whose time has come; once it has passed, ``passed``."""
    due = [off for off in offsets if deadline - off <= now]
    if now >= deadline:
        step = f"{code}:passed"
    elif due:
        step = f"{code}:{int(min(due))}"
    else:
        return None
    return ReminderStep(step, tuple(f"{code}:{int(off)}" for off in due if f"{code}:{int(off)}" != step))


def one_alert_facts(alert: Alert) -> dict[str, Any]:
    """The payload facts of a message about one alert (an escalation, a reminder)."""
    return {"alert_ids": [alert.id], "occurrences": {alert.id: 1}, "alert_count": 1, "distinct_count": 1,
            "event_count": alert.count, "severity": alert.severity, "window": [alert.first_seen, alert.last_seen]}
