"""Rule state bounded in bytes as well as keys, and the same after a restart."""

from __future__ import annotations

from pathlib import Path

from sentinel.detect.state import KEY_OVERHEAD_BYTES, KeyStore, ensure_schema
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
