"""The embedded store: search, retention by age and by size, and replay (plain and gzip) without duplicates."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson

from sentinel.events.model import Event
from sentinel.store.database import Database
from sentinel.store.query import Query, parse_terms
from sentinel.store.sqlite_events import SqliteEventStore, enforce_retention, search
from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import sshd

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0
NOW = 1_767_225_600.0


def _event(i: int, ts: float, user: str = "alice", outcome: str = "failure", pad: int = 0) -> Event:
    fields = {"event.id": f"e{i:08d}", "@timestamp": ts, "sentinel.source": "linux-auth", "host.name": "web01",
              "user.name": user, "event.action": "ssh_login", "event.outcome": outcome,
              "source.ip": f"10.0.0.{i % 250 + 1}", "event.original": "x" * pad, "source.port": 2000 + i}
    return Event(f"e{i:08d}", ts, "linux-auth", fields)


def test_search_by_fields_time_and_text(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    store = SqliteEventStore()
    with db.transaction() as tx:
        store.write(tx, [_event(i, NOW - i * 60, user="alice" if i % 2 else "bob",
                                outcome="success" if i % 5 == 0 else "failure") for i in range(100)])
    assert len(search(db.conn, Query(parse_terms(["user.name=alice"]), limit=1000))) == 50
    hits = search(db.conn, Query(parse_terms(["user.name=bob", "event.outcome=success"]), limit=1000))
    assert {h["user.name"] for h in hits} == {"bob"} and len(hits) == 10
    assert len(search(db.conn, Query(parse_terms(["source.port>=2090"]), limit=1000))) == 10
    recent = search(db.conn, Query([], since=NOW - 600, limit=1000))
    assert len(recent) == 11 and recent[0]["event.id"] == "e00000000"  # newest first
    assert len(search(db.conn, Query(parse_terms(["source.ip=10.0.0.1*"]), limit=1000))) == 12


def test_replaying_a_batch_stores_nothing_twice(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    store = SqliteEventStore()
    events = [_event(i, NOW) for i in range(10)]
    with db.transaction() as tx:
        assert store.write(tx, events) == 10
    with db.transaction() as tx:
        assert store.write(tx, events) == 0
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 10


def test_retention_by_age_then_by_size(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    store = SqliteEventStore(clock=lambda: NOW - 31 * DAY)  # stored a month ago: old by arrival too
    with db.transaction() as tx:
        store.write(tx, [_event(i, NOW - (i % 40) * DAY, pad=2000) for i in range(4000)])
    result = enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=1000, now=NOW)
    remaining = db.conn.execute("SELECT count(*), min(ts) FROM events").fetchone()
    assert result.by_age == 900 and remaining[0] == 3100 and remaining[1] >= NOW - 30 * DAY
    result = enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=2, now=NOW)
    page_size = db.conn.execute("PRAGMA page_size").fetchone()[0]
    used = (db.conn.execute("PRAGMA page_count").fetchone()[0]
            - db.conn.execute("PRAGMA freelist_count").fetchone()[0]) * page_size
    assert result.by_size > 0 and used <= 2 * 1024 * 1024
    newest_kept = db.conn.execute("SELECT max(ts) FROM events").fetchone()[0]
    oldest_kept = db.conn.execute("SELECT min(ts) FROM events").fetchone()[0]
    assert newest_kept == NOW and oldest_kept > NOW - 30 * DAY  # the oldest went first
    assert (tmp_path / "events.db").stat().st_size <= 3 * 1024 * 1024  # space handed back to the file system


def test_replay_gzip_and_plain_then_search_cli(tmp_path: Path, make_config: MakeConfig) -> None:
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(tmp_path / "none.log")]}])
    plain = tmp_path / "auth.log"
    plain.write_text("".join(sshd(i) + "\n" for i in range(300)))
    packed = tmp_path / "auth.log.2.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write("".join(sshd(i) + "\n" for i in range(300, 500)))

    def sentinel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)

    first = sentinel("replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", "--no-detect",
                     str(plain), str(packed))
    assert first.returncode == 0, first.stderr
    assert "replayed 500 records from 2 file(s): 500 new events stored, 0 already present" in first.stdout
    again = sentinel("replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", "--no-detect", str(packed))
    assert "200 records from 1 file(s): 0 new events stored, 200 already present" in again.stdout
    found = sentinel("search", "-c", str(cfg.path), "user.name=user7", "--format", "json", "--since", "3650d")
    assert found.returncode == 0, found.stderr
    docs = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert [d["event.original"] for d in docs] == [sshd(7)]
    assert docs[0]["source.ip"] == "10.0.7.8" and docs[0]["event.outcome"] == "failure"
    bad = sentinel("search", "-c", str(cfg.path), "user.name")
    assert bad.returncode == 1 and "expected FIELD=VALUE" in bad.stderr


def test_backdated_events_are_kept_until_they_are_old_by_arrival_too(tmp_path: Path) -> None:
    """A line stamped seven years ago, written today, must not vanish at the next retention pass."""
    db = Database(tmp_path / "events.db")
    arrival = [NOW - 40 * DAY]
    store = SqliteEventStore(clock=lambda: arrival[0])
    with db.transaction() as tx:
        store.write(tx, [_event(i, NOW - 40 * DAY) for i in range(10)])  # old by both once 30 days pass
    arrival[0] = NOW
    with db.transaction() as tx:
        store.write(tx, [_event(100 + i, NOW - 7 * 365 * DAY) for i in range(5)])  # backdated, arrived now
    result = enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=1000, now=NOW)
    kept = [r[0] for r in db.conn.execute("SELECT id FROM events ORDER BY seq")]
    assert result.by_age == 10 and kept == [f"e{100 + i:08d}" for i in range(5)]
    # Thirty-one days later they are old by arrival as well, and go.
    result = enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=1000, now=NOW + 31 * DAY)
    assert result.by_age == 5
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM ingest_marks").fetchone()[0] <= 1


def test_seqs_handed_out_again_after_everything_was_deleted_get_fresh_marks(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    arrival = [NOW - 40 * DAY]
    store = SqliteEventStore(clock=lambda: arrival[0])
    with db.transaction() as tx:
        store.write(tx, [_event(i, NOW - 40 * DAY) for i in range(10)])
    assert enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=1000, now=NOW).by_age == 10
    arrival[0] = NOW
    with db.transaction() as tx:  # seq starts at 1 again in an empty table
        store.write(tx, [_event(100 + i, NOW - 7 * 365 * DAY) for i in range(3)])
    assert enforce_retention(db.lock, db.conn, max_age_days=30, max_size_mb=1000, now=NOW).by_age == 0
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
