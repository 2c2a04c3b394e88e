"""ISO 8601 times as the providers write and read them (always UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def to_iso(ts: float) -> str:
    """``2026-12-01T22:00:00.000Z``: the form Okta, Graph, Google and the Management Activity API all accept."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def from_iso(value: object) -> float | None:
    """Epoch seconds of a provider's timestamp; None when absent or not one (the decoder then says so)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Graph writes seven fractional digits; datetime takes at most six.
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
