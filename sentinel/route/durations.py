"""Durations as operators write them: ``30s``, ``5m``, ``4h``, ``60d`` or plain seconds."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(value: object) -> float:
    """Seconds from ``1h30m``, ``45s``, ``2d`` or a number; ValueError says what is expected."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 4h or 2d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 5m, 4h or 2d")
    text = value.strip().lower()
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration; expected e.g. 30s, 5m, 4h, 2d or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration (``90`` → ``1m30s``)."""
    if seconds <= 0:
        return "0s"
    out, rest = "", round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out
