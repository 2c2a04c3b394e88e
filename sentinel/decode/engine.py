"""Compile a collector definition into a decoder: a pure function from a framed record to an event."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from sentinel.collect.records import RawRecord
from sentinel.decode.keyvalue import AuditError, parse_records
from sentinel.decode.spec import CollectorSpec, LookupSpec, PatternSpec
from sentinel.decode.syslog import HeaderError, parse_header
from sentinel.events.conditions import Predicate, compile_condition
from sentinel.events.ecs import FIELD_TYPES, LIST_FIELDS, coerce, normalise_ip
from sentinel.events.ids import event_id
from sentinel.events.model import Event, iso
from sentinel.events.timestamps import any_timestamp, plausible

Outcome = Literal["parsed", "unmatched", "unparsed"]

_TYPED = {name: kind for name, kind in FIELD_TYPES.items() if kind in ("ip", "long", "double", "boolean")}
_CONVERT = frozenset(_TYPED) | (LIST_FIELDS - {"related.user", "related.ip"})
_IP_SCALARS = frozenset(n for n, k in _TYPED.items() if k == "ip" and n not in LIST_FIELDS)
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_-]+)*\.?$")


@lru_cache(maxsize=65536)
def _ip(text: str) -> str:
    return normalise_ip(text)


Getter = Callable[[dict[str, Any]], Any]
MapSpec = tuple[tuple[str, tuple[Getter, ...], bool], ...]  # (target, sources in order, target is keyword)
# ``list[filter].sub.key``: pick one element of a JSON list (by index or by ``key=value``), then a path in it.
_LIST_REF = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<filter>[^\]]*)\](?:\.(?P<rest>.+))?$")


def compile_source(key: str) -> Getter:
    """A context reader for a map/lookup source: a plain key, or ``key[0].sub`` / ``key[type=User].sub``.

    Plain keys stay a bound ``dict.get``-style lookup so the common case costs nothing extra.
    """
    m = _LIST_REF.match(key)
    if m is None:
        if "[" in key or "]" in key:
            raise ValueError(f"invalid source {key!r}: expected key, key[N].sub or key[field=value].sub")
        return lambda ctx: ctx.get(key)
    base, flt, rest = m.group("base"), m.group("filter").strip(), m.group("rest")
    path = tuple(rest.split(".")) if rest else ()
    index: int | None = None
    fkey: tuple[str, ...] = ()
    fvalue = ""
    if flt.lstrip("-").isdigit():
        index = int(flt)
    elif "=" in flt:
        k, _, fvalue = flt.partition("=")
        fkey = tuple(k.strip().split("."))
        fvalue = fvalue.strip()
    else:
        raise ValueError(f"invalid list filter [{flt}] in {key!r}: expected an index or field=value")

    def dig(node: Any, parts: tuple[str, ...]) -> Any:
        for part in parts:
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def getter(ctx: dict[str, Any]) -> Any:
        items = ctx.get(base)
        if not isinstance(items, list) or not items:
            return None
        if index is not None:
            if not -len(items) <= index < len(items):
                return None
            return dig(items[index], path)
        for item in items:
            got = dig(item, fkey)
            if got is not None and str(got) == fvalue:
                return dig(item, path)
        return None

    return getter


@dataclass(frozen=True, slots=True)
class _Lookup:
    target: str
    sources: tuple[Getter, ...]
    table: dict[str, Any]
    default: Any

    def apply(self, ctx: dict[str, Any], fields: dict[str, Any]) -> None:
        raw = None
        for get in self.sources:
            raw = get(ctx)
            if raw is not None and raw != "":
                break
        if raw is None:
            value = self.default
        else:
            key = str(raw).lower()
            value = self.table.get(key, self.table.get(str(raw), self.default))
        if value is not None:
            fields[self.target] = list(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    programs: frozenset[str] | None
    when: Predicate | None
    regex: re.Pattern[str] | None
    field: str
    groups: tuple[tuple[str, str, bool], ...]
    maps: MapSpec
    sets: tuple[tuple[str, Any], ...]
    lookups: tuple[_Lookup, ...]
    next: bool

    def apply(self, ctx: dict[str, Any], fields: dict[str, Any]) -> bool:
        if self.when is not None and not self.when(ctx):
            return False
        if self.regex is not None:
            text = ctx.get(self.field)
            if not isinstance(text, str):
                return False
            m = self.regex.match(text)
            if m is None:
                return False
            for group, target, scratch in self.groups:
                value = m.group(group)
                if value:
                    if scratch:
                        ctx[target] = value
                    else:
                        fields[target] = value
        _apply_common(self.maps, self.sets, self.lookups, ctx, fields)
        return True


def _apply_common(maps: MapSpec, sets: tuple[tuple[str, Any], ...],
                  lookups: tuple[_Lookup, ...], ctx: dict[str, Any], fields: dict[str, Any]) -> None:
    for target, getters, keyword in maps:
        for get in getters:
            value = get(ctx)
            if value is not None and value != "" and value != []:
                # JSON numbers bound for keyword fields (error codes, ids) are stored as text.
                fields[target] = str(value) if keyword and isinstance(value, int | float) else value
                break
    for target, value in sets:
        fields[target] = list(value) if isinstance(value, list) else value
    for lk in lookups:
        lk.apply(ctx, fields)


def _compile_lookups(spec: dict[str, LookupSpec]) -> tuple[_Lookup, ...]:
    out = []
    for target, lk in spec.items():
        table = {str(k).lower(): v for k, v in lk.table.items()}
        keys = [lk.source] if isinstance(lk.source, str) else lk.source
        out.append(_Lookup(target, tuple(compile_source(k) for k in keys), table, lk.default))
    return tuple(out)


def _maps(spec: dict[str, str | list[str]]) -> MapSpec:
    return tuple((t, tuple(compile_source(k) for k in ([k] if isinstance(k, str) else k)),
                  FIELD_TYPES.get(t) == "keyword") for t, k in spec.items())


def compile_pattern(p: PatternSpec) -> _Pattern:
    """Compile one pattern; raises ValueError / re.error / ConditionError on a bad one."""
    regex = re.compile(p.regex, re.DOTALL) if p.regex else None
    groups: list[tuple[str, str, bool]] = []
    if regex is not None:
        for name in regex.groupindex:
            if name.startswith("_"):
                groups.append((name, name, True))
            else:
                groups.append((name, name.replace("__", "."), False))
    return _Pattern(
        name=p.name,
        programs=frozenset(p.program) if p.program else None,
        when=compile_condition(p.when, "when") if p.when else None,
        regex=regex,
        field=p.field,
        groups=tuple(groups),
        maps=_maps(p.map),
        sets=tuple(p.set.items()),
        lookups=_compile_lookups(p.lookup),
        next=p.next,
    )


def literal_prefix(regex: re.Pattern[str] | None) -> str:
    """The literal text every match of an anchored regex starts with ("" when there is none)."""
    if regex is None or regex.flags & re.IGNORECASE:
        return ""
    try:
        parsed = re._parser.parse(regex.pattern, regex.flags)  # type: ignore[attr-defined]
    except Exception:
        return ""
    consts = re._constants  # type: ignore[attr-defined]
    out: list[str] = []
    for op, arg in parsed:
        if op is consts.AT and arg is consts.AT_BEGINNING:
            continue
        if op is consts.LITERAL:
            out.append(chr(arg))
            continue
        break
    return "".join(out)


Buckets = tuple[dict[str, list["_Pattern"]], list["_Pattern"]]


def _bucketize(patterns: list[_Pattern]) -> Buckets:
    def key(p: _Pattern) -> str | None:
        prefix = literal_prefix(p.regex) if p.field == "message" else ""
        return prefix[:2] if len(prefix) >= 2 else None

    keys = [key(p) for p in patterns]
    fallback = [p for p, k in zip(patterns, keys, strict=True) if k is None]
    index = {k: [p for p, pk in zip(patterns, keys, strict=True) if pk is None or pk == k]
             for k in set(keys) if k is not None}
    return index, fallback


def _flatten_json(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = prefix + key
        if isinstance(value, dict):
            out[name] = value
            _flatten_json(value, name + ".", out)
        else:
            out[name] = value


class Decoder:
    """Decodes records of one collector; the same input always gives the same event."""

    def __init__(self, spec: CollectorSpec, zone: str = "UTC", host_name: str = "localhost") -> None:
        self.spec = spec
        self.name = spec.name
        self.zone = spec.timestamp.zone if spec.timestamp and spec.timestamp.zone else zone
        self.host_name = host_name
        self.patterns = [compile_pattern(p) for p in spec.patterns]
        self.by_program: dict[str, list[_Pattern]] = {}
        self.any_program: list[_Pattern] = [p for p in self.patterns if p.programs is None]
        for p in self.patterns:
            for prog in p.programs or ():
                self.by_program.setdefault(prog, [])
        for prog, lst in self.by_program.items():
            lst.extend(p for p in self.patterns if p.programs is None or prog in p.programs)
        # Message patterns indexed by the first two literal characters of their regex, so a line
        # is only tried against patterns that can match it (the sshd path has dozens of patterns).
        self.indexed = {prog: _bucketize(lst) for prog, lst in self.by_program.items()}
        self.indexed_any = _bucketize(self.any_program)
        self.common = (_maps(spec.map), tuple(spec.set.items()), _compile_lookups(spec.lookup))
        self.ts_fields = tuple(spec.timestamp.field) if spec.timestamp else ()
        self.host_fields = tuple(spec.host_field or ())

    def decode(self, rec: RawRecord, now: float) -> tuple[Event, Outcome]:
        """Decode one record; never raises for bad input: failures become unparsed events."""
        data = rec.data
        tags: list[str] = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            tags.append("invalid_utf8")
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
            tags.append("nul_bytes")
        if rec.truncated:
            tags.append("truncated")
        if text.endswith("\r"):
            text = text[:-1]
        eid = event_id(rec.source, rec.stream, rec.offset)
        fields: dict[str, Any] = {
            "event.id": eid,
            "event.kind": "event",
            "event.original": text,
            "event.ingested": iso(now),
            "log.file.path": rec.path,
            "log.offset": rec.offset,
            "sentinel.source": self.name,
        }
        if rec.truncated:
            fields["sentinel.original_length"] = rec.original_length
        ts: float | None = None
        outcome: Outcome = "unmatched"
        reference = rec.reference_time or now
        try:
            ctx: dict[str, Any]
            fmt = self.spec.format
            if fmt == "syslog":
                ts, prog, msg = parse_header(text, self.zone, reference, fields)
                fields["message"] = msg
                ctx = {"message": msg, "program": prog}
                index, fallback = self.indexed.get(prog, self.indexed_any)
                candidates = index.get(msg[:2], fallback)
            elif fmt == "json":
                obj = orjson.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
                ctx = {}
                _flatten_json(obj, "", ctx)
                candidates = self.patterns
            elif fmt == "auditd":
                epoch, serial, types, ctx = parse_records(text)
                ts = epoch
                ctx["message"] = text
                fields["auditd.log.record_type"] = types[0]
                fields["auditd.log.records"] = types
                fields["auditd.log.sequence"] = serial
                if "node" in ctx:
                    fields["host.hostname"] = ctx["node"]
                candidates = self.patterns
            else:
                fields["message"] = text
                ctx = {"message": text}
                candidates = self.patterns
            _apply_common(*self.common, ctx, fields)
            for pattern in candidates:
                if pattern.apply(ctx, fields):
                    outcome = "parsed"
                    fields["sentinel.rule"] = pattern.name
                    if not pattern.next:
                        break
            if self.ts_fields:
                for key in self.ts_fields:
                    raw = ctx.get(key)
                    if raw not in (None, ""):
                        try:
                            ts = any_timestamp(raw, self.zone)
                        except (ValueError, OverflowError):
                            tags.append("timestamp_unparsable")
                            fields["sentinel.parse_error"] = f"unparsable timestamp in {key}"
                        break
            for key in self.host_fields:
                value = ctx.get(key)
                if value:
                    fields["host.hostname"] = str(value)
                    break
        except (HeaderError, AuditError, ValueError, orjson.JSONDecodeError, OverflowError) as exc:
            outcome = "unparsed"
            tags.append("unparsed")
            fields["event.kind"] = "pipeline_error"
            fields["sentinel.parse_error"] = str(exc)[:200]
            fields.setdefault("message", text)
        self._finish(fields, tags)
        if ts is None:
            ts = now
        elif not plausible(ts, now):
            tags.append("timestamp_out_of_range")
            fields["event.created"] = iso(ts) if ts > -62135596800 and ts < 253402300799 else None
            ts = now
        if tags:
            existing = fields.get("tags")
            fields["tags"] = (list(existing) if isinstance(existing, list) else []) + tags
        fields["@timestamp"] = iso(ts)
        return Event(eid, ts, self.name, fields, outcome != "unparsed"), outcome

    def _finish(self, fields: dict[str, Any], tags: list[str]) -> None:
        hostname = fields.get("host.hostname")
        fields["host.name"] = hostname if hostname else self.host_name
        for name in _CONVERT.intersection(fields):
            value = fields[name]
            if value is None:
                del fields[name]
                continue
            if not isinstance(value, str) and name not in LIST_FIELDS and (
                    _TYPED[name] != "long" or isinstance(value, int)):
                continue
            try:
                if name in _IP_SCALARS:
                    fields[name] = _ip(value if isinstance(value, str) else str(value))
                else:
                    fields[name] = coerce(name, value)
            except (ValueError, TypeError):
                del fields[name]
                if name.endswith(".ip"):
                    base = name[:-3]
                    fields[base + ".address"] = str(value)
                    if _DOMAIN.match(str(value)):
                        fields[base + ".domain"] = str(value)
                else:
                    tags.append("field_type_mismatch")
        get = fields.get
        users = [u for u in (get("user.name"), get("user.target.name"), get("user.effective.name"),
                             get("user.changes.name")) if u]
        if users:
            fields["related.user"] = list(dict.fromkeys(str(u) for u in users)) if len(users) > 1 else [str(users[0])]
        ips = [ip for ip in (get("source.ip"), get("destination.ip")) if ip]
        if ips:
            fields["related.ip"] = list(dict.fromkeys(ips)) if len(ips) > 1 else ips
