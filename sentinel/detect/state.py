"""Rule state: per rule, an LRU of group key → JSON-able state bounded in keys and bytes, persisted in the batch
transaction.

Only keys changed in a batch are written; evicted keys are deleted in the same transaction, so the
table never holds more than the bound either. Keys starting with ``#`` are the rule's own bookkeeping
(peer distribution, digest period) and are never evicted.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from typing import Any

import orjson

DDL = """
CREATE TABLE IF NOT EXISTS rule_state (
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    blob BLOB NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (rule, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS detect_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Per rule and UTC day: events evaluated and matched, and when last. The evidence that a control's rules ran.
CREATE TABLE IF NOT EXISTS rule_activity (
    rule TEXT NOT NULL,
    day INTEGER NOT NULL,
    evaluations INTEGER NOT NULL,
    matches INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (rule, day)
) WITHOUT ROWID;
"""

State = dict[str, Any]

# A rule's keys are its group keys (``user.name=alice``, ``*``) and these. Keys starting with ``#`` are the rule's
# own bookkeeping and never evicted.
SUPPRESSED = "suppressed:"  # + group key: the key's open alert and the end of its suppression period
DATA_SPAN = "#data-span"  # the event time range a dormant rule's data covers
DIGESTS_WRITTEN = "#digests-written"  # the digest periods a dormant rule has raised
# Also "#peers" (detect.kinds: a baseline's peer values), "#team:<name>" (an hourly rule's team pattern) and
# "#alias:<display name>" (detect.identity).

# What older versions called these keys: renamed as the state loads (KeyStore.load), so the next batch writes
# them under their new names and deletes the old rows with it.
LEGACY_KEYS = {"#span": DATA_SPAN, "#digest": DIGESTS_WRITTEN}
LEGACY_PREFIXES = (("~", SUPPRESSED), ("#seen", "#values-seen:step"))


def suppression_key(group_key: str) -> str:
    return SUPPRESSED + group_key


def values_seen_key(step: int, group_key: str) -> str:
    """A sequence step's recently seen values of its ``unseen`` field, for one group key."""
    return f"#values-seen:step{step}|{group_key}"


def is_bookkeeping(key: str) -> bool:
    """Whether a key is not an entity's: a suppression marker or the rule's shared state (either naming)."""
    return key.startswith(("#", SUPPRESSED, "~"))


def current_name(key: str) -> str:
    """The name this version uses for a key an older version may have written."""
    if key.startswith(("~", "#")):
        renamed = LEGACY_KEYS.get(key)
        if renamed is not None:
            return renamed
        for old, new in LEGACY_PREFIXES:
            if key.startswith(old):
                return new + key[len(old):]
    return key


# What one key costs besides its JSON: the key string, the bytes object, the ordered-dict entry (measured
# on CPython 3.11, rounded up). Counted into the byte bound so that many small keys are bounded too.
KEY_OVERHEAD_BYTES = 160


def _pack(state: State) -> bytes:
    """The state's JSON in a bytes object of its own size (orjson's result keeps a 4 KiB buffer)."""
    return bytes(memoryview(orjson.dumps(state)))


class KeyStore:
    """One rule's keys, bounded in count and in bytes. ``get`` marks a key recently used; ``put`` marks it
    dirty and enforces both bounds, evicting the least recently used keys.

    Keys are held as their JSON (what the database stores too): a few dozen bytes where the parsed dicts and
    lists took several hundred, so a key flood stays within the bound in bytes, not only in keys. A key read
    in a batch is parsed once and kept parsed until the batch is flushed, so evaluators work on dicts.
    """

    def __init__(self, rule_id: str, max_keys: int, max_bytes: int = 1 << 62) -> None:
        self.rule_id = rule_id
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.data: OrderedDict[str, bytes] = OrderedDict()
        self.hot: dict[str, State] = {}  # parsed this batch
        self.pinned: dict[str, State] = {}
        self.dirty: set[str] = set()
        self.removed: set[str] = set()
        self.evictions = 0
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.data)

    def get(self, key: str) -> State | None:
        if key.startswith("#"):
            return self.pinned.get(key)
        state: State | None = self.hot.get(key)
        if state is not None:
            self.data.move_to_end(key)
            return state
        blob = self.data.get(key)
        if blob is None:
            return None
        self.data.move_to_end(key)
        state = self.hot[key] = orjson.loads(blob)
        return state

    def put(self, key: str, state: State) -> None:
        self.dirty.add(key)
        self.removed.discard(key)
        if key.startswith("#"):
            self.pinned[key] = state
            return
        if key in self.hot and key in self.data:
            # Read this batch: flush() packs what it is then, so packing it on every event is waste. Its size
            # is the one it had when read until then, and the byte bound is enforced again at the flush.
            self.data.move_to_end(key)
            self.hot[key] = state
            return
        blob = _pack(state)
        old = self.data.get(key)
        if old is not None:
            self.nbytes -= len(old) + len(key) + KEY_OVERHEAD_BYTES
        self.data[key] = blob
        self.data.move_to_end(key)
        self.hot[key] = state
        self.nbytes += len(blob) + len(key) + KEY_OVERHEAD_BYTES
        while len(self.data) > self.max_keys or (self.nbytes > self.max_bytes and len(self.data) > 1):
            self._evict()

    def _evict(self) -> None:
        old, blob = self.data.popitem(last=False)
        self.nbytes -= len(blob) + len(old) + KEY_OVERHEAD_BYTES
        self.hot.pop(old, None)
        self.dirty.discard(old)
        self.removed.add(old)
        self.evictions += 1

    def delete(self, key: str) -> None:
        blob = self.data.pop(key, None)
        if blob is not None:
            self.nbytes -= len(blob) + len(key) + KEY_OVERHEAD_BYTES
        self.hot.pop(key, None)
        if blob is not None or self.pinned.pop(key, None) is not None:
            self.dirty.discard(key)
            self.removed.add(key)

    def items(self) -> list[tuple[str, State]]:
        """Every (non-pinned) key and its state, parsed (O(keys): for scans such as the dormant digest)."""
        hot = self.hot
        return [(k, hot[k] if k in hot else orjson.loads(b)) for k, b in self.data.items()]

    def flush(self, tx: sqlite3.Connection, now: float) -> None:
        """Write dirty keys and delete removed ones inside the caller's transaction."""
        if self.dirty:
            rows = []
            for key in self.dirty:
                if key.startswith("#"):
                    pinned = self.pinned.get(key)
                    if pinned is not None:
                        rows.append((self.rule_id, key, orjson.dumps(pinned), now))
                    continue
                state = self.hot.get(key)
                if state is not None:  # it may have changed in place since put(): store what it is now
                    blob = _pack(state)
                    self.nbytes += len(blob) - len(self.data[key])
                    self.data[key] = blob
                    rows.append((self.rule_id, key, blob, now))
            tx.executemany(
                "INSERT INTO rule_state (rule, key, blob, updated) VALUES (?,?,?,?) ON CONFLICT(rule, key) "
                "DO UPDATE SET blob = excluded.blob, updated = excluded.updated", rows)
        if self.removed:
            tx.executemany("DELETE FROM rule_state WHERE rule = ? AND key = ?",
                           [(self.rule_id, k) for k in self.removed])
        self.dirty.clear()
        self.removed.clear()
        self.hot.clear()
        while self.nbytes > self.max_bytes and len(self.data) > 1:
            self._evict()
        if self.removed:  # evicted after growing in place: deleted with this batch too
            tx.executemany("DELETE FROM rule_state WHERE rule = ? AND key = ?",
                           [(self.rule_id, k) for k in self.removed])
            self.removed.clear()

    def load(self, conn: sqlite3.Connection) -> None:
        """Replace the in-memory keys with what the database holds (least recently updated first)."""
        self.data.clear()
        self.hot.clear()
        self.pinned.clear()
        self.dirty.clear()
        self.removed.clear()
        self.nbytes = 0
        rows = conn.execute("SELECT key, blob FROM rule_state WHERE rule = ? ORDER BY updated", (self.rule_id,))
        for old, blob in rows:
            key = current_name(old)
            if key != old:
                # Written by an older version: rewritten under the new name (and the old row deleted) by the next
                # flush, inside that batch's transaction.
                self.dirty.add(key)
                self.removed.add(old)
            if key.startswith("#"):
                self.pinned[key] = orjson.loads(blob)
            else:
                blob = bytes(blob)
                self.data[key] = blob
                self.nbytes += len(blob) + len(key) + KEY_OVERHEAD_BYTES
                if key != old:
                    self.hot[key] = orjson.loads(blob)
        while len(self.data) > self.max_keys or (self.nbytes > self.max_bytes and len(self.data) > 1):
            self._evict()


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the detection tables on a database opened before this module registered them."""
    conn.executescript(DDL)


def read_meta(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM detect_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def write_meta(tx: sqlite3.Connection, name: str, value: str) -> None:
    tx.execute("INSERT INTO detect_meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
               (name, value))


def drop_rule(tx: sqlite3.Connection, rule_id: str) -> None:
    tx.execute("DELETE FROM rule_state WHERE rule = ?", (rule_id,))


def record_activity(tx: sqlite3.Connection, evaluated: dict[str, int], matched: dict[str, int], now: float) -> None:
    """Add one batch's evaluation and match counts to each rule's row for the day of ``now``."""
    day = int(now // 86400)
    tx.executemany(
        "INSERT INTO rule_activity VALUES (?,?,?,?,?) ON CONFLICT(rule, day) DO UPDATE SET "
        "evaluations = evaluations + excluded.evaluations, matches = matches + excluded.matches, last = excluded.last",
        [(rid, day, n, matched.get(rid, 0), now) for rid, n in evaluated.items() if n])


def last_activity(conn: sqlite3.Connection) -> dict[str, float]:
    """When each rule last evaluated an event, from the committed activity rows."""
    return {rule: float(last) for rule, last in conn.execute("SELECT rule, MAX(last) FROM rule_activity GROUP BY rule")}
