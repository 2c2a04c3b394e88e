"""The daemon decoding a backlog in worker processes: the same events, in order, and nothing skipped
when a worker dies."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.daemon.service import Daemon
from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import FakeClock, append, drain, open_daemon, originals, sshd


def _cfg(make_config: MakeConfig, logs: Path, workers: int):
    return make_config(sources=[{"collector": "linux-auth", "paths": [str(logs / "*.log")]}],
                       pipeline={"decode_workers": workers, "batch_max_lines": 500, "read_chunk_bytes": 4096})


def _write_backlog(logs: Path) -> dict[str, list[str]]:
    logs.mkdir()
    written = {}
    for name in ("a.log", "b.log"):
        lines = [sshd(i, host=name[0]) for i in range(3000)]
        append(logs / name, lines)
        written[name] = lines
    return written


def _daemon_on_backlog(tmp_path: Path, make_config: MakeConfig) -> tuple[dict[str, list[str]], FakeClock, Daemon]:
    """Two 3000-line files already written, and a daemon with one decode worker opened on them."""
    written = _write_backlog(tmp_path / "logs")
    clock = FakeClock()
    return written, clock, open_daemon(_cfg(make_config, tmp_path / "logs", 1), clock)


def _committed_offsets(cfg: LoadedConfig) -> dict[str, int]:
    with sqlite3.connect(database_path(cfg)) as conn:
        return {Path(path).name: offset for path, offset in conn.execute("SELECT path, offset FROM checkpoints")}


def test_a_backlog_decoded_by_workers_is_stored_in_order_with_its_checkpoints(tmp_path: Path,
                                                                               make_config: MakeConfig) -> None:
    written, clock, d = _daemon_on_backlog(tmp_path, make_config)
    assert d.pipeline is not None
    first = d.pipeline.step()
    assert first.new == first.events >= 500  # decoded in the daemon while the worker starts
    second = d.pipeline.step()
    assert second.events >= 500 and second.new == 0  # read and queued in the worker, not committed yet
    assert d.pipeline._pool is not None and len(d.pipeline._pool.pids) == 1
    drain(d, clock)
    stored = originals(d.cfg)
    for name, lines in written.items():
        assert [line for line in stored if f" {name[0]} sshd" in line] == lines  # each file in its order
    assert len(stored) == 6000
    sizes = {name: (tmp_path / "logs" / name).stat().st_size for name in written}
    assert _committed_offsets(d.cfg) == sizes
    d.close()


def test_a_worker_killed_mid_backlog_loses_and_repeats_nothing(tmp_path: Path, make_config: MakeConfig) -> None:
    written, clock, d = _daemon_on_backlog(tmp_path, make_config)
    assert d.pipeline is not None
    for _ in range(4):
        d.pipeline.step()
    pool = d.pipeline._pool
    assert pool is not None and pool.busy  # batches are queued in the worker right now
    for pid in pool.pids:
        os.kill(pid, signal.SIGKILL)
    drain(d, clock)
    assert sorted(originals(d.cfg)) == sorted(written["a.log"] + written["b.log"])
    # New workers took over after the recovery.
    assert d.pipeline._pool is not None and d.pipeline._pool.pids and set(d.pipeline._pool.pids) != set(pool.pids)
    d.close()


def test_stopping_with_batches_queued_commits_them(tmp_path: Path, make_config: MakeConfig) -> None:
    written, clock, d = _daemon_on_backlog(tmp_path, make_config)
    cfg = d.cfg
    assert d.pipeline is not None
    read = sum(d.pipeline.step().events for _ in range(4))
    d.close()  # the queued batches are committed on the way out
    assert len(originals(cfg)) == read
    d = open_daemon(cfg, clock)  # and the rest is read from their checkpoints on
    drain(d, clock)
    assert sorted(originals(cfg)) == sorted(written["a.log"] + written["b.log"])
    d.close()


class _FailOnce:
    """A rule stage that fails on its third batch, as a full disk or a bug would."""

    def __init__(self) -> None:
        self.calls = 0

    def process(self, tx: object, events: object, now: float) -> None:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("disk full")


def test_after_a_failed_commit_no_later_batch_commits_past_it(tmp_path: Path, make_config: MakeConfig) -> None:
    written, clock, d = _daemon_on_backlog(tmp_path, make_config)
    cfg = d.cfg
    assert d.pipeline is not None
    d.pipeline.processors.append(_FailOnce())
    with pytest.raises(RuntimeError, match="disk full"):
        for _ in range(20):
            d.pipeline.step()
    d.close()  # must not commit the batches queued behind the failed one
    stored = len(originals(cfg))
    offsets = _committed_offsets(cfg)
    d = open_daemon(cfg, clock)
    drain(d, clock)
    assert sorted(originals(cfg)) == sorted(written["a.log"] + written["b.log"])
    assert stored < 6000 and offsets != _committed_offsets(d.cfg)
    d.close()
