"""Silences: matchers, a time span, an author and a reason. A silenced alert is recorded but not sent."""

from __future__ import annotations

import re
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

_MATCHER = re.compile(r"^([A-Za-z0-9_.@-]+)\s*(=~|!=|=)\s*(.*)$")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # "=", "!=", "=~"
    value: str

    def holds(self, labels: dict[str, str | list[str]]) -> bool:
        have = labels.get(self.label)
        values = have if isinstance(have, list) else ([] if have is None else [str(have)])
        if self.op == "=":
            return self.value in values
        if self.op == "!=":
            return self.value not in values
        pattern = re.compile(self.value)
        return any(pattern.fullmatch(v) for v in values)

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """``label=value``, ``label!=value`` or ``label=~regex``; ValueError says what is expected."""
    m = _MATCHER.match(text.strip())
    if not m or not m.group(3):
        raise ValueError(f"bad matcher {text!r}; expected label=value, label!=value or label=~regex")
    label, op, value = m.group(1), m.group(2), m.group(3).strip()
    if op == "=~":
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression in {text!r}: {exc}") from None
    return Matcher(label, op, value)


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    reason: str
    created: float
    expired_at: float | None
    suppressed: int = 0
    alert_id: str | None = None  # bound: the silence ends when this alert resolves

    def active(self, now: float) -> bool:
        end = self.ends_at if self.expired_at is None else min(self.ends_at, self.expired_at)
        return self.starts_at <= now < end

    def covers(self, labels: dict[str, str | list[str]]) -> bool:
        return all(m.holds(labels) for m in self.matchers)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "matchers": [str(m) for m in self.matchers], "starts_at": self.starts_at,
                "ends_at": self.ends_at, "author": self.author, "reason": self.reason, "created": self.created,
                "expired_at": self.expired_at, "suppressed": self.suppressed, "alert_id": self.alert_id}


def add_silence(tx: sqlite3.Connection, matchers: list[Matcher], duration: float, author: str, reason: str,
                now: float, starts_at: float | None = None) -> Silence:
    """Create a silence; refuses an empty matcher list, author or reason (the evidence needs all three)."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if not author.strip() or not reason.strip():
        raise ValueError("a silence needs an author and a reason")
    if duration <= 0:
        raise ValueError("a silence needs a positive duration")
    start = now if starts_at is None else starts_at
    s = Silence(uuid.uuid4().hex[:12], tuple(matchers), start, start + duration, author.strip(), reason.strip(), now,
                None)
    tx.execute("INSERT INTO silences (id, matchers, starts_at, ends_at, author, reason, created) "
               "VALUES (?,?,?,?,?,?,?)",
               (s.id, orjson.dumps([[m.label, m.op, m.value] for m in s.matchers]).decode(), s.starts_at, s.ends_at,
                s.author, s.reason, s.created))
    return s


# A silence bound to an alert still has an end, so a forgotten alert cannot mute its key for ever.
BOUND_SILENCE_LIMIT = "7d"
_ALERT_LABELS = ("user.name", "host.name")


def silence_alert(tx: sqlite3.Connection, alert_id: str, matchers: list[Matcher], duration: float, author: str,
                  reason: str, now: float) -> Silence:
    """A silence bound to one alert: it matches that alert's rule (and its user and host, unless ``matchers``
    say otherwise) and ends when the alert resolves, or after ``duration``, whichever comes first."""
    row = tx.execute("SELECT id, rule_id, labels, status FROM alerts WHERE id = ? OR id GLOB ? LIMIT 2",
                     (alert_id, "".join(f"[{c}]" if c in "*?[]" else c for c in alert_id) + "*")).fetchall()
    exact = [r for r in row if r[0] == alert_id]
    if len(exact) != 1 and len(row) != 1:
        raise ValueError(f"no alert {alert_id!r}" if not row else f"alert id prefix {alert_id!r} is ambiguous")
    found = exact[0] if exact else row[0]
    if found[3] == "resolved":
        raise ValueError(f"alert {found[0]} is already resolved; a silence bound to it would end at once")
    labels = orjson.loads(found[2])
    given = {m.label for m in matchers}
    derived = [Matcher("rule", "=", str(found[1]))] if "rule" not in given else []
    derived += [Matcher(k, "=", str(labels[k])) for k in _ALERT_LABELS if k in labels and k not in given]
    s = add_silence(tx, [*derived, *matchers], duration, author, reason, now)
    tx.execute("INSERT INTO silence_bindings (silence_id, alert_id) VALUES (?, ?)", (s.id, found[0]))
    return Silence(s.id, s.matchers, s.starts_at, s.ends_at, s.author, s.reason, s.created, None, 0, str(found[0]))


def expire_silence(tx: sqlite3.Connection, silence_id: str, now: float) -> bool:
    """End a silence now; False if no such active silence."""
    cur = tx.execute("UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL AND ends_at > ?",
                     (now, silence_id, now))
    return cur.rowcount > 0


def _row(r: tuple[Any, ...]) -> Silence:
    matchers = tuple(Matcher(*m) for m in orjson.loads(str(r[1])))
    return Silence(str(r[0]), matchers, float(r[2]), float(r[3]), str(r[4]), str(r[5]), float(r[6]),
                   None if r[7] is None else float(r[7]), int(r[8]), None if r[9] is None else str(r[9]))


_COLS = ("s.id, s.matchers, s.starts_at, s.ends_at, s.author, s.reason, s.created, s.expired_at, s.suppressed, "
         "b.alert_id")
_FROM = "silences s LEFT JOIN silence_bindings b ON b.silence_id = s.id"


def list_silences(conn: sqlite3.Connection, now: float, include_expired: bool = False,
                  since: float | None = None, until: float | None = None) -> list[Silence]:
    """Silences, newest first; by default only those still active or pending."""
    rows = conn.execute(f"SELECT {_COLS} FROM {_FROM} ORDER BY s.created DESC").fetchall()
    out = [_row(r) for r in rows]
    if since is not None:
        out = [s for s in out if s.ends_at >= since]
    if until is not None:
        out = [s for s in out if s.starts_at <= until]
    if not include_expired:
        out = [s for s in out if (s.expired_at is None and s.ends_at > now)]
    return out


def active_silences(conn: sqlite3.Connection, now: float) -> list[Silence]:
    rows = conn.execute(f"SELECT {_COLS} FROM {_FROM} WHERE s.expired_at IS NULL AND s.starts_at <= ? "
                        "AND s.ends_at > ?", (now, now)).fetchall()
    return [_row(r) for r in rows]


def silenced_by(silences: list[Silence], labels: dict[str, str | list[str]]) -> Silence | None:
    for s in silences:
        if s.covers(labels):
            return s
    return None


def count_suppressed(tx: sqlite3.Connection, silence_id: str, n: int = 1) -> None:
    tx.execute("UPDATE silences SET suppressed = suppressed + ? WHERE id = ?", (n, silence_id))
