"""Fault tests against the real node: a 60 s Elasticsearch outage during ingest, and a SIGKILLed daemon.

Both check the promise end to end: every line of the log is in Elasticsearch exactly once (count and
ids/offsets), and the spool drains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from sentinel.daemon.assemble import assemble
from sentinel.daemon.build import database_path
from sentinel.metrics.registry import Metrics
from tests.fixtures.elasticsearch import es_settings, sample, spool_depth

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _line(i: int) -> str:
    return (f"Nov 27 08:{(i // 60) % 60:02d}:{i % 60:02d} web{i % 7:02d} sshd[{1000 + i % 30000}]: Failed password "
            f"for user{i} from 10.{i % 200}.{(i // 200) % 250}.{i % 250 + 1} port {1024 + i % 60000} ssh2")


def _auth_only(tmp_path: Path) -> str:
    """A collectors folder with linux-auth only: these tests are about shipping, not other decoders."""
    folder = tmp_path / "collectors"
    folder.mkdir(exist_ok=True)
    shipped = Path(__file__).resolve().parent.parent / "sentinel" / "shipped"
    (folder / "linux-auth.yaml").write_text((shipped / "collectors" / "linux-auth.yaml").read_text())
    return str(folder)


def _write(path: Path, start: int, stop: int) -> list[int]:
    """Append lines ``start..stop-1``; return their byte offsets."""
    offsets = []
    with path.open("ab") as fh:
        pos = fh.tell()
        for i in range(start, stop):
            data = (_line(i) + "\n").encode()
            offsets.append(pos)
            fh.write(data)
            pos += len(data)
    return offsets


def _es_offsets(es: Elasticsearch, index: str) -> list[int]:
    """Every sentinel.log.offset in the index, one entry per document (composite pages of 10,000)."""
    out: list[int] = []
    after = None
    while True:
        comp: dict = {"size": 10000, "sources": [{"o": {"terms": {"field": "sentinel.log.offset"}}}]}
        if after:
            comp["after"] = after
        resp = es.search(index=index, size=0, aggs={"c": {"composite": comp}})
        buckets = resp["aggregations"]["c"]["buckets"]
        out.extend(int(b["key"]["o"]) for b in buckets for _ in range(b["doc_count"]))
        if len(buckets) < 10000:
            return out
        after = resp["aggregations"]["c"]["after_key"]


def _count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True)
    return int(es.count(index=index, ignore_unavailable=True)["count"])


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def test_outage_of_60s_during_ingest_loses_and_duplicates_nothing(make_config, es_node, es_prefix: str,
                                                                   tmp_path: Path) -> None:
    if es_node.node is None:
        pytest.skip("ELASTICSEARCH_URL is a user's cluster: the outage test pauses the node it started")
    total, first = 100_000, 20_000
    log = tmp_path / "auth.log"
    log.touch()
    cfg = make_config(
        collectors_dir=_auth_only(tmp_path),
        sources=[{"collector": "linux-auth", "paths": [str(log)]}],
        storage={"backend": "elasticsearch", "elasticsearch": es_settings(
            es_node.url, es_prefix, spool_max_mb=16, request_timeout=3, bulk_max_docs=2000)},
    )
    metrics = Metrics()
    daemon = assemble(cfg, metrics)
    runner = threading.Thread(target=daemon.run, name="daemon")
    runner.start()
    seen = {"depth": 0.0, "bytes": 0.0, "down": 0.0, "paused": 0.0}
    sampling = threading.Event()

    def sample_metrics() -> None:
        while not sampling.is_set():
            seen["depth"] = max(seen["depth"], sample(metrics, "sentinel_spool_depth"))
            seen["bytes"] = max(seen["bytes"], sample(metrics, "sentinel_spool_bytes"))
            seen["down"] = max(seen["down"], 1 - sample(metrics, "sentinel_elasticsearch_up"))
            seen["paused"] = max(seen["paused"], sample(metrics, "sentinel_collection_paused"))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample_metrics)
    sampler.start()
    es = es_node.client()
    index = f"{es_prefix}-events-*"
    try:
        offsets = _write(log, 0, first)
        _wait(lambda: _count(es, index) > 1000, 60, "the first events in Elasticsearch")
        es_node.node.pause()
        paused_at = time.monotonic()
        try:
            for start in range(first, total, 10_000):  # the rest arrives while the cluster is gone
                offsets += _write(log, start, start + 10_000)
                time.sleep(1)
            time.sleep(max(0.0, 60 - (time.monotonic() - paused_at)))
            backlog_during = sample(metrics, "sentinel_spool_depth")
        finally:
            es_node.node.resume()
        _wait(lambda: spool_depth(cfg) == 0 and _count(es, index) >= total, 150, "the spool to drain")
    finally:
        daemon.request_stop()
        runner.join(60)
        sampling.set()
        sampler.join()
    assert _count(es, index) == total
    got = _es_offsets(es, index)
    assert len(got) == total and sorted(got) == offsets  # every line once: no loss, no duplicate
    assert backlog_during > 0 and seen["depth"] >= backlog_during
    assert seen["bytes"] > 0 and seen["down"] == 1
    assert seen["paused"] == 1, "the 16 MB spool bound should have paused collection"
    shipped = sample(metrics, "sentinel_elasticsearch_documents_total", {"result": "created"}) + sample(
        metrics, "sentinel_elasticsearch_documents_total", {"result": "duplicate"})
    assert shipped == total
    assert sample(metrics, "sentinel_elasticsearch_retries_total") > 0
    assert sample(metrics, "sentinel_elasticsearch_dead_letters_total") == 0
    assert spool_depth(cfg) == 0 and not runner.is_alive()
    es.close()


def test_daemon_sigkilled_while_shipping_restarts_without_loss_or_duplicates(make_config, es_node, es_prefix: str,
                                                                              tmp_path: Path) -> None:
    total = 30_000
    log = tmp_path / "auth.log"
    offsets = _write(log, 0, total)
    cfg = make_config(
        collectors_dir=_auth_only(tmp_path),
        sources=[{"collector": "linux-auth", "paths": [str(log)]}],
        storage={"backend": "elasticsearch", "elasticsearch": es_settings(
            es_node.url, es_prefix, bulk_max_docs=500, concurrency=2)},
        logging={"level": "WARNING"},
    )
    es = es_node.client()
    index = f"{es_prefix}-events-*"
    cmd = [sys.executable, "-m", "sentinel.cli.main", "run", "-c", str(cfg.path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _count(es, index) >= 3_000 or proc.poll() is not None, 120, "shipping to start")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        in_es_at_kill = _count(es, index)
        spooled_at_kill = spool_depth(cfg)
        assert in_es_at_kill < total, "the kill should land while shipping is under way"
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait(lambda: _count(es, index) >= total and spool_depth(cfg) == 0, 150, "the restarted daemon to finish")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert _count(es, index) == total
    got = _es_offsets(es, index)
    assert len(got) == total and sorted(got) == offsets
    assert spooled_at_kill + in_es_at_kill > 0
    assert database_path(cfg).exists()
    es.close()
