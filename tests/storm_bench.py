"""The storm benchmark shared by ``bench_ingest.py --storm`` and ``bench_detect.py --storm`` (not a test).

On tests/storm.py's brute-force storm, in the same run and round by round: ``fail2ban-regex`` with its sshd filter,
``sentinel replay --no-detect``, ``sentinel replay`` (the full rule pack) and ``sentinel run`` catching the file up
as a backlog. For each: lines/s, CPU seconds, peak RSS of the whole process tree (decode workers included), and
per round the ratio to fail2ban-regex. Then, in this process, CPU seconds per line of each stage (frame, decode,
rows to events for the rules, store, detect, alert write) over the same file, batch by batch as replay commits.

The stage table ends with ``two_core_bounds``: the most each path could reach at those stage costs on two cores used
perfectly, beside the issue's targets.

``live_report`` (``bench_ingest.py --storm --live RATES``) appends the storm at fixed rates, stamped with its append
times, to a file ``sentinel run`` follows and to one fail2ban-server's sshd jail follows, and times each alert and
each ban from the append of the line that completed it.

``detect_instructions`` counts, with callgrind, the machine instructions the rule engine executes per line of the
storm: the same count for the same code whatever else this shared machine is doing, so two versions of the engine
can be compared where their wall times differ by less than the machine's noise (+-15% here).
"""

from __future__ import annotations

import functools
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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.storm import make_storm_log, storm_lines

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
        if all(base in res for res in results):
            f2b = statistics.median(res[base][0] for res in results)
            print_bounds({k: v / lines * 1e6 for k, v in cost.items()}, f2b)


def two_core_bounds(per_line: dict[str, float], cores: int = 2) -> dict[str, tuple[float, float]]:
    """The most lines/s each path could reach at these stage costs (CPU µs per line, as ``stage_cpu`` gives them)
    on ``cores`` cores used perfectly, nothing else running: (its whole CPU spread evenly over the cores, that
    and its serial part on one thread). The serial parts:

    - ``replay --no-detect``: the one SQLite writer frames and stores every line; decoding may go elsewhere.
    - ``run`` and ``replay`` with the rule pack: the rules judge the events in order on the thread holding the
      GIL, which frames the lines too; decoding and storing may go to the other core."""
    frame, decode, rows, store, detect, alerts = (per_line[k] for k in (
        "frame", "decode", "rows → events (rules only)", "store (ledger, rows, commit)", "detect (rules, state)",
        "alert write"))
    no_rules = (frame + decode + store) / cores
    rules = (frame + decode + rows + store + detect + alerts) / cores
    return {"replay --no-detect": (1e6 / no_rules, 1e6 / max(no_rules, frame + store)),
            "run / replay (rule pack)": (1e6 / rules, 1e6 / max(rules, frame + detect + alerts))}


# What issue #18 asks of each path, as a ratio to fail2ban-regex's lines/s.
TARGETS = {"replay --no-detect": 2.5, "run / replay (rule pack)": 1.5}


def print_bounds(per_line: dict[str, float], f2b: float) -> None:
    """Print ``two_core_bounds`` beside fail2ban-regex's lines/s and the issue's targets."""
    print(f"\nThe most each path could reach at these stage costs on both cores used perfectly (no waiting, no "
          f"hand-over cost), against fail2ban-regex's median {f2b:,.0f} lines/s:")
    print("\n| path | every stage spread over both cores | and its serial part on one thread | target |")
    print("| --- | --- | --- | --- |")
    for path, (spread, serial) in two_core_bounds(per_line).items():
        print(f"| {path} | {spread:,.0f} lines/s, {spread / f2b:.2f}x | {serial:,.0f} lines/s, {serial / f2b:.2f}x | "
              f"{TARGETS[path]}x |")


# An alert's triggering event among its evidence: a window's newest (threshold), a sequence's last step, else the
# one event it is about. Read from the details the alert was raised with.
_TRIGGER_COUNT = ("events_in_window", "events")


def _trigger_id(event_ids: list[str], details: dict[str, Any]) -> str | None:
    n = next((int(details[k]) for k in _TRIGGER_COUNT if isinstance(details.get(k), int)), 1)
    return event_ids[min(n, len(event_ids)) - 1] if event_ids else None


# One more line after the storm, that both daemons act on: when each has read it, it has read everything before.
_MARKER_IP = "198.51.100.254"
_FAILURE = re.compile(r"(Failed password|Invalid user|authentication failure)")


def _live_lines(rate: int, seconds: float, t0: float) -> list[bytes]:
    """The storm's first ``rate * seconds`` lines stamped with the wall time each is due to be appended (syslog's
    local time), and the marker line; the rate at which they are appended is the rate they claim to happen at."""
    out = []
    lines = storm_lines(int(rate * seconds))
    for i, line in enumerate([*lines, f"Nov 27 08:00:00 bastion01 sshd[9]: Failed password for root from "
                                      f"{_MARKER_IP} port 9 ssh2"]):
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(t0 + i / rate))
        out.append((stamp + line[15:] + "\n").encode())
    return out


def _append(log: Path, data: list[bytes], rate: int, t0: float) -> list[float]:
    """Append ``data`` to ``log`` at ``rate`` lines/s from ``t0`` (a write every 10 ms); when each line was written."""
    appended = [0.0] * len(data)
    per_tick = max(1, rate // 100)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        for k in range(0, len(data), per_tick):
            wait = t0 + k / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            os.write(fd, b"".join(data[k:k + per_tick]))
            now = time.time()
            for i in range(k, min(k + per_tick, len(data))):
                appended[i] = now
    finally:
        os.close(fd)
    return appended


def live_sentinel(rate: int, seconds: float, work: Path) -> dict[str, Any]:
    """``sentinel run`` tailing a file the storm is appended to at ``rate`` lines/s for ``seconds``: for each alert,
    the time from the append of the line that raised it to the alert being committed (seen by a reader polling
    the database every 10 ms), and how long after the last append the daemon had stored every line."""
    import orjson

    name = f"live{rate}"
    log = work / f"{name}.log"
    log.write_bytes(b"")
    cfg = _config(work, name, log)
    db = work / name / "events.db"
    seen: dict[str, float] = {}  # alert id -> when a reader first saw it committed
    triggers: dict[str, str | None] = {}
    stop = threading.Event()

    def watch() -> None:
        last = 0
        while not stop.is_set():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                    while not stop.is_set():
                        rows = conn.execute("SELECT rowid, id, event_ids, details FROM alerts WHERE rowid > ? "
                                            "ORDER BY rowid", (last,)).fetchall()
                        now = time.time()
                        for rowid, alert_id, ids, details in rows:
                            last = rowid
                            seen[alert_id] = now
                            triggers[alert_id] = _trigger_id(orjson.loads(ids), orjson.loads(details))
                        time.sleep(0.01)
            except sqlite3.Error:
                time.sleep(0.05)

    proc = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg), "--log-level", "WARNING"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = threading.Thread(target=watch, daemon=True)
    try:
        deadline = time.time() + 60
        while not _table_exists(db, "alerts"):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"sentinel run did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
        time.sleep(2.0)  # the tailer is watching the (empty) file
        watcher.start()
        t0 = time.time() + 0.5
        data = _live_lines(rate, seconds, t0)
        appended = _append(log, data, rate, t0)
        while _stored(db, exact=False) < len(data):
            if proc.poll() is not None:
                raise SystemExit("sentinel run exited during the live storm")
            time.sleep(0.01)
        caught_up = time.time()
        time.sleep(1.0)  # alerts of the last batch reach the reader
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    starts: dict[int, int] = {}  # byte offset of a line -> its index
    at = 0
    for i, raw in enumerate(data):
        starts[at] = i
        at += len(raw)
    delays = []
    for alert_id, when in seen.items():
        trigger = triggers[alert_id]
        index = starts.get(int(trigger[16:], 16)) if trigger and len(trigger) == 28 else None
        if index is not None:
            delays.append((when - appended[index]) * 1000)
    shutil.rmtree(work / name, ignore_errors=True)
    return {"offered": (len(data) - 1) / (appended[-2] - t0), "behind": caught_up - appended[-1],
            "actions": len(seen), "delays": sorted(delays)}


_F2B_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")
_F2B_FOUND = re.compile(r"\[sshd\] Found (\S+) - (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
_F2B_BAN = re.compile(r"\[sshd\] Ban (\S+)")


def _f2b_time(line: str) -> float | None:
    m = _F2B_TIME.match(line)
    return None if m is None else time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000


@functools.cache
def _f2b_backend() -> str:
    """fail2ban's fastest file backend its Python has: inotify (Debian's python3-pyinotify), else polling. Asked
    once: the report's heading and every rate's jail name it."""
    try:
        found = subprocess.run(["/usr/bin/python3", "-c", "import pyinotify"], capture_output=True).returncode == 0
    except OSError:  # no Debian python3, so no fail2ban either: the heading still reads
        found = False
    return "pyinotify" if found else "polling"


def live_fail2ban(rate: int, seconds: float, work: Path) -> dict[str, Any] | None:
    """fail2ban-server (the sshd jail, ``_f2b_backend``, no ban action) following the same appended storm: for each
    ban, the time from the append of the failure that completed it (fail2ban's last "Found" of the address
    before the ban) to the ban in fail2ban's log. None without fail2ban."""
    client = shutil.which("fail2ban-client")
    if client is None or not Path("/etc/fail2ban").is_dir():
        return None
    name = f"f2b{rate}"
    conf = work / name / "conf"
    shutil.rmtree(work / name, ignore_errors=True)
    shutil.copytree("/etc/fail2ban", conf)
    shutil.rmtree(conf / "jail.d")
    (conf / "jail.d").mkdir()
    log = work / f"{name}.log"
    log.write_bytes(b"")
    f2b_log = work / name / "fail2ban.log"
    (conf / "fail2ban.local").write_text(
        f"[Definition]\nloglevel = INFO\nlogtarget = {f2b_log}\nsocket = {work / name / 'f2b.sock'}\n"
        f"pidfile = {work / name / 'f2b.pid'}\ndbfile = :memory:\n")
    (conf / "jail.local").write_text(
        f"[DEFAULT]\nbanaction =\naction =\n\n[sshd]\nenabled = true\nlogpath = {log}\nbackend = "
        f"{_f2b_backend()}\nmaxretry = 5\nfindtime = 10m\nbantime = 1h\n")
    proc = subprocess.Popen([client, "-c", str(conf), "-x", "-f", "start"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (f2b_log.exists() and "Jail 'sshd' started" in f2b_log.read_text(errors="replace")):
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"fail2ban did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
        time.sleep(1.0)
        t0 = time.time() + 0.5
        data = _live_lines(rate, seconds, t0)
        appended = _append(log, data, rate, t0)
        deadline = time.time() + 600
        marker = f"Found {_MARKER_IP}".encode()
        with open(f2b_log, "rb") as f:  # read as it grows: rereading it all every 10 ms would load the machine
            tail = b""
            while marker not in tail:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("fail2ban never read the end of the live storm")
                time.sleep(0.01)
                tail = tail[-len(marker):] + f.read()
        caught_up = time.time()
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # Failure lines by (address, second): the candidates for each "Found".
    by_second: dict[tuple[str, str], list[int]] = {}
    address = re.compile(r"(?:from|rhost=) ?(\S+)")
    for i, raw in enumerate(data):
        text = raw.decode()
        if _FAILURE.search(text) and (m := address.search(text)):
            second = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0 + i / rate))
            by_second.setdefault((m[1], second), []).append(i)
    last_found: dict[str, tuple[str, str]] = {}
    delays = []
    for line in f2b_log.read_text(errors="replace").splitlines():
        if (m := _F2B_FOUND.search(line)) is not None:
            last_found[m[1]] = (m[1], m[2])
        elif (m := _F2B_BAN.search(line)) is not None and (when := _f2b_time(line)) is not None:
            found = last_found.get(m[1])
            candidates = [appended[i] for i in by_second.get(found, []) if appended[i] <= when] if found else []
            if candidates:
                delays.append((when - max(candidates)) * 1000)
    shutil.rmtree(work / name, ignore_errors=True)
    return {"offered": (len(data) - 1) / (appended[-2] - t0), "behind": caught_up - appended[-1],
            "actions": len(delays), "delays": sorted(delays)}


def _table_exists(db: Path, table: str) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
    except sqlite3.Error:
        return False


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def live_report(rates: list[int], seconds: float, work: Path) -> None:
    """Print, per rate, the delays of ``live_sentinel`` (alerts) and ``live_fail2ban`` (bans) on the same lines."""
    print(f"live storm: tests/storm.py's lines stamped with their append time, appended for {seconds:g} s at each rate "
          "while each daemon follows the file; sentinel: `sentinel run` with the rule pack, delay = the raising line's "
          "append -> its alert committed (a reader polls every 10 ms); fail2ban: fail2ban-server's sshd jail "
          f"({_f2b_backend()} backend), delay = the completing failure's append -> the ban in its log")
    print("\n| lines/s appended | daemon | alerts or bans | delay p50 | p99 | max | last line read, after its append |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rate in rates:
        for daemon, measure in (("sentinel run", live_sentinel), ("fail2ban-server", live_fail2ban)):
            r = measure(rate, seconds, work)
            if r is None:
                continue
            d = r["delays"]
            print(f"| {r['offered']:,.0f} | {daemon} | {r['actions']} | {_quantile(d, 0.5):,.0f} ms | "
                  f"{_quantile(d, 0.99):,.0f} ms | {max(d, default=float('nan')):,.0f} ms | {r['behind']:.2f} s |",
                  flush=True)


if __name__ == "__main__":
    # python -m tests.storm_bench stages LOG WORK: the stage table's run alone (what detect_instructions counts).
    if len(sys.argv) == 4 and sys.argv[1] == "stages":
        stage_cpu(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m tests.storm_bench stages LOG WORK")
