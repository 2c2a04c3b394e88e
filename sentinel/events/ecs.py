"""Types of the ECS (and ``phi.*``) fields sentinel writes.

One table serves value coercion in the decoders, the SQLite index columns and the
Elasticsearch index template, so the three never disagree about a field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

FieldType = Literal["keyword", "text", "ip", "long", "double", "date", "boolean", "flattened"]

FIELD_TYPES: dict[str, FieldType] = {
    "@timestamp": "date",
    "ecs.version": "keyword",
    "message": "text",
    "tags": "keyword",
    "labels": "flattened",
    "event.id": "keyword",
    "event.kind": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.action": "keyword",
    "event.outcome": "keyword",
    "event.reason": "keyword",
    "event.code": "keyword",
    "event.module": "keyword",
    "event.dataset": "keyword",
    "event.provider": "keyword",
    "event.severity": "long",
    "event.sequence": "long",
    "event.created": "date",
    "event.ingested": "date",
    "event.original": "keyword",
    "event.timezone": "keyword",
    "log.file.path": "keyword",
    "sentinel.log.offset": "long",
    "sentinel.log.flags": "keyword",
    "log.syslog.priority": "long",
    "log.syslog.facility.code": "long",
    "log.syslog.severity.code": "long",
    "log.syslog.hostname": "keyword",
    "log.syslog.appname": "keyword",
    "log.syslog.procid": "keyword",
    "log.syslog.msgid": "keyword",
    "log.syslog.version": "keyword",
    "log.syslog.structured_data": "flattened",
    "log.syslog.severity.name": "keyword",
    "log.level": "keyword",
    "systemd.unit": "keyword",
    "systemd.transport": "keyword",
    "journald.cursor": "keyword",
    "sentinel.log.source.address": "keyword",
    "tls.client.subject": "keyword",
    "network.transport": "keyword",
    "network.protocol": "keyword",
    "sentinel.missing_entries": "long",
    "host.name": "keyword",
    "host.hostname": "keyword",
    "host.id": "keyword",
    "host.ip": "ip",
    "agent.type": "keyword",
    "agent.version": "keyword",
    "process.name": "keyword",
    "process.pid": "long",
    "process.executable": "keyword",
    "process.command_line": "keyword",
    "process.title": "keyword",
    "process.working_directory": "keyword",
    "process.parent.pid": "long",
    "user.name": "keyword",
    "user.id": "keyword",
    "user.email": "keyword",
    "user.full_name": "keyword",
    "user.domain": "keyword",
    "user.roles": "keyword",
    "user.effective.name": "keyword",
    "user.effective.id": "keyword",
    "user.target.name": "keyword",
    "user.target.id": "keyword",
    "user.target.email": "keyword",
    "user.target.group.name": "keyword",
    "user.target.group.id": "keyword",
    "user.changes.name": "keyword",
    "user.changes.group.name": "keyword",
    "group.name": "keyword",
    "group.id": "keyword",
    "source.ip": "ip",
    "source.port": "long",
    "source.address": "keyword",
    "source.domain": "keyword",
    "source.geo.country_iso_code": "keyword",
    "source.geo.country_name": "keyword",
    "source.geo.city_name": "keyword",
    "source.as.number": "long",
    "source.as.organization.name": "keyword",
    "destination.ip": "ip",
    "destination.port": "long",
    "destination.address": "keyword",
    "destination.domain": "keyword",
    "related.user": "keyword",
    "related.ip": "ip",
    "related.hosts": "keyword",
    "user_agent.original": "keyword",
    "user_agent.os.name": "keyword",
    "user_agent.name": "keyword",
    "sentinel.authentication.factor": "keyword",
    "sentinel.authentication.method": "keyword",
    "device.id": "keyword",
    "device.model.name": "keyword",
    "device.manufacturer": "keyword",
    "file.path": "keyword",
    "file.name": "keyword",
    "file.size": "long",
    "file.device": "keyword",
    "file.type": "keyword",
    "rule.name": "keyword",
    "sentinel.session.id": "keyword",
    "auditd.log.record_type": "keyword",
    "auditd.log.sequence": "long",
    "auditd.log.key": "keyword",
    "auditd.log.op": "keyword",
    "auditd.log.res": "keyword",
    "auditd.log.records": "keyword",
    "auditd.log.syscall": "keyword",
    "auditd.log.euid": "keyword",
    "auditd.log.uid": "keyword",
    "auditd.log.unit": "keyword",
    "auditd.log.paths": "keyword",
    # The vendors' whole records (collectors' raw:), for Sigma rules: one flattened field each, so a value whose
    # type differs between two records (a number here, a string there) can never get a document rejected.
    "okta": "flattened",
    "azure.signinlogs": "flattened",
    "sentinel.source": "keyword",
    "sentinel.stream": "keyword",
    "sentinel.parse_error": "keyword",
    "sentinel.rule": "keyword",
    "sentinel.original_length": "long",
    "phi.action": "keyword",
    "phi.record_count": "long",
    "phi.patient_count": "long",
    "phi.patient_ids": "keyword",
    "phi.export.destination": "keyword",
    "phi.export.destination_type": "keyword",
    "phi.export.format": "keyword",
    "phi.export.bytes": "long",
    "phi.application": "keyword",
    "phi.report": "keyword",
    "phi.query": "keyword",
    "phi.workstation": "keyword",
    "phi.reason": "keyword",
}

# Fields that hold a list in ECS even when one value is present.
LIST_FIELDS = frozenset(
    {"event.category", "event.type", "related.user", "related.ip", "related.hosts", "tags",
     "user.roles", "sentinel.log.flags", "phi.patient_ids", "host.ip"}
)


def coerce(name: str, value: Any) -> Any:
    """Convert a decoded string into the field's ECS type; raises ValueError when it can't."""
    kind = FIELD_TYPES.get(name)
    if value is None:
        return None
    if name in LIST_FIELDS:
        items = value if isinstance(value, list) else [value]
        return [_coerce_scalar(kind, v) for v in items]
    return _coerce_scalar(kind, value)


def _coerce_scalar(kind: FieldType | None, value: Any) -> Any:
    if kind == "long":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if kind == "ip":
        return normalise_ip(str(value))
    return value


# A dotted quad already in canonical form (ASCII digits, no leading zeros, each part < 256).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


_V6_TEXT = re.compile(r"[0-9a-f:]{2,39}")


def _canonical_v6(text: str) -> bool:
    """Whether ``text`` is already exactly what :mod:`ipaddress` prints for it: lowercase, no leading
    zeros, the first longest run (2+) of zero groups as ``::``. Embedded IPv4 and ``::ffff:`` (printed
    differently by newer Pythons) are left to ipaddress."""
    if _V6_TEXT.fullmatch(text) is None or text.startswith("::ffff:"):
        return False
    head, sep, tail = text.partition("::")
    if sep:
        if "::" in tail:
            return False
        left = head.split(":") if head else []
        right = tail.split(":") if tail else []
        gap = 8 - len(left) - len(right)
        # A zero group next to "::" belongs to the compressed run.
        if gap < 2 or (left and left[-1] == "0") or (right and right[0] == "0"):
            return False
    else:
        left, right, gap = text.split(":"), [], 0
        if len(left) != 8:
            return False
    for groups, limit in ((left, gap), (right, gap + 1)):
        run = 0
        for g in groups:
            if not g or len(g) > 4 or (g[0] == "0" and g != "0"):
                return False
            run = run + 1 if g == "0" else 0
            # ipaddress compresses the first longest zero run: one before ours must be shorter, one after no longer.
            if run >= 2 and run >= limit:
                return False
    return True


def normalise_ip(text: str) -> str:
    """Canonical form of an IPv4/IPv6 address (zone ids and brackets stripped); ValueError if not one."""
    if _CANONICAL_V4.fullmatch(text) is not None or (":" in text and _canonical_v6(text)):
        return text  # already canonical: decided without ipaddress, which is slow on the hot path
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0") and int(p) < 256
                               for p in parts):
        return text  # already canonical dotted-quad: skip ipaddress, it is slow on the hot path
    text = text.strip().strip("[]")
    if "%" in text:
        text = text.split("%", 1)[0]
    if text.startswith("::ffff:") and "." in text:
        text = text[7:]
    return str(ipaddress.ip_address(text))
