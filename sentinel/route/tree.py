"""The compiled routing tree: which receivers get an alert, with which grouping, at a given moment."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sentinel.events.alerts import SEVERITY_RANK, Alert
from sentinel.route.spec import BUILTIN_TIMING, DAYS, BusinessHours, Route, RoutesFile, Timing

Matchers = dict[str, str | list[str]]


def alert_labels(alert: Alert) -> dict[str, str | list[str]]:
    """What routes, silences and inhibit rules can match: the alert's labels plus rule, severity, title, tags."""
    labels: dict[str, str | list[str]] = {k: str(v) for k, v in alert.labels.items()}
    labels["rule"] = alert.rule_id
    labels["severity"] = alert.severity
    labels.setdefault("title", alert.title)
    labels["tags"] = list(alert.tags)
    return labels


def matches(matchers: Matchers, labels: dict[str, str | list[str]]) -> bool:
    """Every matcher must hold; a list matcher is any-of; a list-valued label (tags) matches if it holds the value."""
    for key, wanted in matchers.items():
        have = labels.get(key)
        options = wanted if isinstance(wanted, list) else [wanted]
        values = have if isinstance(have, list) else ([] if have is None else [have])
        if not any(str(o) in values for o in options):
            return False
    return True


@dataclass(frozen=True)
class RouteMatch:
    """One (route, receiver) an alert goes to, with the grouping that applies there."""

    route_id: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    digest: bool

    def group_id(self, labels: dict[str, str | list[str]]) -> str:
        values = [f"{k}={_label(labels, k)}" for k in self.group_by]
        raw = "\x1f".join([self.route_id, self.receiver, *values])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def group_labels(self, labels: dict[str, str | list[str]]) -> dict[str, str]:
        return {k: _label(labels, k) for k in self.group_by}


def _label(labels: dict[str, str | list[str]], key: str) -> str:
    value = labels.get(key, "")
    return ",".join(value) if isinstance(value, list) else str(value)


@dataclass
class _Node:
    route: Route
    route_id: str
    timing: Timing
    receivers: list[str]
    children: list[_Node] = field(default_factory=list)
    match_re: dict[str, re.Pattern[str]] = field(default_factory=dict)


class BusinessClock:
    """Business hours and the daily digest time in the configured zone."""

    def __init__(self, hours: BusinessHours, zone: ZoneInfo, digest_at: object) -> None:
        self.hours = hours
        self.zone = zone
        self.digest_at = digest_at

    def is_business_hours(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, self.zone)
        return DAYS[local.weekday()] in self.hours.days and self.hours.start <= local.time() < self.hours.end

    def next_digest(self, now: float) -> float:
        """The first digest time strictly after ``now``."""
        local = datetime.fromtimestamp(now, self.zone)
        at = self.digest_at
        candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)  # type: ignore[attr-defined]
        if candidate.timestamp() <= now:
            candidate = (candidate + timedelta(days=1)).replace(hour=at.hour, minute=at.minute)  # type: ignore[attr-defined]
        return candidate.timestamp()


class RoutingTree:
    """Walks the tree like Alertmanager: depth first, first matching child wins unless it says ``continue``."""

    def __init__(self, spec: RoutesFile, zone: ZoneInfo) -> None:
        self.spec = spec
        self.clock = BusinessClock(spec.business_hours, zone, spec.digest.at)
        self.root = self._compile(spec.route, "root", Timing(), [])

    def _compile(self, route: Route, route_id: str, parent: Timing, parent_receivers: list[str]) -> _Node:
        timing = Timing(
            group_by=route.group_by if route.group_by is not None else parent.group_by,
            group_wait=route.group_wait if route.group_wait is not None else parent.group_wait,
            group_interval=route.group_interval if route.group_interval is not None else parent.group_interval,
            repeat_interval=route.repeat_interval if route.repeat_interval is not None else parent.repeat_interval,
        )
        receivers = list(route.receivers) or list(parent_receivers)
        node = _Node(route, route.name or route_id, timing, receivers,
                     match_re={k: re.compile(v) for k, v in route.match_re.items()})
        node.children = [self._compile(child, f"{route_id}.{i}", timing, receivers)
                         for i, child in enumerate(route.routes)]
        return node

    def _accepts(self, node: _Node, labels: dict[str, str | list[str]], severity: str, now: float) -> bool:
        r = node.route
        if not matches(r.match, labels):
            return False
        for key, pattern in node.match_re.items():
            if not pattern.fullmatch(_label(labels, key)):
                return False
        if r.severity_at_least and SEVERITY_RANK.get(severity, 0) < SEVERITY_RANK[r.severity_at_least]:
            return False
        if r.active != "always":
            business = self.clock.is_business_hours(now)
            if (r.active == "business_hours") != business:
                return False
        return True

    def _walk(self, node: _Node, labels: dict[str, str | list[str]], severity: str, now: float,
              out: list[tuple[_Node, bool]], digest: bool) -> bool:
        digest = digest or node.route.digest
        matched_child = False
        for child in node.children:
            if self._accepts(child, labels, severity, now):
                matched_child = True
                self._walk(child, labels, severity, now, out, digest)
                if not child.route.continue_:
                    break
        if not matched_child:
            out.append((node, digest))
        return matched_child

    def match(self, alert: Alert, now: float) -> list[RouteMatch]:
        """Every (route, receiver) pair for ``alert`` at ``now``; duplicates of one receiver are collapsed."""
        labels = alert_labels(alert)
        found: list[tuple[_Node, bool]] = []
        self._walk(self.root, labels, alert.severity, now, found, False)
        tier = self.spec.tiers.get(alert.severity)  # type: ignore[call-overload]
        out: list[RouteMatch] = []
        seen: set[str] = set()
        for node, digest in found:
            receivers = list(node.receivers)
            if node is self.root and tier is not None and tier.receivers:
                # Nothing more specific matched: the severity tier's receivers apply.
                receivers = list(tier.receivers)
            # Precedence: what the route (or its ancestors) set, then the severity tier, then the defaults.
            timing = _merge(node.timing, _merge(tier or Timing(), _merge(self.spec.defaults, BUILTIN_TIMING)))
            if digest and self.spec.digest.receivers and not receivers:
                receivers = list(self.spec.digest.receivers)
            for receiver in receivers:
                if receiver in seen:
                    continue
                seen.add(receiver)
                out.append(RouteMatch(node.route_id, receiver, tuple(timing.group_by or ()),
                                      timing.group_wait or 0.0, timing.group_interval or 0.0,
                                      timing.repeat_interval or 0.0, digest))
        return out

    def all_receivers(self) -> set[str]:
        """Receiver names referenced anywhere (for the loader's cross-check)."""
        names: set[str] = set()

        def visit(route: Route) -> None:
            names.update(route.receivers)
            for child in route.routes:
                visit(child)

        visit(self.spec.route)
        for tier in self.spec.tiers.values():
            names.update(tier.receivers)
        names.update(self.spec.digest.receivers)
        for esc in self.spec.escalation:
            for step in esc.steps:
                names.update(step.receivers)
        names.update(self.spec.incident.receivers)
        return names


def _merge(first: Timing, then: Timing) -> Timing:
    """``first``'s set values, else ``then``'s."""
    return Timing(
        group_by=first.group_by if first.group_by is not None else then.group_by,
        group_wait=first.group_wait if first.group_wait is not None else then.group_wait,
        group_interval=first.group_interval if first.group_interval is not None else then.group_interval,
        repeat_interval=first.repeat_interval if first.repeat_interval is not None else then.repeat_interval,
    )
