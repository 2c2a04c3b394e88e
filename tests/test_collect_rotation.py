"""Tailing real files through rename, copytruncate, truncation, deletion, re-creation and symlink swaps."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import FakeClock, append, drain, open_daemon, originals, sshd


def _cfg(make_config: MakeConfig, pattern: str, **pipeline: object):
    return make_config(sources=[{"collector": "linux-auth", "paths": [pattern]}],
                       pipeline={"start_position": "beginning", **pipeline})


def test_lines_appended_are_stored_once_in_order(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    append(log, [sshd(i) for i in range(100)])
    clock = FakeClock()
    d = open_daemon(_cfg(make_config, str(log)), clock)
    drain(d, clock)
    append(log, [sshd(i) for i in range(100, 150)])
    drain(d, clock)
    assert originals(d.cfg) == [sshd(i) for i in range(150)]


def test_partial_line_waits_for_its_newline(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    clock = FakeClock()
    log.write_text(sshd(0) + "\n" + sshd(1)[:30])
    d = open_daemon(_cfg(make_config, str(log)), clock)
    drain(d, clock)
    assert originals(d.cfg) == [sshd(0)]
    with log.open("a") as fh:
        fh.write(sshd(1)[30:] + "\n")
    drain(d, clock)
    assert originals(d.cfg) == [sshd(0), sshd(1)]


def test_rename_rotation_reads_old_file_to_its_end(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    d = open_daemon(_cfg(make_config, str(log)), clock)
    drain(d, clock)
    # The writer still appends to the old file after the rename, then switches to a new one.
    os.rename(log, tmp_path / "auth.log.1")
    append(tmp_path / "auth.log.1", [sshd(i) for i in range(10, 15)])
    append(log, [sshd(i) for i in range(15, 20)])
    drain(d, clock)
    assert sorted(originals(d.cfg)) == sorted(sshd(i) for i in range(20))


def test_rotation_while_stopped_is_caught_up_on_restart(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    cfg = _cfg(make_config, str(log))
    d = open_daemon(cfg, clock)
    drain(d, clock)
    d.close()
    append(log, [sshd(i) for i in range(10, 13)])
    os.rename(log, tmp_path / "auth.log.1")
    append(log, [sshd(i) for i in range(13, 16)])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    assert Counter(originals(cfg)) == Counter(sshd(i) for i in range(16))


def test_copytruncate_keeps_every_line(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    cfg = _cfg(make_config, str(tmp_path / "app.log*"))
    d = open_daemon(cfg, clock)
    drain(d, clock)
    append(log, [sshd(i) for i in range(10, 20)])  # not read yet when the copy is taken
    shutil.copyfile(log, tmp_path / "app.log.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    append(log, [sshd(i) for i in range(20, 25)])
    drain(d, clock)
    assert Counter(originals(cfg)) == Counter(sshd(i) for i in range(25))


def _open_paths() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return out


def test_a_copy_that_is_not_a_rotation_is_let_go(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "app.log"
    backup = tmp_path / "app.log.bak"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    cfg = _cfg(make_config, str(tmp_path / "app.log*"))
    d = open_daemon(cfg, clock)
    drain(d, clock)
    shutil.copyfile(log, backup)  # a backup tool, not logrotate: the original is never truncated
    drain(d, clock)
    assert str(backup) in _open_paths()  # held while a copytruncate could still follow
    clock.advance(120)
    append(log, [sshd(i) for i in range(10, 15)])
    drain(d, clock)
    assert str(backup) not in _open_paths()
    backup.unlink()  # its disk space is really freed: no descriptor keeps the deleted file
    assert not any(path.startswith(str(backup)) for path in _open_paths())
    with log.open("r+") as fh:  # a later truncation still loses nothing and duplicates nothing
        fh.truncate(0)
    append(log, [sshd(i) for i in range(15, 18)])
    drain(d, clock)
    d.close()
    assert Counter(originals(cfg)) == Counter(sshd(i) for i in range(18))


def test_copytruncate_while_stopped(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "app.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    cfg = _cfg(make_config, str(log))
    d = open_daemon(cfg, clock)
    drain(d, clock)
    d.close()
    append(log, [sshd(i) for i in range(10, 20)])
    shutil.copyfile(log, tmp_path / "app.log.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    append(log, [sshd(i) for i in range(20, 22)])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    assert Counter(originals(cfg)) == Counter(sshd(i) for i in range(22))


def test_truncation_restarts_at_zero(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(10)])
    d = open_daemon(_cfg(make_config, str(log)), clock)
    drain(d, clock)
    with log.open("r+") as fh:
        fh.truncate(0)
    append(log, [sshd(i) for i in range(100, 103)])
    drain(d, clock)
    assert originals(d.cfg) == [sshd(i) for i in range(10)] + [sshd(i) for i in range(100, 103)]


def test_deleted_and_recreated_file(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    clock = FakeClock()
    append(log, [sshd(i) for i in range(5)])
    d = open_daemon(_cfg(make_config, str(log)), clock)
    drain(d, clock)
    fh = log.open("a")
    os.unlink(log)
    fh.write(sshd(5) + "\n")  # written to the deleted file through a still-open descriptor
    fh.close()
    append(log, [sshd(i) for i in range(6, 9)])
    drain(d, clock)
    assert Counter(originals(d.cfg)) == Counter(sshd(i) for i in range(9))


def test_symlink_swap_follows_the_new_target(tmp_path: Path, make_config: MakeConfig) -> None:
    (tmp_path / "a.log").write_text("".join(sshd(i) + "\n" for i in range(3)))
    (tmp_path / "b.log").write_text("".join(sshd(i) + "\n" for i in range(3, 6)))
    link = tmp_path / "current.log"
    link.symlink_to(tmp_path / "a.log")
    clock = FakeClock()
    d = open_daemon(_cfg(make_config, str(link)), clock)
    drain(d, clock)
    tmp_link = tmp_path / "tmp.link"
    tmp_link.symlink_to(tmp_path / "b.log")
    os.replace(tmp_link, link)
    drain(d, clock)
    assert Counter(originals(d.cfg)) == Counter(sshd(i) for i in range(6))


def test_new_files_under_glob_are_picked_up(tmp_path: Path, make_config: MakeConfig) -> None:
    clock = FakeClock()
    d = open_daemon(_cfg(make_config, str(tmp_path / "*.log")), clock)
    drain(d, clock)
    append(tmp_path / "one.log", [sshd(1)])
    append(tmp_path / "two.log", [sshd(2)])
    drain(d, clock)
    assert sorted(originals(d.cfg)) == sorted([sshd(1), sshd(2)])


def test_start_position_end_skips_history_only_on_first_start(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    append(log, [sshd(i) for i in range(5)])
    clock = FakeClock()
    cfg = _cfg(make_config, str(tmp_path / "*.log"), start_position="end")
    d = open_daemon(cfg, clock)
    drain(d, clock)
    append(log, [sshd(5)])
    append(tmp_path / "new.log", [sshd(6)])  # a file that appears later is read from its start
    drain(d, clock)
    assert sorted(originals(cfg)) == sorted([sshd(5), sshd(6)])


def test_multiline_joins_continuation_lines(tmp_path: Path, make_config: MakeConfig) -> None:
    collectors = tmp_path / "collectors"
    collectors.mkdir()
    (collectors / "app.yaml").write_text(
        "name: app\ndescription: app log with stack traces\nformat: plain\n"
        "framing: {mode: multiline, pattern: '^\\s'}\n"
    )
    log = tmp_path / "app.log"
    log.write_text("ERROR boom\n  at a.b(c.java:1)\n  at d.e(f.java:2)\nINFO fine\n")
    clock = FakeClock()
    cfg = make_config(collectors_dir=str(collectors), sources=[{"collector": "app", "paths": [str(log)]}])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    assert originals(cfg) == ["ERROR boom\n  at a.b(c.java:1)\n  at d.e(f.java:2)", "INFO fine"]


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted-between-writes"])
@pytest.mark.parametrize("cuts", [(0, 30_000), (0, 9_000, 50_000)], ids=["empty-then-most", "empty-then-two-parts"])
def test_a_gzip_seen_while_its_compressor_writes_it_is_neither_torn_nor_read_twice(
        tmp_path: Path, make_config: MakeConfig, cuts: tuple[int, ...], restart: bool) -> None:
    """gzip creates the .gz, writes it over a while, then removes the original. A tailer looking at the
    .gz in between sees an empty file, then compressed data that ends early: that is a copy still being
    written, not new content nor a damaged file whose last line should be flushed."""
    plain = tmp_path / "secure.log.6"
    lines = [sshd(i) for i in range(5000)]
    cfg = _cfg(make_config, str(tmp_path / "secure.log*"))
    clock = FakeClock()
    append(plain, lines[:2000])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    append(plain, lines[2000:])
    whole = gzip.compress(plain.read_bytes())
    with (tmp_path / "secure.log.6.gz").open("wb", buffering=0) as out:
        for cut in (*cuts, len(whole)):
            out.write(whole[out.tell():cut])
            assert d.pipeline is not None
            d.pipeline.structural_change.set()  # as the .gz's inotify event would
            for _ in range(3):
                d.pipeline.step()
                clock.advance(0.5)
            if restart:
                d.close()
                d = open_daemon(cfg, clock)
    plain.unlink()
    drain(d, clock)
    d.close()
    assert Counter(originals(cfg)) == Counter(lines)


def test_a_rotation_compressed_while_stopped_and_caught_mid_way_is_not_read_as_new_content(
        tmp_path: Path, make_config: MakeConfig) -> None:
    """logrotate compresses auth.log.1 into auth.log.2.gz while sentinel is stopped, and sentinel starts
    when only the first few lines are in the .gz (gzip flushed them): a copy on its way, not new content."""
    log = tmp_path / "auth.log"
    lines = [sshd(i) for i in range(2000)]
    cfg = _cfg(make_config, str(log))
    clock = FakeClock()
    append(log, lines[:1000])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    os.rename(log, tmp_path / "auth.log.1")
    append(tmp_path / "auth.log.1", lines[1000:1500])
    append(log, lines[1500:])
    drain(d, clock)
    d.close()
    # gzip's first flushed block holds the first three lines: less than the 1 KiB a head is compared on.
    old = (tmp_path / "auth.log.1").read_bytes()
    first = sum(len(x) + 1 for x in lines[:3])
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb") as gz:
        gz.write(old[:first])
        gz.flush()
        flushed = packed.tell()
        gz.write(old[first:])
    target = tmp_path / "auth.log.2.gz"
    target.write_bytes(packed.getvalue()[:flushed])
    assert 0 < len(gzip.GzipFile(fileobj=io.BytesIO(target.read_bytes())).read1(4096)) < 1024
    d = open_daemon(cfg, clock)
    drain(d, clock)
    target.write_bytes(packed.getvalue())
    (tmp_path / "auth.log.1").unlink()
    drain(d, clock)
    d.close()
    assert Counter(originals(cfg)) == Counter(lines)


def test_a_gzip_left_empty_is_waited_for_then_named_and_read_once_written(
        tmp_path: Path, make_config: MakeConfig, caplog: pytest.LogCaptureFixture) -> None:
    """An empty .gz is one a compressor has only created: not a stream yet. If it stays empty for a minute it is
    reported as unreadable; once written, its lines are read once."""
    lines = [sshd(i) for i in range(50)]
    target = tmp_path / "auth.log.1.gz"
    target.touch()
    clock = FakeClock()
    d = open_daemon(_cfg(make_config, str(tmp_path / "auth.log*")), clock)
    drain(d, clock)
    assert "cannot be read" not in caplog.text  # yet: it may still be written
    clock.advance(61.0)
    drain(d, clock)
    assert "auth.log.1.gz" in caplog.text and "cannot be read" in caplog.text
    target.write_bytes(gzip.compress("".join(x + "\n" for x in lines).encode()))
    drain(d, clock)
    d.close()
    assert Counter(originals(d.cfg)) == Counter(lines)
