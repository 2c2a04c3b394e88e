"""The state directory's identity: which database belongs to it, and noticing when that database goes away.

A random id is kept twice: in ``state_dir/state-id`` and in the database's ``meta`` table. At start, a
state directory that has an id but no database (deleted), or a database carrying another id or none
(swapped in, or created by something else), is refused: starting anyway would begin an empty history
and, with ``start_position: end``, skip everything written meanwhile. ``--reset-state`` accepts the state
as it is and gives it a new id; the daemon records that in its audit trail.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sentinel.errors import StoreError

STATE_ID_FILE = "state-id"


def _read_id_file(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the state directory's id: {exc.strerror or exc}") from None
    return text or None


def _database_id(db_path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()
    except sqlite3.DatabaseError:
        return None  # no meta table yet (or not a database at all: opening it reports that)
    finally:
        conn.close()
    return None if row is None else str(row[0])


def check_state(state_dir: Path, db_path: Path, reset: bool) -> dict[str, Any] | None:
    """Refuse a state directory whose database is missing or is not its own, unless ``reset``.

    Returns what was accepted (for the audit record) when ``reset`` overrode a problem, else None.
    """
    id_path = state_dir / STATE_ID_FILE
    expected = _read_id_file(id_path)
    if expected is None:
        return None  # a new state directory, or one from before ids: the database is adopted
    if not db_path.exists():
        problem, reason = (f"{db_path}: the database is missing, but {state_dir} was in use (its id {expected} is "
                           f"in {id_path}): it was deleted or moved"), "database missing"
    else:
        found = _database_id(db_path)
        if found == expected:
            return None
        problem, reason = (f"{db_path}: this database belongs to another state directory (its id is "
                           f"{found or 'none'}, {id_path} says {expected}): it was replaced"), "database replaced"
    if not reset:
        raise StoreError(f"{problem}. Put the right database back, or start with --reset-state to accept the "
                         f"state as it is now (recorded in the audit trail; with start_position: end, lines written "
                         f"meanwhile are not read)")
    return {"reason": reason, "database": str(db_path), "previous_state_id": expected}


def bind_state(conn: sqlite3.Connection, state_dir: Path, renew: bool) -> str:
    """Make the open database and the state directory carry the same id (a new one when ``renew``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()
    state_id = str(row[0]) if row is not None and not renew else uuid.uuid4().hex
    if row is None or renew:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('state_id', ?)", (state_id,))
    id_path = state_dir / STATE_ID_FILE
    if _read_id_file(id_path) != state_id:
        tmp = id_path.with_name(id_path.name + ".tmp")
        tmp.write_text(state_id + "\n")
        os.replace(tmp, id_path)
    return state_id


class FileIdentity:
    """The database file as opened: notices it being deleted or replaced while the daemon writes to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = os.stat(path)
        self.key = (st.st_dev, st.st_ino)

    def verify(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"{self.path}: the database was deleted while sentinel was writing to it; stopping so "
                             f"that nothing more is written into the deleted file. Restore it from a backup, or "
                             f"start with --reset-state") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot check the database file: {exc.strerror or exc}") from None
        if (st.st_dev, st.st_ino) != self.key:
            raise StoreError(f"{self.path}: the database file was replaced while sentinel was writing to it "
                             f"(inode {self.key[1]} became {st.st_ino}); stopping. Start again to check the new "
                             f"file, or with --reset-state to accept it")
