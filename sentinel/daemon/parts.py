"""What ``assemble`` builds for one configuration, grouped by role, and the interfaces the daemon runs them by.

The daemon installs a :class:`Parts` record itself; a reload replaces the roles it rebuilds (detection,
notifier, alert API) with the ones built for the new configuration, so "which part is which" is read off
the record, never off the module a class lives in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sentinel.daemon.overlap import BatchProcessor
from sentinel.daemon.pipeline import BatchResult


class Worker(Protocol):
    """A background part (notifier, shipper, HTTP server) started and stopped with the daemon.

    ``stop()`` must finish the unit of work in progress (a delivery attempt, a bulk request) and return.
    """

    def start(self) -> None: ...
    def stop(self) -> None: ...


class LifecycleHooks(Protocol):
    """What the operations part does at start, reload and stop (sd_notify, audit, metrics)."""

    def started(self) -> None: ...
    def reload(self) -> bool: ...
    def stopping(self, reason: str) -> None: ...
    def failed(self, error: str) -> None: ...
    def stopped(self, drained_batches: int, drained_events: int, complete: bool) -> None: ...
    def storage_full(self, message: str) -> None: ...
    def storage_recovered(self, message: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class Parts:
    """The parts beside the pipeline, by role. Workers start in the order of :meth:`workers`, stop in reverse."""

    storage: tuple[Worker, ...] = ()  # the Elasticsearch shipper and the fleet analyzer
    detection: tuple[BatchProcessor, ...] = ()  # the rule engine (rebuilt on reload)
    notifier: tuple[Worker, ...] = ()  # routing and delivery of the outbox (rebuilt on reload)
    api: tuple[Worker, ...] = ()  # the alert HTTP API (rebuilt on reload)
    metrics_server: tuple[Worker, ...] = ()  # /metrics and /healthz
    watchdog: tuple[Worker, ...] = ()  # systemd watchdog pings
    security_counters: tuple[BatchProcessor, ...] = ()  # sign-in, MFA and PHI counters over committed events
    security_gauges: tuple[Worker, ...] = ()  # alert-queue and coverage gauges
    after_commit: tuple[Callable[[BatchResult], None], ...] = ()
    lifecycle: LifecycleHooks | None = None

    def workers(self) -> list[Worker]:
        return [*self.storage, *self.notifier, *self.api, *self.metrics_server, *self.watchdog,
                *self.security_gauges]

    def processors(self) -> list[BatchProcessor]:
        return [*self.detection, *self.security_counters]
