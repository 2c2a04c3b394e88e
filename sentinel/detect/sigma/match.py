"""Sigma's matching semantics over sentinel's flat event fields: pySigma's condition tree in, a predicate out.

Strings match case-insensitively unless the rule says ``|cased``; ``*`` and ``?`` are wildcards; a field holding a
list matches when one of its values does; ``keywords`` search the raw line; values that modifiers expanded
(``windash``, ``base64offset``) match when any expansion does. pySigma has already applied the modifiers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from sentinel.detect.sigma.pipeline import Logsource, Unmappable
from sentinel.events.conditions import Predicate, all_of, any_of

ValueTest = Callable[[Any], bool]
_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE, SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
          SigmaRegularExpressionFlag.DOTALL: re.DOTALL}


def field_values(fields: Mapping[str, Any], names: Sequence[str], nested: bool = False) -> list[Any] | None:
    """The values of the first of ``names`` the event has (None: it has none of them).

    ``nested`` (a vendor's raw record): a name below a stored list of objects (``okta.target.displayName`` where
    ``okta.target`` is a list of targets) reads that member of every object.
    """
    for name in names:
        value = fields.get(name)
        if value is None and nested:
            value = _below(fields, name)
        if value is None:
            continue
        return value if isinstance(value, list) else [value]
    return None


def _below(fields: Mapping[str, Any], name: str) -> Any:
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = fields.get(".".join(parts[:cut]))
        if head is None:
            continue
        nodes = head if isinstance(head, list) else [head]
        for part in parts[cut:]:
            nxt: list[Any] = []
            for node in nodes:
                if isinstance(node, Mapping) and node.get(part) is not None:
                    child = node[part]
                    nxt.extend(child if isinstance(child, list) else [child])
            nodes = nxt
        return nodes or None
    return None


def text(value: Any) -> str:
    """How a value reads as text to Sigma: booleans as true/false, numbers without a trailing .0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _string_test(value: SigmaString, cased: bool, keyword: bool = False) -> ValueTest:
    parts = list(value.s)
    if any(not isinstance(p, str | SpecialChars) for p in parts):
        raise Unmappable(f"placeholder in value {value.original!r}: sentinel has no placeholder lists")
    if keyword:
        # A keyword is searched anywhere in the line unless the rule anchors it with wildcards itself.
        if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1] is not SpecialChars.WILDCARD_MULTI:
            parts.append(SpecialChars.WILDCARD_MULTI)
    if cased:
        def fold(v: Any) -> str:
            return v if v.__class__ is str else text(v)
    else:
        def fold(v: Any) -> str:
            return (v if v.__class__ is str else text(v)).casefold()
    inner = parts[1:-1] if len(parts) >= 2 else []
    first_star = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    last_star = bool(parts) and parts[-1] is SpecialChars.WILDCARD_MULTI
    if all(isinstance(p, str) for p in parts):
        want = fold("".join(parts))  # type: ignore[arg-type]
        return lambda v: fold(v) == want
    if first_star and last_star and len(parts) >= 2 and all(isinstance(p, str) for p in inner):
        needle = fold("".join(inner))  # type: ignore[arg-type]
        return lambda v: needle in fold(v)
    if last_star and all(isinstance(p, str) for p in parts[:-1]):
        prefix = fold("".join(parts[:-1]))  # type: ignore[arg-type]
        return lambda v: fold(v).startswith(prefix)
    if first_star and all(isinstance(p, str) for p in parts[1:]):
        suffix = fold("".join(parts[1:]))  # type: ignore[arg-type]
        return lambda v: fold(v).endswith(suffix)
    pattern = "".join(".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE
                      else re.escape(str(p)) for p in parts)
    compiled = re.compile(pattern, re.DOTALL | (0 if cased else re.IGNORECASE))
    return lambda v: compiled.fullmatch(text(v)) is not None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def value_test(value: SigmaType, keyword: bool = False) -> ValueTest:
    """A test of one event value against one Sigma value; raises Unmappable for what sentinel cannot evaluate."""
    if isinstance(value, SigmaCasedString):
        return _string_test(value, True, keyword)
    if isinstance(value, SigmaString):
        return _string_test(value, False, keyword)
    if isinstance(value, SigmaExpansion):
        tests = [value_test(v, keyword) for v in value.values]
        return lambda v: any(t(v) for t in tests)
    if isinstance(value, SigmaTimestampPart):
        raise Unmappable("timestamp part modifiers (minute, hour, day...) are not supported by sentinel's Sigma "
                         "evaluator")
    if keyword and isinstance(value, SigmaNumber | SigmaBool):
        return _string_test(SigmaString(str(value)), False, keyword)
    if isinstance(value, SigmaBool):
        want = value.boolean
        return lambda v: (v is want) if isinstance(v, bool) else text(v).lower() == text(want)
    if isinstance(value, SigmaNumber):
        number = float(value.number)
        return lambda v: _number(v) == number
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _FLAGS[flag]
        try:
            compiled = re.compile(value.regexp.to_plain(), flags)
        except re.error as exc:
            raise Unmappable(f"regular expression {value.regexp.to_plain()!r} is not valid in Python: {exc}") from exc
        return lambda v: compiled.search(text(v)) is not None
    if isinstance(value, SigmaCIDRExpression):
        network = value.network

        def in_network(v: Any) -> bool:
            try:
                return ipaddress.ip_address(text(v)) in network
            except ValueError:
                return False

        return in_network
    if isinstance(value, SigmaCompareExpression):
        bound = float(value.number.number)
        ops: dict[Any, Callable[[float], bool]] = {
            CompareOperators.LT: lambda x: x < bound, CompareOperators.LTE: lambda x: x <= bound,
            CompareOperators.GT: lambda x: x > bound, CompareOperators.GTE: lambda x: x >= bound,
        }
        op = ops.get(value.op)
        if op is None:
            return lambda v: _number(v) is not None and _number(v) != bound
        return lambda v: (n := _number(v)) is not None and op(n)
    raise Unmappable(f"value {value!s} ({type(value).__name__}) is not supported by sentinel's Sigma evaluator")


def _field_predicate(names: tuple[str, ...], value: SigmaType, source: Logsource) -> Predicate:
    raw = source.spec.raw
    nested = raw is not None and any(n.startswith(f"{raw}.") for n in names)
    if isinstance(value, SigmaNull):
        return lambda ev: not [v for v in field_values(ev, names, nested) or () if v != ""]
    if isinstance(value, SigmaExists):
        present = value.exists
        return lambda ev: (field_values(ev, names, nested) is not None) is present
    if isinstance(value, SigmaFieldReference):
        if value.starts_with or value.ends_with:
            raise Unmappable("fieldref with startswith/endswith is not supported by sentinel's Sigma evaluator")
        others = source.fields(value.field)

        def same(ev: Mapping[str, Any]) -> bool:
            mine = field_values(ev, names, nested) or []
            theirs = {text(v).casefold() for v in field_values(ev, others, raw is not None) or []}
            return any(text(v).casefold() in theirs for v in mine)

        return same
    test = value_test(value)
    if len(names) == 1 and not nested:
        (name,) = names

        def single(ev: Mapping[str, Any]) -> bool:  # the common case: one ECS field
            v = ev.get(name)
            if v is None:
                return False
            if v.__class__ is list:
                for item in v:  # noqa: SIM110 - a plain loop: no generator frame per event
                    if item is not None and test(item):
                        return True
                return False
            return test(v)

        return single

    def predicate(ev: Mapping[str, Any]) -> bool:
        for v in field_values(ev, names, nested) or ():  # noqa: SIM110 - a plain loop: no generator frame per event
            if v is not None and test(v):
                return True
        return False

    return predicate


def _plain_keyword(node: Any) -> bool:
    value = getattr(node, "value", None)
    return (isinstance(node, ConditionValueExpression) and isinstance(value, SigmaString)
            and not isinstance(value, SigmaCasedString) and all(isinstance(p, str | SpecialChars) for p in value.s))


def _keyword_search(values: list[SigmaString], raw: str) -> Predicate:
    """A list of keywords as one case-insensitive search of the raw line (one pass, not one per keyword)."""
    branches = ["".join(".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE
                        else re.escape(str(p)) for p in v.s) for v in values]
    compiled = re.compile("|".join(f"(?:{b})" for b in branches), re.IGNORECASE | re.DOTALL)

    def predicate(ev: Mapping[str, Any]) -> bool:
        line = ev.get(raw)
        return line is not None and compiled.search(text(line)) is not None

    return predicate


def compile_tree(node: Any, source: Logsource, fields_used: set[str] | None = None) -> Predicate:
    """pySigma's postprocessed condition tree -> a predicate over flat event fields."""
    if isinstance(node, ConditionOR) and len(node.args) > 2 and all(_plain_keyword(a) for a in node.args):
        return _keyword_search([getattr(a, "value") for a in node.args], source.spec.keywords)  # noqa: B009
    if isinstance(node, ConditionAND | ConditionOR):
        parts = [compile_tree(arg, source, fields_used) for arg in node.args]
        return all_of(parts) if isinstance(node, ConditionAND) else any_of(parts)
    if isinstance(node, ConditionNOT):
        inner = compile_tree(node.args[0], source, fields_used)
        return lambda ev: not inner(ev)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        names = source.fields(node.field)
        if fields_used is not None:
            fields_used.add(node.field)
        return _field_predicate(names, node.value, source)
    if isinstance(node, ConditionValueExpression):
        test = value_test(node.value, keyword=True)
        raw = source.spec.keywords
        return lambda ev: (line := ev.get(raw)) is not None and test(line)
    raise Unmappable(f"condition part {type(node).__name__} is not supported by sentinel's Sigma evaluator")
