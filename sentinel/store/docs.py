"""Stored event documents: a JSON array of the values, with the field names kept once per shape.

An event's field names are the same for every line a decoder pattern matches, and they were more
than half of every stored document. So the store keeps each distinct ordered key list once, in
``doc_shapes``, and each event's document as the array of its values. A shape's id is a hash of its
keys, so a decode worker can compute it without asking the database, and a rolled-back batch can
never leave an id pointing at the wrong keys. ``event_docs`` (a view, replaced at start when its
definition changed) gives the whole JSON object back for ad-hoc SQL, next to the indexed columns to
filter on. Rows with shape 0 hold a whole JSON object (written before shapes, or by hand).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import lru_cache
from hashlib import blake2b
from typing import Any

import orjson

from sentinel.errors import StoreError

Keys = tuple[str, ...]

VIEW = """CREATE VIEW event_docs AS
SELECT e.seq, e.id, e.ts, e.source, e.host, e.user, e.action, e.outcome, e.ip,
       CASE WHEN e.shape = 0 THEN e.doc ELSE (
           SELECT json_group_object(k.value, CASE json_type(e.doc, '$[' || k.key || ']')
                                                 WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
                                                 ELSE json_extract(e.doc, '$[' || k.key || ']') END)
           FROM json_each(s.keys) AS k) END AS doc
FROM events AS e LEFT JOIN doc_shapes AS s ON s.id = e.shape"""

DDL = f"""
CREATE TABLE IF NOT EXISTS doc_shapes (id INTEGER PRIMARY KEY, keys TEXT NOT NULL);
{VIEW.replace("CREATE VIEW", "CREATE VIEW IF NOT EXISTS", 1)};
"""


@lru_cache(maxsize=4096)
def shape_id(keys: Keys) -> int:
    """A positive 63-bit id derived from the ordered key list (never 0, which means a whole-object doc)."""
    digest = blake2b("\n".join(keys).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF) or 1


def encode(fields: Mapping[str, Any]) -> tuple[int, Keys, str]:
    """(shape id, keys, values as a JSON array) of a flat field mapping."""
    keys = tuple(fields)
    return shape_id(keys), keys, orjson.dumps(list(fields.values())).decode()


def decode(keys: Keys | None, doc: str | bytes) -> dict[str, Any]:
    """The fields back from a stored document; ``keys`` None for a whole-object (shape 0) document."""
    values = orjson.loads(doc)
    if keys is None:
        return values if isinstance(values, dict) else {}
    if len(values) != len(keys):
        raise StoreError(f"stored document has {len(values)} values for {len(keys)} fields")
    return dict(zip(keys, values))  # noqa: B905 - lengths checked above, once rather than per pair


class ShapeWriter:
    """Makes sure the shapes a batch uses exist, inside the batch's own transaction."""

    def __init__(self) -> None:
        self._checked: set[int] = set()

    def ensure(self, tx: sqlite3.Connection, shapes: Mapping[int, Keys]) -> None:
        # Always INSERT OR IGNORE, even for shapes written before: an earlier batch may have rolled back.
        tx.executemany("INSERT OR IGNORE INTO doc_shapes (id, keys) VALUES (?, ?)",
                       [(sid, orjson.dumps(list(keys)).decode()) for sid, keys in shapes.items()])
        for sid, keys in shapes.items():
            if sid in self._checked:
                continue
            stored = tx.execute("SELECT keys FROM doc_shapes WHERE id = ?", (sid,)).fetchone()
            if stored is None or tuple(orjson.loads(stored[0])) != keys:
                raise StoreError(f"document shape {sid} already stands for other fields (hash collision)")
            self._checked.add(sid)


class ShapeReader:
    """Turns stored (shape, doc) pairs back into fields, loading each shape's keys once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._keys: dict[int, Keys] = {}

    def fields(self, shape: int, doc: str | bytes) -> dict[str, Any]:
        if not shape:
            return decode(None, doc)
        keys = self._keys.get(shape)
        if keys is None:
            row = self.conn.execute("SELECT keys FROM doc_shapes WHERE id = ?", (shape,)).fetchone()
            if row is None:
                raise StoreError(f"stored event refers to unknown document shape {shape}")
            keys = self._keys[shape] = tuple(orjson.loads(row[0]))
        return decode(keys, doc)


def field_expression(conn: sqlite3.Connection, name: str) -> str:
    """SQL giving field ``name`` of an ``events`` row, whatever its shape (for filters on unindexed fields)."""
    quoted = name.replace('"', "").replace("'", "")
    branches: list[str] = []
    for sid, keys_json in conn.execute("SELECT id, keys FROM doc_shapes"):
        keys = orjson.loads(keys_json)
        if name in keys:
            branches.append(f"WHEN {int(sid)} THEN json_extract(doc, '$[{keys.index(name)}]')")
    whole = f"json_extract(doc, '$.\"{quoted}\"')"
    if not branches:
        return f"(CASE WHEN shape = 0 THEN {whole} END)"
    return f"(CASE shape WHEN 0 THEN {whole} {' '.join(branches)} END)"

