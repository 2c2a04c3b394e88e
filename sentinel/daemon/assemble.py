"""Build a complete daemon from a config: each part the configuration enables is wired here.

Every part has one function below; the daemon and the CLI are the only places that know them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.overlap import BatchProcessor
from sentinel.daemon.parts import Parts, Worker
from sentinel.daemon.service import Daemon
from sentinel.metrics.registry import Metrics
from sentinel.store.database import Database
from sentinel.store.sink import EventSink


def assemble(cfg: LoadedConfig, metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
             reset_state: bool = False) -> Daemon:
    """The daemon with every part the configuration enables."""
    metrics = metrics or Metrics()
    storage = storage_parts(cfg, metrics, clock)
    daemon = Daemon(cfg, metrics, clock, sink=storage.sink, accepting=storage.accepting, reset_state=reset_state)
    daemon.open()
    daemon.install(build_parts(cfg, daemon, storage.workers))
    return daemon


def build_parts(cfg: LoadedConfig, daemon: Daemon, storage: tuple[Worker, ...] = ()) -> Parts:
    """Every part beside the pipeline, by role, for an opened daemon (detection needs its database)."""
    assert daemon.db is not None
    detection = tuple(detection_processors(cfg, daemon.db, daemon.metrics))
    notification = notification_parts(cfg, daemon)
    operations = operations_parts(cfg, daemon)
    security = security_parts(cfg, daemon)
    return replace(notification, storage=storage, detection=detection, metrics_server=operations.metrics_server,
                   watchdog=operations.watchdog, lifecycle=operations.lifecycle,
                   security_counters=security.security_counters, security_gauges=security.security_gauges,
                   after_commit=(*security.after_commit, lambda _result: route_queued_alerts(daemon)))


def route_queued_alerts(daemon: Daemon) -> None:
    """After a commit: if the rule engine queued alerts, wake routing now (its poll is only the backstop).

    Reads the roles on every call, since a reload replaces the engine and the notification service."""
    from sentinel.detect.engine import RuleEngine
    from sentinel.route.service import RoutingService

    if any([p.take_queued() for p in daemon.parts.detection if isinstance(p, RuleEngine)]):
        for worker in daemon.parts.notifier:
            if isinstance(worker, RoutingService):
                worker.outbox_written()


@dataclass(frozen=True)
class StorageParts:
    """The event sink (None: the embedded store the daemon opens), its backpressure gate and its workers."""

    sink: EventSink | None = None
    accepting: Callable[[], bool] | None = None
    workers: tuple[Worker, ...] = ()


def storage_parts(cfg: LoadedConfig, metrics: Metrics, clock: Callable[[], float]) -> StorageParts:
    """Pick the event sink: the embedded store (default) or the Elasticsearch spool and shipper."""
    if cfg.config.storage.backend != "elasticsearch":
        return StorageParts()
    from sentinel.daemon.build import database_path
    from sentinel.store.elasticsearch.wiring import build_parts

    s = cfg.config.storage.elasticsearch
    parts = build_parts(s, cfg.origin, database_path(cfg), metrics, clock)
    workers: list[Worker] = [parts.shipper]
    if s.analyzer.enabled:
        from sentinel.store.elasticsearch.analyzer import AnalyzerWorker

        workers.append(AnalyzerWorker.from_settings(s, cfg.origin, database_path(cfg), metrics, clock))
    # Backpressure: collection pauses (files keep their checkpoints) while the spool is at its bound.
    return StorageParts(parts.sink, parts.gauge.accepting, tuple(workers))


def detection_processors(cfg: LoadedConfig, db: Database, metrics: Metrics | None = None) -> list[BatchProcessor]:
    """The rule engine as a batch processor, when detection is enabled."""
    if not cfg.config.detection.enabled:
        return []
    from sentinel.detect.engine import engine_for_config

    return [engine_for_config(cfg.rule_sources, db.conn, metrics)]


def security_parts(cfg: LoadedConfig, daemon: Daemon) -> Parts:
    """Sign-in, MFA and PHI counters over committed events; alert-queue and coverage gauges (metrics on)."""
    if not cfg.config.metrics.enabled:
        return Parts()
    from sentinel.daemon.build import database_path
    from sentinel.daemon.security_counts import SecurityCounter
    from sentinel.daemon.security_gauges import SecurityGaugeWorker
    from sentinel.detect.engine import RuleEngine
    from sentinel.route.gauges import AlertGauges

    counter = SecurityCounter(daemon.metrics)

    def engines() -> list[Callable[[float], None]]:
        # Whichever rule engine is installed now: a reload replaces the daemon's detection role.
        return [p.refresh_coverage for p in daemon.parts.detection if isinstance(p, RuleEngine)]

    gauges = SecurityGaugeWorker(database_path(cfg), AlertGauges(daemon.metrics, daemon.clock()), daemon.clock,
                                 engines)
    return Parts(security_counters=(counter,), security_gauges=(gauges,), after_commit=(counter.committed,))


def resolve_after(cfg: LoadedConfig) -> dict[str, float]:
    """Rule id → its ``resolve_after`` quiet period, for every rule of the pack that has one (routing may not
    read rules, so the daemon hands it this table)."""
    from sentinel.detect.loader import rule_pack

    rules = rule_pack(cfg.rule_sources)[0].rules
    return {r.id: r.spec.resolve_after for r in rules if r.spec.resolve_after is not None}


def notification_parts(cfg: LoadedConfig, daemon: Daemon) -> Parts:
    """Routing and delivery of the outbox through apprise (notifier), and the alert HTTP API."""
    from sentinel.alertapi.server import AlertApi, load_token
    from sentinel.audit.chain import AuditLog
    from sentinel.daemon.build import database_path
    from sentinel.daemon.lifecycle import audit_path
    from sentinel.daemon.notify_service import build_service

    notifier: tuple[Worker, ...] = ()
    api: tuple[Worker, ...] = ()
    if cfg.config.notify.enabled:
        notifier = build_service(cfg, daemon.metrics, daemon.clock, database_path(cfg),
                                 resolve_after=resolve_after(cfg), audit=AuditLog(audit_path(cfg), daemon.clock).append)
    if cfg.config.api.enabled:
        token = load_token(cfg.state_path(cfg.config.api.token_file))
        api = (AlertApi(database_path(cfg), cfg.config.api.listen, token, daemon.clock,
                        audit=AuditLog(audit_path(cfg)).append),)
    return Parts(notifier=notifier, api=api)


def operations_parts(cfg: LoadedConfig, daemon: Daemon) -> Parts:
    """The lifecycle (systemd notifications, the daemon's audit trail), the metrics endpoint, watchdog pings."""
    from sentinel.audit.chain import AuditLog
    from sentinel.credentials import SecretError, resolve_reference
    from sentinel.daemon.health import Health
    from sentinel.daemon.lifecycle import Lifecycle, PartBuilders, audit_path
    from sentinel.daemon.sdnotify import Notifier, WatchdogPinger, watchdog_interval
    from sentinel.metrics.server import MetricsServer

    notifier = Notifier()
    lifecycle = Lifecycle(daemon, notifier, AuditLog(audit_path(cfg), daemon.clock),
                          PartBuilders(detection_processors, notification_parts))
    health = Health(daemon)
    server: tuple[Worker, ...] = ()
    m = cfg.config.metrics
    if m.enabled:
        try:
            password = resolve_reference(m.password, cfg.base) if m.password is not None else None
        except SecretError as exc:
            from sentinel.errors import ConfigError, Location

            raise ConfigError(str(exc), Location(str(cfg.path), None, "metrics.password")) from None
        tls = [str(cfg.resolve(f)) if f else None for f in (m.tls_cert, m.tls_key)]
        server = (MetricsServer(daemon.metrics.registry, m.listen, health.live, health.ready,
                                m.username, password, tls[0], tls[1]),)
    interval = watchdog_interval()
    pinger: tuple[Worker, ...] = ()
    if interval is not None and notifier.enabled:
        pinger = (WatchdogPinger(notifier, interval, health.alive),)
    return Parts(metrics_server=server, watchdog=pinger, lifecycle=lifecycle)
