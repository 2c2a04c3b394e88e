"""Detection benchmark (not collected by pytest): ``python tests/bench_detect.py [--days 3] [--samples 200]``.

Prints
1. throughput of the real replay pipeline (decode, store, commit) with the full rule pack, as a ratio to the
   same replay with no rules, on generated logs (target >= 0.7);
2. latency from a line emitted until its alert is in the outbox, through the real daemon (p50/p99 over
   --samples lines; target p99 < 0.5 s), for each of --inputs: a tailed file, the journal (real journal files
   written by systemd-journal-remote, followed by journalctl) and network syslog (a TCP client);
3. RSS and rule-state keys after a flood of 1,000,000 distinct user names (bound: max_keys_per_rule).

``--storm [--lines 200000] [--runs 3]``: instead, tests/storm.py's brute-force storm: replay with and without the
rule pack beside fail2ban-regex, round by round, and the per-stage CPU table (tests/storm_bench.py).
``--storm --instructions 20000``: instead, the instructions per line the rule engine executes on a storm of that
many lines, counted by callgrind (repeatable where wall time is not: compare two versions of the engine with it).
``--storm --per-rule [--lines 50000] [--runs 3]``: instead, the detect stage's CPU per line with each shipped rule
alone, beside no rule and the whole pack: where the rule pack's cost is.

``--quality [--weeks 8]``: instead, detection quality on tests/company_sim.py's realistic company: per-rule alerts,
true and false positives, planted attacks detected, look-alikes, and decode coverage per source.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
sys.path.insert(0, str(ROOT))

from sentinel.conf.loader import load_config  # noqa: E402
from sentinel.conf.models import LoadedConfig  # noqa: E402
from sentinel.daemon.assemble import assemble, detection_processors  # noqa: E402
from sentinel.daemon.build import database_path  # noqa: E402
from sentinel.daemon.replay import replay_files  # noqa: E402
from sentinel.metrics.registry import Metrics  # noqa: E402
from sentinel.store.database import Database  # noqa: E402

COLLECTOR_OF = {"auth.log": "linux-auth", "okta.jsonl": "okta", "billing-audit.jsonl": "billing-audit",
                "audit.log": "auditd", "entra.jsonl": "entra", "osquery.jsonl": "osquery"}


def config(base: Path, **extra: object) -> LoadedConfig:
    doc = {"state_dir": str(base / "state"), "collectors_dir": str(SHIPPED / "collectors"),
           "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
           "pipeline": {"start_position": "beginning", "poll_interval_ms": 20, "batch_max_wait_ms": 5},
           "metrics": {"enabled": False}, "api": {"enabled": False}, **extra}
    base.mkdir(parents=True, exist_ok=True)
    (base / "sentinel.yaml").write_text(yaml.safe_dump(doc))
    return load_config(base / "sentinel.yaml")


def replay_rate(logs: Path, base: Path, rules: bool) -> tuple[float, int]:
    cfg = config(base, detection={"terminated_accounts_file": str(logs / "terminated_accounts.txt"),
                                  "phi_workstations_file": str(logs / "phi_workstations.txt")})
    started = time.perf_counter()
    records = 0
    db = Database(database_path(cfg))
    processors = detection_processors(cfg, db, Metrics()) if rules else []
    db.close()
    for name, collector in COLLECTOR_OF.items():
        result = replay_files(cfg, collector, [str(logs / name)], progress=False, processors=processors)
        records += result.records
    return records / (time.perf_counter() - started), records


def throughput(days: int, work: Path) -> None:
    from sentinel.demo.generator import generate

    logs = work / "logs"
    generate(logs, days=days, users=200, seed=7, start=datetime(2026, 2, 2, tzinfo=UTC))
    runs = []
    for i in range(2):
        base_rate, n = replay_rate(logs, work / f"norules{i}", rules=False)
        rule_rate, _ = replay_rate(logs, work / f"rules{i}", rules=True)
        runs.append((base_rate, rule_rate))
    base = statistics.median(r[0] for r in runs)
    full = statistics.median(r[1] for r in runs)
    print(f"throughput ({n:,} generated lines, {days} days, 200 users, median of {len(runs)}): "
          f"no rules {base:,.0f} lines/s, full pack {full:,.0f} lines/s, ratio {full / base:.2f} (target >= 0.7)")


def _sudo_failure(i: int) -> str:
    # A failed sudo by a new user each time (the rule suppresses repeats per user and host).
    return f"user{i:04d} : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls"


class _FileInput:
    def __init__(self, work: Path) -> None:
        self.log = work / "auth.log"
        self.log.write_text("")
        self.fh = self.log.open("a")
        self.source: dict[str, object] = {"collector": "linux-auth", "paths": [str(self.log)]}

    def emit(self, i: int) -> None:
        stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
        self.fh.write(f"{stamp} bench sudo:   {_sudo_failure(i)}\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


class _JournalInput:
    def __init__(self, work: Path) -> None:
        from tests.journal_helpers import JournalWriter

        self.writer = JournalWriter(work / "journal" / "bench.journal", start_us=int(time.time() * 1e6))
        self.source = {"collector": "linux-auth", "type": "journal", "journal": {"directory": str(work / "journal")}}

    def emit(self, i: int) -> None:
        self.writer.clock_us = int(time.time() * 1e6)
        self.writer.write({"_HOSTNAME": "bench", "SYSLOG_IDENTIFIER": "sudo", "MESSAGE": _sudo_failure(i),
                           "PRIORITY": "2"})

    def close(self) -> None:
        self.writer.close()


class _SyslogInput:
    def __init__(self, work: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.source = {"collector": "linux-auth", "type": "syslog",
                       "syslog": {"listen": [f"tcp://127.0.0.1:{self.port}"]}}
        self.sock: socket.socket | None = None

    def emit(self, i: int) -> None:
        import socket

        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
        stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
        self.sock.sendall(f"<82>{stamp} bench sudo: {_sudo_failure(i)}\n".encode())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


INPUTS = {"file": _FileInput, "journal": _JournalInput, "syslog": _SyslogInput}


def latency(samples: int, work: Path, kind: str = "file") -> None:
    base = work / f"live-{kind}"
    base.mkdir(parents=True)
    feed = INPUTS[kind](base)
    # The daemon's default poll interval: only file notifications, journalctl output and arriving messages wake it.
    cfg = config(base, sources=[feed.source], detection={"disabled_rules": []},
                 pipeline={"start_position": "beginning", "batch_max_wait_ms": 5})
    daemon = assemble(cfg)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    time.sleep(1.5)
    from sentinel.store.database import connect

    reader = connect(database_path(cfg), readonly=True)
    waits = []
    for i in range(samples):
        # The alert row is committed in the same transaction as its outbox row; routing may already have taken
        # the latter.
        before = reader.execute("SELECT count(*) FROM alerts").fetchone()[0]
        t0 = time.perf_counter()
        feed.emit(i)
        while reader.execute("SELECT count(*) FROM alerts").fetchone()[0] <= before:
            if time.perf_counter() - t0 > 5:
                raise SystemExit(f"no alert for {kind} sample {i} within 5 s")
            time.sleep(0.002)
        waits.append(time.perf_counter() - t0)
    daemon.request_stop()
    thread.join(10)
    feed.close()
    waits.sort()
    p50 = waits[len(waits) // 2]
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    what = {"file": "a line appended to a tailed file", "journal": "a journal entry written",
            "syslog": "a syslog message sent over TCP"}[kind]
    print(f"latency {what} -> alert in outbox ({samples} samples, real daemon): "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target p99 < 500 ms)")


def flood(work: Path, n: int = 1_000_000) -> None:
    from sentinel.conf.models import DetectionSettings
    from sentinel.detect.engine import RuleEngine
    from sentinel.detect.lists import NamedLists
    from sentinel.detect.loader import load_rules
    from sentinel.events.model import Event

    lists = NamedLists({"terminated_accounts": None, "phi_workstations": None})
    rules, _ = load_rules(SHIPPED / "rules", lists)
    settings = DetectionSettings()
    db = Database(work / "flood" / "events.db")
    engine = RuleEngine(rules, settings, db.conn, Metrics(), lists)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = 1_772_000_000.0
    started = time.perf_counter()
    for start in range(0, n, 5000):
        batch = []
        for i in range(start, min(n, start + 5000)):
            user = f"flood{i:07d}"
            batch.append(Event(f"f{i}", t0 + i * 0.001, "linux-auth",
                               {"event.action": "ssh_login", "event.outcome": "failure" if i % 4 else "success",
                                "user.name": user, "source.ip": f"198.18.{(i >> 8) & 255}.{i & 255}",
                                "event.kind": "event", "host.name": "bastion"}))
        with db.transaction() as tx:
            engine.process(tx, batch, time.time())
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keys = {rt.rule.id: len(rt.store) for rt in engine.runtimes if len(rt.store)}
    print(f"flood of {n:,} distinct user names in {elapsed:.0f} s: max keys per rule {max(keys.values()):,} "
          f"(bound {settings.max_keys_per_rule:,}); keyed rules {keys}; peak RSS {rss:,.0f} MiB "
          f"(was {rss_before:,.0f} MiB before the flood)")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "latency", "flood"])
    ap.add_argument("--inputs", nargs="*", default=["file", "journal", "syslog"], choices=sorted(INPUTS),
                    help="what the latency samples are emitted into")
    ap.add_argument("--quality", action="store_true", help="detection quality on the realistic company")
    ap.add_argument("--weeks", type=int, default=8, help="--quality: weeks simulated")
    ap.add_argument("--storm", action="store_true", help="the brute-force storm (tests/storm_bench.py)")
    ap.add_argument("--lines", type=int, default=200_000, help="--storm: lines generated")
    ap.add_argument("--runs", type=int, default=3, help="--storm: rounds")
    ap.add_argument("--instructions", type=int, metavar="LINES",
                    help="--storm: instead, callgrind's count of the rule engine's instructions per line on LINES")
    ap.add_argument("--per-rule", action="store_true",
                    help="--storm: instead, the detect stage's CPU per line with each shipped rule alone")
    args = ap.parse_args()
    if args.storm and args.per_rule:
        from tests.storm_bench import rule_cpu

        with tempfile.TemporaryDirectory() as tmp:
            rule_cpu(args.lines, Path(tmp), args.runs)
        return
    if args.storm and args.instructions:
        from tests.storm_bench import detect_instructions

        with tempfile.TemporaryDirectory() as tmp:
            per_line = detect_instructions(args.instructions, Path(tmp))
        if per_line is None:
            raise SystemExit("needs valgrind, and a Python whose symbols name itertools' starmap_next")
        print(f"rule engine (RuleEngine.process), storm of {args.instructions} lines: {per_line:,.0f} "
              "instructions per line (callgrind)")
        return
    if args.storm:
        from tests.storm_bench import report

        with tempfile.TemporaryDirectory() as tmp:
            report(args.lines, args.runs, Path(tmp), ("fail2ban-regex", "replay --no-detect", "replay"))
        return
    if args.quality:
        from tests.quality_eval import evaluate, report

        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            # The period always ends on 8 March 2026, the day US clocks move forward.
            start = datetime(2026, 3, 9, tzinfo=UTC) - timedelta(weeks=args.weeks)
            score = evaluate(Path(tmp), args.weeks, start=start)
            print(report(score))
            print(f"({time.perf_counter() - started:.0f} s)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "latency" not in args.skip:
            for kind in args.inputs:
                latency(args.samples, work, kind)
        if "throughput" not in args.skip:
            throughput(args.days, work)
        if "flood" not in args.skip:
            flood(work)


if __name__ == "__main__":
    main()
