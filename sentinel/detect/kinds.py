"""The rule types: each turns a matching event plus its key's state into findings.

All windows run on event time. State values are plain lists/dicts so they persist as JSON; values
counted distinct are kept as short hashes, so rule state never holds patient identifiers.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from hashlib import blake2b
from operator import itemgetter
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sentinel.detect.compiled import CompiledRule
from sentinel.detect.identity import IdentityMap
from sentinel.detect.model import (
    BaselineParams,
    DormantParams,
    HourlyParams,
    NewValueParams,
    RuleType,
    SequenceParams,
    TerminatedParams,
    ThresholdParams,
    format_duration,
)
from sentinel.detect.state import DATA_SPAN, DIGESTS_WRITTEN, KeyStore, State, is_bookkeeping, values_seen_key
from sentinel.detect.template import LOCAL_HOUR, SAFE_FIELDS, SOURCE_NETWORK
from sentinel.events.alerts import MAX_EVENT_IDS, Alert
from sentinel.events.ids import alert_id
from sentinel.events.model import Event, iso

# The virtual group field for an address's network.

# Entries a threshold window keeps per key; beyond it the oldest go (the count is then a lower bound).
MAX_WINDOW_ENTRIES = 5000
# Distinct values a baseline bucket remembers per key.
MAX_DISTINCT = 20000
# Values an unseen sequence step remembers per key (the most recent).
MAX_SEEN = 64
# Peer values a baseline keeps for its distribution.
MAX_PEER_VALUES = 20000


@dataclass
class Finding:
    """What a rule type reports; the engine applies suppression and turns it into an Alert."""

    key: str
    anchor: str
    event: Event
    first_seen: float
    last_seen: float
    count: int
    event_ids: list[str]
    computed: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    distinct: list[str] = field(default_factory=list)  # a distinct-count window's value digests


@dataclass
class Context:
    """Per event: whether it arrived later than the late-event allowance permits (windowed types skip it)."""

    allowance: float
    late: bool = False
    # The event's group keys, computed once for all its rules: (group_by, names) -> key.
    keys: dict[tuple[tuple[str, ...], tuple[str, ...] | None], str | None] = field(default_factory=dict)


# An event's group keys as the rule engine remembers them for all its rules (see Context.keys).
KeyMemo = dict[tuple[tuple[str, ...], tuple[str, ...] | None], str | None]
# The group keys whose open alert a matching event joins (see detect.followup).
Follow = Callable[[Event, KeyMemo | None], list[str]]
# How many entities a learning rule type is still learning as of a time.
Learning = Callable[[KeyStore, float], int]


class Schedule(Protocol):
    """Alerts a rule type raises on its own timetable rather than for one event (the dormant access-review
    digest), and the number of entities it reports between them."""

    def due(self, store: KeyStore, now: float, recount: bool) -> tuple[list[Alert], int | None]:
        """The alerts due now (marked as written in ``store``) and, when ``recount`` or one was due, the
        entity count (else None: counting scans every key)."""
        ...

    def revised(self, store: KeyStore, now: float) -> list[Alert]:
        """Scheduled alerts already written whose figures the batch's (late) events changed."""
        ...


class Evaluator(Protocol):
    """One rule type bound to one rule: what it does with a matching event, how it explains a finding, and the
    optional capabilities the engine asks for (None where the type has none)."""

    # A finding is one event (its host and user then label the alert), not an aggregate of many.
    single_event: bool
    # Set when the type's alerts keep counting the events that follow them (match, threshold, ordered sequence).
    follow: Follow | None
    # Set when the type learns per entity before it may alert.
    learning_count: Learning | None
    # Set when the type also raises alerts on a timetable.
    schedule: Schedule | None

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]: ...

    def explain(self, f: Finding) -> str:
        """The alert's "why": the finding's figures in one sentence."""
        ...


def _entities(store: KeyStore) -> list[State]:
    """Entity states only: not suppression markers nor the rule's shared state."""
    return [s for k, s in store.items() if not is_bookkeeping(k)]


def _measured(d: dict[str, Any]) -> str:
    """``distinct of user.name`` from a finding's details (``count`` alone when no field)."""
    return f"{d['metric']}{' of ' + str(d['field']) if d.get('field') else ''}"


def _trimmed(entries: list[list[Any]], keep_from: float, limit: int, stale_before: float) -> list[list[Any]]:
    """Time-ordered entries (each starting with its bucket or day) from ``keep_from`` on, at most the ``limit``
    newest. Pruned in one pass once the oldest entry is older than ``stale_before`` or there are too many, not
    on every entry added: otherwise the same list."""
    if entries[0][0] < stale_before or len(entries) > limit:
        return [e for e in entries if e[0] >= keep_from][-limit:]
    return entries


def _add_distinct(state: State, digests: list[str]) -> None:
    """Fold value digests into a bucket's distinct set (``dv``, bounded) and its value, the set's size."""
    seen = set(state["dv"])
    for h in digests:
        if h not in seen and len(seen) < MAX_DISTINCT:
            seen.add(h)
            state["dv"].append(h)
    state["v"] = float(len(state["dv"]))


def hashed(value: Any) -> str:
    """A short stable digest of a value (process-independent, unlike ``hash``)."""
    return blake2b(str(value).encode(), digest_size=6).hexdigest()


def source_network(ip: Any) -> str | None:
    """The /24 of an IPv4 address, the /64 of an IPv6 one: addresses an attacker rotates through together."""
    if not isinstance(ip, str) or not ip:
        return None
    return _network_of(ip)


# A storm comes from a few thousand addresses, each seen many times; ipaddress takes ~23 us on an IPv6 one.
@lru_cache(maxsize=8192)
def _network_of(ip: str) -> str | None:
    quad = _DOTTED_QUAD.fullmatch(ip)
    if quad is not None:
        # The storm's common case without ipaddress (about 10x its cost): the same text it gives.
        return quad[1] + "0/24"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


# A dotted quad as ipaddress accepts it: parts 0-255 in ASCII digits, no leading zero; group 1 is "a.b.c.".
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_DOTTED_QUAD = re.compile(rf"((?:{_OCTET}\.){{3}}){_OCTET}")


# A memo's "not computed yet" (None is a key: a group field is missing).
_UNSET: Any = object()


def field_key(ev: Event, fields: tuple[str, ...], names: tuple[str, ...] | None = None,
              memo: KeyMemo | None = None) -> str | None:
    """``_field_key``, remembered in ``memo`` (the event's, see Context) when given: a storm's event goes to a
    dozen rules keyed by the same few fields, and a suppressing rule asks for its key twice. Remembered by
    the fields' names, not by the rule: four rules of the pack key a sign-in by ``user.name``."""
    if memo is None:
        return _field_key(ev, fields, names)
    at = (fields, names)
    key: str | None = memo.get(at, _UNSET)
    if key is _UNSET:
        key = memo[at] = _field_key(ev, fields, names)
    return key


def _field_key(ev: Event, fields: Sequence[str], names: Sequence[str] | None = None) -> str | None:
    """``user.name=alice|source.ip=10.0.0.1``; None when a group field is missing.

    ``@source_network`` groups by the source address's network (see ``source_network``).

    Accounts are keyed by login name, lower-cased, with an e-mail address reduced to its local part: the
    identity provider's ``JDoe@corp.example`` and the servers' and billing app's ``jdoe`` are one account.
    """
    if not fields:
        return "*"
    get = ev.fields.get
    labels = names if names is not None and len(names) == len(fields) else fields
    parts = []
    for i, name in enumerate(fields):
        value = get(name)
        if value is None and name == SOURCE_NETWORK:
            value = source_network(get("source.ip"))
        if value.__class__ is str:  # the common case, without the general checks below
            if not value:
                return None
            text = value.lower()
        else:
            if value is None or value == []:
                return None
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            text = str(value).lower()
        if "@" in text and name.startswith("user."):
            text = text.split("@", 1)[0]
        parts.append(f"{labels[i]}={text}")
    return parts[0] if len(parts) == 1 else "|".join(parts)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ids(entries: Sequence[Sequence[Any]]) -> list[str]:
    return [str(e[1]) for e in entries[:MAX_EVENT_IDS]]


class MatchEvaluator:
    """Every matching event is a finding."""

    single_event = True
    learning_count: Learning | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        self.group_by = tuple(rule.spec.group_by)
        self.follow: Follow | None = self.keys

    def explain(self, f: Finding) -> str:
        return "matching event"

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        key = field_key(ev, self.group_by, memo=ctx.keys)
        if key is None:
            return []
        return [Finding(key, ev.id, ev, ev.timestamp, ev.timestamp, 1, [ev.id])]

    def keys(self, ev: Event, memo: KeyMemo | None = None) -> list[str]:
        key = field_key(ev, self.group_by, memo=memo)
        return [] if key is None else [key]


# A window entry's time (its first item), for bisect.
_entry_time = itemgetter(0)


def metric_value(metric: str, field: str | None, ev: Event) -> Any:
    """What one event contributes to a count (1.0), a sum (the field as a number) or a distinct count
    (hashes of the field's values, so rule state never holds the values themselves); None when nothing."""
    if metric == "count":
        return 1.0
    raw = ev.fields.get(field or "")
    if metric == "sum":
        return _number(raw)
    if raw is None or raw == "" or raw == []:
        return None
    return [hashed(v) for v in raw] if isinstance(raw, list) else [hashed(raw)]


class ThresholdEvaluator:
    """count / distinct / sum over a sliding event-time window per key; the window empties when it fires."""

    single_event = False
    learning_count: Learning | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        assert isinstance(rule.spec.threshold, ThresholdParams)
        self.p = rule.spec.threshold
        self.group_by = tuple(rule.spec.group_by)
        self.follow: Follow | None = self.keys

    def explain(self, f: Finding) -> str:
        d = f.details
        return (f"{_measured(d)} = {d['value']:g} within {format_duration(d['window_seconds'])} "
                f"(threshold {d['threshold']:g})")

    def _aggregate(self, entries: Sequence[list[Any]]) -> float:
        metric = self.p.metric
        if metric == "count":
            return float(len(entries))
        if metric == "sum":
            return float(sum(e[2] for e in entries))
        return float(len(self._distinct(entries)))

    @staticmethod
    def _distinct(entries: Sequence[list[Any]]) -> set[str]:
        seen: set[str] = set()
        for e in entries:
            if isinstance(e[2], list):
                seen.update(e[2])
            else:
                seen.add(e[2])
        return seen

    def keys(self, ev: Event, memo: KeyMemo | None = None) -> list[str]:
        key = field_key(ev, self.group_by, memo=memo)
        return [] if key is None else [key]

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        if ctx.late:
            return []
        key = field_key(ev, self.group_by, memo=ctx.keys)
        value = metric_value(self.p.metric, self.p.field, ev)
        if key is None or value is None:
            return []
        p = self.p
        ts = ev.timestamp
        state = store.get(key) or {"e": []}
        entries: list[list[Any]] = state["e"]
        entry = [ts, ev.id, value]
        in_order = not entries or ts >= entries[-1][0]
        if in_order:
            entries.append(entry)
        else:
            times = [e[0] for e in entries]
            entries.insert(bisect.bisect_right(times, ts), entry)
        cut = entries[-1][0] - p.window - ctx.allowance
        drop = 0
        while drop < len(entries) and entries[drop][0] < cut:
            drop += 1
        if len(entries) - drop > MAX_WINDOW_ENTRIES:
            drop = len(entries) - MAX_WINDOW_ENTRIES
        if drop:
            del entries[:drop]
        # Windows that contain the new event: ending at it (in order: the entries from the window's start on,
        # found by bisection, as entries stay in time order), or ending at each later entry.
        windows: Iterable[list[list[Any]]]
        if in_order:
            windows = [entries[bisect.bisect_left(entries, ts - p.window, key=_entry_time):]]
        else:
            windows = ([e for e in entries if end - p.window <= e[0] <= end]
                       for end in [e[0] for e in entries if ts <= e[0] <= ts + p.window])
        findings: list[Finding] = []
        for window in windows:
            total = self._aggregate(window)
            if total >= p.min:
                fired = {id(e) for e in window}
                state["e"] = [e for e in entries if id(e) not in fired]
                computed = {"value": total, "threshold": p.min, "window": format_duration(p.window),
                            "metric": p.metric, "group": key.split("=", 1)[-1] if "|" not in key else key}
                details = {"metric": p.metric, "field": p.field, "value": total, "threshold": p.min,
                           "window_seconds": p.window, "events_in_window": len(window)}
                distinct = sorted(self._distinct(window)) if p.metric == "distinct" else []
                findings.append(Finding(key, str(window[0][1]), ev, window[0][0], window[-1][0], len(window),
                                        _ids(window), computed, details, distinct))
                break
        if state["e"]:
            store.put(key, state)
        else:
            store.delete(key)
        return findings


class SequenceEvaluator:
    """Ordered steps per key. Each step's events must follow the previous step's latest event within the
    window (a first step repeated while waiting for the next keeps the sequence alive)."""

    single_event = False
    learning_count: Learning | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        assert isinstance(rule.spec.sequence, SequenceParams)
        self.p = rule.spec.sequence
        self.group_by = tuple(rule.spec.group_by)
        self.preds = rule.step_predicates
        self.steps = self.p.steps
        # Per step: the fields its key is made of and the names they take in it (the rule's, when they differ).
        self.step_keys = [(tuple(s.group_by), self.group_by) if s.group_by else (self.group_by, None)
                          for s in self.steps]
        self.follow: Follow | None = self.keys
        # The last event, the steps it matched and (once keys() gave them) its steps per key.
        self._last: tuple[Event, list[int], dict[str, list[int]] | None] | None = None
        # Without an unseen step the keys asked to join an open alert are the ones observing advances.
        self._keys_are_steps = all(s.unseen is None for s in self.steps)

    def explain(self, f: Finding) -> str:
        return _explain_sequence(f)

    def keys(self, ev: Event, memo: KeyMemo | None = None) -> list[str]:
        matched = self._matched(ev)
        by_key = self._by_key(ev, matched, memo=memo)
        if self._keys_are_steps:
            self._last = (ev, matched, by_key)
        return list(by_key)

    def _matched(self, ev: Event) -> list[int]:
        """The steps whose filter ``ev`` passes; the engine asks for its keys (to join an open alert) and then
        observes it, so the last event's answer is kept for the second asking."""
        last = self._last
        if last is not None and last[0] is ev:
            return last[1]
        matched = [i for i, pred in enumerate(self.preds) if pred(ev.fields)]
        self._last = (ev, matched, None)
        return matched

    def _by_key(self, ev: Event, matched: list[int], store: KeyStore | None = None,
                memo: KeyMemo | None = None) -> dict[str, list[int]]:
        """The steps ``ev`` advances, per key; without ``store`` (which keys may it touch?) a step that wants
        an unseen value counts as advanced."""
        by_key: dict[str, list[int]] = {}
        for i in matched:
            # A step keyed by other fields (user.target.name at creation) still names the rule's key fields,
            # so both steps meet on one key.
            fields, names = self.step_keys[i]
            key = field_key(ev, fields, names, memo)
            if key is not None and (self.steps[i].unseen is None or store is None or self._novel(ev, key, i, store)):
                by_key.setdefault(key, []).append(i)
        return by_key

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        if ctx.late:
            return []
        matched = self._matched(ev)
        if not matched:
            return []
        last = self._last  # this event's: _matched has just answered for it
        by_key = last[2] if last is not None and last[2] is not None else self._by_key(ev, matched, store, ctx.keys)
        findings: list[Finding] = []
        for key, steps in by_key.items():
            findings.extend(self._advance(ev, key, steps, store))
        return findings

    def _novel(self, ev: Event, key: str, step: int, store: KeyStore) -> bool:
        """Whether the step's ``unseen`` field has a value not seen on this step for the key lately; remembers it."""
        raw = ev.fields.get(self.steps[step].unseen or "")
        if raw is None or raw == "":
            return False
        digest = hashed(str(raw).lower())
        skey = values_seen_key(step, key)
        seen = store.get(skey) or {"v": []}
        cut = ev.timestamp - self.p.remember
        novel = not any(v[0] == digest and v[1] >= cut for v in seen["v"])
        values: list[list[Any]] = [v for v in seen["v"] if v[1] >= cut and v[0] != digest]
        values.append([digest, ev.timestamp])
        seen["v"] = values[-MAX_SEEN:]
        store.put(skey, seen)
        return novel

    def _advance(self, ev: Event, key: str, matches: list[int], store: KeyStore) -> list[Finding]:
        ts = ev.timestamp
        window = self.p.window
        state = store.get(key) or {"s": 0, "h": [], "d": []}
        step = state["s"]
        if step > 0 and state["d"] and ts - state["d"][-1][0] > window:
            state = {"s": 0, "h": [], "d": []}
            step = 0
        findings: list[Finding] = []
        if step in matches:
            hits = state["h"]
            hits.append([ts, ev.id])
            if step == 0:
                state["h"] = hits = [h for h in hits if h[0] >= ts - window][-MAX_EVENT_IDS:]
            if len(hits) >= self.steps[step].count:
                state["d"] = state["d"] + hits
                state["h"] = []
                state["s"] = step + 1
                if state["s"] == len(self.steps):
                    done = state["d"]
                    computed = {"window": format_duration(window), "steps": len(self.steps)}
                    details = {"steps": [{"name": s.name or f"step {i + 1}", "needed": s.count}
                                         for i, s in enumerate(self.steps)],
                               "window_seconds": window, "events": len(done)}
                    findings.append(Finding(key, str(done[0][1]), ev, done[0][0], done[-1][0], len(done),
                                            _ids(done), computed, details))
                    state = {"s": 0, "h": [], "d": []}
        elif step > 0 and (step - 1) in matches:
            state["d"].append([ts, ev.id])
            if len(state["d"]) > MAX_EVENT_IDS:
                del state["d"][: len(state["d"]) - MAX_EVENT_IDS]
        else:
            return []
        if state["s"] == 0 and not state["h"]:
            store.delete(key)
        else:
            store.put(key, state)
        return findings


class UnorderedSequenceEvaluator:
    """Every step per key within the window, in any order: each step keeps its latest event, and the
    sequence completes when all steps have one no older than the window."""

    single_event = False
    # Its alerts do not keep counting: which of its steps a later event would continue is not defined.
    follow: Follow | None = None
    learning_count: Learning | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        assert isinstance(rule.spec.sequence, SequenceParams)
        self.window = rule.spec.sequence.window
        self.steps = rule.spec.sequence.steps
        self.group_by = tuple(rule.spec.group_by)
        self.preds = rule.step_predicates
        self.step_fields = [tuple(s.group_by) if s.group_by else self.group_by for s in self.steps]

    def keys(self, ev: Event) -> list[str]:
        return [key for key in self._by_key(ev) if key]

    def explain(self, f: Finding) -> str:
        return _explain_sequence(f)

    def _by_key(self, ev: Event) -> dict[str, list[int]]:
        by_key: dict[str, list[int]] = {}
        for i, pred in enumerate(self.preds):
            if pred(ev.fields):
                key = field_key(ev, self.step_fields[i], self.group_by)
                if key is not None:
                    by_key.setdefault(key, []).append(i)
        return by_key

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        if ctx.late:
            return []
        findings: list[Finding] = []
        for key, steps in self._by_key(ev).items():
            state = store.get(key) or {"t": [None] * len(self.steps)}
            latest: list[Any] = state["t"]
            for i in steps:
                latest[i] = [ev.timestamp, ev.id]
            cut = ev.timestamp - self.window
            latest = [t if t is not None and t[0] >= cut else None for t in latest]
            if all(t is not None for t in latest):
                done = sorted(latest)
                computed = {"window": format_duration(self.window), "steps": len(self.steps)}
                details = {"steps": [{"name": s.name or f"step {i + 1}", "needed": 1}
                                     for i, s in enumerate(self.steps)],
                           "window_seconds": self.window, "events": len(done), "ordered": False}
                findings.append(Finding(key, str(done[0][1]), ev, done[0][0], done[-1][0], len(done),
                                        _ids(done), computed, details))
                store.delete(key)
            elif any(t is not None for t in latest):
                store.put(key, {"t": latest})
            else:
                store.delete(key)
        return findings


def _explain_sequence(f: Finding) -> str:
    d = f.details
    steps = ", then ".join(f"{s['needed']} x {s['name']}" for s in d["steps"])
    return f"{steps} within {format_duration(d['window_seconds'])} ({d['events']} events)"


def median_mad(values: Sequence[float]) -> tuple[float, float]:
    """Median and the median absolute deviation (scaled by 1.4826 to estimate a standard deviation)."""
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values]) * 1.4826
    return med, mad


class BaselineEvaluator:
    """A per-entity metric per bucket against the entity's own history (median/MAD) and/or its peers'.

    State per entity: the current bucket (index, value, distinct hashes, first event ids) and the values of
    its last ``history`` completed buckets. ``#peers`` holds recent completed bucket values of all entities.
    """

    PEERS = "#peers"
    single_event = False
    follow: Follow | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        assert isinstance(rule.spec.baseline, BaselineParams)
        self.p = rule.spec.baseline
        self.group_by = tuple(rule.spec.group_by)
        self.learning_count: Learning | None = self.learning

    def explain(self, f: Finding) -> str:
        d = f.details
        parts = [f"{_measured(d)} = {d['value']:g} in this {format_duration(d['bucket_seconds'])}"]
        if "baseline_median" in d:
            parts.append(f"own median {d['baseline_median']:g} (MAD {d['baseline_mad']:g}) over "
                         f"{d['history_buckets']} buckets, limit {d['self_limit']:g}")
        if "peer_median" in d:
            parts.append(f"peer median {d['peer_median']:g} over {d['peer_values']} values, limit {d['peer_limit']:g}")
        return "; ".join(parts) + f"; exceeded: {', '.join(d['compared_with'])}"

    def _add(self, state: State, contribution: Any) -> None:
        if self.p.metric == "distinct":
            _add_distinct(state, contribution)
        else:
            state["v"] += contribution

    def _close(self, state: State, store: KeyStore) -> None:
        """Move the current bucket into the entity's history and the peer distribution."""
        p = self.p
        history: list[list[float]] = state["h"]
        history.append([state["b"], state["v"]])
        if len(history) > p.history:
            del history[: len(history) - p.history]
        if p.compare != "self":
            peers = store.get(self.PEERS) or {"v": []}
            peers["v"].append([state["b"], state["v"]])
            low = state["b"] - p.peers.buckets
            peers["v"] = _trimmed(peers["v"], low, MAX_PEER_VALUES, low)
            store.put(self.PEERS, peers)

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        if ctx.late:
            return []
        key = field_key(ev, self.group_by, memo=ctx.keys)
        contribution = metric_value(self.p.metric, self.p.field, ev)
        if key is None or contribution is None:
            return []
        p = self.p
        bucket = int(ev.timestamp // p.bucket)
        state = store.get(key)
        if state is None:
            state = {"b": bucket, "v": 0.0, "dv": [], "ids": [], "f": ev.timestamp, "h": [], "x": None}
        if bucket > state["b"]:
            self._close(state, store)
            state.update({"b": bucket, "v": 0.0, "dv": [], "ids": [], "f": ev.timestamp, "x": None})
        elif bucket < state["b"]:
            # A late event for a closed bucket only corrects that bucket's history (sum/count).
            if p.metric != "distinct":
                for item in state["h"]:
                    if item[0] == bucket:
                        item[1] += contribution
                        store.put(key, state)
            return []
        self._add(state, contribution)
        if len(state["ids"]) < MAX_EVENT_IDS:
            state["ids"].append(ev.id)
        findings: list[Finding] = []
        if state["x"] != bucket and state["v"] >= p.floor and state["v"] > 0:
            verdict = self._judge(state, store)
            if verdict is not None:
                state["x"] = bucket
                computed, details = verdict
                computed.update({"value": state["v"], "bucket": format_duration(p.bucket)})
                details.update({"metric": p.metric, "field": p.field, "value": state["v"], "floor": p.floor,
                                "bucket_seconds": p.bucket, "bucket_start": bucket * p.bucket})
                findings.append(Finding(key, str(state["ids"][0]), ev, state["f"], ev.timestamp,
                                        len(state["ids"]), list(state["ids"]), computed, details))
        store.put(key, state)
        return findings

    def learning(self, store: KeyStore, at: float) -> int:
        if self.p.compare == "peers":
            return 0
        return sum(1 for s in _entities(store) if len(s["h"]) < self.p.min_history)

    def _judge(self, state: State, store: KeyStore) -> tuple[dict[str, Any], dict[str, Any]] | None:
        p = self.p
        value = state["v"]
        computed: dict[str, Any] = {"baseline_median": "n/a", "baseline_mad": "n/a", "ratio": "n/a",
                                    "peer_median": "n/a", "peer_ratio": "n/a", "history_buckets": len(state["h"])}
        details: dict[str, Any] = {"history_buckets": len(state["h"])}
        reasons = []
        if p.compare in ("self", "either") and len(state["h"]) >= p.min_history:
            med, mad = median_mad([h[1] for h in state["h"]])
            limit = max(med + p.mad_multiplier * mad, p.min_ratio * med)
            computed.update({"baseline_median": med, "baseline_mad": round(mad, 2),
                             "ratio": round(value / med, 1) if med > 0 else "∞"})
            details.update({"baseline_median": med, "baseline_mad": round(mad, 3), "self_limit": round(limit, 3)})
            if value > limit:
                reasons.append("self")
        if p.compare in ("peers", "either"):
            peers = store.get(self.PEERS)
            values = [pv[1] for pv in peers["v"] if pv[0] < state["b"]] if peers else []
            details["peer_values"] = len(values)
            if len(values) >= p.peers.min_entities:
                med, mad = median_mad(values)
                limit = max(med + p.peers.mad_multiplier * mad, p.peers.min_ratio * med)
                computed.update({"peer_median": med, "peer_ratio": round(value / med, 1) if med > 0 else "∞"})
                details.update({"peer_median": med, "peer_mad": round(mad, 3), "peer_limit": round(limit, 3)})
                if value > limit:
                    reasons.append("peers")
        if not reasons:
            return None
        computed["compared_with"] = " and ".join(reasons)
        details["compared_with"] = reasons
        return computed, details


class NewValueEvaluator:
    """The first time an entity shows a value, once the entity has been learnt for ``learn_for``."""

    single_event = True
    follow: Follow | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule, safe_value: bool, zone: str = "UTC") -> None:
        assert isinstance(rule.spec.new_value, NewValueParams)
        self.p = rule.spec.new_value
        self.group_by = tuple(rule.spec.group_by)
        self.learning_count: Learning | None = self.learning
        self.hours = self.p.field == LOCAL_HOUR
        self.safe_value = safe_value or self.hours
        self.work = self.p.working_hours if self.hours else None
        self.fires = rule.step_predicates[0] if self.p.fire_on is not None else None
        self.zone = ZoneInfo(self.work.zone if self.work is not None and self.work.zone else zone)

    def explain(self, f: Finding) -> str:
        d = f.details
        return (f"new {d['field']} after {d['known_values']} known value(s); entity learnt since "
                f"{iso(d['entity_first_seen'])}")

    def _known(self, value: str, known: list[str]) -> bool:
        if not self.hours:
            return hashed(value) in known
        hour = int(value)
        return any(str((hour + d) % 24) in known for d in range(-self.p.neighbors, self.p.neighbors + 1))

    def learning(self, store: KeyStore, at: float) -> int:
        return sum(1 for s in _entities(store)
                   if at - s["f"] < self.p.learn_for or s.get("n", self.p.min_samples) < self.p.min_samples)

    def _normalise(self, value: Any) -> str:
        text = str(value)
        if self.p.transform == "domain":
            text = text.rsplit("@", 1)[-1]
        return text.lower() if self.p.transform != "none" else text

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        at_work = False
        if self.hours:
            local = datetime.fromtimestamp(ev.timestamp, self.zone)
            raw: Any = local.hour
            at_work = self.work is not None and self.work.covers(local.weekday(), local.hour * 60 + local.minute)
        else:
            raw = ev.fields.get(self.p.field)
        if raw is None or raw == "" or raw == []:
            return []
        key = field_key(ev, self.group_by, memo=ctx.keys)
        if key is None:
            return []
        values = [self._normalise(v) for v in (raw if isinstance(raw, list) else [raw])]
        state = store.get(key)
        if state is None:
            state = {"f": ev.timestamp, "v": []}
        samples = state.get("n", 0)
        # Silent while the entity's history is thin: too short, or too few events to know its pattern.
        learning = ev.timestamp - state["f"] < self.p.learn_for or samples < self.p.min_samples
        if self.p.min_samples:
            state["n"] = samples + 1
        if ev.timestamp < state["f"]:
            state["f"] = ev.timestamp
        known: list[str] = state["v"]
        findings: list[Finding] = []
        changed = bool(self.p.min_samples)
        if self.fires is not None and not self.fires(ev.fields):
            learning = True  # an event that only teaches
        for value in values:
            if self._known(value, known):
                continue
            if at_work:  # the organisation's working hours are nobody's unusual hours; not learnt as the user's
                continue
            # Hours are kept as they are (needed for the neighbour test); other values only as digests.
            known.append(value if self.hours else hashed(value))
            changed = True
            if not learning:
                shown = value if self.safe_value else "(not shown: may identify a person or destination)"
                computed = {"value": shown, "learn_for": format_duration(self.p.learn_for)}
                details = {"field": self.p.field, "known_values": len(known) - 1,
                           "entity_first_seen": state["f"], "learn_for_seconds": self.p.learn_for,
                           "samples": samples}
                if self.safe_value:
                    details["new_value"] = value
                findings.append(Finding(key, ev.id, ev, ev.timestamp, ev.timestamp, 1, [ev.id], computed, details))
        if len(known) > self.p.max_values:
            del known[: len(known) - self.p.max_values]
        if changed or state["f"] == ev.timestamp:
            store.put(key, state)
        return findings


# Idle gaps at least this long are remembered per account, so idleness can be judged as of any past time
# (a digest for a period the data crossed long ago, ``accounts dormant --as-of``), for idle limits this long
# or longer. Shorter gaps do not matter to an access review.
GAP_MIN = 30 * 86400.0
MAX_GAPS = 24  # the most recent ones; older history is then judged as if active


def record_activity(state: State, ts: float) -> bool:
    """Fold one activity time into an account's first/last/gaps (the result does not depend on the order
    activities arrive in); whether anything changed."""
    gaps: list[list[float]] = state.get("g") or []
    if ts > state["l"]:
        if ts - state["l"] >= GAP_MIN:
            gaps.append([state["l"], ts])
        state["l"] = ts
    elif ts < state["f"]:
        if state["f"] - ts >= GAP_MIN:
            gaps.insert(0, [ts, state["f"]])
        state["f"] = ts
    else:
        for i, (a, b) in enumerate(gaps):
            if a < ts < b:
                gaps[i:i + 1] = [g for g in ([a, ts], [ts, b]) if g[1] - g[0] >= GAP_MIN]
                break
        else:
            return False
    if len(gaps) > MAX_GAPS:
        del gaps[: len(gaps) - MAX_GAPS]
    if gaps:
        state["g"] = gaps
    else:
        state.pop("g", None)
    return True


def last_activity_at(state: State, at: float) -> float | None:
    """The account's last activity at or before ``at`` as far as idleness of GAP_MIN or more is concerned:
    None if it was not known yet; ``at`` itself when it was active within GAP_MIN of then."""
    if at < state["f"]:
        return None
    if at >= state["l"]:
        return float(state["l"])
    for a, b in state.get("g") or ():
        if a <= at < b:
            return float(a)
    return at


class DormantEvaluator:
    """Activity by an account idle for ``idle``; remembers every account's activity (first, last, long gaps)
    for the digest and for judging idleness as of a past time."""

    DIGEST = DIGESTS_WRITTEN
    SPAN = DATA_SPAN  # the event time range the rule's data covers: digests are due on its period boundaries
    single_event = True
    follow: Follow | None = None
    learning_count: Learning | None = None

    def __init__(self, rule: CompiledRule) -> None:
        p = rule.spec.params()
        assert isinstance(p, DormantParams)
        self.p = p
        self.spec = rule.spec
        self.group_by = tuple(rule.spec.group_by)
        # Earliest event time that changed an account in the current batch (digests already out may change).
        self.changed_from: float | None = None
        self.schedule: Schedule | None = self

    def explain(self, f: Finding) -> str:
        d = f.details
        return f"first activity after {d['idle_days']} days idle (threshold {d['idle_threshold_days']} days)"

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        key = field_key(ev, self.group_by, memo=ctx.keys)
        if key is None:
            return []
        ts = ev.timestamp
        span = store.get(self.SPAN)
        if span is None:
            store.put(self.SPAN, {"lo": ts, "hi": ts})
        elif ts < span["lo"] or ts > span["hi"]:
            span["lo"], span["hi"] = min(span["lo"], ts), max(span["hi"], ts)
            store.put(self.SPAN, span)
        state = store.get(key)
        findings: list[Finding] = []
        if state is None:
            store.put(key, {"f": ts, "l": ts, "n": _account(ev, self.group_by)})
            self._changed(ts)
            return []
        last = state["l"]
        if ts - last >= self.p.idle:
            idle = ts - last
            computed = {"idle_days": int(idle // 86400), "idle": format_duration(self.p.idle)}
            details = {"idle_days": round(idle / 86400, 1), "last_activity": last, "idle_threshold_days":
                       round(self.p.idle / 86400, 1)}
            findings.append(Finding(key, ev.id, ev, ts, ts, 1, [ev.id], computed, details))
        if record_activity(state, ts):
            store.put(key, state)
            self._changed(ts)
        return findings

    def _changed(self, ts: float) -> None:
        if self.changed_from is None or ts < self.changed_from:
            self.changed_from = ts

    def idle_accounts(self, store: KeyStore, at: float, idle: float | None = None) -> list[tuple[str, float]]:
        """(account, last activity) of every account known at ``at`` and idle at least ``idle`` (default: the
        rule's) then: as of a past time too, from the gaps each account's state remembers."""
        limit = self.p.idle if idle is None else idle
        out = []
        for k, s in store.items():
            if is_bookkeeping(k):
                continue
            last = last_activity_at(s, at)
            if last is not None and at - last >= limit:
                out.append((s.get("n") or k, last))
        return sorted(out, key=lambda item: item[1])

    # --- the scheduled access-review digest (Schedule) ---------------------------------------------------

    def due(self, store: KeyStore, now: float, recount: bool) -> tuple[list[Alert], int | None]:
        """One digest per ``digest_every`` boundary that the rule's own data spans (not the newest time of any
        source, and every boundary a batch crosses, not one per batch), each judged as of its boundary. So the
        digests are the same whatever order the history arrives in."""
        span = store.get(self.SPAN)
        if span is None:
            return [], None
        every = self.p.digest_every
        due: list[int] = []
        done = _emitted(store.get(self.DIGEST))
        if every is not None:
            # Boundaries strictly after the first activity: before it there is no history to review.
            first, last = int(span["lo"] // every) + 1, int(span["hi"] // every)
            due = [p for p in range(first, last + 1) if done is None or not done[0] <= p <= done[1]]
        idle = len(self.idle_accounts(store, span["hi"])) if due or recount else None
        if not due:
            return [], idle
        lo, hi = (min(due), max(due)) if done is None else (min(done[0], *due), max(done[1], *due))
        store.put(self.DIGEST, {"lo": lo, "hi": hi})
        return [self._digest(store, period, now) for period in due], idle

    def revised(self, store: KeyStore, now: float) -> list[Alert]:
        """Data arriving late (another source replayed after the first) changes digests already written: they
        are recomputed (to be revised in place, without a new notification), so each one says what its
        period's data says."""
        if self.changed_from is None:
            return []
        since, self.changed_from = self.changed_from, None
        done = _emitted(store.get(self.DIGEST))
        every = self.p.digest_every
        if done is None or every is None:
            return []
        start = max(done[0], int(since // every) + 1, done[1] - MAX_REVISED_DIGESTS + 1)
        return [self._digest(store, period, now) for period in range(start, done[1] + 1)]

    def _digest(self, store: KeyStore, period: int, now: float) -> Alert:
        p, spec = self.p, self.spec
        assert p.digest_every is not None
        at = period * p.digest_every
        idle = self.idle_accounts(store, at)
        listed = [{"account": name, "last_activity": iso(last), "idle_days": int((at - last) // 86400)}
                  for name, last in idle[: p.digest_max_accounts]]
        key = f"digest@{period}"
        return Alert(
            id=alert_id(spec.id, key, str(period)), rule_id=spec.id, title=f"{spec.title}: access review digest",
            severity=p.digest_severity, group_key=key, first_seen=at, last_seen=at, count=len(idle),
            event_ids=[],
            summary=f"{len(idle)} account(s) idle for at least {format_duration(p.idle)} as of {iso(at)}",
            runbook=spec.runbook.strip(), tags=list(spec.tags),
            labels={**spec.labels, "rule": spec.id, "severity": p.digest_severity, "digest": "true"},
            details={"accounts": listed, "total": len(idle), "idle_threshold_days": p.idle / 86400,
                     "as_of": iso(at)},
            created=now)


# Digests of at most this many past periods are recomputed when late data arrives (each is a scan of the accounts).
MAX_REVISED_DIGESTS = 26


def _emitted(marker: dict[str, Any] | None) -> tuple[int, int] | None:
    """The range of digest periods already written (an older marker only knew the latest)."""
    if marker is None:
        return None
    if "p" in marker:
        return -(1 << 62), int(marker["p"])
    return int(marker["lo"]), int(marker["hi"])


class HourlyEvaluator:
    """A metric per local clock hour against the entity's own pattern at that hour of day, and its team's.

    State per entity: the current hour (``b``: local day ordinal * 24 + hour) with its value and distinct hashes,
    the values of its closed hours (``h``: [day, hour, value]) and its active days (``d``). A day the entity was
    active without activity at an hour counts as a zero there, so 2 am for a day worker is learnt as "nothing".
    A team (``#team:<name>``) keeps its members' closed hours and member-days the same way.
    """

    single_event = False
    follow: Follow | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule, zone: str = "UTC") -> None:
        assert isinstance(rule.spec.hourly, HourlyParams)
        self.p = rule.spec.hourly
        self.group_by = tuple(rule.spec.group_by)
        self.zone = ZoneInfo(zone)
        self.learning_count: Learning | None = self.learning

    def explain(self, f: Finding) -> str:
        d = f.details
        limits = [f"{name} limit {d[name + '_limit']:g} (median {d[name + '_median']:g})"
                  for name in ("own", "team") if name + "_limit" in d]
        compared = "; ".join(limits) or f"no pattern yet, fallback floor {d['fallback']:g}"
        return (f"{_measured(d)} = {d['value']:g} in the hour from {d['hour']:02d}:00; {compared}; "
                f"exceeded: {', '.join(d['compared_with'])}")

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        if ctx.late:
            return []
        key = field_key(ev, self.group_by, memo=ctx.keys)
        contribution = metric_value(self.p.metric, self.p.field, ev)
        if key is None or contribution is None:
            return []
        p = self.p
        local = datetime.fromtimestamp(ev.timestamp, self.zone)
        day = local.toordinal()
        bucket = day * 24 + local.hour
        team = ev.fields.get(p.team_by) if p.team_by else None
        if isinstance(team, list):  # user.roles is a list field: the first role names the team
            team = team[0] if team else None
        tkey = f"#team:{str(team).lower()}" if isinstance(team, str) and team else None
        state = store.get(key) or {"b": bucket, "v": 0.0, "dv": [], "ids": [], "f": ev.timestamp, "x": None,
                                   "h": [], "d": [], "t": tkey}
        if bucket < state["b"]:
            return []  # a late event for an hour already closed: the pattern does not need it
        if bucket > state["b"]:
            self._close(state, store)
            state.update({"b": bucket, "v": 0.0, "dv": [], "ids": [], "f": ev.timestamp, "x": None, "t": tkey})
        if not state["d"] or state["d"][-1] != day:
            state["d"].append(day)
            del state["d"][: max(0, len(state["d"]) - p.days)]
            if tkey is not None:
                self._team_day(store, tkey, day)
        if p.metric == "distinct":
            _add_distinct(state, contribution)
        else:
            state["v"] += contribution
        if len(state["ids"]) < MAX_EVENT_IDS:
            state["ids"].append(ev.id)
        findings: list[Finding] = []
        if state["x"] != bucket and state["v"] >= p.floor:
            verdict = self._judge(state, store, local.hour, day, tkey)
            if verdict is not None:
                state["x"] = bucket
                computed, details = verdict
                findings.append(Finding(key, str(state["ids"][0]), ev, state["f"], ev.timestamp, len(state["ids"]),
                                        list(state["ids"]), computed, details))
        store.put(key, state)
        return findings

    def learning(self, store: KeyStore, at: float) -> int:
        return sum(1 for s in _entities(store) if len(s["d"]) <= self.p.min_days)

    def _close(self, state: State, store: KeyStore) -> None:
        day, hour = divmod(state["b"], 24)
        entry = [day, hour, state["v"]]
        first_day = state["d"][0] if state["d"] else day
        closed: list[list[Any]] = state["h"]
        closed.append(entry)
        state["h"] = _trimmed(closed, first_day, self.p.days * 24, first_day)
        if state.get("t"):
            team = store.get(state["t"]) or {"h": [], "d": []}
            members: list[list[Any]] = team["h"]
            members.append(entry)
            cut = day - self.p.days
            # Days after the horizon stay; the horizon's own day goes only with the next older one (days are
            # whole numbers: "older than cut" is "at most cut - 1").
            team["h"] = _trimmed(members, cut + 1, MAX_PEER_VALUES, cut)
            store.put(state["t"], team)

    def _team_day(self, store: KeyStore, tkey: str, day: int) -> None:
        team = store.get(tkey) or {"h": [], "d": []}
        days: list[list[int]] = team["d"]
        if days and days[-1][0] == day:
            days[-1][1] += 1
        else:
            days.append([day, 1])
            del days[: max(0, len(days) - self.p.days)]
        store.put(tkey, team)

    def _samples(self, closed: list[list[Any]], days: list[int], hour: int, today: int) -> list[float]:
        """The entity's value at ``hour`` (or a neighbouring hour, the largest) on each past active day."""
        n = self.p.neighbors
        near = {(hour + d) % 24 for d in range(-n, n + 1)}
        best: dict[int, float] = {}
        for day, h, value in closed:
            if h in near and day != today:
                best[day] = max(best.get(day, 0.0), value)
        return [best.get(d, 0.0) for d in days if d != today]

    def _team_samples(self, team: State, hour: int, today: int) -> list[float]:
        """Closed member-hours at ``hour`` (or a neighbour) plus a zero for every member-day without one.

        Neighbouring hours of one member-day count as separate samples: that widens the team's pattern a little,
        which errs on the quiet side."""
        n = self.p.neighbors
        near = {(hour + d) % 24 for d in range(-n, n + 1)}
        values = [float(v) for day, h, v in team["h"] if h in near and day != today]
        member_days = sum(c for day, c in team["d"] if day != today)
        return values + [0.0] * max(0, member_days - len(values))

    def _limit(self, values: list[float]) -> tuple[float, float]:
        med, mad = median_mad(values)
        return med, max(med + self.p.mad_multiplier * mad, self.p.min_ratio * med)

    def _judge(self, state: State, store: KeyStore, hour: int, today: int,
               tkey: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        p = self.p
        value = state["v"]
        computed: dict[str, Any] = {"value": value, "hour": f"{hour:02d}:00", "own_median": "n/a",
                                    "team_median": "n/a"}
        details: dict[str, Any] = {"metric": p.metric, "field": p.field, "value": value, "floor": p.floor,
                                   "fallback": p.fallback, "hour": hour}
        reasons = []
        past_days = [d for d in state["d"] if d != today]
        if len(past_days) < p.min_days and value < p.fallback:
            # Without the entity's own pattern only the fallback floor may decide: a team that works days says
            # nothing about a new night-shift colleague. The team pattern still vetoes above it.
            return None
        if len(past_days) >= p.min_days:
            med, limit = self._limit(self._samples(state["h"], past_days, hour, today))
            computed["own_median"] = med
            details.update({"own_median": med, "own_limit": round(limit, 3), "own_days": len(past_days)})
            if value <= limit:
                return None
            reasons.append("own pattern")
        team = store.get(tkey) if tkey else None
        if team is not None:
            samples = self._team_samples(team, hour, today)
            if len(samples) >= p.min_team_days:
                med, limit = self._limit(samples)
                computed["team_median"] = med
                details.update({"team_median": med, "team_limit": round(limit, 3), "team_samples": len(samples)})
                if value <= limit:
                    return None
                reasons.append("team pattern")
        if not reasons:
            reasons.append("fallback floor")
        computed["compared_with"] = " and ".join(reasons)
        details["compared_with"] = reasons
        return computed, details


class TerminatedEvaluator:
    """Activity by an account after the identity provider ended it, or by one the operator's list names.

    Revoke events (Okta deactivate / suspend, Entra's "account disabled") mark the account, restore events
    (unsuspend, reactivate) clear it; both are keyed through the identity map, so an Okta ``jdoe@corp`` ended
    today matches tomorrow's sshd ``jdoe`` and a display name seen beside either.
    """

    single_event = True
    follow: Follow | None = None
    learning_count: Learning | None = None
    schedule: Schedule | None = None

    def __init__(self, rule: CompiledRule) -> None:
        assert isinstance(rule.spec.terminated, TerminatedParams)
        self.p = rule.spec.terminated
        self.group_by = tuple(rule.spec.group_by)
        self.activity, self.revoke, self.restore, self.listed = rule.step_predicates

    def explain(self, f: Finding) -> str:
        d = f.details
        when = iso(d["terminated_at"]) if d.get("terminated_at") else "the operator's list"
        return f"account {d['account']} ended by {d['terminated_by']} ({when}) and active again"

    def _learn(self, ev: Event, ids: IdentityMap) -> None:
        get = ev.fields.get
        ids.learn(get("user.name"), get("user.full_name"))
        ids.learn(get("user.target.name"), get("user.target.full_name"))

    def observe(self, ev: Event, store: KeyStore, ctx: Context) -> list[Finding]:
        ids = IdentityMap(store)
        self._learn(ev, ids)
        fields = ev.fields
        if self.revoke(fields):
            for name in self.p.revoke_key:
                account = ids.canonical(fields.get(name))
                if account is not None:
                    if store.get(account) is None:
                        store.put(account, {"t": ev.timestamp, "by": str(fields.get("event.action") or "revoke"),
                                            "e": ev.id})
                    return []
            return []
        if self.restore(fields):
            for name in self.p.revoke_key:
                account = ids.canonical(fields.get(name))
                if account is not None:
                    store.delete(account)
                    return []
            return []
        if not self.activity(fields):
            return []
        account = ids.canonical(fields.get(self.group_by[0]))
        if account is None:
            return []
        ended = store.get(account)
        if ended is not None and ev.timestamp >= ended["t"] + self.p.grace:
            when, by = ended["t"], ended["by"]
        elif self.listed(fields):
            when, by = None, "operator list"
        else:
            return []
        computed = {"terminated_by": by, "terminated_at": iso(when) if when is not None else "n/a"}
        details = {"terminated_by": by, "terminated_at": when, "account": account,
                   "revoke_event": ended.get("e") if ended else None}
        return [Finding(f"{self.group_by[0]}={account}", ev.id, ev, ev.timestamp, ev.timestamp, 1, [ev.id],
                        computed, details)]


def _account(ev: Event, fields: Sequence[str]) -> str:
    return "|".join(str(ev.fields.get(f)) for f in fields)


def _sequence(rule: CompiledRule, zone: str) -> Evaluator:
    assert rule.spec.sequence is not None
    return SequenceEvaluator(rule) if rule.spec.sequence.ordered else UnorderedSequenceEvaluator(rule)


def _new_value(rule: CompiledRule, zone: str) -> Evaluator:
    assert rule.spec.new_value is not None
    return NewValueEvaluator(rule, rule.spec.new_value.field in SAFE_FIELDS, zone)


# Rule type name (RuleSpec.type) -> its evaluator for one rule and the configured time zone.
EVALUATORS: dict[RuleType, Callable[[CompiledRule, str], Evaluator]] = {
    "match": lambda rule, zone: MatchEvaluator(rule),
    "threshold": lambda rule, zone: ThresholdEvaluator(rule),
    "sequence": _sequence,
    "baseline": lambda rule, zone: BaselineEvaluator(rule),
    "new_value": _new_value,
    "hourly": HourlyEvaluator,
    "terminated": lambda rule, zone: TerminatedEvaluator(rule),
    "dormant": lambda rule, zone: DormantEvaluator(rule),
}


def build_evaluator(rule: CompiledRule, zone: str = "UTC") -> Evaluator:
    """The evaluator for a rule's type (``zone``: for hour-of-day values)."""
    return EVALUATORS[rule.spec.type](rule, zone)
