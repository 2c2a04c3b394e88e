"""One header reader per collector format: what a line carries before the collector's patterns read it.

A reader fills the header's own fields into the event (host, program, pid, facility...) and returns the
record's time (None when the line carries none) and the context the patterns, maps and lookups read.
``by_program`` readers put ``program`` and ``message`` in the context, so the decoder can try only the
patterns for that program that can match the message's first characters; their header fields already
have their final type. Each reader is built once per decoder with only the settings it needs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import orjson

from sentinel.decode.atna import parse_audit_message
from sentinel.decode.journal import parse_entry
from sentinel.decode.keyvalue import parse_records
from sentinel.decode.syslog import parse_header

Header = tuple[float | None, dict[str, Any]]  # (the record's time, or None; the patterns' context)


class HeaderReader(Protocol):
    by_program: ClassVar[bool]

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        """``reference``: the time a year-less stamp is placed near; ``tags``: where a reader notes a flaw."""
        ...


class BodyError(ValueError):
    """The header was read but what follows it was not: the failed event keeps the header's time."""

    def __init__(self, message: str, ts: float | None) -> None:
        super().__init__(message)
        self.ts = ts


class SyslogHeader:
    """RFC 3164, RFC 5424, ISO-stamped or Cisco syslog; stamps without a zone are in ``zone``."""

    __slots__ = ("zone",)
    by_program: ClassVar[bool] = True

    def __init__(self, zone: str) -> None:
        self.zone = zone

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        ts, prog, msg = parse_header(text, self.zone, reference, fields)
        fields["message"] = msg
        return ts, {"message": msg, "program": prog}


class JournalEntry:
    """A systemd journal entry as JSON (journalctl -o json); its MESSAGE meets the same patterns as syslog's."""

    __slots__ = ()
    by_program: ClassVar[bool] = True

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        ts, prog, msg = parse_entry(text, fields, tags)
        # Entries are addressed by cursor (kept in journald.cursor), not by a file and byte offset.
        del fields["log.file.path"], fields["sentinel.log.offset"]
        fields["message"] = msg
        return ts, {"message": msg, "program": prog}


class AtnaMessage:
    """An IHE ATNA / RFC 3881 audit message: bare XML, or XML after a syslog header (stamps in ``zone``)."""

    __slots__ = ("zone",)
    by_program: ClassVar[bool] = False

    def __init__(self, zone: str) -> None:
        self.zone = zone

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        ts: float | None = None
        prog, body = "", text
        if not text.lstrip().startswith(("<?xml", "<AuditMessage")):
            ts, prog, body = parse_header(text, self.zone, reference, fields)
        try:
            ctx = parse_audit_message(body.strip())
        except (ValueError, OverflowError) as exc:
            raise BodyError(str(exc), ts) from exc
        fields["message"] = body
        ctx["message"], ctx["program"] = body, prog
        return ts, ctx


class JsonObject:
    """One JSON object a line, flattened into dotted keys; with ``raw_prefix``, its leaves also kept under it."""

    __slots__ = ("raw_prefix",)
    by_program: ClassVar[bool] = False

    def __init__(self, raw_prefix: str) -> None:
        self.raw_prefix = raw_prefix

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        obj = orjson.loads(text)
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        ctx: dict[str, Any] = {}
        _flatten_json(obj, "", ctx)
        if self.raw_prefix:
            _keep_raw(ctx, self.raw_prefix, fields)
        return None, ctx


class AuditdRecords:
    """The records of one auditd event (``type=... msg=audit(epoch:serial): key=value ...``), as one line."""

    __slots__ = ()
    by_program: ClassVar[bool] = False

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        epoch, serial, types, ctx = parse_records(text)
        ctx["message"] = text
        fields["auditd.log.record_type"] = types[0]
        fields["auditd.log.records"] = types
        fields["auditd.log.sequence"] = serial
        if "EXECVE" in types:
            _execve_args(ctx, fields)
        if "node" in ctx:
            fields["host.hostname"] = ctx["node"]
        return epoch, ctx


class PlainLine:
    """No header: the whole line is the message."""

    __slots__ = ()
    by_program: ClassVar[bool] = False

    def read(self, text: str, reference: float, fields: dict[str, Any], tags: list[str]) -> Header:
        fields["message"] = text
        return None, {"message": text}


def header_reader(fmt: str, zone: str, raw_prefix: str) -> HeaderReader:
    """The reader for a collector's ``format`` (``journal`` for a journal source), with its settings."""
    readers: dict[str, HeaderReader] = {
        "syslog": SyslogHeader(zone),
        "journal": JournalEntry(),
        "atna": AtnaMessage(zone),
        "json": JsonObject(raw_prefix),
        "auditd": AuditdRecords(),
        "plain": PlainLine(),
    }
    return readers[fmt]


def _flatten_json(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = prefix + key
        if isinstance(value, dict):
            out[name] = value
            _flatten_json(value, name + ".", out)
        else:
            out[name] = value


def _keep_raw(ctx: dict[str, Any], prefix: str, fields: dict[str, Any]) -> None:
    """The record's leaves (lists of objects stay whole) as ``prefix.path``: the vendor's own field names."""
    for key, value in ctx.items():
        if not isinstance(value, dict) and value is not None:
            fields[prefix + key] = value


def _execve_args(ctx: dict[str, Any], fields: dict[str, Any]) -> None:
    """EXECVE's arguments as auditd.log.a0 .. aN (Sigma's auditd rules match them by position)."""
    argc = ctx.get("EXECVE.argc")
    count = int(argc) if isinstance(argc, str) and argc.isdigit() else 0
    for i in range(min(count, 64)):
        value = ctx.get(f"EXECVE.a{i}")
        if value is None:
            break
        fields[f"auditd.log.a{i}"] = value
