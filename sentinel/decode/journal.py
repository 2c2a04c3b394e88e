"""Journal entries (``journalctl --output=json``) onto ECS: the header part a syslog line would carry.

journalctl prints a field as a string when it is valid UTF-8 text, as an array of byte values when it
is not (binary or invalid UTF-8), and as an array of those when the entry has the field more than once.
"""

from __future__ import annotations

from typing import Any

import orjson

from sentinel.events.records import GAP_FIELD

SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


class JournalEntryError(ValueError):
    """Not a journal entry as journalctl prints it."""


def field_text(value: Any) -> tuple[str | None, bool]:
    """A journal field's value as text, and whether its bytes were not valid UTF-8 (replaced)."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return value, False
    if isinstance(value, list):
        if value and all(isinstance(b, int) for b in value):
            try:
                raw = bytes(value)
            except ValueError as exc:
                raise JournalEntryError(f"a byte array field holds a value outside 0-255: {exc}") from None
            try:
                return raw.decode("utf-8"), False
            except UnicodeDecodeError:
                return raw.decode("utf-8", "replace"), True
        if value:
            # The field occurs more than once in the entry: the last value is what the program wrote last.
            return field_text(value[-1])
        return "", False
    return str(value), False


def parse_entry(text: str, fields: dict[str, Any], tags: list[str]) -> tuple[float | None, str, str]:
    """Fill the entry's own fields into ``fields``; return (timestamp, program, message)."""
    try:
        entry = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise JournalEntryError(f"not a journal entry (JSON): {exc}") from None
    if not isinstance(entry, dict):
        raise JournalEntryError(f"not a journal entry: expected a JSON object, got {type(entry).__name__}")
    if GAP_FIELD in entry:
        return _gap(entry, fields, tags)
    ts: float | None = None
    realtime = entry.get("__REALTIME_TIMESTAMP")
    if realtime is not None:
        try:
            ts = int(realtime) / 1_000_000
        except (TypeError, ValueError):
            raise JournalEntryError(f"__REALTIME_TIMESTAMP {realtime!r} is not microseconds") from None
    invalid = False

    def text_of(name: str) -> str | None:
        nonlocal invalid
        value, bad = field_text(entry.get(name))
        invalid = invalid or bad
        return value

    message = text_of("MESSAGE")
    host = text_of("_HOSTNAME")
    if host:
        fields["host.hostname"] = host
    program = text_of("SYSLOG_IDENTIFIER") or text_of("_COMM") or ""
    if program:
        fields["process.name"] = program
    pid = text_of("_PID") or text_of("SYSLOG_PID")
    if pid and pid.isdigit():
        fields["process.pid"] = int(pid)
    unit = text_of("_SYSTEMD_UNIT")
    if unit:
        fields["systemd.unit"] = unit
    transport = text_of("_TRANSPORT")
    if transport:
        fields["systemd.transport"] = transport
    priority = text_of("PRIORITY")
    if priority and priority.isdigit() and int(priority) < 8:
        severity = int(priority)
        fields["log.syslog.severity.code"] = severity
        fields["log.syslog.severity.name"] = SEVERITY_NAMES[severity]
        fields["log.level"] = SEVERITY_NAMES[severity]
        facility = text_of("SYSLOG_FACILITY")
        if facility and facility.isdigit():
            fields["log.syslog.facility.code"] = int(facility)
            fields["log.syslog.priority"] = int(facility) * 8 + severity
    cursor = entry.get("__CURSOR")
    if isinstance(cursor, str):
        fields["journald.cursor"] = cursor
    if invalid:
        tags.append("invalid_utf8")
    if message is None:
        tags.append("no_message")
        message = ""
    return ts, program, message


def _gap(entry: dict[str, Any], fields: dict[str, Any], tags: list[str]) -> tuple[float | None, str, str]:
    """The record a journal gap becomes: stored, so the evidence shows where monitoring missed entries."""
    missing = entry.get("SENTINEL_MISSING_ENTRIES")
    fields["event.kind"] = "pipeline_error"
    fields["event.action"] = "journal_gap"
    fields["event.reason"] = str(entry.get(GAP_FIELD))
    fields["journald.cursor"] = str(entry.get("__CURSOR", ""))
    if isinstance(missing, int) and missing >= 0:
        fields["sentinel.missing_entries"] = missing
    tags.append("journal_gap")
    how_many = f"{missing} journal entries" if isinstance(missing, int) and missing >= 0 else "an unknown number"
    realtime = entry.get("__REALTIME_TIMESTAMP")
    ts = int(realtime) / 1_000_000 if isinstance(realtime, str) and realtime.isdigit() else None
    return ts, "", (f"the journal no longer holds the last entry read ({how_many} between it and the oldest entry "
                    "left were removed before they were read)")
