"""Replay and the daemon store each line once and judge it once (issue #11, items 6 and 7).

From the user's side: real files, real `logrotate` rotations (compress + delaycompress), the
`sentinel replay` / `sentinel run` commands, and what an analyst would count afterwards: the stored
lines and the alerts.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from sentinel.collect.identity import FINGERPRINT_BYTES, fingerprint
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.assemble import detection_processors
from sentinel.daemon.build import database_path
from sentinel.daemon.service import Daemon
from sentinel.metrics.registry import Metrics
from sentinel.store.ledger import print_of
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import FakeClock
from tests.ingest_helpers import append, drain, originals, sshd

ROOT = Path(__file__).resolve().parents[1]
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def sentinel(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def replay(cfg: LoadedConfig, *paths: Path, detect: bool = True) -> str:
    args = ["replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", *([] if detect else ["--no-detect"])]
    done = sentinel(*args, *map(str, paths))
    assert done.returncode == 0, done.stderr
    return done.stdout


def alerts(cfg: LoadedConfig) -> list[tuple[str, int, list[str]]]:
    conn = sqlite3.connect(database_path(cfg))
    try:
        return [(r[0], r[1], orjson.loads(r[2])) for r in
                conn.execute("SELECT rule_id, count, event_ids FROM alerts ORDER BY rule_id, first_seen")]
    finally:
        conn.close()


def failed(user: str, i: int, host: str = "web01") -> str:
    return (f"Nov 27 09:00:{i % 60:02d} {host} sshd[{4000 + i}]: Failed password for {user} from 203.0.113.9 "
            f"port {40000 + i} ssh2")


def daemon(cfg: LoadedConfig, clock: FakeClock, rules: bool = True) -> Daemon:
    d = Daemon(cfg, Metrics(), clock)
    d.open()
    assert d.db is not None
    if rules:
        d.processors.extend(detection_processors(cfg, d.db, d.metrics))
    return d


def logrotate(tmp_path: Path, log: Path) -> None:
    """Rotate the way Debian rotates /var/log/auth.log: rename + create, compress with delaycompress."""
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{log} {{\n  rotate 9\n  missingok\n  notifempty\n  compress\n  delaycompress\n"
                    f"  create 0640 root root\n}}\n")
    done = subprocess.run([LOGROTATE, "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def lines_stored(cfg: LoadedConfig) -> Counter[str]:
    return Counter(originals(cfg))


# ------------------------------------------------------------------------------------------- item 6
def test_replaying_three_failures_four_times_raises_no_alert(tmp_path: Path, make_config: MakeConfig) -> None:
    """The issue's reproduction: 3 failed passwords replayed 4 times used to give a count-10 alert."""
    cfg = make_config(sources=[])
    log = tmp_path / "auth.log"
    log.write_text("".join(failed("alice", i) + "\n" for i in range(3)))
    outputs = [replay(cfg, log) for _ in range(4)]
    assert "3 new events stored, 0 already present" in outputs[0]
    assert all("0 new events stored, 3 already present" in out for out in outputs[1:])
    assert alerts(cfg) == []


def test_a_cut_off_gzip_and_a_vanished_rotation_are_named_and_the_other_files_replayed(
        tmp_path: Path, make_config: MakeConfig) -> None:
    """A backfill of /var/log/auth.log* races logrotate: a rotation may go between the command line and
    its turn, and a .gz may be cut off. Each is named; what could be read is stored; the rest goes on."""
    cfg = make_config(sources=[])
    cut = tmp_path / "auth.log.3.gz"
    whole = gzip.compress("".join(failed("bob", i) + "\n" for i in range(200)).encode())
    cut.write_bytes(whole[: len(whole) // 2])
    gone = tmp_path / "auth.log.4.gz"
    gone.write_bytes(gzip.compress((failed("carol", 0) + "\n").encode()))
    good = tmp_path / "auth.log.1"
    good.write_text("".join(failed("dave", i) + "\n" for i in range(5)))
    from sentinel.daemon.replay import replay_files

    gone.unlink()  # after the paths were chosen, before replay reached it
    result = replay_files(cfg, "linux-auth", [str(cut), str(gone), str(good)], progress=False, detect=False)
    assert [p.split(":")[0] for p in result.unreadable] == [str(cut), str(gone)]
    assert "No such file" in result.unreadable[1]
    stored = lines_stored(cfg)
    assert all(stored[failed("dave", i)] == 1 for i in range(5))
    assert 0 < sum(n for line, n in stored.items() if " bob " in line) < 200  # what the cut-off gzip held
    done = sentinel("replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", str(cut), str(good))
    assert done.returncode == 1
    assert f"error: cannot read {cut}" in done.stderr and "Traceback" not in done.stderr
    assert "0 new events stored" in done.stdout  # nothing of either stored twice


def test_a_short_file_replayed_before_the_daemon_reads_it_is_stored_and_judged_once(
        tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    append(log, [failed("erin", i) for i in range(6)])  # under 1 KiB: fingerprinted on all of it
    assert "6 new events stored" in replay(cfg, log)
    append(log, [failed("erin", i) for i in range(6, 10)])
    clock = FakeClock(time.time())  # the replay judged its events at the real time
    d = daemon(cfg, clock)  # reads auth.log from byte 0
    drain(d, clock)
    d.close()
    assert lines_stored(cfg) == Counter(failed("erin", i) for i in range(10))
    [(rule, count, ids)] = alerts(cfg)
    assert (rule, count, len(set(ids))) == ("auth-brute-force-user", 10, 10)


def test_ten_failures_replayed_four_times_alert_once_with_ten_distinct_events(tmp_path: Path,
                                                                             make_config: MakeConfig) -> None:
    cfg = make_config(sources=[])
    log = tmp_path / "auth.log"
    log.write_text("".join(failed("bob", i) + "\n" for i in range(10)))
    for _ in range(4):
        replay(cfg, log)
    [(rule, count, ids)] = alerts(cfg)
    assert rule == "auth-brute-force-user" and count == 10 and len(set(ids)) == 10 == len(ids)


def test_a_daemon_reading_its_lines_again_stores_and_alerts_nothing_twice(tmp_path: Path,
                                                                          make_config: MakeConfig) -> None:
    """A rewound checkpoint (restored backup, a tailer bug re-reading a batch): the lines come again."""
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    append(log, [failed("carol", i) for i in range(12)])
    clock = FakeClock()
    d = daemon(cfg, clock)
    drain(d, clock)
    d.close()
    # 12 failures: the alert opens at the 10th and keeps counting while it is open (#12).
    assert [(r, c) for r, c, _ in alerts(cfg)] == [("auth-brute-force-user", 12)]
    conn = sqlite3.connect(database_path(cfg))
    with conn:
        conn.execute("UPDATE checkpoints SET offset = 0")
        conn.execute("DELETE FROM rule_state")  # as if the engine's memory of them were gone too
    conn.close()
    append(log, [failed("carol", 100)])
    clock.advance(7200)  # past the alert's suppression: a re-judged batch would alert again
    d = daemon(cfg, clock)
    drain(d, clock)
    d.close()
    assert lines_stored(cfg) == Counter([failed("carol", i) for i in range(12)] + [failed("carol", 100)])
    assert [(r, c) for r, c, _ in alerts(cfg)] == [("auth-brute-force-user", 12)]
    assert "0 new events stored, 13 already present" in replay(cfg, log)
    assert len(alerts(cfg)) == 1


@pytest.mark.integration
def test_elasticsearch_replays_four_times_alert_once(tmp_path: Path, make_config: MakeConfig, es_node,
                                                     es_prefix: str) -> None:
    from sentinel.store.elasticsearch.mappings import events_alias
    from tests.fixtures.elasticsearch import es_settings, spool_depth

    cfg = make_config(sources=[], storage={"backend": "elasticsearch",
                                           "elasticsearch": es_settings(es_node.url, es_prefix)})
    three = tmp_path / "three.log"
    three.write_text("".join(failed("alice", i) + "\n" for i in range(3)))
    ten = tmp_path / "ten.log"
    ten.write_text("".join(failed("bob", i, host="web02") + "\n" for i in range(10)))
    outputs = [replay(cfg, three, ten) for _ in range(4)]
    assert "13 new events stored, 0 already present" in outputs[0]
    assert all("0 new events stored, 13 already present" in out for out in outputs[1:])
    [(rule, count, ids)] = alerts(cfg)
    assert (rule, count, len(set(ids))) == ("auth-brute-force-user", 10, 10)
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    assert es.count(index=events_alias(es_prefix, "linux-auth"))["count"] == 13
    assert spool_depth(cfg) == 0


def test_elasticsearch_replay_over_its_spool_bound_waits_for_the_shipper_and_stores_everything(
        tmp_path: Path, make_config: MakeConfig, es_node, es_prefix: str) -> None:
    """A spool far smaller than the file: replay waits for the shipper between its transactions (the shipper
    deletes what it shipped, which an open transaction would block) and every line reaches Elasticsearch once."""
    from sentinel.store.elasticsearch.mappings import events_alias
    from tests.fixtures.elasticsearch import es_settings, spool_depth
    from tests.storm import make_storm_log

    lines = 20_000
    log = tmp_path / "storm.log"
    make_storm_log(log, lines)
    cfg = make_config(sources=[], storage={"backend": "elasticsearch", "elasticsearch": es_settings(
        es_node.url, es_prefix, spool_max_mb=0.5, bulk_max_docs=2000)})
    done = sentinel("replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", "--no-detect", str(log),
                    timeout=240)
    assert done.returncode == 0, done.stderr
    assert f"{lines} new events stored, 0 already present" in done.stdout
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    assert es.count(index=events_alias(es_prefix, "linux-auth"))["count"] == lines
    assert spool_depth(cfg) == 0


# ------------------------------------------------------------------------------------------- item 7
def test_fingerprints_of_replayed_content_match_the_tailers(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3000))
    fd = os.open(path, os.O_RDONLY)
    try:
        for n in (1, 100, FINGERPRINT_BYTES):
            assert print_of(path.read_bytes()[:n]) == fingerprint(fd, n)
    finally:
        os.close(fd)


def _tail_through_two_rotations(tmp_path: Path, cfg: LoadedConfig, log: Path) -> list[str]:
    """The daemon tails auth.log while logrotate makes auth.log.1 and then auth.log.2.gz of it."""
    clock = FakeClock()
    d = daemon(cfg, clock)
    written: list[str] = []
    for part in range(3):
        lines = [sshd(i) for i in range(part * 400, part * 400 + 400)]
        append(log, lines)
        written += lines
        drain(d, clock)
        if part < 2:
            logrotate(tmp_path, log)
            drain(d, clock)
    d.close()
    assert sorted(p.name for p in tmp_path.glob("auth.log*")) == ["auth.log", "auth.log.1", "auth.log.2.gz"]
    assert lines_stored(cfg) == Counter(written)
    return written


def test_replay_of_a_compressed_rotation_the_daemon_tailed_stores_nothing(tmp_path: Path,
                                                                          make_config: MakeConfig) -> None:
    """The issue's reproduction: `sentinel replay auth.log.2.gz` used to store all of it again."""
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    written = _tail_through_two_rotations(tmp_path, cfg, log)
    assert "replayed 400 records from 1 file(s): 0 new events stored, 400 already present" in replay(
        cfg, tmp_path / "auth.log.2.gz")
    backfill = sorted(tmp_path.glob("auth.log*"), reverse=True)  # .2.gz, .1, the live file
    assert "1200 records from 3 file(s): 0 new events stored, 1200 already present" in replay(cfg, *backfill)
    assert lines_stored(cfg) == Counter(written)


def test_backfill_in_any_order_then_the_daemon_stores_each_line_once(tmp_path: Path,
                                                                    make_config: MakeConfig) -> None:
    """Rotations made before sentinel ran are backfilled first (in every order), then the daemon starts."""
    log = tmp_path / "auth.log"
    written: list[str] = []
    for part in range(3):
        lines = [sshd(i) for i in range(part * 300, part * 300 + 300)]
        append(log, lines)
        written += lines
        if part < 2:
            logrotate(tmp_path, log)
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    files = {p.name: p for p in tmp_path.glob("auth.log*")}
    assert sorted(files) == ["auth.log", "auth.log.1", "auth.log.2.gz"]
    assert "900 new events stored" in replay(cfg, files["auth.log.1"], files["auth.log"], files["auth.log.2.gz"])
    assert "0 new events stored, 900 already present" in replay(cfg, files["auth.log.2.gz"], files["auth.log.1"],
                                                               files["auth.log"])
    clock = FakeClock()
    d = daemon(cfg, clock)  # start_position: beginning, so it reads auth.log from byte 0
    drain(d, clock)
    more = [sshd(i) for i in range(900, 950)]
    append(log, more)
    drain(d, clock)
    d.close()
    assert lines_stored(cfg) == Counter(written + more)


def test_a_gz_of_a_file_the_daemon_read_half_of_stores_the_other_half(tmp_path: Path,
                                                                     make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}])
    lines = [failed(f"u{i % 3}", i) for i in range(1000)]
    append(log, lines[:500])
    clock = FakeClock()
    d = daemon(cfg, clock)
    drain(d, clock)
    d.close()
    first = len(originals(cfg))
    assert first == 500
    append(log, lines[500:])  # written while sentinel was down
    before = alerts(cfg)
    # Rotated and compressed while sentinel was down; only the .gz is left.
    packed = tmp_path / "auth.log.1.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(log.read_bytes())
    log.unlink()
    out = replay(cfg, packed)
    assert f"1000 records from 1 file(s): {1000 - first} new events stored, {first} already present" in out
    assert lines_stored(cfg) == Counter(lines)
    after = alerts(cfg)
    judged = [eid for _, _, ids in after for eid in ids]
    assert len(judged) == len(set(judged))  # no event counted in two alerts
    assert all(a in after for a in before)


def test_files_sharing_their_first_kib_are_not_taken_for_one_another(tmp_path: Path,
                                                                    make_config: MakeConfig) -> None:
    header = [sshd(i) for i in range(30)]  # ~3 KiB both files begin with
    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    append(a, header + [failed("alice", i) for i in range(60)])
    append(b, header + [failed("bob", i) for i in range(60)])
    assert a.read_bytes()[:FINGERPRINT_BYTES] == b.read_bytes()[:FINGERPRINT_BYTES]
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(a)]}])
    clock = FakeClock()
    d = daemon(cfg, clock)
    drain(d, clock)  # the daemon read a.log
    d.close()
    # b.log is another file: its lines are its own, the 30 it shares with a.log included.
    assert "90 new events stored, 0 already present" in replay(cfg, b)
    assert "0 new events stored, 180 already present" in replay(cfg, a, b)
    c = tmp_path / "c.log"
    append(c, header + [failed("carol", i) for i in range(60)])
    assert "90 new events stored, 0 already present" in replay(cfg, c)
    assert "0 new events stored, 270 already present" in replay(cfg, c, b, a)
    # Shorter than a.log, and parting from it a few lines after the shared part: still its own file.
    short = tmp_path / "short.log"
    append(short, header + [failed("dave", i) for i in range(4)])
    assert "34 new events stored, 0 already present" in replay(cfg, short)
    expected = Counter(header * 4 + [failed(u, i) for u in ("alice", "bob", "carol") for i in range(60)]
                       + [failed("dave", i) for i in range(4)])
    assert lines_stored(cfg) == expected
    # A copy of the start of a.log (cut at a line's end) is a.log's content: nothing new.
    cut = a.read_bytes()[:a.read_bytes().index(b"\n", 5000) + 1]
    head = tmp_path / "a-head.log"
    head.write_bytes(cut)
    lines_in_cut = cut.count(b"\n")
    assert f": 0 new events stored, {lines_in_cut} already present" in replay(cfg, head)
    assert lines_stored(cfg) == expected


def test_replays_running_concurrently_with_the_daemon_and_logrotate(tmp_path: Path,
                                                                   make_config: MakeConfig) -> None:
    """`sentinel run` tails auth.log while it is written and rotated; backfills of auth.log* run
    meanwhile, two at a time, again and again (SQLite serialises them with the daemon's batches)."""
    log = tmp_path / "auth.log"
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(log)]}],
                      pipeline={"start_position": "beginning", "poll_interval_ms": 20})
    log.touch()
    run = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg.path)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    written: list[str] = []
    replays: list[subprocess.Popen[str]] = []
    try:
        for part in range(6):
            lines = [sshd(i) for i in range(part * 500, part * 500 + 500)]
            for at in range(0, 500, 100):
                append(log, lines[at:at + 100])
                time.sleep(0.05)
            written += lines
            time.sleep(3.0)  # longer than the tailer's grace for a rotated file
            logrotate(tmp_path, log)
            files = sorted(tmp_path.glob("auth.log*"), key=lambda p: (part + len(p.name)) % 3)
            replays += [subprocess.Popen([sys.executable, "-m", "sentinel", "replay", "-c", str(cfg.path),
                                          "--collector", "linux-auth", "-q", *map(str, files)], cwd=ROOT,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                        for _ in range(2)]
        for p in replays:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(lines_stored(cfg).values()) < len(written):
            time.sleep(0.5)
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    final = replay(cfg, *sorted(tmp_path.glob("auth.log*")))
    assert f"): 0 new events stored, {len(written)} already present" in final
    stored = lines_stored(cfg)
    assert stored == Counter(written), (sum(stored.values()), len(written),
                                        sum(n - 1 for n in stored.values() if n > 1))


def test_the_store_says_which_events_of_a_partly_known_batch_are_new(tmp_path: Path) -> None:
    from sentinel.events.model import Event
    from sentinel.store.database import Database
    from sentinel.store.sqlite_events import SqliteEventStore

    def ev(i: int) -> Event:
        return Event(f"id{i:04d}", 1_767_225_600.0 + i, "linux-auth", {"event.id": f"id{i:04d}", "n": i})

    db = Database(tmp_path / "events.db")
    store = SqliteEventStore()
    with db.transaction() as tx:
        assert store.insert(tx, [ev(i) for i in (1, 3, 5)]) == [True, True, True]
    with db.transaction() as tx:
        # 3 and 5 known; 4 twice in one batch: only its first row is stored
        assert store.insert(tx, [ev(i) for i in (2, 3, 4, 5, 4, 6)]) == [True, False, True, False, False, True]
    with db.transaction() as tx:
        assert store.insert(tx, [ev(i) for i in (1, 2)]) == [False, False]
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 6


def _alert_keys(db: Path) -> list[tuple[str, str, str, int]]:
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute("SELECT id, rule_id, group_key, count FROM alerts"))
    finally:
        conn.close()


@pytest.mark.slow
def test_replay_killed_at_random_moments_then_run_again_stores_and_alerts_as_one_uninterrupted_run(
        tmp_path: Path) -> None:
    """Replay commits several batches a transaction on a thread of its own and writes the rules' state once for
    them: SIGKILLs between and inside those transactions must leave nothing half-stored or half-judged."""
    import random

    from tests.storm import make_storm_log
    from tests.storm_bench import _config

    lines = 80_000  # five transactions of four 4,096-line batches
    log = tmp_path / "storm.log"
    make_storm_log(log, lines)

    def run(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "sentinel", "replay", "-c", str(_config(tmp_path, name, log)),
                                 "--collector", "linux-auth", "-q", str(log)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    reference = run("reference")
    assert reference.wait(timeout=300) == 0
    expected = _alert_keys(tmp_path / "reference" / "events.db")
    assert len(expected) > 10  # the storm raises alerts of several rules

    db = tmp_path / "killed" / "events.db"

    def stored() -> int:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return 0  # not created yet
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    rng = random.Random(18)
    stored_at_kills: list[int] = []
    for _ in range(4):
        # Killed once a random share more is committed, then a moment later: inside the next transaction, or
        # between two, or while the rules' state is written.
        target = stored() + int(rng.uniform(0.05, 0.15) * lines)
        proc = run("killed")
        while proc.poll() is None and stored() < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        stored_at_kills.append(stored())
    # Killed part-way three times at least (a run may finish before its kill once little is left).
    assert len([n for n in stored_at_kills if 0 < n < lines]) >= 3, stored_at_kills
    final = run("killed")
    assert final.wait(timeout=300) == 0
    conn = sqlite3.connect(db)
    try:
        count, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone()
    finally:
        conn.close()
    assert count == distinct == lines
    assert _alert_keys(db) == expected
