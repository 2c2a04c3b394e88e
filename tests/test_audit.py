"""The audit trail's hash chain: every edit, deletion and truncation is found, concurrent writers keep it whole."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from multiprocessing import Process
from pathlib import Path

from sentinel.audit.chain import AuditLog, verify
from sentinel.audit.manifest import diff_manifests


def _filled(tmp_path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl", clock=lambda: 1_767_225_600.0)
    for i in range(n):
        log.append("ack", actor=f"responder{i}", alert_id=f"a{i}")
    return log


def _cli_verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel.cli.main", "audit", "verify", "--file", str(path), *extra],
                          capture_output=True, text=True, timeout=60)


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    result = verify(log.path)
    assert result.ok and result.records == 5
    assert (log.path.stat().st_mode & 0o777) == 0o600
    done = _cli_verify(log.path)
    assert done.returncode == 0 and "OK, 5 records" in done.stdout


def test_edited_record_is_caught_with_its_line(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.path.read_text().splitlines()
    doc = json.loads(lines[2])
    doc["actor"] = "mallory"
    lines[2] = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    log.path.write_text("\n".join(lines) + "\n")
    done = _cli_verify(log.path)
    assert done.returncode == 1
    assert f"{log.path}:3: record seq 3 was modified" in done.stderr


def test_edit_with_recomputed_hash_still_breaks_the_next_link(tmp_path: Path) -> None:
    from sentinel.audit.chain import record_hash

    log = _filled(tmp_path)
    lines = log.path.read_text().splitlines()
    doc = json.loads(lines[1])
    doc["details"]["alert_id"] = "other"
    doc["hash"] = record_hash(doc)
    lines[1] = json.dumps(doc)
    log.path.write_text("\n".join(lines) + "\n")
    problems = verify(log.path).problems
    assert problems == [f"{log.path}:3: record seq 3 does not link to the record before it"]


def test_deleted_middle_line_is_caught(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.path.read_text().splitlines()
    del lines[1]
    log.path.write_text("\n".join(lines) + "\n")
    done = _cli_verify(log.path)
    assert done.returncode == 1
    assert "records 2..2 are missing (deleted)" in done.stderr


def test_deleted_last_line_is_caught_by_the_head(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join(lines[:-1]) + "\n")
    problems = verify(log.path).problems
    assert problems == [f"{log.path}: records 5..5 are missing at the end (log truncated)"]


def test_rotation_continues_the_chain_across_segments(tmp_path: Path) -> None:
    log = _filled(tmp_path, 3)
    rotated = log.path.with_name("audit.jsonl.1.gz")
    rotated.write_bytes(gzip.compress(log.path.read_bytes()))
    log.path.write_text("")  # what logrotate's `create` leaves behind
    log.append("stop")
    assert [r.seq for r in log.records()] == [1, 2, 3, 4]
    assert verify(log.path).ok
    rotated.unlink()  # a whole rotated segment deleted
    assert "records 1..3 are missing (deleted)" in verify(log.path).problems[0]
    assert verify(log.path, allow_pruned=True).ok  # …unless retention deleted it on purpose


def _append_many(path: str, who: str) -> None:
    log = AuditLog(Path(path))
    for i in range(50):
        log.append("ack", actor=who, n=i)


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [Process(target=_append_many, args=(str(path), f"p{i}")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    result = verify(path)
    assert result.ok, result.problems
    assert result.records == 150


def test_manifest_diff_names_changed_files() -> None:
    old = {"a.yaml": "1", "b.yaml": "2", "c.yaml": "3"}
    new = {"a.yaml": "1", "b.yaml": "9", "d.yaml": "4"}
    assert diff_manifests(old, new) == {"added": {"d.yaml": "4"}, "removed": {"c.yaml": "3"},
                                        "changed": {"b.yaml": "9"}}
