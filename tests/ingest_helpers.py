"""Helpers for ingest tests: a pipeline on a temp config, stepping it until it is idle."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import orjson

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.daemon.service import Daemon
from sentinel.metrics.registry import Metrics
from tests.fixtures.receiver import FakeClock


def open_daemon(cfg: LoadedConfig, clock: FakeClock | None = None) -> Daemon:
    d = Daemon(cfg, Metrics(), clock or FakeClock(1_767_225_600.0))
    d.open()
    return d


def drain(d: Daemon, clock: FakeClock | None = None, rounds: int = 200) -> int:
    """Step until nothing more is read (moving the fake clock so idle flushes and rotation grace pass)."""
    assert d.pipeline is not None
    total = 0
    quiet = 0
    for _ in range(rounds):
        result = d.pipeline.step()
        total += result.events
        if not result.busy:
            quiet += 1
            if clock is not None:
                clock.advance(1.5)
            if quiet >= 4:
                break
        else:
            quiet = 0
    return total


def run_to_idle(cfg: LoadedConfig, clock: FakeClock | None = None) -> int:
    """One daemon run: open, read until idle, stop cleanly; the events it stored."""
    d = open_daemon(cfg, clock)
    try:
        return drain(d, clock)
    finally:
        d.close()


def stored(cfg: LoadedConfig) -> list[dict]:
    conn = sqlite3.connect(database_path(cfg))
    try:
        # Through the event_docs view an analyst would use, which rebuilds each document from its shape.
        return [orjson.loads(r[0]) for r in conn.execute("SELECT doc FROM event_docs ORDER BY seq")]
    finally:
        conn.close()


def originals(cfg: LoadedConfig) -> list[str]:
    return [d["event.original"] for d in stored(cfg)]


def append(path: Path, lines: Iterable[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def sshd(i: int, host: str = "web01") -> str:
    return (f"Nov 27 08:{(i // 60) % 60:02d}:{i % 60:02d} {host} sshd[{1000 + i}]: "
            f"Failed password for user{i} from 10.0.{i % 250}.{i % 200 + 1} port {20000 + i} ssh2")
