"""Message templates: ``{{ name }}`` placeholders over a fixed, PHI-safe set of fields; nothing else renders.

A template can only show what it names, and it can only name fields from :data:`FIELDS` (built from
alert labels, counts and times, never from event documents), so raw log lines cannot reach a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.conf.yamlfile import load_yaml_file
from sentinel.errors import ConfigError, Location

KINDS = ("alert", "digest", "escalation", "reminder", "resolved")
FIELDS = {
    "kind": "alert, repeat, digest, escalation, reminder or resolved",
    "rule": "rule id(s) in the message",
    "title": "rule title",
    "severity": "highest severity in the message",
    "severity_upper": "the same, upper case",
    "user": "user id(s) (routing label user.name)",
    "host": "host name(s)",
    "group": "the group's label values, k=v",
    "alert_count": "alerts in this message",
    "distinct_count": "distinct alert keys in this message",
    "event_count": "events behind those alerts",
    "window_start": "first event time (UTC, ISO 8601)",
    "window_end": "last event time (UTC, ISO 8601)",
    "runbook": "runbook link(s)",
    "summary": "the rule's PHI-safe summary of the first alert",
    "alerts": "one line per distinct alert: severity, rule, user, host, count, id",
    "evidence": "the command that shows the evidence",
    "alert_id": "first alert id",
    "dedup_key": "stable key of the incident at the channel",
    "notification_key": "unique key of this message",
    "escalation_step": "which escalation step (1, 2, ...)",
    "deadline_name": "business-associate window or breach limit",
    "deadline": "deadline time (UTC, ISO 8601)",
    "time_left": "time left before the deadline",
    "detected_at": "detection time (UTC, ISO 8601)",
    "status": "alert status (open, acknowledged, resolved)",
    "resolved_at": "when the alert was resolved (UTC, ISO 8601)",
    "resolved_by": "who resolved it (sentinel when its rule's quiet period passed)",
    "resolution": "manual or auto (the rule's resolve_after quiet period passed)",
    "disposition": "true_positive, false_positive, benign or duplicate (- when none was given)",
    "still_firing": "alerts of the same group still firing after this one resolved",
    "note": "the responder's resolution note (free text: only a template that names it shows it)",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.@-]*)\s*\}\}")


@dataclass(frozen=True)
class Template:
    title: str
    body: str

    def render(self, context: dict[str, str]) -> tuple[str, str]:
        """Substitute named fields; a field missing from the context renders as ``-``."""

        def sub(m: re.Match[str]) -> str:
            return context.get(m.group(1), "-") or "-"

        return _PLACEHOLDER.sub(sub, self.title), _PLACEHOLDER.sub(sub, self.body)


TemplateSet = dict[str, Template]

BUILTIN: TemplateSet = {
    "alert": Template(
        "[{{ severity_upper }}] {{ title }}: {{ alert_count }} alert(s) for {{ user }} on {{ host }}",
        "{{ kind }} | rule {{ rule }} | severity {{ severity }}\n"
        "user: {{ user }}  host: {{ host }}\n"
        "alerts: {{ alert_count }} ({{ distinct_count }} distinct), events: {{ event_count }}\n"
        "window: {{ window_start }} .. {{ window_end }}\n{{ summary }}\n{{ alerts }}\n"
        "runbook: {{ runbook }}\nevidence: {{ evidence }}\ndedup-key: {{ dedup_key }}\n"
        "notification: {{ notification_key }}",
    ),
    "digest": Template(
        "sentinel daily digest: {{ alert_count }} low/info alert(s)",
        "{{ alerts }}\nevents: {{ event_count }}, window: {{ window_start }} .. {{ window_end }}\n"
        "evidence: {{ evidence }}\ndedup-key: {{ dedup_key }}\nnotification: {{ notification_key }}",
    ),
    "escalation": Template(
        "[ESCALATION {{ escalation_step }}] unacknowledged {{ severity }}: {{ title }} ({{ user }})",
        "Not acknowledged since {{ detected_at }}.\nrule {{ rule }} | user {{ user }} | host {{ host }}\n"
        "runbook: {{ runbook }}\nacknowledge: sentinel alerts ack {{ alert_id }}\n"
        "dedup-key: {{ dedup_key }}\nnotification: {{ notification_key }}",
    ),
    "reminder": Template(
        "[DEADLINE] {{ deadline_name }} in {{ time_left }}: {{ title }} ({{ user }})",
        "Unacknowledged {{ severity }} alert detected {{ detected_at }}; {{ deadline_name }} at {{ deadline }}.\n"
        "rule {{ rule }} | user {{ user }} | host {{ host }}\nacknowledge: sentinel alerts ack {{ alert_id }}\n"
        "dedup-key: {{ dedup_key }}\nnotification: {{ notification_key }}",
    ),
    # Ids, labels and times only: the summary and the responder's note appear only if a template names them.
    "resolved": Template(
        "[RESOLVED] {{ title }} ({{ user }} on {{ host }})",
        "resolved | rule {{ rule }} | severity {{ severity }} | alert {{ alert_id }}\n"
        "resolved {{ resolved_at }} by {{ resolved_by }} ({{ resolution }}), disposition {{ disposition }}\n"
        "detected {{ detected_at }}; still firing in this group: {{ still_firing }}\n"
        "dedup-key: {{ dedup_key }}\nnotification: {{ notification_key }}",
    ),
}


def load_template_layers(directories: Sequence[Path]) -> tuple[dict[str, TemplateSet], list[ConfigError]]:
    """Each folder's template sets, lowest first; a later folder's set replaces one of the same name."""
    merged: dict[str, TemplateSet] = {}
    errors: list[ConfigError] = []
    for directory in directories:
        sets, layer_errors = load_templates(directory)
        for name, kinds in sets.items():
            if name not in merged or (directory.is_dir() and (directory / f"{name}.yaml").is_file()):
                merged[name] = kinds
        errors.extend(layer_errors)
    return merged, errors


def load_templates(directory: Path) -> tuple[dict[str, TemplateSet], list[ConfigError]]:
    """Every ``*.yaml`` in ``directory`` is a template set (kinds it omits use the built-in); plus ``default``."""
    sets: dict[str, TemplateSet] = {"default": dict(BUILTIN)}
    errors: list[ConfigError] = []
    if not directory.is_dir():
        return sets, errors
    for path in sorted(directory.glob("*.yaml")):
        try:
            doc = load_yaml_file(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        data = doc.data or {}
        if not isinstance(data, dict):
            errors.append(ConfigError("expected a mapping of kind → {title, body}", Location(str(path), 1)))
            continue
        tset = dict(BUILTIN)
        for kind, spec in data.items():
            if kind not in KINDS:
                errors.append(ConfigError(f"unknown template kind; expected one of {', '.join(KINDS)}",
                                          doc.location((kind,))))
                continue
            if not isinstance(spec, dict) or set(spec) - {"title", "body"} or not spec:
                errors.append(ConfigError("expected a mapping with title and/or body", doc.location((kind,))))
                continue
            for part in ("title", "body"):
                text = spec.get(part)
                if text is None:
                    continue
                if not isinstance(text, str):
                    errors.append(ConfigError("expected a string", doc.location((kind, part))))
                    continue
                for m in _PLACEHOLDER.finditer(text):
                    if m.group(1) not in FIELDS:
                        errors.append(ConfigError(
                            f"unknown field {m.group(1)!r}; templates may name only: {', '.join(sorted(FIELDS))}",
                            doc.location((kind, part))))
            base = tset[kind]
            tset[kind] = Template(str(spec.get("title", base.title)), str(spec.get("body", base.body)))
        sets[path.stem] = tset
    return sets, errors
