"""Where a batch's events go inside the batch transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Protocol

from sentinel.events.model import Event


class EventSink(Protocol):
    """Writes events inside the caller's transaction (events table, or the Elasticsearch spool)."""

    name: str

    def write(self, tx: sqlite3.Connection, events: Sequence[Event]) -> int:
        """Write the events; returns how many were new (replays of known ids are skipped)."""
        ...

    def insert(self, tx: sqlite3.Connection, events: Sequence[Event]) -> list[bool]:
        """Write the events; returns, per event, whether it was new (only new ones may reach the rules)."""
        ...
