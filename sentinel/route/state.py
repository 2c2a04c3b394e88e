"""Routing and delivery tables: their DDL is part of the store's schema (store/route_tables.py)."""

from __future__ import annotations

import sqlite3

from sentinel.store.route_tables import DDL


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the routing tables on a connection (idempotent; the daemon may have opened the DB before us)."""
    conn.executescript(DDL)
