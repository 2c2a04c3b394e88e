"""Ingest benchmark: replay a 200,000-line sshd auth.log through sentinel (decode + store every event)
and run fail2ban-regex with its sshd filter on the same file in the same run.

    python tests/bench_ingest.py [--lines 200000] [--runs 3] [--floor] [--daemon]

Prints lines/s and peak RSS per run, the medians, and the ratio sentinel / fail2ban-regex.
``--floor`` also has the sqlite3 shell (C only: no Python, no decoding) copy the rows sentinel stored
into an empty database of the same schema with INSERT ... SELECT, in transactions of 4096 rows (as the
pipeline commits) and of 16384: what SQLite itself can take with this schema on this machine. Then
Python's sqlite3 stores the same rows from memory with the pipeline's INSERT (the ceiling of any row
path bound from Python), and with the replay start-up time that gives the most replay could reach if
decoding cost nothing. Last, what 16 KiB pages would change: SQLite's speed, and the bytes written and
CPU spent by a one-event commit (the daemon's steady state on a quiet host).
``--daemon`` also times ``sentinel run`` (rules on) catching up the same file as a backlog, with
``pipeline.decode_workers`` 0 and 1.
``--storm`` instead measures tests/storm.py's brute-force storm (issue #18): fail2ban-regex, replay --no-detect,
replay with the full rule pack and ``sentinel run`` catching up, each round in turn, with CPU seconds, peak RSS of
the process tree, the per-stage CPU table and the most each path could reach at those stage costs on two cores.
``--storm --live 1000,5000`` instead appends the storm at those lines/s to a file ``sentinel run`` follows and to one
fail2ban-server follows, in the same run, and times each alert and ban from its line's append (tests/storm_bench.py).
Not a test: numbers on a shared machine are noisy; compare medians.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
USERS = ["root", "admin", "oracle", "test", "ubuntu", "postgres", "jdoe", "asmith", "svc backup", "jörg"]


def make_auth_log(path: Path, lines: int, seed: int = 1) -> None:
    """A realistic sshd auth.log: brute-force noise, logins, PAM, disconnects, IPv4 and IPv6."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            s = 8 * 3600 + i // 4
            stamp = f"Nov {27 + s // 86400:2d} {(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
            ip = (f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                  if rng.random() < 0.9 else f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}")
            user = rng.choice(USERS)
            port = rng.randint(1024, 65535)
            pid = rng.randint(1000, 60000)
            r = rng.random()
            if r < 0.35:
                msg = f"Failed password for invalid user {user} from {ip} port {port} ssh2"
            elif r < 0.55:
                msg = f"Failed password for {user} from {ip} port {port} ssh2"
            elif r < 0.62:
                msg = f"Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:q0x9YbR4k2s"
            elif r < 0.72:
                msg = (f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                       f"rhost={ip}  user={user}")
            elif r < 0.82:
                msg = f"Invalid user {user} from {ip} port {port}"
            elif r < 0.9:
                msg = f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
            elif r < 0.95:
                msg = f"Connection closed by authenticating user {user} {ip} port {port} [preauth]"
            else:
                msg = f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"
            out.write(f"{stamp} bastion01 sshd[{pid}]: {msg}\n")


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall time, peak RSS (bytes, sampled) and stdout of a command."""
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}")
    return elapsed, peak, out


def new_database(target: Path, page_size: int = 0) -> Any:
    """An empty database with the project's own schema and pragmas (``page_size``: other than SQLite's default)."""
    from sentinel.store.database import Database

    if page_size:  # must be set before the first write; Database would then keep it
        subprocess.run(["sqlite3", str(target), f"PRAGMA page_size = {page_size}; PRAGMA auto_vacuum = INCREMENTAL; "
                        "PRAGMA journal_mode = WAL;"], check=True, capture_output=True)
    return Database(target)


def remove_database(target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)


def stored_rows(stored_db: Path, limit: int = -1) -> list[tuple[Any, ...]]:
    """The rows sentinel stored, in order, as the pipeline's INSERT takes them."""
    import sqlite3

    with sqlite3.connect(stored_db) as conn:
        return conn.execute("SELECT id, ts, source, host, user, action, outcome, ip, parsed, shape, doc "
                            "FROM events ORDER BY seq LIMIT ?", (limit,)).fetchall()


def storage_floor(stored_db: Path, work: Path, runs: int, batch: int, indexes: bool = True,
                  page_size: int = 0) -> list[float]:
    """Rows/s of SQLite alone (the sqlite3 shell, no Python, no decoding) copying the rows sentinel stored in
    ``stored_db`` into an empty database of the same schema with INSERT ... SELECT, ``batch`` rows per
    transaction as the pipeline commits them (``indexes`` False: without the events table's secondary
    indexes, to show what they cost; ``page_size``: pages of that many bytes instead of 4096)."""
    import sqlite3

    columns = "id, ts, source, host, user, action, outcome, ip, parsed, doc, shape"
    with sqlite3.connect(stored_db) as conn:
        low, high = conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
    count = high - low + 1
    script = ["PRAGMA synchronous = NORMAL;", "PRAGMA cache_size = -16384;", f"ATTACH '{stored_db}' AS src;"]
    for at in range(low, high + 1, batch):
        script += ["BEGIN IMMEDIATE;",
                   f"INSERT INTO events ({columns}) SELECT {columns} FROM src.events "
                   f"WHERE seq >= {at} AND seq < {at + batch} ORDER BY seq;",
                   "COMMIT;"]
    rates = []
    for run in range(runs):
        target = work / f"floor{run}.db"
        db = new_database(target, page_size)
        if not indexes:
            for (name,) in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                                           "'events' AND sql IS NOT NULL").fetchall():
                db.conn.execute(f'DROP INDEX "{name}"')
        db.conn.close()
        started = time.perf_counter()
        subprocess.run(["sqlite3", str(target)], input="\n".join(script).encode(), check=True)
        rates.append(count / (time.perf_counter() - started))
        remove_database(target)
    return rates


def python_floor(rows: list[tuple[Any, ...]], work: Path, runs: int, batch: int) -> list[float]:
    """Rows/s of Python's sqlite3 alone storing ``rows`` (already in memory: no reading, no decoding) with the
    pipeline's own INSERT, ``batch`` rows per transaction: the ceiling of any row path that binds rows from
    Python, however fast the decoding that feeds it."""
    from sentinel.store.database import Database
    from sentinel.store.sqlite_events import _INSERT

    rates = []
    for run in range(runs):
        target = work / f"pyfloor{run}.db"
        db = Database(target)
        started = time.perf_counter()
        for at in range(0, len(rows), batch):
            with db.transaction() as tx:
                tx.executemany(_INSERT, rows[at:at + batch])
        rates.append(len(rows) / (time.perf_counter() - started))
        db.close()
        remove_database(target)
    return rates


def small_commit_cost(stored_db: Path, work: Path, page_size: int = 0, commits: int = 2000) -> tuple[float, float]:
    """KiB handed to write() and CPU µs per one-event commit (the daemon's usual batch on a quiet host) into
    a store already holding 50,000 events: what a larger page costs the steady state."""
    from sentinel.store.sqlite_events import _INSERT

    def written() -> int:
        with open("/proc/self/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("wchar"))

    rows = stored_rows(stored_db, 50_000 + commits)
    target = work / "commits.db"
    db = new_database(target, page_size)
    with db.transaction() as tx:
        tx.executemany(_INSERT, rows[:50_000])
    before, cpu = written(), time.process_time()
    for row in rows[50_000:]:
        with db.transaction() as tx:
            tx.execute(_INSERT, row)
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('bench', ?)", (row[0],))  # as a checkpoint would
    kib, cpu = (written() - before) / commits / 1024, (time.process_time() - cpu) / commits * 1e6
    db.close()
    remove_database(target)
    return kib, cpu


def startup_seconds(work: Path, runs: int) -> float:
    """Median wall time of ``sentinel replay`` on an empty file: interpreter, imports, config and collectors."""
    empty = work / "empty.log"
    empty.touch()
    cfg = work / "startup.yaml"
    cfg.write_text(yaml.safe_dump({"state_dir": str(work / "startup-state"),
                                   "collectors_dir": str(SHIPPED / "collectors"),
                                   "sources": [{"collector": "linux-auth", "paths": [str(empty)]}]}))
    times = [run_measured([sys.executable, "-m", "sentinel", "replay", "-c", str(cfg), "--collector", "linux-auth",
                           "--no-detect", "-q", str(empty)], ROOT)[0] for _ in range(runs)]
    shutil.rmtree(work / "startup-state", ignore_errors=True)
    return statistics.median(times)


def daemon_catch_up(log: Path, work: Path, lines: int, workers: int) -> float:
    """Lines/s of the daemon (full rule pack) storing ``log`` from the beginning, as after an outage."""
    import signal
    import sqlite3

    state = work / f"daemon-{workers}"
    cfg = work / f"daemon-{workers}.yaml"
    cfg.write_text(yaml.safe_dump({
        "state_dir": str(state), "collectors_dir": str(SHIPPED / "collectors"), "rules_dir": str(SHIPPED / "rules"),
        "alerts_dir": str(SHIPPED / "alerts"), "metrics": {"enabled": False}, "api": {"enabled": False},
        "notify": {"enabled": False},
        "pipeline": {"start_position": "beginning", "decode_workers": workers},
        "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg), "--log-level", "WARNING"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    try:
        while stored < lines:
            time.sleep(0.1)
            if proc.poll() is not None:
                raise SystemExit(f"sentinel run exited with {proc.returncode}")
            try:
                with sqlite3.connect(state / "events.db", timeout=5) as conn:
                    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            except sqlite3.Error:
                continue
        return lines / (time.perf_counter() - started)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def versus(rate: float, base: float | None) -> str:
    """`` = N.NNx fail2ban-regex`` when fail2ban-regex was measured."""
    return f" = {rate / base:.2f}x fail2ban-regex" if base else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--floor", action="store_true",
                    help="also measure what bounds replay whatever the decoding: SQLite alone, Python's sqlite3 "
                         "alone, start-up, and what 16 KiB pages would change")
    ap.add_argument("--daemon", action="store_true", help="also time the daemon catching up the file as a backlog")
    ap.add_argument("--storm", action="store_true", help="the brute-force storm instead (tests/storm_bench.py)")
    ap.add_argument("--live", metavar="RATES", help="--storm: instead, append the storm at these lines/s "
                    "(comma-separated) while `sentinel run` tails it, and time each alert from its line's append")
    ap.add_argument("--seconds", type=float, default=20.0, help="--live: how long each rate is appended")
    args = ap.parse_args()
    if args.storm:
        sys.path.insert(0, str(ROOT))
        from tests.storm_bench import live_report, report

        work = Path(tempfile.mkdtemp(prefix="sentinel-storm-"))
        try:
            if args.live:
                live_report([int(r) for r in args.live.split(",")], args.seconds, work)
            else:
                report(args.lines, args.runs, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    f2b = shutil.which("fail2ban-regex")
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    log = work / "auth.log"
    make_auth_log(log, args.lines)
    print(f"input: {log} ({args.lines} lines, {log.stat().st_size / 1e6:.1f} MB)")
    ours: list[float] = []
    rss: list[int] = []
    theirs: list[float] = []
    floor: list[float] = []
    large: list[float] = []
    bare: list[float] = []
    py_floor: list[float] = []
    big_pages: list[float] = []
    commit_costs: list[tuple[float, float]] = []
    py_large: list[float] = []
    startup = 0.0
    for run in range(args.runs):
        state = work / f"state{run}"
        cfg = work / f"sentinel{run}.yaml"
        cfg.write_text(yaml.safe_dump({"state_dir": str(state), "collectors_dir": str(SHIPPED / "collectors"),
                                       "sources": [{"collector": "linux-auth", "paths": [str(log)]}]}))
        elapsed, peak, out = run_measured([sys.executable, "-m", "sentinel", "replay", "-c", str(cfg),
                                           "--collector", "linux-auth", "--no-detect", "-q", str(log)], ROOT)
        if f"{args.lines} new events stored" not in out:
            raise SystemExit(f"sentinel did not store every line: {out}")
        ours.append(args.lines / elapsed)
        rss.append(peak)
        line = f"run {run + 1}: sentinel {args.lines / elapsed:9.0f} lines/s  peak RSS {peak / 2**20:6.1f} MiB"
        if f2b:
            t, _, _ = run_measured([f2b, str(log), "/etc/fail2ban/filter.d/sshd.conf"], work)
            theirs.append(args.lines / t)
            line += f"   fail2ban-regex {args.lines / t:9.0f} lines/s"
        print(line, flush=True)
        if args.floor and run == args.runs - 1:
            floor = storage_floor(state / "events.db", work, args.runs, 4096)
            large = storage_floor(state / "events.db", work, args.runs, 16384)
            bare = storage_floor(state / "events.db", work, args.runs, 4096, indexes=False)
            big_pages = storage_floor(state / "events.db", work, args.runs, 16384, page_size=16384)
            if args.lines >= 52_000:  # a 50,000-event store, then 2000 one-event commits
                commit_costs = [small_commit_cost(state / "events.db", work, size) for size in (0, 16384)]
            rows = stored_rows(state / "events.db")
            py_floor = python_floor(rows, work, args.runs, 4096)
            py_large = python_floor(rows, work, args.runs, 16384)
            del rows
            startup = startup_seconds(work, args.runs)
        shutil.rmtree(state, ignore_errors=True)
    print(f"median sentinel: {statistics.median(ours):.0f} lines/s, peak RSS max {max(rss) / 2**20:.1f} MiB "
          "(target < 200 MiB)")
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"median fail2ban-regex: {statistics.median(theirs):.0f} lines/s")
        print(f"ratio sentinel / fail2ban-regex: {ratio:.2f}x (target >= 5x)")
    else:
        print("fail2ban-regex not installed (apt-get install fail2ban): no side-by-side figure")
    if args.floor:
        base = statistics.median(theirs) if theirs else None
        for label, rates in (("SQLite alone, same rows and schema, 4096-row transactions", floor),
                             ("the same, 16384-row transactions", large),
                             ("the same, 4096-row transactions, no secondary indexes", bare),
                             ("the same, 16384-row transactions, 16 KiB pages instead of 4", big_pages)):
            print(f"storage floor ({label}): {statistics.median(rates):.0f} rows/s"
                  + versus(statistics.median(rates), base))
        for label, rates in (("4096-row transactions", py_floor), ("16384-row transactions", py_large)):
            print(f"Python sqlite3 alone (the same rows already in memory, the pipeline's INSERT, {label}): "
                  f"{statistics.median(rates):.0f} rows/s" + versus(statistics.median(rates), base))
        print(f"startup (sentinel replay of an empty file): {startup:.2f} s")
        for label, rates in (("rows bound from Python", py_floor + py_large),
                             ("SQLite at its C-only speed, 16384-row transactions", large),
                             ("the same with 16 KiB pages", big_pages)):
            best = max(statistics.median(rates[i:i + args.runs]) for i in range(0, len(rates), args.runs))
            bound = args.lines / (args.lines / best + startup)
            print(f"with decoding free and fully overlapped, {label}: replay at most {bound:.0f} lines/s"
                  + versus(bound, base))
        if not commit_costs:
            print("one-event commit cost: needs --lines 52000 or more")
        for size, (kib, cpu) in zip(("4 KiB", "16 KiB"), commit_costs, strict=False):
            print(f"one-event commit into a 50,000-event store, {size} pages: {kib:.0f} KiB written, {cpu:.0f} µs CPU")
    if args.daemon:
        for workers in (0, 1):
            rates = [daemon_catch_up(log, work, args.lines, workers) for _ in range(args.runs)]
            print(f"sentinel run catching up (rules on), decode_workers {workers}: "
                  f"median {statistics.median(rates):.0f} lines/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
