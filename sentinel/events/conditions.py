"""A safe condition language over flat event fields: data in, a predicate out, never ``eval``.

Forms (a mapping with several keys means all of them):

    user.name: alice                   equality (for list fields: contains)
    event.outcome: [failure, unknown]  one of
    phi.record_count: {gte: 500}       eq ne in not_in gt gte lt lte regex iregex cidr
                                       exists prefix suffix contains icontains
    all: [ ... ]   any: [ ... ]   not: { ... }
    user.name: {in_list: terminated_accounts}
                                       on a named list the caller passes in (case-insensitive; an
                                       e-mail address also matches by its local part)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
_RECIPIENTS = re.compile(r"[;,\s]+")
# Named lists (operator-maintained files): looked up at match time so a reload that swaps a list's
# contents in the mapping takes effect without recompiling.
NamedLists = Mapping[str, frozenset[str]]

OPERATORS = frozenset(
    {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "regex", "iregex", "cidr", "exists",
     "prefix", "suffix", "contains", "icontains", "field_eq", "field_ne", "in_list"}
)
_MISSING = object()


class ConditionError(ValueError):
    """A condition is malformed; ``path`` says where inside it."""

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def compile_condition(spec: Any, path: str = "", lists: NamedLists | None = None) -> Predicate:
    """Compile a condition mapping into a predicate; raises ConditionError on a bad spec.

    ``lists`` names the lists ``in_list`` may refer to; their contents are read at match time.
    """
    if spec is None or spec == {}:
        return _true
    if not isinstance(spec, Mapping):
        raise ConditionError(f"expected a mapping of field: condition, got {type(spec).__name__}", path)
    parts: list[Predicate] = []
    for key, value in spec.items():
        where = f"{path}.{key}" if path else str(key)
        if key == "all":
            items = enumerate(_as_list(value, where))
            parts.append(all_of([compile_condition(v, f"{where}[{i}]", lists) for i, v in items]))
        elif key == "any":
            subs = [compile_condition(v, f"{where}[{i}]", lists) for i, v in enumerate(_as_list(value, where))]
            parts.append(any_of(subs))
        elif key == "not":
            sub = compile_condition(value, where, lists)
            parts.append(_not(sub))
        else:
            parts.append(_field_predicate(str(key), value, where, lists))
    return all_of(parts)


def _true(_: Mapping[str, Any]) -> bool:
    return True


# Plain loops rather than any()/all() over a generator: rules evaluate these for every event, and a
# generator is a frame of its own per call on Python 3.11.
def any_of(parts: Sequence[Predicate]) -> Predicate:
    """True when one of ``parts`` is (in order, stopping at the first)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda ev: first(ev) or second(ev)

    def predicate(ev: Mapping[str, Any]) -> bool:
        for p in parts:  # noqa: SIM110 - see above
            if p(ev):
                return True
        return False

    return predicate


def _not(part: Predicate) -> Predicate:
    return lambda ev: not part(ev)


def all_of(parts: Sequence[Predicate]) -> Predicate:
    """True when every one of ``parts`` is (in order, stopping at the first that is not)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda ev: first(ev) and second(ev)

    def predicate(ev: Mapping[str, Any]) -> bool:
        for p in parts:  # noqa: SIM110 - see above
            if not p(ev):
                return False
        return True

    return predicate


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConditionError("expected a non-empty list of conditions", where)
    return value


def _field_predicate(name: str, spec: Any, where: str, lists: NamedLists | None = None) -> Predicate:
    if isinstance(spec, Mapping):
        unknown = set(spec) - OPERATORS
        if unknown:
            raise ConditionError(
                f"unknown operator {sorted(unknown)[0]!r}; expected one of {', '.join(sorted(OPERATORS))}",
                where,
            )
        tests = [_operator(name, op, arg, f"{where}.{op}", lists) for op, arg in spec.items()]
        return all_of(tests)
    if isinstance(spec, list):
        return _operator(name, "in", spec, where)
    return _operator(name, "eq", spec, where)


def _values(ev: Mapping[str, Any], name: str) -> list[Any]:
    value = ev.get(name, _MISSING)
    if value is _MISSING or value is None:
        return []
    return value if isinstance(value, list) else [value]


def _any_value(name: str, test: Callable[[Any], bool]) -> Predicate:
    def predicate(ev: Mapping[str, Any]) -> bool:
        for v in _values(ev, name):
            try:
                if test(v):
                    return True
            except (TypeError, ValueError):
                continue
        return False

    return predicate


def _eq_text(name: str, arg: str) -> Predicate:
    """``eq`` with a text value: a string field is compared directly, anything else by its text."""
    general = _any_value(name, lambda v: v == arg or str(v) == arg)

    def predicate(ev: Mapping[str, Any]) -> bool:
        v = ev.get(name)
        if v.__class__ is str:
            return v == arg
        return v is not None and general(ev)

    return predicate


def _in_texts(name: str, members: frozenset[str]) -> Predicate:
    """``in`` (compared as text): a string field is looked up directly."""
    general = _any_value(name, lambda v: str(v) in members)

    def predicate(ev: Mapping[str, Any]) -> bool:
        v = ev.get(name)
        if v.__class__ is str:
            return v in members
        return v is not None and general(ev)

    return predicate


def _ne(name: str, arg: object) -> Predicate:
    """``ne``: no value of the field equals ``arg`` (a string field compared directly)."""
    equal = _any_value(name, lambda v: v == arg)

    def predicate(ev: Mapping[str, Any]) -> bool:
        v = ev.get(name)
        if isinstance(v, str):
            return v != arg
        return not equal(ev)

    return predicate


def _exists(name: str) -> Predicate:
    """``exists: true``: the field has a value (an empty list is none), as ``_values`` sees it."""

    def predicate(ev: Mapping[str, Any]) -> bool:
        v = ev.get(name)
        return v is not None and (not isinstance(v, list) or len(v) > 0)

    return predicate


def _operator(name: str, op: str, arg: Any, where: str, lists: NamedLists | None = None) -> Predicate:
    if op == "eq":
        if isinstance(arg, str):
            return _eq_text(name, arg)
        return _any_value(name, lambda v: v == arg)
    if op == "ne":
        return _ne(name, arg)
    if op in ("in", "not_in"):
        if not isinstance(arg, list):
            raise ConditionError("expected a list of values", where)
        members = frozenset(str(a) for a in arg)
        positive = _in_texts(name, members)
        return positive if op == "in" else (lambda ev: not positive(ev))
    if op in ("gt", "gte", "lt", "lte"):
        if not isinstance(arg, int | float) or isinstance(arg, bool):
            raise ConditionError(f"expected a number, got {arg!r}", where)
        bound = float(arg)
        cmp: dict[str, Callable[[float], bool]] = {
            "gt": lambda x: x > bound, "gte": lambda x: x >= bound,
            "lt": lambda x: x < bound, "lte": lambda x: x <= bound,
        }
        test = cmp[op]
        return _any_value(name, lambda v: not isinstance(v, bool) and test(float(v)))
    if op in ("regex", "iregex"):
        try:
            pattern = re.compile(str(arg), re.IGNORECASE if op == "iregex" else 0)
        except re.error as exc:
            raise ConditionError(f"invalid regular expression: {exc}", where) from exc
        return _any_value(name, lambda v: pattern.search(str(v)) is not None)
    if op == "cidr":
        nets = []
        for text in arg if isinstance(arg, list) else [arg]:
            try:
                nets.append(ipaddress.ip_network(str(text), strict=False))
            except ValueError as exc:
                raise ConditionError(f"invalid network {text!r}: {exc}", where) from exc
        return _any_value(name, lambda v: any(ipaddress.ip_address(str(v)) in n for n in nets))
    if op == "exists":
        if not isinstance(arg, bool):
            raise ConditionError("expected true or false", where)
        present = _exists(name)
        return present if arg else (lambda ev: not present(ev))
    if op in ("prefix", "suffix", "contains", "icontains"):
        options = [str(a) for a in (arg if isinstance(arg, list) else [arg])]
        if op == "prefix":
            return _any_value(name, lambda v: str(v).startswith(tuple(options)))
        if op == "suffix":
            return _any_value(name, lambda v: str(v).endswith(tuple(options)))
        if op == "contains":
            return _any_value(name, lambda v: any(o in str(v) for o in options))
        lowered = [o.lower() for o in options]
        return _any_value(name, lambda v: any(o in str(v).lower() for o in lowered))
    if op in ("field_eq", "field_ne"):
        other = str(arg)

        def same(ev: Mapping[str, Any]) -> bool:
            a, b = ev.get(name), ev.get(other)
            return a is not None and a == b

        return same if op == "field_eq" else (lambda ev: not same(ev))
    if op == "in_list":
        known = lists if lists is not None else {}
        if not isinstance(arg, str) or arg not in known:
            raise ConditionError(f"unknown list {arg!r}; expected one of {', '.join(sorted(known)) or 'none'}", where)
        list_name = arg
        # An address is on a list of domains (a list named *_domains) by its domain, on any other list (of
        # accounts) by its local part: never the other way, so "gmail.com@corp.example" is no personal address.
        by_domain = list_name.endswith("_domains")

        def on_list(v: Any) -> bool:
            members = known[list_name]
            text = str(v).lower()
            if text in members:
                return True
            if "@" not in text:
                return False
            if by_domain:
                # One value may hold several recipients (an inbox rule's "a@corp.example;b@gmail.com").
                return any(part.rpartition("@")[2].rstrip(">").strip() in members
                           for part in _RECIPIENTS.split(text) if "@" in part)
            return text.split("@", 1)[0] in members

        return _any_value(name, on_list)
    raise ConditionError(f"unknown operator {op!r}", where)
