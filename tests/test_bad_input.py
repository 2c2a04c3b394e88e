"""Bad input never crashes the daemon and never silently drops a line: each case is stored and counted,
or reported clearly while the daemon keeps running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.fixtures.common import MakeConfig
from tests.ingest_helpers import FakeClock, append, drain, open_daemon, sshd, stored

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"


def _json_collector(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "app.yaml").write_text(textwrap.dedent("""
        name: app
        description: JSON lines with a timestamp field
        format: json
        timestamp: {field: [ts]}
        map: {user.name: user}
        patterns:
          - name: login
            when: {event: login}
            set: {event.action: user_login, event.outcome: success}
    """))
    return directory


def _auth(make_config: MakeConfig, path: Path, **pipeline: object):
    return make_config(sources=[{"collector": "linux-auth", "paths": [str(path)]}],
                       pipeline={"start_position": "beginning", **pipeline})


def test_invalid_utf8_and_nul_bytes_are_kept_and_flagged(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(sshd(1).encode() + b"\xff\xfe bad\n" + b"Nov 27 08:00:00 web01 sshd[1]: a\x00b\n"
                    + b"\x00\x01\x02\x03\n")
    clock = FakeClock()
    d = open_daemon(_auth(make_config, log), clock)
    drain(d, clock)
    docs = stored(d.cfg)
    assert len(docs) == 3
    assert "invalid_utf8" in docs[0]["tags"] and "\ufffd" in docs[0]["event.original"]
    assert "nul_bytes" in docs[1]["tags"]
    assert "unparsed" in docs[2]["tags"] and docs[2]["event.kind"] == "pipeline_error"
    samples = {s.labels.get("source"): s.value for m in d.metrics.registry.collect()
               if m.name == "sentinel_lines_invalid_utf8" for s in m.samples if s.name.endswith("_total")}
    assert samples == {"linux-auth": 1.0}


def test_ten_megabyte_line_is_truncated_flagged_and_memory_bounded(tmp_path: Path, make_config: MakeConfig) -> None:
    log = tmp_path / "auth.log"
    with log.open("wb") as fh:
        fh.write(sshd(1).encode() + b"\n")
        fh.write(b"Nov 27 08:00:00 web01 sshd[1]: " + b"A" * (10 * 1024 * 1024) + b"\n")
        fh.write(sshd(2).encode() + b"\n")
    clock = FakeClock()
    d = open_daemon(_auth(make_config, log, max_line_bytes=65536, read_chunk_bytes=1 << 16), clock)
    rss_before = psutil.Process().memory_info().rss
    drain(d, clock)
    grown = psutil.Process().memory_info().rss - rss_before
    docs = stored(d.cfg)
    assert docs[0]["event.original"] == sshd(1)
    assert len(docs) == 3
    big = docs[1]
    assert "truncated" in big["tags"]
    assert len(big["event.original"]) == 65536
    assert big["sentinel.original_length"] == 10 * 1024 * 1024 + 31
    assert docs[2]["event.original"] == sshd(2)
    assert grown < 40 * 1024 * 1024, f"memory grew by {grown} bytes reading a 10 MB line"


def test_malformed_json_and_bad_timestamps_become_counted_failures(tmp_path: Path, make_config: MakeConfig) -> None:
    collectors = _json_collector(tmp_path / "collectors")
    log = tmp_path / "app.jsonl"
    log.write_text("\n".join([
        '{"ts": "2026-01-01T10:00:00Z", "event": "login", "user": "alice"}',
        '{"ts": "2026-01-01T10:00:01Z", "event": "login", "user": ',
        '[1, 2, 3]',
        '{"ts": "9999-12-31T23:59:59Z", "event": "login", "user": "bob"}',
        '{"ts": "the day after tomorrow-ish", "event": "login", "user": "carol"}',
        '{"ts": "2200-01-01T00:00:00Z", "event": "login", "user": "dave"}',
    ]) + "\n")
    clock = FakeClock()
    cfg = make_config(collectors_dir=str(collectors), sources=[{"collector": "app", "paths": [str(log)]}])
    d = open_daemon(cfg, clock)
    drain(d, clock)
    docs = stored(cfg)
    assert len(docs) == 6
    assert docs[0]["event.action"] == "user_login" and docs[0]["@timestamp"] == "2026-01-01T10:00:00.000Z"
    assert "unparsed" in docs[1]["tags"] and "unparsed" in docs[2]["tags"]
    assert "expected a JSON object" in docs[2]["sentinel.parse_error"]
    assert "timestamp_out_of_range" in docs[3]["tags"]
    assert "timestamp_unparsable" in docs[4]["tags"]
    assert "timestamp_out_of_range" in docs[5]["tags"] and docs[5]["user.name"] == "dave"
    counts = {(s.labels["source"], s.labels["outcome"]): s.value for m in d.metrics.registry.collect()
              if m.name == "sentinel_events" for s in m.samples if s.name.endswith("_total")}
    assert counts[("app", "unparsed")] == 2


def test_empty_file_directory_and_deleted_file(tmp_path: Path, make_config: MakeConfig) -> None:
    (tmp_path / "empty.log").touch()
    (tmp_path / "dir.log").mkdir()
    gone = tmp_path / "gone.log"
    append(gone, [sshd(1)])
    clock = FakeClock()
    d = open_daemon(_auth(make_config, tmp_path / "*.log"), clock)
    gone.unlink()
    drain(d, clock)
    append(tmp_path / "empty.log", [sshd(2)])
    drain(d, clock)
    # The deleted file was already open: what it held is still read to its end, then let go.
    assert [doc["event.original"] for doc in stored(d.cfg)] == [sshd(1), sshd(2)]
    problems = {s.labels["kind"] for m in d.metrics.registry.collect() if m.name == "sentinel_file_problems"
                for s in m.samples if s.name.endswith("_total")}
    assert "not_a_file" in problems


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unreadable_file_is_reported_and_the_daemon_keeps_running(tmp_path: Path) -> None:
    """Run as the unprivileged user 'nobody' so file permissions really apply (root ignores them)."""
    import shutil
    import tempfile

    import yaml

    work = Path(tempfile.mkdtemp(prefix="sentinel-perm-", dir="/tmp"))
    try:
        work.chmod(0o777)
        secret = work / "secret.log"
        append(secret, [sshd(1)])
        secret.chmod(0o600)
        readable = work / "ok.log"
        append(readable, [sshd(2)])
        readable.chmod(0o644)
        cfg_path = work / "sentinel.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "state_dir": str(work / "state"), "collectors_dir": str(SHIPPED / "collectors"),
            "pipeline": {"start_position": "beginning"},
            "sources": [{"collector": "linux-auth", "paths": [str(work / "*.log")]}]}))
        cfg_path.chmod(0o644)
        script = textwrap.dedent(f"""
            import os
            from pathlib import Path
            from sentinel.conf.loader import load_config
            from tests.ingest_helpers import drain, open_daemon, stored, FakeClock
            import fnmatch, sqlite3, orjson, watchdog.observers  # the interpreter lives under /root: import first
            import pycountry; len(pycountry.countries)  # and its data files, which pycountry reads lazily
            cfg = load_config(Path({str(cfg_path)!r}))
            os.setgid(65534); os.setuid(65534)
            clock = FakeClock()
            d = open_daemon(cfg, clock)
            drain(d, clock)
            print([doc["event.original"] for doc in stored(cfg)])
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == repr([sshd(2)])
        assert "secret.log" in out.stderr and "Permission denied" in out.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
