"""Start, reload and stop as an operator sees them: sd_notify, the audit trail, reload metrics, the pid file.

A reload (SIGHUP or ``sentinel reload``) runs in the pipeline's thread between two batches, when
everything read so far is committed. It loads and validates the whole new set (config, collectors,
rules, routes) and builds the new parts *before* touching the running ones; only a complete, valid
set is swapped in. Anything invalid is rejected with every reason logged, counted and audited, and
the old set keeps running.

Parts are rebuilt by calling their ``assemble`` functions with the new config. A part that must keep
live state across reloads instead implements ``prepare_reload(cfg) -> commit`` (see :class:`Reloadable`):
it validates and stages in ``prepare_reload`` (raising ConfigError/ConfigErrors to reject) and swaps in
``commit()``, which must not fail.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sentinel import __version__
from sentinel.audit.chain import AuditLog
from sentinel.audit.manifest import Manifest, diff_manifests, manifest_digest, manifest_of
from sentinel.conf.loader import load_config
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.sdnotify import Notifier
from sentinel.errors import ConfigError, ConfigErrors, SentinelError

if TYPE_CHECKING:
    from sentinel.daemon.parts import Parts
    from sentinel.daemon.pipeline import SourceRuntime
    from sentinel.daemon.service import Daemon
    from sentinel.metrics.registry import Metrics
    from sentinel.store.database import Database

log = logging.getLogger(__name__)

# The worker roles of :class:`~sentinel.daemon.parts.Parts` a reload rebuilds (detection is the processors').
RELOADED_WORKERS = ("notifier", "api")

@runtime_checkable
class Reloadable(Protocol):
    """A part that reloads in place: stage (may raise a config error), then commit (must not fail)."""

    def prepare_reload(self, cfg: LoadedConfig) -> Callable[[], None]: ...


def _among(obj: object, parts: Iterable[Any]) -> bool:
    return any(obj is p for p in parts)


def audit_path(cfg: LoadedConfig) -> Path:
    return cfg.state_path(cfg.config.logging.audit_file)


def config_manifest(cfg: LoadedConfig) -> Manifest:
    """What a (re)load of ``cfg`` reads: its file and the collector, rule and alert folders of every layer."""
    return manifest_of(cfg.path, (*cfg.collector_dirs, *cfg.rule_dirs, *cfg.alert_dirs))


def pid_path(cfg: LoadedConfig) -> Path:
    return cfg.state_path("sentinel.pid")


@dataclass
class Staged:
    """A fully built new set, not yet visible to the running daemon."""

    cfg: LoadedConfig
    manifest: Manifest
    sources: list[SourceRuntime]
    kept: set[str]
    processors: list[Any]
    new_workers: dict[str, list[Any]]  # by role, in start order
    old_workers: list[Any]
    commits: list[Callable[[], None]] = field(default_factory=list)
    detection: list[Any] = field(default_factory=list)  # the detection role's processors once committed


@dataclass(frozen=True)
class PartBuilders:
    """How a reload builds the roles it replaces: given by assemble, which builds them at start the same way."""

    processors: Callable[[LoadedConfig, Database, Metrics], list[Any]]  # the detection role
    notification: Callable[[LoadedConfig, Daemon], Parts]  # the notifier and alert API roles


class Lifecycle:
    """The daemon's operator-facing life: READY/RELOADING/STOPPING/STATUS, audit records, reload results."""

    def __init__(self, daemon: Daemon, notifier: Notifier, audit: AuditLog | None, builders: PartBuilders) -> None:
        self.daemon = daemon
        self.builders = builders
        self.notifier = notifier
        self.audit = audit
        self.manifest: Manifest = config_manifest(daemon.cfg)
        self.started_at = 0.0

    # --------------------------------------------------------------- start / stop
    def started(self) -> None:
        d = self.daemon
        self.started_at = d.clock()
        d.metrics.started.set(self.started_at)
        d.metrics.last_reload.set(self.started_at)
        d.metrics.last_reload_ok.set(1)
        for result in ("success", "failure"):
            d.metrics.reloads.labels(result)  # both series exist from the start, so rate() and alerts see 0
        self.init_series()
        self._write_pid()
        self._audit("start", version=__version__, pid=os.getpid(), config=str(d.cfg.path),
                    manifest_sha256=manifest_digest(self.manifest), files=self.manifest)
        if d.state_reset is not None:
            self._audit("state_reset", **d.state_reset)
        sources = len(d.pipeline.sources) if d.pipeline else 0
        self.notifier.ready(f"running: {sources} sources")

    def init_series(self) -> None:
        """Create every per-source series at 0 so rates, ratios and absence alerts work before the first event."""
        d = self.daemon
        m = d.metrics
        for src in d.pipeline.sources if d.pipeline else ():
            for counter in (m.lines_read, m.bytes_read, m.lines_truncated, m.invalid_utf8):
                counter.labels(src.name)
            for outcome in ("parsed", "unmatched", "unparsed"):
                m.events.labels(src.name, outcome)
            m.lag_bytes.labels(src.name)
            m.lag_seconds.labels(src.name)

    def storage_full(self, message: str) -> None:
        """The disk filled (the space reserve was just released so this record fits)."""
        self._audit("storage_full", error=message)
        self.notifier.status(f"DEGRADED: {message}")

    def storage_recovered(self, message: str, seconds: float) -> None:
        self._audit("storage_recovered", paused_seconds=round(seconds, 1))
        sources = len(self.daemon.pipeline.sources) if self.daemon.pipeline else 0
        self.notifier.status(f"running: {sources} sources; {message}")

    def failed(self, error: str) -> None:
        """The main loop stopped on an error the daemon must not run past (the database deleted)."""
        log.error("%s", error)
        self._audit("fatal_error", error=error)
        self.notifier.status(f"FAILED: {error}")

    def stopping(self, reason: str) -> None:
        self.notifier.stopping(f"draining ({reason})")

    def stopped(self, drained_batches: int, drained_events: int, complete: bool) -> None:
        self._audit("stop", pid=os.getpid(), drained_batches=drained_batches, drained_events=drained_events,
                    drain_complete=complete)
        try:
            pid_path(self.daemon.cfg).unlink()
        except OSError:
            pass
        self.notifier.close()

    def _write_pid(self) -> None:
        path = pid_path(self.daemon.cfg)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, path)

    def _audit(self, action: str, **details: Any) -> None:
        if self.audit is None:
            return
        try:
            rec = self.audit.append(action, **details)
            self.daemon.metrics.audit_records.set(rec.seq)
            # The chain head also goes to the journal: a copy outside the state directory to compare against.
            log.info("audit %s recorded (seq %d, hash %s)", action, rec.seq, rec.hash[:16])
        except OSError as exc:
            log.error("cannot write the audit log %s: %s", self.audit.path, exc.strerror or exc)

    # --------------------------------------------------------------------- reload
    def reload(self) -> bool:
        """Load, validate and build the new set; swap it in only if all of it is good."""
        d = self.daemon
        m = d.metrics
        self.notifier.reloading()
        started = time.perf_counter()
        try:
            staged = self.stage(load_config(d.cfg.path))
        except (ConfigErrors, ConfigError, SentinelError, OSError) as exc:
            errors = [str(e) for e in exc.errors] if isinstance(exc, ConfigErrors) else [str(exc)]
            for err in errors:
                log.error("reload rejected, keeping the running configuration: %s", err)
            m.reloads.labels("failure").inc()
            m.last_reload_ok.set(0)
            self._audit("config_reload", result="failure", errors=errors)
            self.notifier.ready("running; last reload FAILED, old configuration kept")
            return False
        self.commit(staged)
        self.init_series()
        changes = diff_manifests(self.manifest, staged.manifest)
        self.manifest = staged.manifest
        m.reloads.labels("success").inc()
        m.last_reload.set(d.clock())
        m.last_reload_ok.set(1)
        self._audit("config_reload", result="success", manifest_sha256=manifest_digest(staged.manifest), **changes)
        for path, digest in {**changes["added"], **changes["changed"]}.items():
            if any(Path(path).is_relative_to(d) for d in staged.cfg.rule_dirs):
                self._audit("rule_change", file=path, sha256=digest, change="added" if path in changes["added"]
                            else "changed")
        for path, digest in changes["removed"].items():
            if any(Path(path).is_relative_to(d) for d in staged.cfg.rule_dirs):
                self._audit("rule_change", file=path, sha256=digest, change="removed")
        log.info("configuration reloaded in %.0f ms: %d sources, %d file(s) changed", 1000 * (time.perf_counter()
                 - started), len(staged.sources), sum(len(v) for v in changes.values()))
        self.notifier.ready(f"running: {len(staged.sources)} sources; reloaded")
        return True

    def stage(self, cfg: LoadedConfig) -> Staged:
        """Validate everything and build the new parts without touching the running daemon."""
        from sentinel.daemon.build import build_sources, plan_sources
        from sentinel.daemon.validate import validate_all

        d = self.daemon
        assert d.pipeline is not None and d.db is not None
        report = validate_all(cfg)
        if report.errors:
            raise ConfigErrors(report.errors)
        for warning in report.warnings:
            log.warning("reload: %s", warning)
        old = d.cfg.config
        for name, before, after in (("state_dir", d.cfg.state_dir, cfg.state_dir),
                                    ("storage", old.storage, cfg.config.storage)):
            if before != after:
                raise ConfigError(f"{name} changed: that needs a restart (systemctl restart sentinel), not a reload",
                                  _where(cfg, name))
        if cfg.config.metrics != old.metrics:
            log.warning("metrics endpoint settings change at the next restart, not on reload")
        plans, _, errors = plan_sources(cfg)
        if errors:
            raise ConfigErrors(errors)
        fresh = build_sources(cfg, plans, d.metrics)
        running = {s.name: s for s in d.pipeline.sources}
        sources, kept = [], set()
        for src in fresh:
            now = running.get(src.name)
            if now is not None and _same_files(now, src):
                # Same files, same framing: keep the open tailer (no reopen, no re-read); new decoder only.
                sources.append(type(src)(src.name, now.tailer, src.decoder))
                kept.add(src.name)
            else:
                sources.append(src)
        commits: list[Callable[[], None]] = []
        in_place: list[Reloadable] = [p for p in d.pipeline.processors if isinstance(p, Reloadable)]
        in_place += [w for w in d.workers if isinstance(w, Reloadable)]
        for part in in_place:
            commits.append(part.prepare_reload(cfg))
        detection = [p for p in self.builders.processors(cfg, d.db, d.metrics) if not isinstance(p, Reloadable)]
        staying = [p for p in d.pipeline.processors
                   if not _among(p, d.parts.detection) or isinstance(p, Reloadable)]
        detection += [p for p in staying if _among(p, d.parts.detection)]
        processors = [p for p in detection if not _among(p, staying)] + staying
        rebuilt = [w for role in RELOADED_WORKERS for w in getattr(d.parts, role)]
        old_workers = [w for w in d.workers if _among(w, rebuilt) and not isinstance(w, Reloadable)]
        built = self.builders.notification(cfg, d)
        new_workers = {role: [w for w in getattr(built, role) if not isinstance(w, Reloadable)]
                       for role in RELOADED_WORKERS}
        return Staged(cfg, config_manifest(cfg), sources, kept, processors, new_workers, old_workers, commits,
                      detection)

    def commit(self, s: Staged) -> None:
        """Swap the staged set in (pipeline thread, between batches, so nothing is half-processed)."""
        d = self.daemon
        assert d.pipeline is not None
        p = d.pipeline
        p.flush()  # batches still being decoded belong to the old set: committed with its rules
        for src in p.sources:
            if src.name not in s.kept:
                src.tailer.close()
        checkpoints = d.db.load_checkpoints() if d.db is not None else []
        for src in s.sources:
            if src.name not in s.kept:
                src.tailer.restore(checkpoints)
        p.sources = s.sources
        p.processors = s.processors
        p.settings = s.cfg.config.pipeline
        d.processors[:] = s.processors
        for fn in s.commits:
            fn()
        for w in s.old_workers:
            try:
                w.stop()  # stop() finishes the delivery attempt in progress
            except Exception:
                log.exception("stopping a worker during reload failed")
        d.workers[:] = [w for w in d.workers if w not in s.old_workers]
        roles: dict[str, tuple[Any, ...]] = {}
        for role, workers in s.new_workers.items():
            running = [w for w in getattr(d.parts, role) if not _among(w, s.old_workers)]
            for w in workers:
                try:
                    w.start()
                    d.workers.append(w)
                    running.append(w)
                except Exception:
                    log.exception("starting a reloaded worker failed")
            roles[role] = tuple(running)
        d.parts = replace(d.parts, detection=tuple(s.detection), notifier=roles["notifier"], api=roles["api"])
        d.cfg = s.cfg
        logging.getLogger().setLevel(s.cfg.config.logging.level)
        d.restart_watcher()
        p.discover()


def _same_files(a: SourceRuntime, b: SourceRuntime) -> bool:
    ta, tb = a.tailer, b.tailer
    return (ta.patterns, ta.framing, ta.settings) == (tb.patterns, tb.framing, tb.settings)


def _where(cfg: LoadedConfig, field_name: str) -> Any:
    from sentinel.errors import Location

    return Location(str(cfg.path), None, field_name)
