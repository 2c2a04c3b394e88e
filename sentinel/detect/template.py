"""PHI-safe summary templates: ``{placeholder}`` (or ``{placeholder|fallback}``) only from an allow-list,
checked when rules load.

A summary travels into notifications, so it may name who/where/what kind (user id, host, source
address, counts) but never patient data, queries or export targets. Anything else fails ``sentinel check``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from sentinel.detect.model import RuleSpec

# Event fields that identify accounts, machines and kinds of activity, never patients or their data.
SAFE_FIELDS = frozenset({
    "user.name", "user.id", "user.target.name", "user.effective.name", "user.domain",
    "source.ip", "source.geo.country_iso_code", "source.geo.country_name", "host.name", "host.hostname",
    "event.action", "event.outcome", "event.reason", "event.dataset", "event.module", "sentinel.source",
    "sentinel.authentication.factor", "sentinel.authentication.method", "group.name", "process.name",
    "phi.export.destination_type", "phi.export.destination_class",
    "phi.export.format", "phi.record_count", "phi.patient_count", "phi.application",
    "device.id", "device.model.name",
})

# Values the engine computes, by rule type (plus COMMON for all).
COMMON = frozenset({"rule", "title", "severity", "count", "first_seen", "last_seen"})
COMPUTED: dict[str, frozenset[str]] = {
    "match": frozenset(),
    "threshold": frozenset({"value", "threshold", "window", "metric", "group"}),
    "sequence": frozenset({"window", "steps"}),
    "baseline": frozenset({"value", "bucket", "baseline_median", "baseline_mad", "ratio", "peer_median",
                           "peer_ratio", "history_buckets", "compared_with"}),
    "new_value": frozenset({"learn_for", "value"}),
    "dormant": frozenset({"idle_days", "idle", "accounts"}),
    "hourly": frozenset({"value", "hour", "own_median", "team_median", "compared_with"}),
    "terminated": frozenset({"terminated_by", "terminated_at"}),
}

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# The virtual field a new_value rule may learn: the event's hour of day in the configured zone.
LOCAL_HOUR = "@local_hour"
SOURCE_NETWORK = "@source_network"  # the source address's /24 or /64 (see detect.kinds.source_network)


def template_problems(rule: RuleSpec) -> list[str]:
    """Every placeholder in the rule's summary that is not allowed, as messages."""
    allowed = COMMON | COMPUTED[rule.type] | SAFE_FIELDS
    if rule.type == "new_value" and rule.new_value is not None and rule.new_value.field not in SAFE_FIELDS | {
            LOCAL_HOUR}:
        # The new value itself may be an export target (an address, a host): only its kind may be shown.
        allowed = allowed - {"value"}
    problems = []
    for inner in PLACEHOLDER.findall(rule.summary):
        name = inner.partition("|")[0]
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.75)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            problems.append(f"placeholder {{{name}}} is not allowed in a summary{hint} (PHI-safe fields: "
                            f"{', '.join(sorted(SAFE_FIELDS))}; computed for {rule.type}: "
                            f"{', '.join(sorted(COMMON | COMPUTED[rule.type]))})")
    text = PLACEHOLDER.sub("", rule.summary)
    if "{" in text or "}" in text:
        problems.append("unbalanced { or } in summary")
    return problems


def render(template: str, event: Mapping[str, Any], computed: Mapping[str, Any]) -> str:
    """Fill placeholders from computed values first, then allow-listed event fields. ``{field|text}`` gives the
    text when the field is missing; otherwise a missing or disallowed value renders as '?'."""

    def fill(m: re.Match[str]) -> str:
        name, bar, default = m.group(1).partition("|")
        if name in computed:
            return _text(computed[name])
        if name in SAFE_FIELDS:
            value = event.get(name)
            if value is not None and value != "":
                return _text(value)
        return default if bar else "?"

    return PLACEHOLDER.sub(fill, template)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{round(value, 2):g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
