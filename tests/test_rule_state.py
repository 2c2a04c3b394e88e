"""Rule state bounded in bytes as well as keys, and the same after a restart."""

from __future__ import annotations

from pathlib import Path

import orjson

from sentinel.detect.state import (
    DATA_SPAN,
    DIGESTS_WRITTEN,
    KEY_OVERHEAD_BYTES,
    KeyStore,
    ensure_schema,
    suppression_key,
    values_seen_key,
)
from sentinel.store.database import Database


def test_a_flood_of_keys_stays_within_the_byte_bound_and_survives_a_reload(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    ensure_schema(db.conn)
    store = KeyStore("r", max_keys=1_000_000, max_bytes=64 * 1024)
    with db.transaction() as tx:
        for i in range(5000):
            store.put(f"user.name=flood{i:07d}", {"e": [[1.0 + i, f"id{i}", 1.0]]})
        store.flush(tx, 0.0)
    assert store.nbytes <= 64 * 1024 and 100 < len(store) < 5000
    assert store.evictions == 5000 - len(store)
    assert store.get("user.name=flood0004999") == {"e": [[5000.0, "id4999", 1.0]]}  # the newest stay
    assert store.get("user.name=flood0000000") is None
    kept = len(store)
    with db.transaction() as tx:  # grown in place after put(): counted at flush, evicted with the batch
        state = store.get("user.name=flood0004999")
        assert state is not None
        state["e"] += [[9.0, "x" * 2000, 1.0]]
        store.put("user.name=flood0004999", state)
        store.flush(tx, 1.0)
    assert store.nbytes <= 64 * 1024 and len(store) < kept
    rows = db.conn.execute("SELECT count(*) FROM rule_state WHERE rule = 'r'").fetchone()[0]
    assert rows == len(store)  # evicted keys left the table in the same batch
    again = KeyStore("r", max_keys=1_000_000, max_bytes=64 * 1024)
    again.load(db.conn)
    assert len(again) == len(store) and again.nbytes == store.nbytes
    assert KEY_OVERHEAD_BYTES > 0


def test_state_written_with_the_old_key_names_loads_under_the_new_ones(tmp_path: Path) -> None:
    """An older version's ``~`` suppression markers, ``#span``/``#digest`` and ``#seen<step>|`` keys keep their
    meaning after an upgrade, and the next flush rewrites them under the new names only."""
    db = Database(tmp_path / "s.db")
    ensure_schema(db.conn)
    old = {"~user.name=alice": {"u": 500.0}, "#span": {"lo": 1.0, "hi": 9.0}, "#digest": {"lo": 2, "hi": 3},
           "#seen0|user.name=bob": {"v": [["abc", 4.0]]}, "user.name=carol": {"e": [[1.0, "id1", 1.0]]}}
    with db.conn:
        db.conn.executemany("INSERT INTO rule_state VALUES ('r', ?, ?, 1.0)",
                            [(k, orjson.dumps(v)) for k, v in old.items()])
    store = KeyStore("r", 100)
    store.load(db.conn)
    assert store.get(suppression_key("user.name=alice")) == {"u": 500.0}
    assert store.get(DATA_SPAN) == {"lo": 1.0, "hi": 9.0}
    assert store.get(DIGESTS_WRITTEN) == {"lo": 2, "hi": 3}
    assert store.get(values_seen_key(0, "user.name=bob")) == {"v": [["abc", 4.0]]}
    assert store.get("user.name=carol") == {"e": [[1.0, "id1", 1.0]]}
    with db.conn:
        store.flush(db.conn, 2.0)
    keys = {k for (k,) in db.conn.execute("SELECT key FROM rule_state WHERE rule = 'r'")}
    assert keys == {"suppressed:user.name=alice", "#data-span", "#digests-written", "#values-seen:step0|user.name=bob",
                    "user.name=carol"}
    again = KeyStore("r", 100)
    again.load(db.conn)
    assert again.get("suppressed:user.name=alice") == {"u": 500.0} and not again.dirty and not again.removed
