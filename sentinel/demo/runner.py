"""``sentinel demo``: generate a few days of company logs, run the real daemon on them, stream live lines.

Everything lives in one directory, kept afterwards: ``logs/`` (generated files), ``state/`` (the database),
``alerts/`` (routes to the demo's own local receiver, which prints each alert as it is delivered) and
``sentinel.yaml`` (pointing at the collectors and rules shipped in the package).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from sentinel.conf.loader import load_config
from sentinel.daemon.build import database_path
from sentinel.daemon.collectors import load_collectors
from sentinel.demo.activity import FILES
from sentinel.demo.console import TEMPLATE, ConsoleReceiver
from sentinel.demo.generator import PHI_WORKSTATIONS_FILE, TERMINATED_FILE, GroundTruth, day_start, generate_world
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
    users: int = 80
    seed: int = 7
    interval: float = 5.0
    now: float | None = None  # pins the demo's clock (tests run it on every weekday and over a New Year)


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
    snapshot: Snapshot
    truth: GroundTruth
    live_incidents: list[Incident]
    live_lines: dict[str, int]
    alert_keys: list[tuple[str, str]] = field(default_factory=list)
    delivered: int = 0
    clock_now: float = 0.0


def prepare_directory(directory: Path | None) -> Path:
    """A new demo directory (kept afterwards); an existing non-empty one is never wiped."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="sentinel-demo-"))
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise SentinelError(f"--dir {directory} is a file, not a folder")
    if directory.exists() and any(directory.iterdir()):
        if (directory / MARKER).exists():
            raise SentinelError(f"--dir {directory} already holds a demo; explore it with 'sentinel alerts list -c "
                                f"{directory / 'sentinel.yaml'}', or remove it yourself, or give another --dir")
        raise SentinelError(f"--dir {directory} is not empty and was not made by 'sentinel demo'; give an empty "
                            "or new directory")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by 'sentinel demo'; safe to delete\n")
    return directory


def write_alerts(directory: Path, receiver_url: str) -> Path:
    """Routes that send every alert, grouped per rule and user, to the demo's local receiver."""
    alerts = directory / "alerts"
    (alerts / "templates").mkdir(parents=True, exist_ok=True)
    (alerts / "templates" / "demo.yaml").write_text(TEMPLATE)
    (alerts / "routes.yaml").write_text(
        "# Written by 'sentinel demo': everything to the local receiver the demo runs.\n"
        "defaults: {group_by: [rule, user.name], group_wait: 1s, group_interval: 10s, repeat_interval: 4h}\n"
        "route:\n  receivers: [demo-console]\n")
    (alerts / "receivers.yaml").write_text(
        "receivers:\n  - name: demo-console\n"
        f"    urls: [\"{receiver_url}\"]\n    template: demo\n")
    return alerts


INCIDENT_DAYS = 5  # the planter uses the last five days of the history (day(4) .. day(0))
DAY_SECONDS = 86400.0


def history_days(requested: int, end: datetime, rules: list[Any]) -> int:
    """Enough days that every rule's learning (new_value learn_for, baseline min_history) ends before the first
    planted incident, counted from the first working day: a history starting on a weekend learns nothing then."""
    learn = max((r.spec.new_value.learn_for / DAY_SECONDS for r in rules if r.spec.new_value), default=0.0)
    buckets = max((r.spec.baseline.min_history for r in rules
                   if r.spec.baseline and r.spec.baseline.bucket == DAY_SECONDS), default=0)
    days = requested
    while days < 400:
        start = end - timedelta(days=days)
        first_workday = start
        while first_workday.weekday() >= 5:
            first_workday += timedelta(days=1)
        incidents = end - timedelta(days=INCIDENT_DAYS)
        workdays = sum(1 for d in range((incidents - first_workday).days)
                       if (first_workday + timedelta(days=d)).weekday() < 5)
        if (incidents - first_workday).days >= math.ceil(learn) + 1 and workdays >= buckets + 1:
            return days
        days += 1
    return days


def write_config(directory: Path, logs: Path, out: TextIO, alerts: Path) -> Path:
    """sentinel.yaml for the demo: the project's collectors and rules, state, logs and routes in the directory."""
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
        "notify": {"enabled": True, "poll_interval_ms": 100},
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
    since = f"{max(2, math.ceil((result.clock_now - result.truth.start.timestamp()) / DAY_SECONDS))}d"
    out.write(f"Everything is kept in {result.directory} (logs/ground-truth.json lists the incidents). Explore:\n")
    out.write(f"  sentinel alerts list -c {config}\n")
    out.write(f"  sentinel search -c {config} event.action=phi_export --since {since} --limit 20\n")
    out.write(f"  sentinel report -c {config} --from {since}\n")


def run_demo(opts: DemoOptions, out: TextIO, clock: Callable[[], float] = time.time) -> DemoResult:
    """Run the whole demo; returns what happened (the directory is kept)."""
    from sentinel.daemon.assemble import assemble
    from sentinel.detect.loader import load_for_config

    if opts.now is not None:
        offset = opts.now - clock()
        real = clock

        def clock() -> float:
            return real() + offset

    directory = prepare_directory(opts.directory)
    logs = directory / "logs"
    receiver = ConsoleReceiver(out)
    receiver.start()
    try:
        began = clock()
        config = write_config(directory, logs, out, write_alerts(directory, receiver.url))
        cfg = load_config(config)
        end = day_start(datetime.fromtimestamp(clock(), UTC))
        rules, _, _ = load_for_config(cfg.rule_sources)
        days = history_days(opts.days, end, rules)
        if days > opts.days:
            out.write(f"  note: {days} days of history instead of {opts.days}, so the rules' learning periods "
                      f"end before the planted incidents (the history starts on a {(end - timedelta(days=days)):%A})\n")
        out.write(f"Generating {days} days of logs for a {opts.users}-person billing company in {logs} ...\n")
        truth, world = generate_world(logs, days=days, users=opts.users, seed=opts.seed,
                                      start=end - timedelta(days=days))
        lines = sum(f.lines for f in truth.files.values())
        size = sum(f.bytes for f in truth.files.values())
        out.write(f"  {_n(lines)} lines, {size / 1e6:.1f} MB in {clock() - began:.1f} s; "
                  f"{len(truth.incidents)} incidents planted\n")
        logging.getLogger("sentinel").setLevel(logging.WARNING)
        start = clock()
        live, live_incidents = plan_live(world, int(start * 1000) + 1500, opts.duration)
        daemon = assemble(cfg, clock=clock)
        failure: list[BaseException] = []

        def run_daemon() -> None:
            try:
                daemon.run()
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)

        thread = threading.Thread(target=run_daemon, name="sentinel-daemon", daemon=True)
        writer = LiveWriter(logs, live, clock)
        out.write(f"Running the daemon for {opts.duration:.0f} s while live events stream in; each alert is "
                  f"printed as the local receiver gets it (Ctrl-C stops) ...\n")
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
                with receiver.lock:
                    out.write(live_line(now - start, snap, previous, now - last) + "\n")
                    out.flush()
                previous, last = snap, now
        except KeyboardInterrupt:
            out.write("\nstopping ...\n")
        writer.stop()
        _drain(db, logs, clock, thread)
        _deliveries(db, thread)
        daemon.request_stop()
        thread.join(timeout=30)
        if failure:
            raise SentinelError(f"the daemon stopped with an error: {failure[0]!r}") from failure[0]
        result = DemoResult(directory, read_snapshot(db), truth, live_incidents, dict(writer.written),
                            read_alert_keys(db), receiver.received, clock())
        summary(result, clock() - began, config, out)
        return result
    finally:
        receiver.stop()


def _deliveries(db: Path, thread: threading.Thread, limit: float = 20.0) -> None:
    """Let the notifier deliver what the last batches raised (group_wait, then the send)."""
    deadline = time.monotonic() + limit
    time.sleep(2.5)  # the demo routes' group_wait plus a poll
    while time.monotonic() < deadline and thread.is_alive():
        conn = connect(db, readonly=True, timeout=5)
        try:
            pending = conn.execute("SELECT count(*) FROM notifications WHERE status = 'pending'").fetchone()[0]
        except sqlite3.OperationalError:
            pending = 0
        finally:
            conn.close()
        if not pending:
            return
        time.sleep(0.3)


def _drain(db: Path, logs: Path, clock: Callable[[], float], thread: threading.Thread, limit: float = 300.0) -> None:
    """Let the daemon catch up with everything written (until caught up, no progress for 10 s, or ``limit``):
    a planted incident the daemon has not read yet would look like a missed detection."""
    deadline = clock() + limit
    total, still = -1, 0
    while clock() < deadline and thread.is_alive():
        if caught_up(db, logs):
            return
        now_total = read_snapshot(db).total
        still = still + 1 if now_total == total else 0
        if still >= 20:  # 10 s without a commit: a rule-heavy batch on a loaded machine can take seconds
            return
        total = now_total
        time.sleep(0.5)
