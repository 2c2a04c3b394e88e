"""The journal source: real journal files (written by systemd-journal-remote), followed by real journalctl."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentinel.collect.journal import OUTPUT_FIELDS, JournalEvents, JournalSettings, JournalSource
from sentinel.daemon.collectors import load_collectors
from sentinel.decode.engine import Decoder
from sentinel.events.records import RawRecord
from sentinel.store.docs import ShapeReader
from tests.journal_helpers import JournalWriter, journal_count, sshd_failure

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"


def _decoder() -> Decoder:
    collectors, errors = load_collectors(SHIPPED / "collectors")
    assert not errors
    return Decoder(collectors["linux-auth"].spec, source_type="journal")


def _record(data: bytes, offset: int = 7) -> RawRecord:
    return RawRecord("linux-auth", "journal:abc", "journal", offset, offset + 1, data)


# ------------------------------------------------------------------------------------------ decoding
def test_journal_fields_map_onto_ecs_and_message_meets_the_auth_patterns() -> None:
    line = (b'{"__CURSOR":"s=abc;i=7;b=b1;m=1;t=2;x=3","__REALTIME_TIMESTAMP":"1764000000123456",'
            b'"_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_PID":"4242","_SYSTEMD_UNIT":"ssh.service",'
            b'"PRIORITY":"5","SYSLOG_FACILITY":"4",'
            b'"MESSAGE":"Failed password for invalid user bob from 203.0.113.9 port 5022 ssh2"}')
    ev, outcome = _decoder().decode(_record(line), 1764000001.0)
    f = ev.fields
    assert outcome == "parsed"
    assert f["@timestamp"] == "2025-11-24T16:00:00.123Z"
    assert (f["host.name"], f["process.name"], f["process.pid"]) == ("web1", "sshd", 4242)
    assert f["systemd.unit"] == "ssh.service"
    assert (f["log.syslog.severity.code"], f["log.level"], f["log.syslog.priority"]) == (5, "notice", 37)
    assert (f["event.action"], f["event.outcome"], f["user.name"], f["source.ip"]) == \
        ("ssh_login", "failure", "bob", "203.0.113.9")
    assert f["journald.cursor"] == "s=abc;i=7;b=b1;m=1;t=2;x=3"
    assert "log.file.path" not in f and "sentinel.log.offset" not in f


def test_message_as_a_byte_array_is_decoded_and_invalid_utf8_flagged() -> None:
    text = b"Accepted publickey for alice from 10.1.2.3 port 22 ssh2"
    good = b'{"SYSLOG_IDENTIFIER":"sshd","MESSAGE":[' + ",".join(str(b) for b in text).encode() + b"]}"
    ev, outcome = _decoder().decode(_record(good), 1.0)
    assert outcome == "parsed" and ev.fields["user.name"] == "alice"
    assert "invalid_utf8" not in (ev.fields.get("tags") or [])
    bad = b"Accepted publickey for " + b"\xff\xfe" + b" from 10.1.2.3 port 22 ssh2"
    line = b'{"SYSLOG_IDENTIFIER":"sshd","MESSAGE":[' + ",".join(str(b) for b in bad).encode() + b"]}"
    ev, outcome = _decoder().decode(_record(line), 1.0)
    assert outcome == "parsed" and "invalid_utf8" in ev.fields["tags"]
    assert ev.fields["user.name"] == "\ufffd\ufffd"


@pytest.mark.parametrize("line", [b"not json", b'["a list"]', b'{"MESSAGE":[1,2,999]}',
                                  b'{"__REALTIME_TIMESTAMP":"soon","MESSAGE":"x"}'])
def test_a_broken_entry_is_stored_as_unparsed(line: bytes) -> None:
    ev, outcome = _decoder().decode(_record(line), 1.0)
    assert outcome == "unparsed"
    assert ev.fields["event.original"] == line.decode()
    assert ev.fields["sentinel.parse_error"]


# ------------------------------------------------------------------------- following, in process
def _follow(source: JournalSource, want: int, timeout: float = 10.0) -> list[RawRecord]:
    got: list[RawRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        source.discover()
        got += source.read(1000)
        time.sleep(0.02)
    return got


def _visible(directory: Path, entries: int) -> None:
    deadline = time.monotonic() + 10
    while journal_count(directory) < entries and time.monotonic() < deadline:
        time.sleep(0.02)
    assert journal_count(directory) == entries


def _children(name: str) -> list[int]:
    out = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                    out.append(int(pid))
            except OSError:
                continue
    return out


def test_journalctl_dying_is_counted_and_following_resumes_after_the_last_entry(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "journal" / "remote.journal")
    restarts: Counter[str] = Counter()
    events = JournalEvents(on_restart=lambda source, reason: restarts.update([reason]))
    settings = JournalSettings(directory=str(tmp_path / "journal"), identifiers=("sshd",),
                               start_position="beginning", restart_min_seconds=0.05)
    source = JournalSource("linux-auth", settings, events)
    try:
        writer.write_many([sshd_failure(i) for i in range(5)])
        first = _follow(source, 5)
        assert len(first) == 5
        (pid,) = _children("journalctl")
        os.kill(pid, signal.SIGKILL)
        writer.write_many([sshd_failure(i) for i in range(5, 12)])
        rest = _follow(source, 7)
        assert restarts["killed"] == 1
        seqnums = [r.offset for r in first + rest]
        assert seqnums == list(range(1, 13)), "every entry once, in order, across the restart"
    finally:
        source.close()
        writer.close()


def test_start_position_end_starts_after_the_newest_entry_and_commits_that_at_once(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "journal" / "remote.journal")
    settings = JournalSettings(directory=str(tmp_path / "journal"), identifiers=("sshd",), start_position="end")
    try:
        writer.write_many([sshd_failure(i) for i in range(3)])
        _visible(tmp_path / "journal", 3)
        source = JournalSource("linux-auth", settings)
        source.discover()
        # Committed before any new entry arrives: a crash now must not start "at the end" again later.
        (cp,) = source.checkpoints()
        assert cp.offset == 3 and cp.cursor
        writer.write(sshd_failure(3))
        got = _follow(source, 1)
        assert [r.offset for r in got] == [4]
        source.close()
    finally:
        writer.close()


# ------------------------------------------------------------------------------- the daemon itself
def _config(tmp_path: Path, journal: Path, **pipeline: Any) -> Path:
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "collectors_dir": str(SHIPPED / "collectors"),
        "rules_dir": str(tmp_path / "no-rules"),
        "alerts_dir": str(tmp_path / "no-alerts"),
        "pipeline": {"start_position": "beginning", "poll_interval_ms": 50, **pipeline},
        "metrics": {"enabled": False}, "api": {"enabled": False}, "detection": {"enabled": False},
        "notify": {"enabled": False},
        "sources": [{"collector": "linux-auth", "type": "journal", "journal": {"directory": str(journal)}}],
    }
    path = tmp_path / "sentinel.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(config), "--log-level", "WARNING"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out)


def _stored(db: Path) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        reader = ShapeReader(conn)
        return [reader.fields(shape, doc) for shape, doc in conn.execute("SELECT shape, doc FROM events")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_entries_appended_while_the_daemon_runs_are_stored_within_a_second(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = JournalWriter(journal / "remote.journal")
    writer.write({"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "not followed"})
    db = tmp_path / "state" / "events.db"
    proc = _daemon(_config(tmp_path, journal), tmp_path / "daemon.log")
    try:
        writer.write(sshd_failure(0))
        deadline = time.monotonic() + 30
        while _count(db) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(db) == 1, (tmp_path / "daemon.log").read_text()
        delays = []
        for i in range(1, 21):
            writer.write(sshd_failure(i))
            written = time.monotonic()
            while _count(db) < i + 1 and time.monotonic() - written < 5:
                time.sleep(0.01)
            delays.append(time.monotonic() - written)
        assert max(delays) < 1.0, f"slowest entry took {max(delays):.2f} s (all: {delays})"
        events = _stored(db)
        assert {e["process.name"] for e in events} == {"sshd"}, "only the followed identifiers"
        assert Counter(e["event.action"] for e in events) == {"ssh_login": 21}
    finally:
        _stop(proc)
        writer.close()


class _Writer(threading.Thread):
    def __init__(self, writer: JournalWriter, total: int) -> None:
        super().__init__(daemon=True)
        self.writer, self.total = writer, total
        self.rng = random.Random(7)

    def run(self) -> None:
        i = 0
        while i < self.total:
            n = min(self.rng.randint(1, 60), self.total - i)
            self.writer.write_many([sshd_failure(k) for k in range(i, i + n)])
            i += n
            time.sleep(self.rng.uniform(0.0, 0.03))


@pytest.mark.slow
@pytest.mark.parametrize("decode_workers", [0, 1], ids=["decode-inline", "decode-workers"])
def test_sigkill_at_random_moments_loses_and_duplicates_no_entry(tmp_path: Path, decode_workers: int) -> None:
    journal = tmp_path / "journal"
    total = 6000
    journal_writer = JournalWriter(journal / "remote.journal")
    config = _config(tmp_path, journal, batch_max_lines=500, decode_workers=decode_workers)
    db = tmp_path / "state" / "events.db"
    log = tmp_path / "daemon.log"
    rng = random.Random(20261201)
    writer = _Writer(journal_writer, total)
    proc = _daemon(config, log)
    writer.start()
    kills = 0
    try:
        while writer.is_alive() or kills < 10:
            time.sleep(rng.uniform(0.3, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.0, 0.5))  # down a while: entries pile up meanwhile
            proc = _daemon(config, log)
        writer.join()
        assert journal_count(journal) == total
        deadline = time.monotonic() + 120
        while _count(db) < total and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate would show as a count above the total
    finally:
        _stop(proc)
        journal_writer.close()
    stored = Counter(e["message"] for e in _stored(db))
    written = Counter(str(sshd_failure(i)["MESSAGE"]) for i in range(total))
    assert kills >= 10
    duplicates = {m: n for m, n in stored.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} entries stored more than once"
    assert not written - stored, f"{sum((written - stored).values())} entries lost"
    assert sum(stored.values()) == total
    assert Counter(e["event.action"] for e in _stored(db)) == {"ssh_login": total}, "decoded as journal entries"
    assert len(_children("journalctl")) == 0
    orphans = subprocess.run(["pgrep", "-f", f"--directory={journal}"], capture_output=True, text=True).stdout
    assert not orphans.split(), "journalctl processes outlived the killed daemons"


def test_a_vacuumed_cursor_is_a_counted_stored_gap_and_reading_resumes_at_the_oldest_entry(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    old = JournalWriter(journal / "old.journal")
    old.write_many([sshd_failure(i) for i in range(5)])
    config = _config(tmp_path, journal)
    db = tmp_path / "state" / "events.db"
    log = tmp_path / "daemon.log"
    proc = _daemon(config, log)
    try:
        deadline = time.monotonic() + 30
        while _count(db) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(db) == 5
    finally:
        _stop(proc)
    # While the daemon is down, more entries arrive and then the old file is vacuumed away with some
    # entries the daemon never read: the committed cursor no longer exists.
    old.write_many([sshd_failure(i) for i in range(5, 8)])
    old.close()
    (journal / "old.journal").unlink()
    new = JournalWriter(journal / "new.journal", start_us=old.clock_us + 1_000_000,
                        monotonic_us=old.monotonic_us + 1_000_000)
    new.write_many([sshd_failure(i) for i in range(100, 104)])
    proc = _daemon(config, log)
    try:
        deadline = time.monotonic() + 30
        while _count(db) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        _stop(proc)
        new.close()
    events = _stored(db)
    gaps = [e for e in events if e.get("event.action") == "journal_gap"]
    assert len(gaps) == 1, log.read_text()
    assert gaps[0]["event.kind"] == "pipeline_error" and "journal_gap" in gaps[0]["tags"]
    messages = [e["message"] for e in events if e.get("process.name") == "sshd"]
    assert sorted(messages) == sorted(str(sshd_failure(i)["MESSAGE"]) for i in [*range(5), *range(100, 104)])
    assert "no longer holds the last entry read" in log.read_text()
    conn = sqlite3.connect(db)
    try:
        outcomes = dict(conn.execute("SELECT outcome, count FROM source_stats WHERE source = 'linux-auth'"))
    finally:
        conn.close()
    assert outcomes["parsed"] == 9


def test_check_says_which_input_auto_picks(tmp_path: Path) -> None:
    collectors = tmp_path / "collectors"
    collectors.mkdir()
    auth = tmp_path / "auth.log"
    text = (SHIPPED / "collectors" / "linux-auth.yaml").read_text()
    (collectors / "linux-auth.yaml").write_text(text.replace("paths: [/var/log/auth.log, /var/log/secure]",
                                                             f"paths: [{auth}]"))
    config = tmp_path / "sentinel.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "collectors_dir": str(collectors),
                                      "rules_dir": str(tmp_path / "rules"), "alerts_dir": str(tmp_path / "alerts"),
                                      "sources": [{"collector": "linux-auth"}]}))

    def check() -> str:
        done = subprocess.run([sys.executable, "-m", "sentinel", "check", "-c", str(config)], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
        return done.stdout + done.stderr

    assert f"source linux-auth: reads the systemd journal (type: auto; none of {auth} exists)" in check()
    auth.touch()
    assert f"source linux-auth: reads {auth} (type: auto; its files exist)" in check()


def test_replay_journal_backfills_from_since_once_however_often_it_runs(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    early = JournalWriter(journal / "early.journal", start_us=1_764_000_000_000_000)  # 2025-11-24 16:00 UTC
    early.write_many([sshd_failure(i) for i in range(4)])
    early.close()
    late = JournalWriter(journal / "late.journal", start_us=1_764_100_000_000_000)  # 2025-11-25 19:46 UTC
    late.write_many([sshd_failure(i) for i in range(10, 16)])
    late.write({"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "not followed"})
    late.close()
    config = _config(tmp_path, journal)

    def replay(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "sentinel", "replay", "-c", str(config), "--collector",
                               "linux-auth", "--journal", "--quiet", "--no-detect", *extra], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "replayed 6 records" in replay("--since", "2025-11-25 00:00:00")
    db = tmp_path / "state" / "events.db"
    assert sorted(e["user.name"] for e in _stored(db)) == sorted(f"user{i % 7}" for i in range(10, 16))
    again = replay()
    assert "replayed 10 records" in again and "4 new events stored, 6 already present" in again
    assert _count(db) == 10


def test_a_new_journal_file_while_following_is_read_on_like_a_rotation_or_a_restarted_writer(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    first = JournalWriter(journal / "system.journal")
    settings = JournalSettings(directory=str(journal), identifiers=("sshd",), start_position="beginning")
    source = JournalSource("linux-auth", settings)
    second: JournalWriter | None = None
    try:
        first.write_many([sshd_failure(i) for i in range(3)])
        got = _follow(source, 3)
        first.close()  # the writer goes away (journald restarting, or rotating to a new file)
        second = JournalWriter(journal / "system@rotated.journal", start_us=first.clock_us + 1000,
                               monotonic_us=first.monotonic_us + 1000)
        second.write_many([sshd_failure(i) for i in range(3, 6)])
        got += _follow(source, 3)
    finally:
        source.close()
        if second is not None:
            second.close()
    assert [r.data.count(b"Failed password") for r in got] == [1] * 6
    assert sorted(_decoder().decode(r, 1.0)[0].fields["user.name"] for r in got) == \
        sorted(f"user{i % 7}" for i in range(6))


def test_changing_what_is_followed_is_no_gap_but_a_vacuumed_entry_is(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = JournalWriter(journal / "system.journal")
    gaps: list[int] = []
    events = JournalEvents(on_gap=lambda source, n: gaps.append(n))
    sshd_only = JournalSettings(directory=str(journal), identifiers=("sshd",), start_position="beginning")
    try:
        writer.write_many([sshd_failure(0), {"SYSLOG_IDENTIFIER": "sudo", "MESSAGE": "before"}, sshd_failure(1),
                           {"SYSLOG_IDENTIFIER": "sudo", "MESSAGE": "after"}])
        _visible(journal, 4)
        first = JournalSource("linux-auth", sshd_only, events)
        assert len(_follow(first, 2)) == 2
        checkpoints = first.checkpoints()
        first.close()
        # The operator now follows sudo instead: the committed sshd entry exists but no longer matches.
        sudo_only = JournalSettings(directory=str(journal), identifiers=("sudo",), start_position="beginning")
        second = JournalSource("linux-auth", sudo_only, events)
        second.restore(checkpoints)
        got = _follow(second, 1, timeout=3)
        second.close()
    finally:
        writer.close()
    assert [b'"after"' in r.data for r in got] == [True]
    assert gaps == []


def test_an_entry_cut_off_when_journalctl_dies_is_read_again_whole(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = JournalWriter(journal / "system.journal")
    writer.write_many([sshd_failure(i) for i in range(3)])
    _visible(journal, 3)
    settings = JournalSettings(directory=str(journal), identifiers=("sshd",), start_position="beginning",
                               restart_min_seconds=0.05)
    first_line = subprocess.run(["journalctl", f"--directory={journal}", "--output=json", "--all",
                                 "--output-fields=" + ",".join(OUTPUT_FIELDS), "--no-pager", "-n", "3"],
                                capture_output=True, check=True).stdout.split(b"\n")[0]
    # The real journalctl, whose output is cut in the middle of the second entry the first time it runs.
    wrapper = tmp_path / "journalctl"
    wrapper.write_text(f'#!/bin/sh\nif [ ! -e "{tmp_path}/cut" ]; then touch "{tmp_path}/cut"; '
                       f'journalctl "$@" | head -c {len(first_line) + 60}; exit 0; fi\nexec journalctl "$@"\n')
    wrapper.chmod(0o755)
    restarts: Counter[str] = Counter()
    source = JournalSource("linux-auth", replace(settings, journalctl=str(wrapper)),
                           JournalEvents(on_restart=lambda s, reason: restarts.update([reason])))
    try:
        got = _follow(source, 3)
    finally:
        source.close()
        writer.close()
    assert restarts["exited"] == 1, "the cut-off run ended and was restarted"
    assert [r.offset for r in got] == [1, 2, 3]
    assert all(_decoder().decode(r, 1.0)[1] == "parsed" for r in got), "no half entry stored"
