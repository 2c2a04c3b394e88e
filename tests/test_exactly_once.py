"""Exactly once, from the user's side: every line written is stored once, whatever the files went through.

Each test reproduces a way an independent chaos harness lost, duplicated or spliced lines: copytruncate of
a file not yet read, a checkpoint taken while a file was empty, one backlog starving the other files, a file
name that is not UTF-8, regrowth past the read position, and rotations (compressed ones too) while stopped.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.service import Daemon
from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import FakeClock, append, drain, open_daemon, originals, run_to_idle, stored


def line(name: str, i: int) -> str:
    return (f"Nov 27 08:{(i // 60) % 60:02d}:{i % 60:02d} {name} sshd[{1000 + i}]: "
            f"Failed password for user{i} from 10.0.{i % 250}.{i % 200 + 1} port {20000 + i} ssh2")


def lines(name: str, start: int, stop: int) -> list[str]:
    return [line(name, i) for i in range(start, stop)]


def _cfg(make_config: MakeConfig, *patterns: str, **pipeline: object) -> LoadedConfig:
    return make_config(sources=[{"collector": "linux-auth", "paths": list(patterns)}],
                       pipeline={"start_position": "beginning", **pipeline}, detection={"enabled": False})


def copytruncate(path: Path, copy: Path) -> None:
    """What logrotate's copytruncate does: copy the file, then truncate the original in place."""
    shutil.copyfile(path, copy)
    with path.open("r+b") as fh:
        fh.truncate(0)


def assert_once(cfg: LoadedConfig, expected: list[str]) -> None:
    got = Counter(originals(cfg))
    want = Counter(expected)
    lost = want - got
    extra = got - want
    assert not lost, f"{sum(lost.values())} lines lost, e.g. {next(iter(lost))!r}"
    assert not extra, f"{sum(extra.values())} lines stored twice or spliced, e.g. {next(iter(extra))!r}"


def _problems(d: Daemon, kind: str) -> float:
    value = d.metrics.registry.get_sample_value("sentinel_file_problems_total",
                                                {"source": "linux-auth", "kind": kind})
    return value or 0.0


@pytest.mark.parametrize("glob_copies", [False, True], ids=["copy-outside-glob", "copy-inside-glob"])
def test_copytruncate_of_a_file_not_read_yet_loses_nothing(tmp_path: Path, make_config: MakeConfig,
                                                           glob_copies: bool) -> None:
    big, z = tmp_path / "big.log", tmp_path / "z.log"
    append(big, lines("big", 0, 30_000))
    append(z, lines("z", 0, 30))
    cfg = _cfg(make_config, str(big), str(z) + ("*" if glob_copies else ""))
    clock = FakeClock()
    d = open_daemon(cfg, clock)  # both files seen, neither read yet
    copytruncate(z, tmp_path / "z.log.1")
    append(z, lines("z", 30, 35))
    assert d.pipeline is not None
    d.pipeline.step()
    append(z, lines("z", 35, 75))
    drain(d, clock, rounds=400)
    d.close()
    assert_once(cfg, lines("big", 0, 30_000) + lines("z", 0, 75))


def test_a_backlog_does_not_starve_a_quiet_file(tmp_path: Path, make_config: MakeConfig) -> None:
    hole, quiet = tmp_path / "hole.log", tmp_path / "quiet.log"
    with hole.open("wb") as fh:
        fh.write(b"start\n")
        fh.truncate(2 << 30)  # a 2 GiB sparse hole: no newline in it, so it frames into nothing for long
    append(quiet, lines("quiet", 0, 1))
    cfg = _cfg(make_config, str(hole), str(quiet))
    d = open_daemon(cfg)
    assert d.pipeline is not None
    d.pipeline.step()
    append(quiet, lines("quiet", 1, 2))
    for _ in range(2):  # the next batch or the one after: within the usual ~100 ms of a daemon
        d.pipeline.step()
    d.close()
    assert set(lines("quiet", 0, 2)) <= set(originals(cfg))


def test_a_checkpoint_taken_while_the_file_was_empty_still_finds_a_copy_made_while_stopped(
        tmp_path: Path, make_config: MakeConfig) -> None:
    z = tmp_path / "z.log"
    append(z, lines("z", 0, 10))
    cfg = _cfg(make_config, str(z))
    clock = FakeClock()
    d = open_daemon(cfg, clock)
    drain(d, clock)
    copytruncate(z, tmp_path / "z.log.1")
    drain(d, clock)  # truncation seen: the checkpoint of z.log's new stream is taken while it is empty
    d.close()
    # While sentinel is stopped: 500 lines, a copytruncate (the previous copy moves to .2), 500 more.
    append(z, lines("z", 10, 510))
    os.rename(tmp_path / "z.log.1", tmp_path / "z.log.2")
    copytruncate(z, tmp_path / "z.log.1")
    append(z, lines("z", 510, 1010))
    run_to_idle(cfg, clock)
    assert_once(cfg, lines("z", 0, 1010))


@pytest.mark.parametrize("stopped", [False, True], ids=["busy", "stopped"])
def test_copytruncate_with_regrowth_past_the_read_position(tmp_path: Path, make_config: MakeConfig,
                                                          stopped: bool) -> None:
    z = tmp_path / "z.log"
    append(z, lines("z", 0, 20))
    cfg = _cfg(make_config, str(z))
    clock = FakeClock()
    d = open_daemon(cfg, clock)
    drain(d, clock)
    if stopped:
        d.close()
    append(z, lines("z", 20, 30))
    copytruncate(z, tmp_path / "z.log.1")
    append(z, lines("z", 30, 90))  # the new content is longer than what had been read of the old one
    if stopped:
        d = open_daemon(cfg, clock)
    drain(d, clock)
    d.close()
    assert_once(cfg, lines("z", 0, 90))


def test_a_rotation_compressed_while_stopped_is_read_to_its_end(tmp_path: Path, make_config: MakeConfig) -> None:
    z = tmp_path / "z.log"
    append(z, lines("z", 0, 20))
    cfg = _cfg(make_config, str(z) + "*")  # the glob also matches the .gz: it must not be read as text
    clock = FakeClock()
    run_to_idle(cfg, clock)
    append(z, lines("z", 20, 30))  # not read before the rotation
    os.rename(z, tmp_path / "z.log.1")
    with (tmp_path / "z.log.1").open("rb") as src, gzip.open(tmp_path / "z.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "z.log.1").unlink()
    append(z, lines("z", 30, 35))
    run_to_idle(cfg, clock)
    assert_once(cfg, lines("z", 0, 35))


def test_a_compressed_rotation_read_to_its_end_then_deleted_while_stopped_is_not_reported_lost(
        tmp_path: Path, make_config: MakeConfig, caplog: pytest.LogCaptureFixture) -> None:
    """sentinel reads the .gz logrotate made, is stopped at once (well within the rotation grace), and the
    .gz is deleted before it starts again: every byte of it was stored, so nothing may be reported lost."""
    z = tmp_path / "z.log"
    append(z, lines("z", 0, 20))
    cfg = _cfg(make_config, str(z) + "*")
    clock = FakeClock()
    run_to_idle(cfg, clock)
    append(z, lines("z", 20, 30))
    os.rename(z, tmp_path / "z.log.1")
    with (tmp_path / "z.log.1").open("rb") as src, gzip.open(tmp_path / "z.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "z.log.1").unlink()
    d = open_daemon(cfg, clock)
    assert d.pipeline is not None
    for _ in range(3):  # the clock stands still: the grace never passes while it runs
        d.pipeline.step()
    d.close()
    assert_once(cfg, lines("z", 0, 30))
    (tmp_path / "z.log.1.gz").unlink()
    append(z, lines("z", 30, 35))
    with caplog.at_level(logging.WARNING, logger="sentinel.collect.tailer"):
        d = open_daemon(cfg, clock)
        drain(d, clock)
    assert _problems(d, "lost") == 0
    d.close()
    assert not [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert_once(cfg, lines("z", 0, 35))


def test_content_deleted_before_it_could_be_read_is_counted_and_logged(
        tmp_path: Path, make_config: MakeConfig, caplog: pytest.LogCaptureFixture) -> None:
    z = tmp_path / "z.log"
    append(z, lines("z", 0, 20))
    cfg = _cfg(make_config, str(z))
    clock = FakeClock()
    run_to_idle(cfg, clock)
    offset = z.stat().st_size
    append(z, lines("z", 20, 30))
    copytruncate(z, tmp_path / "z.log.1")
    (tmp_path / "z.log.1").unlink()  # the only copy of lines 20-29 is gone before sentinel could read it
    append(z, lines("z", 30, 35))
    with caplog.at_level(logging.WARNING, logger="sentinel.collect.tailer"):
        d = open_daemon(cfg, clock)
        drain(d, clock)
    assert _problems(d, "lost") >= 1
    d.close()
    assert any("lost" in r.getMessage() and f"bytes from {offset}" in r.getMessage() for r in caplog.records)
    assert_once(cfg, lines("z", 0, 20) + lines("z", 30, 35))


def test_a_file_name_that_is_not_utf8_is_stored_escaped_and_stops_nothing(tmp_path: Path,
                                                                           make_config: MakeConfig) -> None:
    bad = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.log")
    good = tmp_path / "good.log"
    with open(bad, "w", encoding="utf-8") as fh:
        fh.write(line("bad", 0) + "\n")
    append(good, lines("good", 0, 3))
    cfg = _cfg(make_config, str(tmp_path / "*.log"))
    clock = FakeClock()
    run_to_idle(cfg, clock)
    with open(bad, "a", encoding="utf-8") as fh:
        fh.write(line("bad", 1) + "\n")
    append(good, lines("good", 3, 5))
    run_to_idle(cfg, clock)  # the checkpoint of the oddly named file restores
    assert_once(cfg, lines("bad", 0, 2) + lines("good", 0, 5))
    docs = [doc for doc in stored(cfg) if " bad " in doc["event.original"]]
    assert {doc["log.file.path"] for doc in docs} == {f"{tmp_path}/caf\\xe9.log"}
    assert all("path_not_utf8" in doc["tags"] for doc in docs)
