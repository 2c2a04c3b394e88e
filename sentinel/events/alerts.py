"""The alert model: what a rule raises, what routing and notification work from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}

# At most this many contributing event ids are kept on an alert; ``count`` says how many there were.
MAX_EVENT_IDS = 200


@dataclass
class Alert:
    """One detection. ``labels`` are the routing labels (rule id, severity, host, user id...) and
    must never hold PHI; ``summary`` is rendered from the rule's PHI-safe template."""

    id: str
    rule_id: str
    title: str
    severity: str
    group_key: str
    first_seen: float
    last_seen: float
    count: int
    event_ids: list[str]
    summary: str
    runbook: str = ""
    tags: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
