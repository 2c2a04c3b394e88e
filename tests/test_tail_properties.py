"""Property: whatever sequence of writes, rotations, restarts and reads, every line is stored exactly once.

Hypothesis draws sequences of file operations (appends, lines written in two pieces, rename + create,
copytruncate, gzip of old rotations — left half written for a while, as a compressor is seen mid-way —, reads,
restarts, stretches where the daemon is down) and checks the
multiset of stored lines against the lines written, with the copies both outside and inside the glob.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentinel.conf.loader import load_config
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.service import Daemon
from tests.fixtures.common import ROOT
from tests.ingest_helpers import FakeClock, drain, open_daemon, originals

OPS = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 40)),
    st.tuples(st.just("half"), st.integers(0, 0)),  # the first part of a line; the rest comes later
    st.tuples(st.just("rename"), st.integers(0, 0)),
    st.tuples(st.just("copytruncate"), st.integers(0, 0)),
    # 0: compressed at once; 1-4: the .gz stays empty, header only, an eighth, half written, with its plain
    # original still there, as while gzip runs; a later gzip writes more of it, rotations and the end finish it.
    st.tuples(st.just("gzip"), st.integers(0, 4)),
    st.tuples(st.just("step"), st.integers(1, 3)),
    st.tuples(st.just("restart"), st.integers(0, 0)),
    st.tuples(st.just("down"), st.integers(0, 0)),
    st.tuples(st.just("up"), st.integers(0, 0)),
)


class Files:
    """z.log and its rotations, written the way an application and logrotate would."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.log = directory / "z.log"
        self.log.touch()
        self.seq = 0
        self.written: list[str] = []
        self.half: bytes | None = None
        self.compressing: tuple[Path, Path, bytes] | None = None  # plain original, .gz, its whole bytes

    def line(self) -> str:
        self.seq += 1
        return f"Nov 27 08:00:00 z sshd[{self.seq}]: Failed password for usér{self.seq} from 10.0.0.1 port 22 ssh2"

    def append(self, n: int) -> None:
        with self.log.open("ab") as fh:
            if self.half is not None:
                fh.write(self.half)
                self.half = None
            for _ in range(n):
                text = self.line()
                fh.write(text.encode() + b"\n")
                self.written.append(text)

    def write_half(self) -> None:
        if self.half is not None:
            return
        text = self.line()
        data = text.encode() + b"\n"
        cut = len(data) // 2 + 1  # inside "usér"'s two-byte é for short sequence numbers, or near it
        with self.log.open("ab") as fh:
            fh.write(data[:cut])
        self.half = data[cut:]
        self.written.append(text)

    def _finish_half(self) -> None:
        # A line is never split across a rotation by a sane writer: it finishes the line first.
        if self.half is not None:
            self.append(0)

    def _shift(self) -> None:
        self.finish_gzip()
        numbered = sorted((int(p.name.split(".")[2]), p) for p in self.dir.glob("z.log.*"))
        for n, p in reversed(numbered):
            suffix = ".gz" if p.name.endswith(".gz") else ""
            os.rename(p, self.dir / f"z.log.{n + 1}{suffix}")

    def rename(self) -> None:
        self._finish_half()
        self._shift()
        os.rename(self.log, self.dir / "z.log.1")
        self.log.touch()

    def copytruncate(self) -> None:
        self._finish_half()
        self._shift()
        shutil.copyfile(self.log, self.dir / "z.log.1")
        os.truncate(self.log, 0)

    def gzip_oldest(self, partial: int) -> None:
        if self.compressing is not None:
            self._write_gzip(partial)
            return
        plain = sorted((int(p.name.split(".")[2]), p) for p in self.dir.glob("z.log.*") if p.suffix != ".gz")
        if not plain or plain[-1][0] < 2:
            return  # delaycompress: the newest rotation stays plain
        _, p = plain[-1]
        target = p.with_name(p.name + ".gz")
        target.touch()
        self.compressing = (p, target, gzip.compress(p.read_bytes()))
        self._write_gzip(partial)

    def _write_gzip(self, partial: int) -> None:
        assert self.compressing is not None
        _, target, whole = self.compressing
        cut = (len(whole), 0, 10, len(whole) // 8, len(whole) // 2)[partial]
        if cut <= target.stat().st_size:
            self.finish_gzip()
            return
        with target.open("ab") as fh:
            fh.write(whole[target.stat().st_size:cut])
        if cut == len(whole):
            self.finish_gzip()

    def finish_gzip(self) -> None:
        """The compressor ends: the rest of the .gz is written, then the original removed."""
        if self.compressing is None:
            return
        plain, target, whole = self.compressing
        with target.open("ab") as fh:
            fh.write(whole[target.stat().st_size:])
        plain.unlink()
        self.compressing = None


def _config(directory: Path, pattern: str) -> LoadedConfig:
    doc = {
        "state_dir": str(directory / "state"),
        "collectors_dir": str(ROOT / "sentinel" / "shipped" / "collectors"),
        "rules_dir": str(directory / "no-rules"),
        "alerts_dir": str(directory / "no-alerts"),
        "pipeline": {"start_position": "beginning", "poll_interval_ms": 50, "batch_max_lines": 16},
        "metrics": {"enabled": False},
        "api": {"enabled": False},
        "detection": {"enabled": False},
        "sources": [{"collector": "linux-auth", "paths": [pattern]}],
    }
    path = directory / "sentinel.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def _run(ops: list[tuple[str, int]], glob_copies: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        logs = directory / "logs"
        logs.mkdir()
        files = Files(logs)
        cfg = _config(directory, str(files.log) + ("*" if glob_copies else ""))
        clock = FakeClock()
        d: Daemon | None = open_daemon(cfg, clock)
        for op, n in ops:
            if op == "append":
                files.append(n)
            elif op == "half":
                files.write_half()
            elif op == "rename":
                files.rename()
            elif op == "copytruncate":
                files.copytruncate()
            elif op == "gzip":
                files.gzip_oldest(n)
            elif op == "step" and d is not None:
                assert d.pipeline is not None
                for _ in range(n):
                    d.pipeline.step()
                    clock.advance(0.5)
            elif op == "restart" and d is not None:
                d.close()
                d = open_daemon(cfg, clock)
            elif op == "down" and d is not None:
                d.close()
                d = None
            elif op == "up" and d is None:
                d = open_daemon(cfg, clock)
        files.append(0)
        files.finish_gzip()
        if d is None:
            d = open_daemon(cfg, clock)
        drain(d, clock, rounds=400)
        d.close()
        got = Counter(originals(cfg))
        want = Counter(files.written)
        assert not want - got, f"lost {sorted(want - got)[:3]} after {ops}"
        assert not got - want, f"duplicated or spliced {sorted(got - want)[:3]} after {ops}"


COMMON = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])


# Found by these properties: a file truncated before its first read restarted as a stream whose id (from
# inode, empty head and a clock that had not moved) was the old one's, so the copy's line was taken as stored.
TRUNCATED_BEFORE_FIRST_READ = [("append", 1), ("restart", 0), ("copytruncate", 0), ("step", 1), ("append", 1)]


@COMMON
@example(TRUNCATED_BEFORE_FIRST_READ)
@given(st.lists(OPS, min_size=1, max_size=14))
def test_every_line_once_with_copies_outside_the_glob(ops: list[tuple[str, int]]) -> None:
    _run(ops, glob_copies=False)


@COMMON
@example(TRUNCATED_BEFORE_FIRST_READ)
@given(st.lists(OPS, min_size=1, max_size=14))
def test_every_line_once_with_copies_inside_the_glob(ops: list[tuple[str, int]]) -> None:
    _run(ops, glob_copies=True)
