"""Backfill decoded in worker processes stores exactly what decoding in one process stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel.daemon.build import database_path
from sentinel.daemon.collectors import load_collectors
from sentinel.daemon.decode_pool import DecodePool, DecodeWorkerDied
from sentinel.daemon.replay import replay_files
from sentinel.decode.engine import Decoder
from sentinel.store.database import Database
from sentinel.store.docs import ShapeReader
from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import sshd

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"


def _awkward_log(path: Path) -> None:
    lines = [sshd(i).encode() for i in range(9000)]  # more than two batches of 4096
    lines[10] = b"Nov 27 09:00:00 web1 sshd[1]: Failed password for \xff\xfe from 10.0.0.1 port 22 ssh2"
    lines[20] = b"Nov 27 09:00:00 web1 sshd[1]: Invalid user a\x00b from 10.0.0.2 port 22"
    lines[30] = b"this is not syslog at all"
    lines[40] = b"Feb 30 09:00:00 web1 sshd[1]: impossible date"
    lines[50] = b"Nov 27 09:00:00 web1 sshd[1]: Accepted publickey for " + b"x" * 5000 + b" from 10.0.0.3 port 22 ssh2"
    lines[60] = "Nov 27 09:00:00 web1 sshd[1]: Failed password for jörg from 2001:db8::1 port 22 ssh2".encode()
    path.write_bytes(b"\n".join(lines) + b"\n")


def _docs(cfg_path: Path) -> list[dict]:
    db = Database(cfg_path)
    try:
        reader = ShapeReader(db.conn)
        docs = [reader.fields(s, d) for s, d in db.conn.execute("SELECT shape, doc FROM events ORDER BY seq")]
    finally:
        db.close()
    for doc in docs:
        doc.pop("event.ingested")  # the wall-clock time of decoding, different per run
        if {"unparsed", "timestamp_out_of_range"} & set(doc.get("tags", ())):
            doc.pop("@timestamp")  # no usable time in the line: the time of decoding stands in
    return docs


def test_workers_store_the_same_events_in_the_same_order(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    _awkward_log(log)
    results, docs = [], []
    for workers in (0, 2):
        cfg = make_config(state_dir=str(tmp_path / f"state{workers}"), pipeline={"max_line_bytes": 1024},
                          sources=[{"collector": "linux-auth", "paths": [str(log)]}])
        results.append(replay_files(cfg, "linux-auth", [str(log)], progress=False, detect=False, workers=workers))
        docs.append(_docs(database_path(cfg)))
    inline, parallel = results
    assert inline.records == parallel.records == inline.new == parallel.new == 9000
    assert inline.outcomes == parallel.outcomes and inline.outcomes["unparsed"] >= 2
    assert docs[0] == docs[1]
    by_offset = {d["sentinel.log.offset"]: d for d in docs[1]}
    tags = {tag for d in by_offset.values() for tag in d.get("tags", [])}
    assert {"invalid_utf8", "nul_bytes", "unparsed", "truncated"} <= tags


def test_rules_see_the_events_a_worker_decoded(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    # 30 failures for one user from one address within a minute: the brute-force rules fire.
    log.write_text("".join(f"Nov 27 09:00:{i:02d} web1 sshd[9]: Failed password for admin from 203.0.113.9 "
                           f"port {4000 + i} ssh2\n" for i in range(30)))
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    replay_files(cfg, "linux-auth", [str(log)], progress=False, detect=True, workers=1)
    db = Database(database_path(cfg))
    try:
        rules = {r for (r,) in db.conn.execute("SELECT DISTINCT rule_id FROM alerts")}
    finally:
        db.close()
    assert "auth-brute-force-user" in rules


def test_a_worker_that_dies_is_reported_not_waited_for(tmp_path: Path) -> None:
    loaded, errors = load_collectors(SHIPPED / "collectors")
    assert not errors
    decoder = Decoder(loaded["linux-auth"].spec, "UTC", "test")
    records = [("linux-auth", "s", "p", i * 100, i * 100 + 99, sshd(i).encode(), False, 0, 0.0) for i in range(100)]
    with DecodePool({"linux-auth": decoder}, workers=1) as pool:
        first = list(pool.submit(records, time.time()))  # decoded here while the worker starts
        assert [len(b.rows) for b in first] == [100] and len(pool.pids) == 1
        assert list(pool.submit(records, time.time())) == []  # with the worker now
        assert [len(b.rows) for b in pool.drain()] == [100]
        for pid in pool.pids:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(DecodeWorkerDied):
            for _ in range(4):
                list(pool.submit(records, time.time()))
            list(pool.drain())


def test_cli_replay_with_workers_and_a_clear_error_for_a_bad_count(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    log.write_text("".join(sshd(i) + "\n" for i in range(50)))
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])

    def sentinel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sentinel", "replay", "-c", str(cfg.path), "--collector",
                               "linux-auth", "-q", "--no-detect", *args], capture_output=True, text=True, timeout=120,
                              cwd=ROOT)

    done = sentinel("--workers", "2", str(log))
    assert done.returncode == 0, done.stderr
    assert "50 new events stored" in done.stdout
    bad = sentinel("--workers", "-1", str(log))
    assert bad.returncode != 0 and "--workers" in bad.stderr
