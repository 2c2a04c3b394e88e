"""Build a complete daemon from a config: each part the configuration enables is wired here.

Every part has one function below; the daemon and the CLI are the only places that know them all.
"""

from __future__ import annotations

from typing import Any

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.pipeline import BatchProcessor
from sentinel.daemon.service import Daemon
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database


def assemble(cfg: LoadedConfig, metrics: Metrics | None = None) -> Daemon:
    """The daemon with every part the configuration enables."""
    daemon = Daemon(cfg, metrics)
    configure_storage(cfg, daemon)
    daemon.open()
    assert daemon.db is not None
    daemon.processors.extend(detection_processors(cfg, daemon.db, daemon.metrics))
    daemon.workers.extend(notification_workers(cfg, daemon))
    daemon.workers.extend(operations_workers(cfg, daemon))
    return daemon


def configure_storage(cfg: LoadedConfig, daemon: Daemon) -> None:
    """Pick the event sink: the embedded store (default) or the Elasticsearch spool and shipper."""


def detection_processors(cfg: LoadedConfig, db: Database, metrics: Metrics | None = None) -> list[BatchProcessor]:
    """The rule engine as a batch processor, when detection is enabled."""
    return []


def notification_workers(cfg: LoadedConfig, daemon: Daemon) -> list[Any]:
    """Routing and delivery of the outbox through apprise, plus the alert HTTP API."""
    return []


def operations_workers(cfg: LoadedConfig, daemon: Daemon) -> list[Any]:
    """Metrics endpoint, systemd notifications, the daemon's audit trail."""
    return []
