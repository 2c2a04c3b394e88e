"""A batch stored on a thread while the rules judge it (daemon.overlap): the rules still see exactly the events
stored now, once, and a batch that fails to store leaves no trace in the rules' state.

The real rule engine, the embedded store and SQLite; only the batches are put together by hand, at the size
the daemon overlaps (a backlog's)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from sentinel.daemon.overlap import OVERLAP_MIN_EVENTS, store_and_process
from sentinel.events.model import Event
from sentinel.store.sqlite_events import SqliteEventStore
from tests.detect_events import BASE, Harness, ev

RULES = ["auth-brute-force-user", "auth-password-spray"]


def _commit(h: Harness, sink: SqliteEventStore, writer: ThreadPoolExecutor, events: list[Event]) -> list[bool]:
    """One batch through the overlapped store and rules, committed (every record fresh to the ledger)."""
    fresh = [True] * len(events)
    with h.db.transaction() as tx:
        return store_and_process(tx, partial(sink.insert, tx, events), events, fresh, [h.engine], BASE, writer)


def _noise(start: float, n: int, tag: str) -> list[Event]:
    """Failed sign-ins of ``n`` accounts, one each: nothing any rule raises on."""
    return [ev("ssh_login", start + i * 0.01, f"{tag}{i}", "failure", source__ip=f"10.{i // 250}.{i % 250}.{tag[-1]}")
            for i in range(n)]


def _bob(start: float, n: int) -> list[Event]:
    return [ev("ssh_login", start + i, "bob", "failure", source__ip="192.0.2.7") for i in range(n)]


def test_events_stored_before_are_not_judged_again_in_an_overlapped_batch(tmp_path: Path) -> None:
    h = Harness(tmp_path, RULES)
    sink = SqliteEventStore()
    with ThreadPoolExecutor(1) as writer:
        seen = _bob(0, 9)  # one short of the brute-force threshold (10 in 10 minutes)
        assert all(_commit(h, sink, writer, seen + _noise(1, OVERLAP_MIN_EVENTS, "a")))
        assert h.alerts() == []
        # The same nine failures again (ids already stored: the file replayed under another name) in a batch
        # large enough to be judged while it is stored: bob must not reach ten.
        again = seen + _noise(20, OVERLAP_MIN_EVENTS, "b")
        stored = _commit(h, sink, writer, again)
        assert stored == [False] * 9 + [True] * OVERLAP_MIN_EVENTS
        assert h.alerts() == []
        # One new failure makes ten: the state holds the nine once, not twice, and not zero.
        assert _commit(h, sink, writer, _bob(30, 1) + _noise(31, OVERLAP_MIN_EVENTS, "c"))
        alerts = h.alerts()
    assert [(a.rule_id, a.group_key, a.count) for a in alerts] == [("auth-brute-force-user", "user.name=bob", 10)]


def test_a_batch_that_fails_to_store_leaves_the_rules_as_they_were(tmp_path: Path) -> None:
    h = Harness(tmp_path, RULES)
    sink = SqliteEventStore()
    with ThreadPoolExecutor(1) as writer:
        assert all(_commit(h, sink, writer, _bob(0, 5) + _noise(1, OVERLAP_MIN_EVENTS, "a")))
        batch = _bob(10, 5) + _noise(11, OVERLAP_MIN_EVENTS, "b")
        # The disk is full for this batch: the store's INSERT fails on its thread while the rules have judged
        # the batch (and bob's count reached ten in memory).
        pages = h.db.conn.execute("PRAGMA page_count").fetchone()[0]
        h.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            _commit(h, sink, writer, batch)
        assert h.alerts() == []
        h.db.conn.execute("PRAGMA max_page_count = 1073741823")
        # The batch read again (as the pipeline rewinds to its checkpoints): bob's ten failures raise one alert,
        # counted from the committed five plus these five, not from the rolled-back evaluation's ten.
        assert all(_commit(h, sink, writer, batch))
        alerts = h.alerts()
    assert [(a.rule_id, a.group_key, a.count) for a in alerts] == [("auth-brute-force-user", "user.name=bob", 10)]
    stored = h.db.conn.execute("SELECT count(*) FROM events WHERE user = 'bob'").fetchone()[0]
    assert stored == 10


def test_overlapped_and_in_turn_judge_a_backlog_alike(tmp_path: Path) -> None:
    def run(path: Path, batch: int) -> list[tuple[str, str, int]]:
        h = Harness(path, RULES)
        sink = SqliteEventStore()
        events = []
        for minute in range(6):
            events += _bob(minute * 120, 4)
            events += _noise(minute * 120 + 5, 300, f"m{minute}")
        events.sort(key=lambda e: e.timestamp)
        with ThreadPoolExecutor(1) as writer:
            for at in range(0, len(events), batch):
                _commit(h, sink, writer, events[at:at + batch])
        return [(a.rule_id, a.group_key, a.count) for a in h.alerts()]

    # Batches of 600 are overlapped, batches of 60 are not (OVERLAP_MIN_EVENTS): the same alerts either way.
    overlapped = run(tmp_path / "overlapped", 600)
    in_turn = run(tmp_path / "in-turn", 60)
    assert overlapped == in_turn
    # Bob's 24 failures: the alert at the tenth, the 14 later ones joined to it while it suppresses.
    assert overlapped == [("auth-brute-force-user", "user.name=bob", 24)]
