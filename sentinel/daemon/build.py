"""Wire the parts together from a loaded configuration (the only place, besides the CLI, that knows them all)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentinel.collect.framing import FramingSpec
from sentinel.collect.tailer import SourceTailer, TailerEvents, TailerSettings
from sentinel.conf.models import LoadedConfig, SourceSettings
from sentinel.daemon.pipeline import SourceRuntime
from sentinel.decode.engine import Decoder
from sentinel.decode.registry import LoadedCollector, load_collector_layers
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.metrics.registry import Metrics


def host_name(cfg: LoadedConfig) -> str:
    return cfg.config.host_name or socket.gethostname()


@dataclass
class SourcePlan:
    settings: SourceSettings
    collector: LoadedCollector
    paths: list[str]


def plan_sources(cfg: LoadedConfig) -> tuple[list[SourcePlan], dict[str, LoadedCollector], list[ConfigError]]:
    """Match the config's sources with collector definitions; returns plans and every problem."""
    collectors, errors = load_collector_layers(cfg.collector_dirs)
    plans: list[SourcePlan] = []
    names: set[str] = set()
    for i, src in enumerate(cfg.config.sources):
        where = Location(str(cfg.path), None, f"sources[{i}].collector")
        if src.collector not in collectors:
            known = ", ".join(sorted(collectors)) or "none loaded"
            errors.append(ConfigError(f"unknown collector {src.collector!r}; known: {known}", where))
            continue
        if src.collector in names:
            errors.append(ConfigError(f"collector {src.collector!r} is listed twice", where))
            continue
        names.add(src.collector)
        if not src.enabled:
            continue
        collector = collectors[src.collector]
        paths = [str(cfg.resolve(p)) for p in (src.paths if src.paths is not None else collector.spec.paths)]
        if not paths:
            errors.append(ConfigError("no paths: give the source paths or the collector default paths",
                                      Location(str(cfg.path), None, f"sources[{i}].paths")))
            continue
        plans.append(SourcePlan(src, collector, paths))
    return plans, collectors, errors


def build_sources(cfg: LoadedConfig, plans: list[SourcePlan], metrics: Metrics,
                  clock: Callable[[], float] = time.time) -> list[SourceRuntime]:
    p = cfg.config.pipeline
    def on_read(source: str, lines: int, nbytes: int) -> None:
        metrics.lines_read.labels(source).inc(lines)
        metrics.bytes_read.labels(source).inc(nbytes)

    events = TailerEvents(
        on_read=on_read,
        on_truncated_line=lambda s: metrics.lines_truncated.labels(s).inc(),
        on_problem=lambda s, kind, path: metrics.file_problems.labels(s, kind).inc(),
        on_rotation=lambda s, kind: metrics.rotations.labels(s, kind).inc(),
    )
    out = []
    host = host_name(cfg)
    for plan in plans:
        spec = plan.collector.spec
        framing = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)
        settings = TailerSettings(
            max_line_bytes=p.max_line_bytes,
            read_chunk_bytes=p.read_chunk_bytes,
            start_position=plan.settings.start_position or p.start_position,
        )
        tailer = SourceTailer(spec.name, plan.paths, framing, settings, events, clock)
        decoder = Decoder(spec, cfg.config.timezone, plan.settings.host_name or host)
        out.append(SourceRuntime(spec.name, tailer, decoder))
    return out


def require(errors: list[ConfigError]) -> None:
    if errors:
        raise ConfigErrors(errors)


def database_path(cfg: LoadedConfig) -> Path:
    return cfg.state_path(cfg.config.storage.sqlite.path)
