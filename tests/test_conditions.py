"""Field conditions as rule filters use them: ne and exists on strings, lists, numbers and absent fields."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.events.conditions import compile_condition

ABSENT = object()


def _matches(spec: dict[str, Any], value: Any) -> bool:
    event = {} if value is ABSENT else {"event.outcome": value}
    return compile_condition({"event.outcome": spec})(event)


@pytest.mark.parametrize(("value", "expected"), [
    (ABSENT, True), (None, True), ("failure", False), ("success", True), ("Failure", True),
    (["success", "failure"], False), (["success"], True), ([], True), (7, True),
])
def test_ne_is_true_unless_a_value_equals_it(value: Any, expected: bool) -> None:
    assert _matches({"ne": "failure"}, value) is expected


@pytest.mark.parametrize(("value", "expected"), [(7, False), (7.0, False), ("7", True), ([1, 7], False), (8, True)])
def test_ne_with_a_number_compares_numbers(value: Any, expected: bool) -> None:
    assert _matches({"ne": 7}, value) is expected


@pytest.mark.parametrize(("value", "present"), [
    (ABSENT, False), (None, False), ([], False), ("", True), ("x", True), (["x"], True), (0, True), (False, True),
])
def test_exists_is_a_value_or_a_non_empty_list(value: Any, present: bool) -> None:
    assert _matches({"exists": True}, value) is present
    assert _matches({"exists": False}, value) is not present
