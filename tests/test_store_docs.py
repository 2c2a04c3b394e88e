"""Stored documents as value arrays with shared key lists: nothing lost, old databases still readable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from sentinel.events.model import Event
from sentinel.store.database import Database
from sentinel.store.docs import ShapeReader
from sentinel.store.query import Query, parse_terms
from sentinel.store.sqlite_events import SqliteEventStore, search

NOW = 1_767_225_600.0


def _event(eid: str, **fields: object) -> Event:
    base: dict[str, object] = {"event.id": eid, "sentinel.source": "billing-audit", "host.name": "app01"}
    base.update(fields)
    return Event(eid, NOW, "billing-audit", base)


AWKWARD = _event("e1", **{"user.name": "Jörg \"the\" Müller", "phi.patient_count": 120, "phi.removable": True,
                          "phi.encrypted": False, "url.path": None, "tags": ["a", "ü"], "score": 1.5,
                          "nested": {"k": [1, {"x": "y"}]}, "event.original": "line\twith\nbreaks\x01"})


def _stored_docs(db: Database) -> list[dict]:
    reader = ShapeReader(db.conn)
    return [reader.fields(s, d) for s, d in db.conn.execute("SELECT shape, doc FROM events ORDER BY seq")]


def test_documents_come_back_exactly_with_their_field_order(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    with db.transaction() as tx:
        SqliteEventStore().write(tx, [AWKWARD, _event("e2", **{"user.name": "bob"})])
    docs = _stored_docs(db)
    assert docs == [AWKWARD.fields, _event("e2", **{"user.name": "bob"}).fields]
    assert list(docs[0]) == list(AWKWARD.fields)
    # The key names are stored once per shape, not once per event.
    assert db.conn.execute("SELECT count(*) FROM doc_shapes").fetchone()[0] == 2
    assert "phi.patient_count" not in db.conn.execute("SELECT doc FROM events WHERE id = 'e1'").fetchone()[0]


def test_event_docs_view_gives_analysts_the_whole_object(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    with db.transaction() as tx:
        SqliteEventStore().write(tx, [AWKWARD])
    conn = sqlite3.connect(tmp_path / "events.db")
    (doc,) = conn.execute("SELECT doc FROM event_docs").fetchone()
    assert orjson.loads(doc) == AWKWARD.fields  # booleans stay booleans, nested values stay JSON
    (user,) = conn.execute("""SELECT json_extract(doc, '$."user.name"') FROM event_docs""").fetchone()
    assert user == "Jörg \"the\" Müller"


def test_event_docs_can_be_narrowed_by_an_indexed_column(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    with db.transaction() as tx:
        SqliteEventStore().write(tx, [_event(f"u{i}", **{"user.name": f"user{i % 50}"}) for i in range(500)])
    query = "SELECT doc FROM event_docs WHERE user = 'user7' ORDER BY seq"
    docs = [orjson.loads(d) for (d,) in db.conn.execute(query)]
    assert [d["event.id"] for d in docs] == [f"u{i}" for i in range(7, 500, 50)]
    plan = " ".join(str(r[3]) for r in db.conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "USING INDEX events_user_ts" in plan  # through the view, not a scan of every document


def test_search_on_an_unindexed_field_finds_it_in_every_shape(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    with db.transaction() as tx:
        SqliteEventStore().write(tx, [
            _event("a", **{"source.port": 22}),
            _event("b", **{"user.name": "x", "source.port": 22}),  # same field at another position
            _event("c", **{"source.port": 2222}),
            _event("d", **{"user.name": "y"}),
        ])
    hits = search(db.conn, Query(parse_terms(["source.port=22"]), limit=100))
    assert sorted(h["event.id"] for h in hits) == ["a", "b"]
    assert sorted(h["event.id"] for h in search(db.conn, Query(parse_terms(["source.port>100"]), limit=100))) == ["c"]
    assert len(search(db.conn, Query(parse_terms(["no.such.field=1"]), limit=100))) == 0


def test_a_version_1_database_is_migrated_and_its_documents_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts REAL NOT NULL, source TEXT NOT NULL,
            host TEXT, user TEXT, action TEXT, outcome TEXT, ip TEXT, parsed INTEGER NOT NULL, doc TEXT NOT NULL);
    """)
    legacy = {"event.id": "old1", "user.name": "carol", "source.port": 22}
    old.execute("INSERT INTO events (id, ts, source, user, parsed, doc) "
                "VALUES ('old1', ?, 'linux-auth', 'carol', 1, ?)", (NOW, orjson.dumps(legacy).decode()))
    old.commit()
    old.close()
    db = Database(path)
    with db.transaction() as tx:
        SqliteEventStore().write(tx, [_event("new1", **{"source.port": 22})])
    assert _stored_docs(db)[0] == legacy
    assert sorted(h["event.id"] for h in search(db.conn, Query(parse_terms(["source.port=22"]), limit=10))) == [
        "new1", "old1"]
    view = [orjson.loads(d) for (d,) in db.conn.execute("SELECT doc FROM event_docs ORDER BY seq")]
    assert view[0] == legacy and view[1]["event.id"] == "new1"
    assert db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"


def test_a_rolled_back_batch_leaves_no_event_pointing_at_a_missing_shape(tmp_path: Path) -> None:
    db = Database(tmp_path / "events.db")
    store = SqliteEventStore()
    event = _event("r1", **{"only.here": 1})
    with pytest.raises(RuntimeError), db.transaction() as tx:
        store.write(tx, [event])
        raise RuntimeError("crash before commit")
    assert db.conn.execute("SELECT count(*) FROM doc_shapes").fetchone()[0] == 0
    with db.transaction() as tx:
        store.write(tx, [event])  # the same store object: its memory of the shape must not skip the insert
    assert _stored_docs(db) == [event.fields]
