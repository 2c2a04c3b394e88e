"""Build the Elasticsearch storage parts for a daemon: spool sink, shipper, backpressure gate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentinel.conf.models import ConfigFile, ElasticsearchSettings
from sentinel.metrics.registry import Metrics
from sentinel.store.elasticsearch.client import build_client
from sentinel.store.elasticsearch.indices import IndexManager
from sentinel.store.elasticsearch.shipper import Shipper
from sentinel.store.elasticsearch.spool import SpoolGauge, SpoolSink


@dataclass
class ElasticsearchParts:
    sink: SpoolSink
    shipper: Shipper
    gauge: SpoolGauge


def build_parts(s: ElasticsearchSettings, origin: ConfigFile, db_path: Path, metrics: Metrics,
                clock: Callable[[], float]) -> ElasticsearchParts:
    """Spool sink + shipper for these settings (the client is built; nothing is contacted yet)."""
    gauge = SpoolGauge(s.spool_max_mb * 1024 * 1024)
    wake = threading.Event()
    es = build_client(s, origin)
    shipper = Shipper(db_path, es, IndexManager(es, s), s, metrics, gauge, wake, clock)
    return ElasticsearchParts(SpoolSink(s.index_prefix, gauge, wake), shipper, gauge)
