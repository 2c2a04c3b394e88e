"""Compile a collector definition into a decoder: a pure function from a framed record to an event."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from sentinel.decode.headers import BodyError, header_reader
from sentinel.decode.keyvalue import AuditError
from sentinel.decode.spec import CollectorSpec, LookupSpec, PatternSpec
from sentinel.decode.standard_tables import STANDARD_TABLES
from sentinel.decode.syslog import HeaderError
from sentinel.events.conditions import Predicate, compile_condition
from sentinel.events.ecs import FIELD_TYPES, LIST_FIELDS, coerce, normalise_ip
from sentinel.events.ecs_reference import ECS_VERSION
from sentinel.events.ids import stream_prefix
from sentinel.events.model import Event, iso
from sentinel.events.paths import display_path
from sentinel.events.records import RawRecord
from sentinel.events.timestamps import any_timestamp, plausible

Outcome = Literal["parsed", "unmatched", "unparsed"]

_TYPED = {name: kind for name, kind in FIELD_TYPES.items() if kind in ("ip", "long", "double", "boolean")}
_CONVERT = frozenset(_TYPED) | (LIST_FIELDS - {"related.user", "related.ip"})
_IP_SCALARS = frozenset(n for n, k in _TYPED.items() if k == "ip" and n not in LIST_FIELDS)
_LONG_SCALARS = frozenset(n for n, k in _TYPED.items() if k == "long" and n not in LIST_FIELDS)
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_-]+)*\.?$")


# Attackers' addresses repeat; a bounded cache keeps decode workers small when they do not.
@lru_cache(maxsize=8192)
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

    # A list inside the picked element (``targetResources[0].modifiedProperties[0].newValue``): the rest is
    # read by its own getter, over that element's value at the inner list's path.
    inner = compile_source(rest) if rest and "[" in rest else None
    inner_base = rest.split("[", 1)[0] if inner is not None else ""
    inner_path = tuple(inner_base.split("."))

    def pick(item: Any) -> Any:
        if inner is None:
            return dig(item, path)
        return inner({inner_base: dig(item, inner_path)})

    def getter(ctx: dict[str, Any]) -> Any:
        items = ctx.get(base)
        if not isinstance(items, list) or not items:
            return None
        if index is not None:
            if not -len(items) <= index < len(items):
                return None
            return pick(items[index])
        for item in items:
            got = dig(item, fkey)
            if got is not None and str(got) == fvalue:
                return pick(item)
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


SetSpec = tuple[tuple[str, Any, bool], ...]  # (target, value already coerced when possible, value is a list)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``_finish`` must look at after a pattern (and the collector's common part) wrote fields.

    Computed once per pattern so the hot path converts only the fields a pattern can have written
    instead of intersecting every event with the whole typed-field table.
    """

    convert: tuple[str, ...]  # fields whose value may still need type coercion
    users: tuple[str, ...]  # user fields that may be present, in related.user order
    ips: tuple[str, ...]  # ip fields that may be present, in related.ip order

    def merge(self, other: _Plan) -> _Plan:
        return _Plan(_union(self.convert, other.convert), _ordered(_union(self.users, other.users), _USER_FIELDS),
                     _ordered(_union(self.ips, other.ips), _IP_FIELDS))


_USER_FIELDS: tuple[str, ...] = ("user.name", "user.target.name", "user.effective.name", "user.changes.name")
_IP_FIELDS: tuple[str, ...] = ("source.ip", "destination.ip")


def _needs_coercion(name: str, value: Any) -> bool:
    """Whether ``_finish`` converts this value of a typed field (other non-strings are kept as given)."""
    return isinstance(value, str) or name in LIST_FIELDS or (_TYPED[name] == "long" and not isinstance(value, int))


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a + b))


def _ordered(names: tuple[str, ...], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in order if n in names)


def _make_plan(written: set[str], raw: set[str]) -> _Plan:
    """``written``: every field a part may write; ``raw``: those whose value may not be coerced yet."""
    return _Plan(tuple(sorted(raw & _CONVERT)), _ordered(tuple(written), _USER_FIELDS),
                 _ordered(tuple(written), _IP_FIELDS))


def _compile_sets(items: dict[str, Any]) -> tuple[SetSpec, set[str]]:
    """Constant fields, coerced to their ECS type now rather than on every event.

    Coercion is idempotent, so a value coerced here and coerced again later is unchanged; a value
    that does not coerce (or is None) is kept raw and left to ``_finish`` to report or drop.
    """
    out: list[tuple[str, Any, bool]] = []
    raw: set[str] = set()
    for target, value in items.items():
        if target in _CONVERT and (value is None or _needs_coercion(target, value)):
            try:
                value = coerce(target, value)
                if value is None:
                    raise ValueError("null")
            except (ValueError, TypeError):
                value = items[target]
                raw.add(target)
        out.append((target, value, isinstance(value, list)))
    return tuple(out), raw


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    programs: frozenset[str] | None
    when: Predicate | None
    regex: re.Pattern[str] | None
    field: str
    groups: tuple[tuple[int, str, bool], ...]  # (index in match.groups(), target, target is scratch)
    maps: MapSpec
    sets: SetSpec
    lookups: tuple[_Lookup, ...]
    next: bool
    plan: _Plan

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
            values = m.groups()
            for index, target, scratch in self.groups:
                value = values[index]
                if value:
                    if scratch:
                        ctx[target] = value
                    else:
                        fields[target] = value
        if self.maps or self.lookups:
            _apply_common(self.maps, self.sets, self.lookups, ctx, fields)
        else:
            for target, value, is_list in self.sets:
                fields[target] = list(value) if is_list else value
        return True


def _apply_common(maps: MapSpec, sets: SetSpec,
                  lookups: tuple[_Lookup, ...], ctx: dict[str, Any], fields: dict[str, Any]) -> None:
    for target, getters, keyword in maps:
        for get in getters:
            value = get(ctx)
            if value is not None and value != "" and value != []:
                # JSON numbers bound for keyword fields (error codes, ids) are stored as text.
                fields[target] = str(value) if keyword and isinstance(value, int | float) else value
                break
    for target, value, is_list in sets:
        fields[target] = list(value) if is_list else value
    for lk in lookups:
        lk.apply(ctx, fields)


def _compile_lookups(spec: dict[str, LookupSpec]) -> tuple[_Lookup, ...]:
    out = []
    for target, lk in spec.items():
        table: dict[str, Any] = dict(STANDARD_TABLES[lk.standard]()) if lk.standard else {}
        table.update({str(k).lower(): v for k, v in lk.table.items()})
        keys = [lk.source] if isinstance(lk.source, str) else lk.source
        out.append(_Lookup(target, tuple(compile_source(k) for k in keys), table, lk.default))
    return tuple(out)


def _maps(spec: dict[str, str | list[str]]) -> MapSpec:
    return tuple((t, tuple(compile_source(k) for k in ([k] if isinstance(k, str) else k)),
                  FIELD_TYPES.get(t) == "keyword") for t, k in spec.items())


def compile_pattern(p: PatternSpec) -> _Pattern:
    """Compile one pattern; raises ValueError / re.error / ConditionError on a bad one."""
    regex = re.compile(p.regex, re.DOTALL) if p.regex else None
    groups: list[tuple[int, str, bool]] = []
    if regex is not None:
        for name, number in regex.groupindex.items():
            if name.startswith("_"):
                groups.append((number - 1, name, True))
            else:
                groups.append((number - 1, name.replace("__", "."), False))
    sets, raw_sets = _compile_sets(p.set)
    maps = _maps(p.map)
    lookups = _compile_lookups(p.lookup)
    dynamic = {t for _, t, scratch in groups if not scratch} | {t for t, _, _ in maps} | {lk.target for lk in lookups}
    return _Pattern(
        name=p.name,
        programs=frozenset(p.program) if p.program else None,
        when=compile_condition(p.when, "when") if p.when else None,
        regex=regex,
        field=p.field,
        groups=tuple(groups),
        maps=maps,
        sets=sets,
        lookups=lookups,
        next=p.next,
        plan=_make_plan(dynamic | set(p.set), dynamic | raw_sets),
    )


_PREFIX_LEN = 2
_MAX_PREFIXES = 64


def start_texts(regex: re.Pattern[str] | None, length: int = _PREFIX_LEN) -> frozenset[str] | None:
    """Every ``length``-character text a match of ``regex`` (anchored at the start) can begin with.

    None when that is unknown or unbounded (a class like ``\\S``, case-insensitive matching, a
    match shorter than ``length``): such a pattern has to be tried on every line. Optional parts and
    alternations are expanded, so ``(?:error: )?Failed`` gives ``{"er", "Fa"}``.
    """
    if regex is None or regex.flags & re.IGNORECASE:
        return None
    return _start_texts(regex.pattern, regex.flags, length)


def regex_internals() -> tuple[Callable[[str, int], Any], Any]:
    """``re``'s private parser and opcode constants: the one place sentinel reaches into them (a pattern's
    structure tells which texts a match can start with). tests/test_regex_internals.py fails if a Python
    release moves them; here, a failure only turns the shortcut off (start_texts gives None)."""
    return re._parser.parse, re._constants  # type: ignore[attr-defined]


@lru_cache(maxsize=2048)
def _start_texts(pattern: str, flags: int, length: int) -> frozenset[str] | None:
    # Cached: parsing every pattern again was most of building a decoder, and a process builds each
    # collector's decoder more than once (loading checks the examples, then the pipeline builds its own).
    try:
        parsed = regex_internals()[0](pattern, flags)
    except Exception:
        return None
    found = _seq_texts(list(parsed), length)
    if found is None or any(len(t) < length for t in found):
        return None
    return frozenset(found)


def _seq_texts(items: list[Any], length: int) -> set[str] | None:
    """Prefixes (up to ``length``) a sequence of parsed regex items can produce; shorter = it may end there."""
    if not items:
        return {""}
    heads = _item_texts(items[0], length)
    if heads is None:
        return None
    out = {h for h in heads if len(h) >= length}
    short = [h for h in heads if len(h) < length]
    if short:
        # Only as many characters as the shortest head still lacks: what follows them never matters.
        tails = _seq_texts(items[1:], length - min(len(h) for h in short))
        if tails is None:
            return None
        out |= {(h + t)[:length] for h in short for t in tails}
    return out if len(out) <= _MAX_PREFIXES else None


def _item_texts(item: tuple[Any, Any], length: int) -> set[str] | None:
    consts = regex_internals()[1]
    op, arg = item
    if op is consts.LITERAL:
        return {chr(arg)}
    if op is consts.AT and arg in (consts.AT_BEGINNING, consts.AT_BEGINNING_STRING):
        return {""}
    if op is consts.IN:
        if all(o is consts.LITERAL for o, _ in arg) and len(arg) <= _MAX_PREFIXES:
            return {chr(a) for _, a in arg}
        return None
    if op is consts.SUBPATTERN:
        _group, add_flags, del_flags, sub = arg
        if add_flags or del_flags:
            return None
        return _seq_texts(list(sub), length)
    if op is consts.BRANCH:
        out: set[str] = set()
        for branch in arg[1]:
            texts = _seq_texts(list(branch), length)
            if texts is None:
                return None
            out |= texts
        return out
    if op in (consts.MAX_REPEAT, consts.MIN_REPEAT):
        low, high, sub = arg
        if (low, high) == (0, 1):
            texts = _seq_texts(list(sub), length)
            return None if texts is None else texts | {""}
        if (low, high) == (1, 1):
            return _seq_texts(list(sub), length)
        return None
    return None


Buckets = tuple[dict[str, list["_Pattern"]], list["_Pattern"]]


def _bucketize(patterns: list[_Pattern]) -> Buckets:
    """Index message patterns by the first two characters a match can start with; the fallback list
    (patterns that may start with anything) is what a line whose start is in no key is tried against."""
    keys = [start_texts(p.regex) if p.field == "message" and p.regex is not None else None for p in patterns]
    fallback = [p for p, k in zip(patterns, keys, strict=True) if k is None]
    every = set().union(*(k for k in keys if k is not None))
    index = {k: [p for p, pk in zip(patterns, keys, strict=True) if pk is None or k in pk] for k in every}
    return index, fallback


def _sender(origin: str, fields: dict[str, Any]) -> None:
    """``tls://CN=x@10.0.0.5:514`` (the receiver's record path) into the sender's fields."""
    scheme, _, rest = origin.partition("://")
    identity, _, peer = rest.rpartition("@")
    fields["sentinel.log.source.address"] = peer
    fields["network.transport"] = "udp" if scheme == "udp" else "tcp"
    if scheme == "tls":
        fields["network.protocol"] = "syslog-tls"
        if identity:
            from urllib.parse import unquote

            fields["tls.client.subject"] = unquote(identity)


class Decoder:
    """Decodes records of one collector; the same input always gives the same event."""

    def __init__(self, spec: CollectorSpec, zone: str = "UTC", host_name: str = "localhost",
                 source_type: Literal["file", "journal", "syslog", "api"] = "file") -> None:
        self.spec = spec
        self.name = spec.name
        self.source_type = source_type
        # A journal source hands out journal entries, whose MESSAGE then meets the same patterns.
        self.format = "journal" if source_type == "journal" else spec.format
        self.network = source_type == "syslog"
        self.api = source_type == "api"
        self.raw_prefix = f"{spec.raw}." if spec.raw and spec.format == "json" else ""
        self.zone = spec.timestamp.zone if spec.timestamp and spec.timestamp.zone else zone
        # Chosen once: each line calls the bound reader, with no lookup or branch on the format.
        reader = header_reader(self.format, self.zone, self.raw_prefix)
        self.read_header = reader.read
        self.pick_by_program = reader.by_program
        self.host_name = host_name
        self.patterns = [compile_pattern(p) for p in spec.patterns]
        self.by_program: dict[str, list[_Pattern]] = {}
        self.any_program: list[_Pattern] = [p for p in self.patterns if p.programs is None]
        for p in self.patterns:
            for prog in p.programs or ():
                self.by_program.setdefault(prog, [])
        for prog, lst in self.by_program.items():
            lst.extend(p for p in self.patterns if p.programs is None or prog in p.programs)
        # Message patterns indexed by the first two characters a match can start with, so a line
        # is only tried against patterns that can match it (the sshd path has dozens of patterns).
        self.indexed = {prog: _bucketize(lst) for prog, lst in self.by_program.items()}
        self.indexed_any = _bucketize(self.any_program)
        common_maps, common_lookups = _maps(spec.map), _compile_lookups(spec.lookup)
        common_sets, common_raw = _compile_sets(spec.set)
        self.common = (common_maps, common_sets, common_lookups)
        self.has_common = bool(common_maps or common_sets or common_lookups)
        dynamic = {t for t, _, _ in common_maps} | {lk.target for lk in common_lookups}
        self.common_plan = _make_plan(dynamic | set(spec.set), dynamic | common_raw)
        # Each pattern's plan merged with the collector-wide part, looked up by the pattern's identity.
        self.plans = {id(p): p.plan.merge(self.common_plan) for p in self.patterns}
        self.ts_fields = tuple(spec.timestamp.field) if spec.timestamp else ()
        self.host_fields = tuple(spec.host_field or ())
        self.reads_context = bool(self.ts_fields or self.host_fields)
        # One-entry caches: consecutive records share their stream, batch time and (mostly) second.
        self._id_key: tuple[str, str] = ("", "\x00")
        self._id_prefix = stream_prefix(*self._id_key)
        self._now = float("nan")
        self._now_iso = ""
        self._ts = float("nan")
        self._ts_iso = ""

    def decode(self, rec: RawRecord, now: float) -> tuple[Event, Outcome]:
        """Decode one record; never raises for bad input: failures become unparsed events."""
        tags: list[str] = []
        fields = self._envelope(rec, now, tags)
        text: str = fields["event.original"]
        ts: float | None = None
        outcome: Outcome = "unmatched"
        # Which fields _finish must convert: None means "look at every field" (the general case).
        plan: _Plan | None = None
        try:
            ts, ctx = self.read_header(text, rec.reference_time or now, fields, tags)
            if self.pick_by_program:
                index, fallback = self.indexed.get(ctx["program"], self.indexed_any)
                candidates = index.get(ctx["message"][:2], fallback)
                # The header writes only values of their final type, so from here on the only fields
                # that may need converting are those the collector's common part and the patterns write.
                plan = self.common_plan
            else:
                candidates = self.patterns
            if self.has_common:
                _apply_common(*self.common, ctx, fields)
            for pattern in candidates:
                if pattern.apply(ctx, fields):
                    outcome = "parsed"
                    fields["sentinel.rule"] = pattern.name
                    if plan is not None:
                        own = self.plans[id(pattern)]
                        plan = own if plan is self.common_plan else plan.merge(own)
                    if not pattern.next:
                        break
            if self.reads_context:
                ts = self._from_context(ctx, ts, fields, tags)
        except (HeaderError, AuditError, ValueError, orjson.JSONDecodeError, OverflowError) as exc:
            if isinstance(exc, BodyError):
                ts = exc.ts
            plan = None
            outcome = "unparsed"
            tags.append("unparsed")
            fields["event.kind"] = "pipeline_error"
            fields["sentinel.parse_error"] = str(exc)[:200]
            fields.setdefault("message", text)
        self._finish(fields, tags, plan)
        return self._event(fields, tags, ts, now, outcome != "unparsed"), outcome

    def _envelope(self, rec: RawRecord, now: float, tags: list[str]) -> dict[str, Any]:
        """The fields every event has, whatever its format: its id, its text (invalid UTF-8 replaced, NUL bytes
        made visible, a CRLF line's CR dropped), where it was read, when it was taken in."""
        try:
            text = rec.data.decode("utf-8")
        except UnicodeDecodeError:
            text = rec.data.decode("utf-8", "replace")
            tags.append("invalid_utf8")
        if "\x00" in text:
            text = text.replace("\x00", "\ufffd")
            tags.append("nul_bytes")
        if rec.truncated:
            tags.append("truncated")
        if text[-1:] == "\r":
            text = text[:-1]
        key = (rec.source, rec.stream)
        if key != self._id_key:
            self._id_key, self._id_prefix = key, stream_prefix(*key)
        if now != self._now:
            self._now, self._now_iso = now, iso(now)
        fields: dict[str, Any] = {
            "ecs.version": ECS_VERSION,
            "event.id": f"{self._id_prefix}{rec.offset:012x}",  # == event_id(source, stream, offset)
            "event.kind": "event",
            "event.original": text,
            "event.ingested": self._now_iso,
            "log.file.path": rec.path,
            "sentinel.log.offset": rec.offset,
            "sentinel.source": self.name,
        }
        if not rec.path.isascii():
            fields["log.file.path"], utf8 = display_path(rec.path)
            if not utf8:
                tags.append("path_not_utf8")
        if rec.truncated:
            fields["sentinel.original_length"] = rec.original_length
        if self.network:
            # Received over the network: where it came from instead of a file and byte offset.
            del fields["log.file.path"], fields["sentinel.log.offset"]
            _sender(rec.path, fields)
        elif self.api:
            # Polled from a provider's API: the event id (from the provider's own id) is the address.
            del fields["log.file.path"], fields["sentinel.log.offset"]
        return fields

    def _from_context(self, ctx: dict[str, Any], ts: float | None, fields: dict[str, Any],
                      tags: list[str]) -> float | None:
        """The collector's ``timestamp`` and ``host_field`` keys, read from the context once the patterns ran."""
        for key_name in self.ts_fields:
            raw = ctx.get(key_name)
            if raw not in (None, ""):
                try:
                    ts = any_timestamp(raw, self.zone)
                except (ValueError, OverflowError):
                    tags.append("timestamp_unparsable")
                    fields["sentinel.parse_error"] = f"unparsable timestamp in {key_name}"
                break
        for key_name in self.host_fields:
            value = ctx.get(key_name)
            if value:
                fields["host.hostname"] = str(value)
                break
        return ts

    def _event(self, fields: dict[str, Any], tags: list[str], ts: float | None, now: float, ok: bool) -> Event:
        """The event at the record's own time, or at ``now`` (tagged) when it has none or an implausible one."""
        if ts is None:
            ts = now
        elif not plausible(ts, now):
            tags.append("timestamp_out_of_range")
            fields["event.created"] = iso(ts) if ts > -62135596800 and ts < 253402300799 else None
            ts = now
        if tags:
            existing = fields.get("tags")
            fields["tags"] = (list(existing) if isinstance(existing, list) else []) + tags
        if ts != self._ts:
            self._ts, self._ts_iso = ts, iso(ts)
        fields["@timestamp"] = self._ts_iso
        return Event(fields["event.id"], ts, self.name, fields, ok)

    def _finish(self, fields: dict[str, Any], tags: list[str], plan: _Plan | None = None) -> None:
        hostname = fields.get("host.hostname")
        fields["host.name"] = hostname if hostname else self.host_name
        if plan is None:
            names: Iterable[str] = _CONVERT.intersection(fields)
            user_names, ip_names = _USER_FIELDS, _IP_FIELDS
        else:
            names = plan.convert  # may name fields this event does not have
            user_names, ip_names = plan.users, plan.ips
        # Plain loops below: a comprehension is a function call of its own on Python 3.11.
        for name in names:
            if name not in fields:
                continue
            value = fields[name]
            if value is None:
                del fields[name]
                continue
            if not isinstance(value, str):
                if name not in LIST_FIELDS and (_TYPED[name] != "long" or isinstance(value, int)):
                    continue
            elif name in _LONG_SCALARS:
                # The common case (a port, a pid from a regex group) without coerce()'s dispatch.
                try:
                    fields[name] = int(value)
                    continue
                except ValueError:
                    pass
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
        users = []
        for n in user_names:
            u = get(n)
            if u:
                users.append(u)
        if users:
            fields["related.user"] = list(dict.fromkeys(str(u) for u in users)) if len(users) > 1 else [str(users[0])]
        ips = []
        for n in ip_names:
            ip = get(n)
            if ip:
                ips.append(ip)
        if ips:
            fields["related.ip"] = list(dict.fromkeys(ips)) if len(ips) > 1 else ips
