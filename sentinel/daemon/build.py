"""Wire the parts together from a loaded configuration (the only place, besides the CLI, that knows them all)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.conf.models import LoadedConfig, SourceSettings
from sentinel.daemon.collectors import LoadedCollector, load_collector_layers
from sentinel.decode.spec import CollectorSpec
from sentinel.errors import ConfigError, ConfigErrors, Location

if TYPE_CHECKING:
    # The source kinds (and the HTTP, JWT and socket code under them) are imported where a source of that
    # kind is built: replay, `sentinel check` and every CLI command that only wants database_path() import
    # this module too, and none of them runs a journal reader, a syslog listener or an API poller.
    from sentinel.collect.journal import JournalSettings
    from sentinel.collect.syslog_net import SyslogSource
    from sentinel.daemon.pipeline import SourceRuntime
    from sentinel.metrics.registry import Metrics


def host_name(cfg: LoadedConfig) -> str:
    return cfg.config.host_name or socket.gethostname()


def source_host(cfg: LoadedConfig, spec: CollectorSpec) -> str:
    """The host.name events of this collector get when their lines name none: the configured source's
    host_name, else (a cloud service's log) the collector's name, else this machine."""
    for src in cfg.config.sources:
        if src.collector == spec.name and src.host_name:
            return src.host_name
    # A cloud service's events are about the organisation, not the machine that happens to fetch them.
    return spec.name if spec.cloud else host_name(cfg)


@dataclass
class SourcePlan:
    settings: SourceSettings
    collector: LoadedCollector
    paths: list[str]
    type: str = "file"  # "file" or "journal": what ``type: auto`` resolved to
    why: str = ""  # why auto chose it, for `sentinel check`


def choose_type(src: SourceSettings, collector: LoadedCollector, paths: list[str]) -> tuple[str, str]:
    """``type: auto``: the files when one exists (the operator's syslog daemon writes them), else the journal
    (Debian 12 and RHEL 9 log sshd, PAM and sudo only there), if the collector says what to follow in it."""
    if src.type != "auto":
        return src.type, "configured"
    if collector.spec.journal is None:
        return "file", "the collector has no journal part"
    if src.paths is not None:
        return "file", "paths are configured"
    if any(glob.glob(p) for p in paths):
        return "file", "its files exist"
    if shutil.which("journalctl") is None:
        return "file", f"none of {', '.join(paths)} exists, and journalctl is not installed"
    return "journal", f"none of {', '.join(paths)} exists"


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
        kind, why = choose_type(src, collector, paths)
        if kind == "syslog":
            if not src.syslog.listen:
                errors.append(ConfigError("a syslog source needs at least one listen address, e.g. udp://0.0.0.0:5514",
                                          Location(str(cfg.path), None, f"sources[{i}].syslog.listen")))
                continue
            unreadable = [(name, value) for name, value in (("tls_cert", src.syslog.tls_cert),
                          ("tls_key", src.syslog.tls_key), ("tls_client_ca", src.syslog.tls_client_ca))
                          if value and not os.access(cfg.resolve(value), os.R_OK)]
            for name, value in unreadable:
                errors.append(ConfigError(f"cannot read {cfg.resolve(value)} (a PEM file sentinel's user can read)",
                                          Location(str(cfg.path), None, f"sources[{i}].syslog.{name}")))
            if unreadable:
                continue
        elif kind == "journal":
            if not _journal_settings(cfg, src, collector).match_args():
                errors.append(ConfigError(
                    "a journal source needs something to follow: identifiers, units or matches, here or in the "
                    "collector's journal part", Location(str(cfg.path), None, f"sources[{i}].journal")))
                continue
        elif kind == "api":
            if src.api.provider is None:
                errors.append(ConfigError("an api source needs a provider: okta, graph, o365 or workspace",
                                          Location(str(cfg.path), None, f"sources[{i}].api.provider")))
                continue
        elif not paths:
            errors.append(ConfigError("no paths: give the source paths or the collector default paths",
                                      Location(str(cfg.path), None, f"sources[{i}].paths")))
            continue
        plans.append(SourcePlan(src, collector, paths, kind, why))
    return plans, collectors, errors


def build_sources(cfg: LoadedConfig, plans: list[SourcePlan], metrics: Metrics,
                  clock: Callable[[], float] = time.time, wake: threading.Event | None = None) -> list[SourceRuntime]:
    from sentinel.collect.framing import FramingSpec
    from sentinel.collect.journal import JournalEvents, JournalSource
    from sentinel.collect.tailer import SourceTailer, TailerEvents, TailerSettings
    from sentinel.daemon.pipeline import SourceRuntime
    from sentinel.decode.engine import Decoder

    p = cfg.config.pipeline
    def on_read(source: str, lines: int, nbytes: int) -> None:
        metrics.lines_read.labels(source).inc(lines)
        metrics.bytes_read.labels(source).inc(nbytes)

    events = TailerEvents(
        on_read=on_read,
        on_truncated_line=lambda s: metrics.lines_truncated.labels(s).inc(),
        on_problem=lambda s, kind, path: metrics.file_problems.labels(s, kind).inc(),
        on_rotation=lambda s, kind: metrics.rotations.labels(s, kind).inc(),
        on_lost=lambda s, nbytes: metrics.lost_bytes.labels(s).inc(nbytes),
    )
    journal_events = JournalEvents(
        on_read=on_read,
        on_gap=lambda s, entries: metrics.source_gaps.labels(s, "journal_vacuumed").inc(),
        on_restart=lambda s, reason: metrics.source_restarts.labels(s, reason).inc(),
        on_truncated=lambda s: metrics.lines_truncated.labels(s).inc(),
    )
    out = []
    for plan in plans:
        spec = plan.collector.spec
        if plan.type == "syslog":
            out.append(SourceRuntime(spec.name, _syslog_source(cfg, plan, metrics, clock, wake),
                                     Decoder(spec, cfg.config.timezone, plan.settings.host_name or host_name(cfg),
                                             source_type="syslog")))
            continue
        if plan.type == "api":
            from sentinel.daemon.api_sources import build_api_source

            api = build_api_source(spec.name, plan.settings.api, cfg.path.parent, metrics, clock, wake)
            out.append(SourceRuntime(spec.name, api, Decoder(spec, cfg.config.timezone, source_host(cfg, spec),
                                                             source_type="api")))
            continue
        if plan.type == "journal":
            journal = replace(_journal_settings(cfg, plan.settings, plan.collector), max_line_bytes=p.max_line_bytes,
                              start_position=plan.settings.start_position or p.start_position)
            decoder = Decoder(spec, cfg.config.timezone, plan.settings.host_name or host_name(cfg),
                              source_type="journal")
            source = JournalSource(spec.name, journal, journal_events, clock, wake)
            out.append(SourceRuntime(spec.name, source, decoder))
            continue
        framing = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)
        settings = TailerSettings(
            max_line_bytes=p.max_line_bytes,
            read_chunk_bytes=p.read_chunk_bytes,
            start_position=plan.settings.start_position or p.start_position,
        )
        tailer = SourceTailer(spec.name, plan.paths, framing, settings, events, clock)
        decoder = Decoder(spec, cfg.config.timezone, source_host(cfg, spec))
        out.append(SourceRuntime(spec.name, tailer, decoder))
    return out


def _syslog_source(cfg: LoadedConfig, plan: SourcePlan, metrics: Metrics, clock: Callable[[], float],
                   wake: threading.Event | None) -> SyslogSource:
    from sentinel.collect.syslog_net import Listener, SyslogEvents, SyslogSettings, SyslogSource

    own = plan.settings.syslog
    listeners = []
    for url in own.listen:
        protocol, _, rest = url.partition("://")
        host, _, port = rest.rpartition(":")
        listeners.append(Listener(protocol, host.strip("[]") or "0.0.0.0", int(port)))
    settings = SyslogSettings(
        listeners=tuple(listeners),
        tls_cert=str(cfg.resolve(own.tls_cert)) if own.tls_cert else None,
        tls_key=str(cfg.resolve(own.tls_key)) if own.tls_key else None,
        tls_client_ca=str(cfg.resolve(own.tls_client_ca)) if own.tls_client_ca else None,
        allow=tuple(own.allow), rate_per_sender=own.rate_per_sender, rate_burst=own.rate_burst,
        max_message_bytes=own.max_message_bytes, idle_timeout_seconds=own.idle_timeout_seconds,
    )
    def on_message(source: str, protocol: str, nbytes: int) -> None:
        metrics.lines_read.labels(source).inc()
        metrics.bytes_read.labels(source).inc(nbytes)

    events = SyslogEvents(
        on_message=on_message,
        on_problem=lambda s, kind: metrics.syslog_problems.labels(s, kind).inc(),
        on_udp_drops=lambda s, n: metrics.source_gaps.labels(s, "udp_dropped").inc(n),
    )
    return SyslogSource(plan.collector.spec.name, settings, events, clock, wake)


def _journal_settings(cfg: LoadedConfig, src: SourceSettings, collector: LoadedCollector) -> JournalSettings:
    """The source's journal overrides over the collector's defaults."""
    from sentinel.collect.journal import JournalSettings

    own, default = src.journal, collector.spec.journal
    def pick(mine: list[str] | None, theirs: list[str] | None) -> tuple[str, ...]:
        return tuple(mine if mine is not None else (theirs or ()))

    return JournalSettings(
        directory=str(cfg.resolve(own.directory)) if own.directory else None,
        files=tuple(str(cfg.resolve(f)) for f in own.files),
        identifiers=pick(own.identifiers, default.identifiers if default else None),
        units=pick(own.units, default.units if default else None),
        matches=pick(own.matches, default.matches if default else None),
    )


def journal_settings_for(cfg: LoadedConfig, collector: LoadedCollector, directory: str | None) -> JournalSettings:
    """What ``replay --journal`` reads: the config's own source of this collector (its journal overrides), or
    the collector's defaults; ``directory`` (a copied-off journal) overrides where."""
    src = next((s for s in cfg.config.sources if s.collector == collector.spec.name), None)
    settings = _journal_settings(cfg, src or SourceSettings(collector=collector.spec.name), collector)
    if directory is not None:
        settings = replace(settings, directory=str(Path(directory).resolve()), files=())
    return settings


def require(errors: list[ConfigError]) -> None:
    if errors:
        raise ConfigErrors(errors)


def database_path(cfg: LoadedConfig) -> Path:
    return cfg.state_path(cfg.config.storage.sqlite.path)
