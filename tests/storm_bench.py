"""The storm benchmark shared by ``bench_ingest.py --storm`` and ``bench_detect.py --storm`` (not a test).

On tests/storm.py's brute-force storm, in the same run and round by round: ``fail2ban-regex`` with its sshd filter,
``sentinel replay --no-detect``, ``sentinel replay`` (the full rule pack) and ``sentinel run`` catching the file up
as a backlog. For each: lines/s, CPU seconds, peak RSS of the whole process tree (decode workers included), and
per round the ratio to fail2ban-regex. Then, in this process, CPU seconds per line of each stage (frame, decode,
rows to events for the rules, store, detect, alert write) over the same file, batch by batch as replay commits.

``detect_instructions`` counts, with callgrind, the machine instructions the rule engine executes per line of the
storm: the same count for the same code whatever else this shared machine is doing, so two versions of the engine
can be compared where their wall times differ by less than the machine's noise (+-15% here).
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.storm import make_storm_log

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
F2B_FILTER = "/etc/fail2ban/filter.d/sshd.conf"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tree_rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0


def measured(cmd: list[str], cwd: Path, done: Callable[[], bool] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the process and every descendant it reaped) and peak RSS of the process tree
    (sampled every 20 ms) of ``cmd``: until it exits, or with ``done``, until ``done()`` (then it is stopped
    with SIGTERM, as systemd would, and its shutdown is not counted in the wall time)."""
    cpu0 = _children_cpu()
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    elapsed = 0.0
    last_check = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc))
        time.sleep(0.02)
        if done is not None and time.perf_counter() - last_check >= 0.1:
            last_check = time.perf_counter()
            if done():
                elapsed = time.perf_counter() - started
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=120)
                break
    if done is None:
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return elapsed, _children_cpu() - cpu0, peak


def _config(work: Path, name: str, log: Path, disabled_rules: tuple[str, ...] = (), **pipeline: Any) -> Path:
    cfg = work / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "state_dir": str(work / name), "collectors_dir": str(SHIPPED / "collectors"),
        "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
        "metrics": {"enabled": False}, "api": {"enabled": False}, "notify": {"enabled": False},
        "pipeline": {"start_position": "beginning", **pipeline},
        "detection": {"disabled_rules": list(disabled_rules)},
        "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}))
    return cfg


def _stored(db: Path, exact: bool = True) -> int:
    """Events in ``db``: counted, or (not ``exact``, for polling a run being timed) its highest seq, one b-tree
    descent where count(*) scans the table; in a fresh database with no deletions the two are equal."""
    sql = "SELECT count(*) FROM events" if exact else "SELECT coalesce(max(seq), 0) FROM events"
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


PATHS = ("fail2ban-regex", "replay --no-detect", "replay", "run (catch-up)")


def one_round(log: Path, lines: int, work: Path, paths: tuple[str, ...] = PATHS) -> dict[str, tuple[float, float, int]]:
    """(lines/s, CPU seconds, peak RSS) of each path on ``log``."""
    out: dict[str, tuple[float, float, int]] = {}
    py = [sys.executable, "-m", "sentinel"]
    for path in paths:
        name = path.split()[0].replace("-", "") + str(len(out))
        cfg = _config(work, name, log)
        if path == "fail2ban-regex":
            f2b = shutil.which("fail2ban-regex")
            if f2b is None:
                continue
            wall, cpu, rss = measured([f2b, str(log), F2B_FILTER], work)
        elif path.startswith("replay"):
            extra = ["--no-detect"] if "--no-detect" in path else []
            wall, cpu, rss = measured([*py, "replay", "-c", str(cfg), "--collector", "linux-auth", "-q", *extra,
                                       str(log)], ROOT)
            if _stored(work / name / "events.db") != lines:
                raise SystemExit(f"sentinel {path} did not store every line")
        else:
            db = work / name / "events.db"
            wall, cpu, rss = measured([*py, "run", "-c", str(cfg), "--log-level", "WARNING"], ROOT,
                                      done=lambda db=db: _stored(db, exact=False) >= lines)  # type: ignore[misc]
        out[path] = (lines / wall, cpu, rss)
        shutil.rmtree(work / name, ignore_errors=True)
    return out


def linux_auth_decoding(cfg: Any) -> tuple[Any, Any]:
    """The shipped linux-auth collector's decoder and framing, as the daemon builds them for ``cfg`` (a loaded
    configuration)."""
    from sentinel.collect.framing import FramingSpec
    from sentinel.daemon.build import source_host
    from sentinel.daemon.collectors import load_collector_layers
    from sentinel.decode.engine import Decoder

    collectors, _ = load_collector_layers(cfg.collector_dirs)
    spec = collectors["linux-auth"].spec
    decoder = Decoder(spec, cfg.config.timezone, source_host(cfg, spec))
    return decoder, FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate, spec.framing.max_lines)


def stage_cpu(log: Path, work: Path, batch_size: int = 4096, disabled_rules: tuple[str, ...] = ()) -> dict[str, float]:
    """CPU seconds of each stage over the whole file, in this process, as replay runs them (decode here)."""
    from sentinel.conf.loader import load_config
    from sentinel.daemon.build import database_path
    from sentinel.daemon.decode_pool import decode_records
    from sentinel.daemon.gctune import tune_gc
    from sentinel.daemon.pipeline import store_fresh
    from sentinel.daemon.replay_stream import identify
    from sentinel.detect import engine as engine_module
    from sentinel.detect.engine import engine_for_config
    from sentinel.store.database import Database
    from sentinel.store.ledger import Ledger
    from sentinel.store.sqlite_events import SqliteEventStore

    tune_gc()  # as replay and the daemon do: the stages' costs as those processes pay them
    cfg = load_config(_config(work, "stages", log, disabled_rules))
    decoder, framing = linux_auth_decoding(cfg)
    db = Database(database_path(cfg))
    engine = engine_for_config(cfg.rule_sources, db.conn)
    sink = SqliteEventStore()
    ledger = Ledger()
    cost = dict.fromkeys(("frame", "decode", "rows → events (rules only)", "store (ledger, rows, commit)",
                          "detect (rules, state)", "alert write"), 0.0)
    clock = time.process_time
    real_write = engine_module.write_alerts

    def timed_write(tx: sqlite3.Connection, alerts: Any) -> int:
        t = clock()
        try:
            return real_write(tx, alerts)
        finally:
            cost["alert write"] += clock() - t

    engine_module.write_alerts = timed_write  # type: ignore[assignment]
    try:
        data = log.read_bytes()
        identity = identify(db.conn, "linux-auth", data[:1024], lambda: open(log, "rb"), str(log))  # noqa: SIM115
        t = clock()
        framer = framing.framer(0, cfg.config.pipeline.max_line_bytes)
        frames = framer.feed(data, 0) + framer.flush(True)
        records = [("linux-auth", identity.id, str(log), f.offset, f.end, f.data, f.truncated, f.original_length,
                    0.0) for f in frames]
        cost["frame"] += clock() - t
        for at in range(0, len(records), batch_size):
            chunk = records[at:at + batch_size]
            now = time.time()
            t = clock()
            batch = decode_records({"linux-auth": decoder}, chunk, now)
            t1 = clock()
            events = batch.events()
            t2 = clock()
            cost["decode"] += t1 - t
            cost["rows → events (rules only)"] += t2 - t1
            with db.transaction() as tx:
                t = clock()
                fresh = ledger.fresh(tx, chunk, {(r[0], r[1]): identity.head for r in chunk[:1]}, identity.rejected)
                store_fresh(tx, sink, events, batch, fresh)
                t1 = clock()
                before = cost["alert write"]
                # Through itertools.starmap: callgrind's --toggle-collect=starmap_next counts this call alone.
                list(itertools.starmap(engine.process, [(tx, events, now)]))
                cost["detect (rules, state)"] += clock() - t1 - (cost["alert write"] - before)
                cost["store (ledger, rows, commit)"] += t1 - t
                t = clock()
            cost["store (ledger, rows, commit)"] += clock() - t
    finally:
        engine_module.write_alerts = real_write  # type: ignore[assignment]
        db.close()
        shutil.rmtree(work / "stages", ignore_errors=True)
    return cost


def shipped_rule_ids(work: Path, log: Path) -> list[str]:
    """The ids of the rules the stage measure runs when none is disabled, as the rule loader finds them."""
    from sentinel.conf.loader import load_config
    from sentinel.detect.loader import load_for_config

    rules, _, errors = load_for_config(load_config(_config(work, "rules", log)).rule_sources)
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    return [r.id for r in rules]


def rule_cpu(lines: int, work: Path, rounds: int = 3) -> None:
    """Print the detect stage's CPU per line with each shipped rule alone (every other one disabled), beside the
    stage with every rule disabled (the engine's own cost per batch: state flush of nothing, metadata) and with
    the whole pack: where the rule pack's cost is, rule by rule. Medians of ``rounds`` alternated runs."""
    log = work / "storm.log"
    make_storm_log(log, lines)
    ids = shipped_rule_ids(work, log)
    detect = "detect (rules, state)"
    runs: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, disabled in [("no rule", tuple(ids)), ("whole pack", ())] + [
                (rid, tuple(r for r in ids if r != rid)) for rid in ids]:
            cost = stage_cpu(log, work, disabled_rules=disabled)
            runs.setdefault(name, []).append((cost[detect] + cost["alert write"]) / lines * 1e6)
    base = statistics.median(runs["no rule"])
    print(f"storm of {lines} lines: detect + alert write CPU µs per line, median of {rounds} rounds "
          f"(with no rule enabled: {base:.1f}; the whole pack: {statistics.median(runs['whole pack']):.1f})")
    print("\n| rule alone | µs per line | over no rule |")
    print("| --- | --- | --- |")
    # What a rule that never sees an event of the storm shows: the spread of the no-rule runs themselves.
    noise = max(0.5, max(runs["no rule"]) - min(runs["no rule"]))
    alone = sorted(((statistics.median(runs[rid]), rid) for rid in ids), reverse=True)
    costly = [(value, rid) for value, rid in alone if value - base > noise]
    for value, rid in costly:
        print(f"| {rid} | {value:.1f} | {value - base:+.1f} |")
    print(f"\n{len(alone) - len(costly)} rules cost no more than the noise ({noise:.1f} µs per line) over no rule on "
          "this input; the rules above add up to "
          f"{sum(v - base for v, _ in costly):.1f} µs per line over no rule")


def detect_instructions(lines: int, work: Path) -> float | None:
    """Instructions per line inside RuleEngine.process over a storm of ``lines`` (valgrind's callgrind, about 80 s
    for 20,000 lines); None without valgrind or when this Python's symbols do not name ``starmap_next``."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    log = work / "storm-instructions.log"
    make_storm_log(log, lines)
    cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=starmap_next",
           f"--callgrind-out-file={work / 'callgrind.out'}", sys.executable, "-m", "tests.storm_bench",
           "stages", str(log), str(work)]
    # A fixed hash seed: set and dict orders, and so the instructions, are the same run to run.
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    counted = int(found[1])
    return counted / lines if counted else None


def report(lines: int, rounds: int, work: Path, paths: tuple[str, ...] = PATHS, stages: bool = True) -> None:
    log = work / "storm.log"
    make_storm_log(log, lines)
    print(f"storm input: {lines} lines, {log.stat().st_size / 1e6:.1f} MB (tests/storm.py, seed 18); "
          f"{rounds} rounds, every path in turn each round", flush=True)
    results = []
    for r in range(rounds):
        res = one_round(log, lines, work, paths)
        results.append(res)
        print(f"round {r + 1}: " + "; ".join(f"{p} {v[0]:.0f} lines/s" for p, v in res.items()), flush=True)
    print()
    print("| path | lines/s (median) | vs fail2ban-regex lines/s (median of per-round ratios) | CPU s (median) | "
          "CPU vs fail2ban-regex | peak RSS, process tree (max) |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = "fail2ban-regex"
    for path in paths:
        got = [res[path] for res in results if path in res]
        if not got:
            continue
        ratio = cpu_ratio = "-"
        if path != base and all(base in res for res in results):
            ratio = f"{statistics.median(res[path][0] / res[base][0] for res in results):.2f}x"
            cpu_ratio = f"{statistics.median(res[path][1] / res[base][1] for res in results):.2f}x"
        print(f"| {path} | {statistics.median(g[0] for g in got):,.0f} | {ratio} | "
              f"{statistics.median(g[1] for g in got):.1f} | {cpu_ratio} | {max(g[2] for g in got) / 2**20:.0f} MiB |")
    if "replay" in paths and "replay --no-detect" in paths:
        share = statistics.median(res["replay"][0] / res["replay --no-detect"][0] for res in results)
        print(f"\nreplay with the full rule pack / replay --no-detect (lines/s, median of rounds): {share:.2f} "
              f"(the rule pack costs {1 - share:.0%} of the no-rules throughput)")
    if stages:
        cost = stage_cpu(log, work)
        total = sum(cost.values())
        print("\n| stage (in one process, decode here) | CPU µs per line | share |")
        print("| --- | --- | --- |")
        for stage, seconds in cost.items():
            print(f"| {stage} | {seconds / lines * 1e6:.1f} | {seconds / total:.0%} |")
        print(f"| total | {total / lines * 1e6:.1f} | |")


if __name__ == "__main__":
    # python -m tests.storm_bench stages LOG WORK: the stage table's run alone (what detect_instructions counts).
    if len(sys.argv) == 4 and sys.argv[1] == "stages":
        stage_cpu(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m tests.storm_bench stages LOG WORK")
