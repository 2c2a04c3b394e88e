"""``sentinel demo``: generate a few days of company logs, run the real daemon on them, stream live lines.

Everything lives in one scratch directory: ``logs/`` (generated files), ``state/`` (the database),
``sentinel.yaml`` (pointing at the collectors, rules and alerts shipped in the package).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from sentinel.conf.loader import load_config
from sentinel.daemon.build import database_path
from sentinel.decode.registry import load_collectors
from sentinel.demo.activity import FILES
from sentinel.demo.generator import PHI_WORKSTATIONS_FILE, TERMINATED_FILE, GroundTruth, generate_world
from sentinel.demo.incidents import Incident
from sentinel.demo.live import LiveWriter, plan_live
from sentinel.errors import SentinelError
from sentinel.shipped import shipped_path
from sentinel.store.database import connect

MARKER = ".sentinel-demo"
COLLECTOR_OF = {"auth.log": "linux-auth", "audit.log": "auditd", "okta.jsonl": "okta", "entra.jsonl": "entra",
                "billing-audit.jsonl": "billing-audit", "osquery.jsonl": "osquery"}
SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass
class DemoOptions:
    directory: Path | None = None
    days: int = 10
    duration: float = 30.0
    keep: bool = False
    users: int = 80
    seed: int = 7
    interval: float = 5.0


@dataclass
class Snapshot:
    """What the daemon has stored so far, read from its database."""

    events: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    alerts: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.events.values())


@dataclass
class DemoResult:
    directory: Path
    kept: bool
    snapshot: Snapshot
    truth: GroundTruth
    live_incidents: list[Incident]
    live_lines: dict[str, int]
    alert_keys: list[tuple[str, str]] = field(default_factory=list)


def prepare_directory(directory: Path | None) -> tuple[Path, bool]:
    """A fresh demo directory; an existing one is reused only if an earlier demo made it."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="sentinel-demo-")), True
    directory = directory.expanduser().resolve()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise SentinelError(f"{directory} is not empty and was not made by 'sentinel demo'; "
                                "give an empty or new directory")
        for sub in ("logs", "state"):
            shutil.rmtree(directory / sub, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by 'sentinel demo'; safe to delete\n")
    return directory, False


def write_config(directory: Path, logs: Path, out: TextIO) -> Path:
    """sentinel.yaml for the demo: the project's collectors/rules/alerts, state and logs in the directory."""
    collectors = shipped_path("collectors")
    loaded, errors = load_collectors(collectors)
    for err in errors:
        out.write(f"  note: skipping a collector that does not load: {err}\n")
    sources = []
    for name in FILES:
        collector = COLLECTOR_OF[name]
        if collector in loaded:
            sources.append({"collector": collector, "paths": [str((logs / name).relative_to(directory))]})
        else:
            out.write(f"  note: no '{collector}' collector in {collectors}; {name} is generated but not read\n")
    rules = shipped_path("rules")
    alerts = shipped_path("alerts")
    has_rules = any(rules.rglob("*.yaml"))
    if not has_rules:
        out.write("  note: no rules found; events are stored but no alerts will be raised\n")
    doc: dict[str, Any] = {
        "state_dir": "state",
        "host_name": "demo-collector",
        "timezone": "UTC",
        "collectors_dir": str(collectors),
        "rules_dir": str(rules),
        "alerts_dir": str(alerts),
        "pipeline": {"start_position": "beginning", "poll_interval_ms": 100},
        "sources": sources,
        "detection": {"enabled": has_rules,
                      "terminated_accounts_file": str((logs / TERMINATED_FILE).relative_to(directory)),
                      "phi_workstations_file": str((logs / PHI_WORKSTATIONS_FILE).relative_to(directory))},
        # Deliveries need receivers with real secrets; the demo shows alerts from the database instead.
        "notify": {"enabled": False},
        "metrics": {"enabled": False},
        "api": {"enabled": False},
        "logging": {"level": "WARNING"},
    }
    path = directory / "sentinel.yaml"
    path.write_text("# Written by 'sentinel demo'.\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def read_snapshot(db: Path) -> Snapshot:
    """Events by source, parse outcomes by source and alerts by (rule, severity) from the daemon's database."""
    snap = Snapshot()
    if not db.exists():
        return snap
    conn = connect(db, readonly=True, timeout=5)
    try:
        snap.events = dict(conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall())
        for source, outcome, count in conn.execute("SELECT source, outcome, count FROM source_stats"):
            snap.outcomes.setdefault(source, {})[outcome] = count
        for rule, severity, count in conn.execute("SELECT rule_id, severity, count(*) FROM alerts "
                                                  "GROUP BY rule_id, severity"):
            snap.alerts[(rule, severity)] = count
    except sqlite3.OperationalError:
        pass  # the daemon is still creating its tables
    finally:
        conn.close()
    return snap


def caught_up(db: Path, logs: Path) -> bool:
    """Whether every log file's checkpoint has reached its end."""
    if not db.exists():
        return False
    conn = connect(db, readonly=True, timeout=5)
    try:
        done = {Path(p).name: off for p, off in conn.execute("SELECT path, offset FROM checkpoints")}
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return all(done.get(name, -1) >= (logs / name).stat().st_size for name in FILES if (logs / name).exists())


def _n(value: int) -> str:
    return f"{value:,}"


def live_line(elapsed: float, snap: Snapshot, previous: Snapshot, seconds: float) -> str:
    rate = (snap.total - previous.total) / max(seconds, 1e-6)
    by_source = "  ".join(f"{s} {_n(n)}" for s, n in sorted(snap.events.items()))
    unparsed = sum(o.get("unparsed", 0) for o in snap.outcomes.values())
    alerts = sum(snap.alerts.values())
    return (f"[{elapsed:4.0f}s] {_n(snap.total)} events ({_n(int(rate))}/s)  {by_source}  | unparsed {_n(unparsed)}"
            f"  | alerts {_n(alerts)}")


def _fired_for(incident: Incident, rule: str, keys: list[tuple[str, str]]) -> bool:
    """Whether ``rule`` raised an alert whose group key names the incident's user, host or address."""
    names = [n for n in (incident.user, incident.host, incident.details.get("source_ip")) if n]
    if incident.user and "@" in incident.user:
        names.append(incident.user.split("@")[0])
    for rule_id, group_key in keys:
        if rule_id != rule:
            continue
        values = {part.partition("=")[2] for part in group_key.split("|")}
        if not names or any(n in values or f"{n}@" in group_key for n in names):
            return True
    return False


def read_alert_keys(db: Path) -> list[tuple[str, str]]:
    """(rule id, group key) of every alert, to tell which planted incident an alert belongs to."""
    if not db.exists():
        return []
    conn = connect(db, readonly=True, timeout=5)
    try:
        return [(r, k) for r, k in conn.execute("SELECT rule_id, group_key FROM alerts")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def summary(result: DemoResult, elapsed: float, config: Path, out: TextIO) -> None:
    snap = result.snapshot
    out.write(f"\nDemo finished after {elapsed:.0f} s: {_n(snap.total)} events stored.\n\n")
    out.write(f"  {'source':<14} {'events':>9} {'parsed':>9} {'unmatched':>9} {'unparsed':>9}\n")
    for source in sorted(set(snap.events) | set(snap.outcomes)):
        o = snap.outcomes.get(source, {})
        out.write(f"  {source:<14} {_n(snap.events.get(source, 0)):>9} {_n(o.get('parsed', 0)):>9} "
                  f"{_n(o.get('unmatched', 0)):>9} {_n(o.get('unparsed', 0)):>9}\n")
    if snap.alerts:
        out.write("\nAlerts by rule:\n")
        order = {s: i for i, s in enumerate(SEVERITIES)}
        for (rule, severity), count in sorted(snap.alerts.items(), key=lambda kv: (order.get(kv[0][1], 9), kv[0][0])):
            out.write(f"  {severity:<9} {rule:<44} {count}\n")
    else:
        out.write("\nNo alerts were raised.\n")
    out.write("\nPlanted incidents (ground truth) and whether their rules fired for them:\n")
    for inc in result.truth.incidents + result.live_incidents:
        hits = [r for r in inc.expected_rules if _fired_for(inc, r, result.alert_keys)]
        mark = "x" if len(hits) == len(inc.expected_rules) else ("~" if hits else " ")
        out.write(f"  [{mark}] {inc.name:<28} {', '.join(inc.expected_rules)}\n")
    out.write("\n")
    if result.kept:
        someone = next((i.user for i in result.truth.incidents if i.name == "export-burst-night"), None)
        out.write(f"Everything is in {result.directory} (logs/ground-truth.json lists the incidents). Explore:\n")
        out.write(f"  sentinel search -c {config} event.action=phi_export --since 7d --limit 20\n")
        if someone:
            out.write(f"  sentinel search -c {config} user.name={someone} event.action=phi_export --since 7d\n")
        out.write(f"  sentinel search -c {config} source.ip=185.220.101.47 --since 7d\n")
        out.write(f"  sentinel alerts list -c {config}\n")
    else:
        out.write("The demo directory was removed; run 'sentinel demo --keep' (or --dir DIR) to explore the data "
                  "afterwards with 'sentinel search' and 'sentinel alerts list'.\n")


def run_demo(opts: DemoOptions, out: TextIO, clock: Callable[[], float] = time.time) -> DemoResult:
    """Run the whole demo; returns what happened (the directory is removed unless kept)."""
    from sentinel.daemon.assemble import assemble

    directory, temporary = prepare_directory(opts.directory)
    kept = opts.keep or not temporary
    logs = directory / "logs"
    try:
        began = clock()
        out.write(f"Generating {opts.days} days of logs for a {opts.users}-person billing company in {logs} ...\n")
        truth, world = generate_world(logs, days=opts.days, users=opts.users, seed=opts.seed)
        lines = sum(f.lines for f in truth.files.values())
        size = sum(f.bytes for f in truth.files.values())
        out.write(f"  {_n(lines)} lines, {size / 1e6:.1f} MB in {clock() - began:.1f} s; "
                  f"{len(truth.incidents)} incidents planted\n")
        config = write_config(directory, logs, out)
        cfg = load_config(config)
        logging.getLogger("sentinel").setLevel(logging.WARNING)
        start = clock()
        live, live_incidents = plan_live(world, int(start * 1000) + 1500, opts.duration)
        daemon = assemble(cfg)
        failure: list[BaseException] = []

        def run_daemon() -> None:
            try:
                daemon.run()
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)

        thread = threading.Thread(target=run_daemon, name="sentinel-daemon", daemon=True)
        writer = LiveWriter(logs, live, clock)
        out.write(f"Running the daemon for {opts.duration:.0f} s while live events stream in "
                  f"(Ctrl-C stops) ...\n")
        out.flush()
        thread.start()
        writer.start()
        db = database_path(cfg)
        previous, last = Snapshot(), start
        try:
            while clock() - start < opts.duration and thread.is_alive():
                time.sleep(min(opts.interval, max(0.05, opts.duration - (clock() - start))))
                snap = read_snapshot(db)
                now = clock()
                out.write(live_line(now - start, snap, previous, now - last) + "\n")
                out.flush()
                previous, last = snap, now
        except KeyboardInterrupt:
            out.write("\nstopping ...\n")
        writer.stop()
        _drain(db, logs, clock, thread)
        daemon.request_stop()
        thread.join(timeout=30)
        if failure:
            raise SentinelError(f"the daemon stopped with an error: {failure[0]!r}") from failure[0]
        result = DemoResult(directory, kept, read_snapshot(db), truth, live_incidents, dict(writer.written),
                            read_alert_keys(db))
        summary(result, clock() - began, config, out)
        return result
    finally:
        if not kept:
            shutil.rmtree(directory, ignore_errors=True)


def _drain(db: Path, logs: Path, clock: Callable[[], float], thread: threading.Thread, limit: float = 15.0) -> None:
    """Give the daemon a moment to store what was just written (until caught up, idle, or ``limit``)."""
    deadline = clock() + limit
    total, still = -1, 0
    while clock() < deadline and thread.is_alive():
        if caught_up(db, logs):
            return
        now_total = read_snapshot(db).total
        still = still + 1 if now_total == total else 0
        if still >= 4:
            return
        total = now_total
        time.sleep(0.5)
