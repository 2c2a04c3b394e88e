"""Crash safety: kill the daemon at random moments while files are written, rotated, compressed and deleted.

The shape of an independent chaos harness: five files in bursts and pauses, lines split across writes (even
inside a UTF-8 character), real logrotate (rename + create, compress, delaycompress), rename with the writer
still appending to the old file for a while, copytruncate, gzip of old rotations (written over a while, as
gzip does, so the daemon sees them half done) and their deletion, SIGKILLs and SIGTERMs, killed decode
workers, content deleted while the daemon is down, and backfill replays of finished rotations (themselves
killed now and then) racing the tail. Afterwards the multiset of lines written equals the multiset stored,
except the lines deleted by design, which must be logged as lost.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import psutil
import pytest
import yaml

from sentinel.store.docs import ShapeReader

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
TOTAL_LINES = int(os.environ.get("SENTINEL_CRASH_LINES", "300000"))  # fewer only to debug by hand
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def _line(name: str, seq: int) -> str:
    minute, second = divmod(seq % 3600, 60)
    user = f"usér{seq % 977}" if seq % 7 == 0 else f"user{seq % 977}"  # some two-byte characters to split
    return (f"Nov 27 09:{minute:02d}:{second:02d} {name.split('.')[0]} sshd[{seq % 60000}]: "
            f"Failed password for {user} from 10.{seq % 200}.{seq % 250}.{seq % 199 + 1} port {seq % 60000} ssh2")


class Writer(threading.Thread):
    """Writes TOTAL lines over four files with their own rotation styles, in bursts and pauses.

    - auth.log: the real logrotate (create, compress, delaycompress); the writer reopens a little later.
    - app.log: copytruncate (the writer keeps its O_APPEND descriptor).
    - secure.log: rename + create, the writer still appending to the renamed file for up to a second;
      rotations older than two generations are gzipped, older than eight deleted.
    - quiet.log: a line now and then, never rotated: it must not wait behind the others' backlogs.
    """

    FILES = ("auth.log", "app.log", "secure.log", "quiet.log")

    def __init__(self, directory: Path, total: int, seed: int, db: Path) -> None:
        super().__init__(daemon=True)
        self.dir = directory
        self.db = db
        self.last_line: dict[int, str] = {}  # secure.log generation -> the last line written to it
        self.closing: dict[int, str] = {}  # renamed, but the writer may still append to it
        self.total = total
        self.rng = random.Random(seed)
        self.written: list[str] = []
        self.rotations = Counter[str]()
        self.error: BaseException | None = None
        self.conf = directory.parent / "logrotate.conf"
        self.conf.write_text(
            f"{directory / 'auth.log'} {{\n  rotate 50\n  create 0640\n  compress\n  delaycompress\n"
            "  missingok\n  notifempty\n}\n")
        self.state = directory.parent / "logrotate.state"
        self._secure_generation = 0  # how many times secure.log was renamed

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by the test, not lost in a thread
            self.error = exc

    def _open(self, name: str) -> BinaryIO:
        return (self.dir / name).open("ab", buffering=0)

    def _run(self) -> None:
        rng = self.rng
        handles = {name: self._open(name) for name in self.FILES}
        old: dict[str, tuple[BinaryIO, float]] = {}  # renamed files still written to until a deadline
        generation = Counter[str]()
        seq = 0
        while seq < self.total:
            burst = rng.choice((50, 200, 1000, 3000))
            for _ in range(burst):
                if seq >= self.total:
                    break
                name = "quiet.log" if rng.random() < 0.002 else rng.choice(self.FILES[:3])
                # A renamed file the writer has not reopened yet still gets the lines.
                handle = old[name][0] if name in old and time.monotonic() < old[name][1] else handles[name]
                data = (_line(name, seq) + "\n").encode()
                if name == "secure.log":
                    g = self.generation_written(handle, handles)
                    self.closing[g] = data[:-1].decode()
                if rng.random() < 0.02:  # split across writes, possibly inside a UTF-8 character
                    cut = rng.randrange(1, len(data))
                    handle.write(data[:cut])
                    time.sleep(0.001)
                    handle.write(data[cut:])
                else:
                    handle.write(data)
                self.written.append(data[:-1].decode())
                seq += 1
                self._rotate(seq, handles, old, generation)
            # About 6,000 lines/s on average, in bursts, with pauses now and then.
            time.sleep(burst / 6000 * rng.uniform(0.5, 1.5) + rng.choice((0.0, 0.0, 0.05, 0.3)))
        for h in handles.values():
            h.close()
        for h, _ in old.values():
            h.close()

    def generation_written(self, handle: BinaryIO, handles: dict[str, BinaryIO]) -> int:
        """Which secure.log generation a line written through ``handle`` lands in."""
        g = self._secure_generation  # the renamed file; the current one becomes the next rotation
        return g + 1 if handle is handles["secure.log"] else g

    def _rotate(self, seq: int, handles: dict[str, BinaryIO], old: dict[str, tuple[BinaryIO, float]],
                generation: Counter[str]) -> None:
        if seq % 25_000 == 12_345:
            subprocess.run([LOGROTATE, "-f", "-s", str(self.state), str(self.conf)], check=True,
                           capture_output=True)
            # The writer has not reopened yet: it goes on in the renamed file for a moment.
            old["auth.log"] = (handles["auth.log"], time.monotonic() + self.rng.uniform(0.0, 0.3))
            handles["auth.log"] = self._open("auth.log")
            self.rotations["logrotate"] += 1
        if seq % 20_000 == 9_871:
            shutil.copyfile(self.dir / "app.log", self.dir / f"app.log.{generation['app.log'] + 1}")
            os.truncate(self.dir / "app.log", 0)
            generation["app.log"] += 1
            self.rotations["copytruncate"] += 1
        if seq % 15_000 == 7_777:
            generation["secure.log"] += 1
            g = generation["secure.log"]
            self._secure_generation = g
            for done in [k for k in self.closing if k < g]:  # no handle writes to these any more
                self.last_line[done] = self.closing.pop(done)
            os.rename(self.dir / "secure.log", self.dir / f"secure.log.{g}")
            old["secure.log"] = (handles["secure.log"], time.monotonic() + self.rng.uniform(0.1, 1.0))
            handles["secure.log"] = self._open("secure.log")
            self.rotations["rename"] += 1
            if g > 2 and (self.dir / f"secure.log.{g - 2}").exists():
                src = self.dir / f"secure.log.{g - 2}"
                # As gzip does, over a while: the daemon sees the .gz empty, then with compressed data that
                # ends early, while the original is still there.
                with src.open("rb") as fin, gzip.open(f"{src}.gz", "wb") as fout:
                    time.sleep(0.15)  # created, still empty: gzip writes its header with its first output
                    while chunk := fin.read(32 << 10):
                        fout.write(chunk)
                        fout.flush()
                        time.sleep(0.005)
                src.unlink()
                self.rotations["gzip"] += 1
            # Old rotations are deleted once the daemon has stored their last line (deleting content it never
            # read would be a loss by design, which the doomed.log part of the test covers).
            for old_g in sorted(self.last_line):
                gz = self.dir / f"secure.log.{old_g}.gz"
                if old_g <= g - 4 and gz.exists() and _is_stored(self.db, self.last_line[old_g]):
                    gz.unlink()
                    del self.last_line[old_g]
                    self.rotations["delete"] += 1
        for name, (h, deadline) in list(old.items()):
            if time.monotonic() >= deadline:
                h.close()
                del old[name]


class Backfill(threading.Thread):
    """An operator's ``sentinel replay`` of finished rotations while the daemon tails, is killed and restarts.

    Each run takes one or two rotations in a random order, mostly among the newest (whose end the daemon
    may not have read yet, so the replay stores it first and the tail must then skip it), and is itself
    killed now and then. A rotation counts as finished when nothing wrote to it for FINISHED seconds (the
    writer stops appending to a renamed file within one), since replay flushes a last line without newline.
    """

    FINISHED = 5.0
    ROTATION = re.compile(r"\.log\.\d+(\.gz)?$")

    def __init__(self, logs: Path, cmd: list[str], env: dict[str, str], seed: int) -> None:
        super().__init__(daemon=True)
        self.logs, self.cmd, self.env = logs, cmd, env
        self.rng = random.Random(seed * 31 + 5)
        self.stop = threading.Event()
        self.runs = self.killed = self.new = self.present = 0
        self.error: str | None = None

    def _finished(self) -> list[Path]:
        now = time.time()
        found = []
        for path in self.logs.iterdir():
            try:
                if self.ROTATION.search(path.name) and now - path.stat().st_mtime > self.FINISHED:
                    found.append(path)
            except FileNotFoundError:  # deleted meanwhile
                pass
        return sorted(found, key=lambda p: p.stat().st_mtime if p.exists() else 0.0)

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(3.0, 8.0)):
            finished = self._finished()
            if not finished:
                continue
            pool = finished[-4:] if self.rng.random() < 0.8 else finished
            chosen = self.rng.sample(pool, min(len(pool), self.rng.randint(1, 2)))
            proc = subprocess.Popen([*self.cmd, *map(str, chosen)], env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            if self.rng.random() < 0.2:
                time.sleep(self.rng.uniform(0.0, 1.0))
                proc.kill()
            out, err = proc.communicate(timeout=600)
            if proc.returncode == -signal.SIGKILL:
                self.killed += 1
                continue
            if proc.returncode == 2 and "No such file" in err:  # deleted before the command line was read
                continue
            self.runs += 1
            # A rotation deleted between the listing and its turn is named, and the others replayed.
            problems = [line for line in err.splitlines() if "No such file" not in line]
            counts = re.search(r"(\d+) new events stored, (\d+) already present", out)
            if proc.returncode not in (0, 1) or problems or counts is None:
                self.error = f"replay exited {proc.returncode}: {out} {err}"
                return
            self.new += int(counts[1])
            self.present += int(counts[2])


def _stored(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        reader = ShapeReader(conn)
        rows = conn.execute("SELECT shape, doc FROM events")
        return [reader.fields(shape, doc)["event.original"] for shape, doc in rows]
    finally:
        conn.close()


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _is_stored(db: Path, line: str) -> bool:
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            row = conn.execute("SELECT 1 FROM event_docs WHERE doc ->> '$.\"event.original\"' = ? LIMIT 1",
                               (line,)).fetchone()
            return row is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _doom(logs: Path, seq: int) -> list[str]:
    """While the daemon is down: lines appended to doomed.log, which is then rotated and deleted."""
    doomed = [_line("doomed.log", seq + i) + " doomed" for i in range(50)]
    with (logs / "doomed.log").open("a", encoding="utf-8") as fh:
        fh.writelines(x + "\n" for x in doomed)
    os.rename(logs / "doomed.log", logs / "doomed.log.1")
    (logs / "doomed.log.1").unlink()
    (logs / "doomed.log").touch()
    return doomed


@pytest.mark.slow
@pytest.mark.timeout(1800)  # minutes of writing, and the daemon catching up stretches with the load
@pytest.mark.parametrize(("seed", "decode_workers", "batch_max_lines"),
                         [(42, 0, 4096), (7, 1, 1000), (3, 0, None)],
                         ids=["seed42-inline", "seed7-workers", "seed3-default-batch"])
def test_kills_during_writes_and_rotations_lose_and_duplicate_nothing(tmp_path: Path, seed: int, decode_workers: int,
                                                                    batch_max_lines: int | None) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in (*Writer.FILES, "doomed.log"):
        (logs / name).touch()
    first = _line("doomed.log", 0)
    (logs / "doomed.log").write_text(first + "\n")
    pipeline = {"start_position": "beginning", "poll_interval_ms": 50, "decode_workers": decode_workers}
    if batch_max_lines is not None:
        # Small batches keep several of them queued in the worker when killed. None: the shipped default, the
        # largest batch, so the most work in flight per kill.
        pipeline["batch_max_lines"] = batch_max_lines
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "collectors_dir": str(SHIPPED / "collectors"),
        "rules_dir": str(tmp_path / "no-rules"),
        "alerts_dir": str(tmp_path / "no-alerts"),
        "pipeline": pipeline,
        "metrics": {"enabled": False},
        "api": {"enabled": False},
        "detection": {"enabled": False},
        "notify": {"enabled": False},
        "sources": [{"collector": "linux-auth",
                     "paths": [str(logs / "auth.log"), str(logs / "app.log"), str(logs / "secure.log*"),
                               str(logs / "quiet.log"), str(logs / "doomed.log")]}],
    }
    cfg_path = tmp_path / "sentinel.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    db = tmp_path / "state" / "events.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sentinel", "run", "-c", str(cfg_path), "--log-level", "WARNING"]
    log_path = tmp_path / "daemon.log"
    log_file = log_path.open("ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=log_file, stderr=log_file)

    audit = tmp_path / "state" / "audit.jsonl"

    def starts() -> int:
        return audit.read_text().count('"action":"start"') if audit.exists() else 0

    def up(before: int) -> None:
        """Wait until the daemon started after ``before`` starts has restored its checkpoints and runs."""
        deadline = time.monotonic() + 30
        while starts() <= before and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)

    rng = random.Random(seed * 1000 + 1127)
    began = time.monotonic()
    writer = Writer(logs, TOTAL_LINES, seed=seed, db=db)
    proc = start()
    up(0)
    while _count(db) < 1:  # doomed.log's first line: its stream has a checkpoint to lose content from
        time.sleep(0.05)
    writer.start()
    backfill = Backfill(logs, [sys.executable, "-m", "sentinel", "replay", "-c", str(cfg_path), "--collector",
                               "linux-auth", "--quiet", "--no-detect", "--workers", "0"], env, seed)
    backfill.start()
    kills = terms = worker_kills = 0
    doomed: list[str] = []
    while writer.is_alive() or kills < 20 or terms < 3:
        # Mostly while it runs (restored, reading, committing); now and then while it is still starting.
        time.sleep(rng.uniform(0.0, 1.5) if rng.random() < 0.9 else 0.0)
        children = psutil.Process(proc.pid).children() if proc.poll() is None else []
        if decode_workers and children and rng.random() < 0.15:
            children[0].kill()  # the daemon decodes the worker's batches itself and starts a new one
            worker_kills += 1
            continue
        if terms < 3 and rng.random() < 0.15:
            proc.send_signal(signal.SIGTERM)
            terms += 1
        else:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if not doomed and kills >= 5:
            doomed = _doom(logs, 10_000_000)
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.0, 0.8))  # stay down a while: rotations happen meanwhile
        before = starts()
        proc = start()
        if rng.random() < 0.9:
            up(before)
    writer.join()
    backfill.stop.set()
    backfill.join()
    assert writer.error is None, writer.error
    assert backfill.error is None, backfill.error
    expected = Counter(writer.written) + Counter([first])
    deadline = time.monotonic() + 300
    while _count(db) < sum(expected.values()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2.0)  # a duplicate would show up as a count above the total
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log_file.close()

    stored = Counter(_stored(db))
    missing = expected - stored
    extra = Counter({line: n for line, n in stored.items() if line not in expected})  # never written so
    duplicates = {line: n - expected[line] for line, n in stored.items() if n > expected[line] > 0}
    daemon_log = log_path.read_text(errors="replace")
    duplicated = sum(duplicates.values())
    print(f"\nseed {seed} ({time.monotonic() - began:.0f} s): written {sum(expected.values())} "
          f"(+{len(doomed)} deleted by design), stored "
          f"{sum(stored.values())}, lost {sum(missing.values())}, duplicated {duplicated}, "
          f"corrupted {sum(extra.values())}; SIGKILL {kills}, SIGTERM {terms}, worker kills {worker_kills}; "
          f"rotations {dict(writer.rotations)}; backfill replays {backfill.runs} (+{backfill.killed} killed): "
          f"{backfill.new} lines stored first by a replay, {backfill.present} found already stored")
    assert kills >= 20 and terms >= 3
    assert writer.rotations["logrotate"] >= 5 and writer.rotations["copytruncate"] >= 5
    assert writer.rotations["gzip"] >= 5 and writer.rotations["delete"] >= 3
    assert backfill.runs >= 10 and backfill.present > 0  # the replays overlapped what the tail stored
    assert not duplicates, f"{len(duplicates)} lines stored more than once, e.g. {next(iter(duplicates))!r}"
    assert not missing, f"{sum(missing.values())} lines lost, e.g. {next(iter(missing))!r}"
    assert not extra, f"{sum(extra.values())} unexpected lines stored, e.g. {next(iter(extra))!r}"
    assert not any(line in stored for line in doomed)
    assert "doomed.log" in daemon_log and "lost" in daemon_log, "content deleted while down was not logged"
