"""The notification workers built from a config: routing (``sentinel.route``) and delivery (``sentinel.notify``),
wired so that routing wakes delivery. The daemon runs them in-process; ``sentinel.cli.notify_worker`` runs them
alone."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.errors import ConfigErrors
from sentinel.metrics.registry import Metrics
from sentinel.notify.delivery import Sender
from sentinel.notify.redact import Redactor, load_names
from sentinel.notify.render import Renderer
from sentinel.notify.templates import load_template_layers
from sentinel.notify.worker import Clock, NotifyService
from sentinel.route.loader import load_config_routing
from sentinel.route.service import RoutingService

log = logging.getLogger("sentinel.notify.worker")  # the name its log lines always had


def build_service(cfg: LoadedConfig, metrics: Metrics | None = None, clock: Clock = time.time,
                  db_path: Path | None = None, sender: Sender | None = None,
                  resolve_after: Mapping[str, float] | None = None,
                  audit: Callable[..., Any] | None = None) -> tuple[RoutingService, NotifyService]:
    """Load routes, receivers and templates for ``cfg`` and build the routing and the delivery worker (raises
    ConfigErrors).
    ``resolve_after`` (rule id → seconds) and ``audit`` come from the daemon, which knows the rule pack."""
    routing = load_config_routing(cfg.alert_folders)
    for r in routing.receivers.values():
        if r.problem:
            log.warning("receiver %s cannot send until fixed (its messages fail over to %s): %s", r.name,
                        r.fallback or "nobody: they wait", r.problem)
    templates, errors = load_template_layers([d / "templates" for d in cfg.alert_dirs])
    if errors:
        raise ConfigErrors(errors)
    s = cfg.config.notify
    names = load_names(cfg.resolve(s.patient_names_file) if s.patient_names_file else None)
    renderer = Renderer(templates, Redactor(names, s.redact_patterns), s.evidence_command)
    path = db_path or database_path(cfg)
    delivery = NotifyService(path, routing, renderer, s, metrics, clock, sender)
    router = RoutingService(path, routing, s, metrics, clock, resolve_after=resolve_after, audit=audit,
                            on_routed=delivery.notifications_made)
    return router, delivery
