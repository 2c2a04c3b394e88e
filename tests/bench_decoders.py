"""Per-line cost of the ingest stages for the sshd path (median µs/line over repeated passes).

Usage: ``python tests/bench_decoders.py [--corpus /work/shared/corpus] [--stages N]``. The first figure
is decode alone on loghub's OpenSSH_2k.log when the corpus is present, else a synthetic mix of sshd
lines. ``--stages N`` also times frame / decode / row / store on N lines of tests/bench_ingest.py's
generated auth.log (unique addresses, so no warm caches). Times are CPU time of this process, which
is steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sentinel.collect.framing import LineFramer  # noqa: E402
from sentinel.daemon.collectors import load_collectors  # noqa: E402
from sentinel.decode.engine import Decoder  # noqa: E402
from sentinel.events.records import RawRecord  # noqa: E402
from sentinel.store import sqlite_events  # noqa: E402
from sentinel.store.database import Database  # noqa: E402

SYNTHETIC = [
    b"Dec 10 06:55:46 web1 sshd[24200]: Invalid user webmaster from 173.234.31.186",
    b"Dec 10 06:55:48 web1 sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    b"Dec 10 06:55:48 web1 sshd[24200]: Connection closed by 173.234.31.186 [preauth]",
    b"Dec 10 07:02:47 web1 sshd[24203]: Accepted password for alice from 10.0.0.5 port 52100 ssh2",
    b"Dec 10 07:07:38 web1 sshd[24206]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
    b"ruser= rhost=112.95.230.3  user=root",
]


def stages(decoder: Decoder, lines: int, passes: int) -> None:
    """CPU µs/line of framing, decoding, building the row and storing (one transaction per 4096)."""
    from bench_ingest import make_auth_log

    with tempfile.TemporaryDirectory(prefix="sentinel-stages-") as tmp:
        log = Path(tmp) / "auth.log"
        make_auth_log(log, lines)
        data = log.read_bytes()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)  # as sentinel.daemon.gctune.tune_gc
        took: dict[str, list[float]] = {"frame": [], "decode": [], "row": [], "store": []}
        for n in range(passes):
            clock = time.process_time
            start = clock()
            framer = LineFramer(0, 65536)
            frames = []
            for at in range(0, len(data), 1 << 20):
                frames += framer.feed(data[at:at + (1 << 20)], at)
            took["frame"].append(clock() - start)
            now = time.time()
            # A fresh stream per pass, and a fresh decoder: no pass reuses another's cached addresses.
            fresh = Decoder(decoder.spec, decoder.zone, decoder.host_name)
            records = [RawRecord("linux-auth", f"s{n}", str(log), f.offset, f.end, f.data, f.truncated,
                                 f.original_length, now) for f in frames]
            start = clock()
            events = [fresh.decode(r, now)[0] for r in records]
            took["decode"].append(clock() - start)
            start = clock()
            rows = [sqlite_events.event_row(e) for e in events]
            took["row"].append(clock() - start)
            del rows
            db = Database(Path(tmp) / f"s{n}.db")
            store = sqlite_events.SqliteEventStore()
            start = clock()
            for at in range(0, len(events), 4096):
                with db.transaction() as tx:
                    store.write(tx, events[at:at + 4096])
            took["store"].append(clock() - start)
            db.close()
        for stage, runs in took.items():
            per = [t / lines * 1e6 for t in runs]
            note = " (includes row)" if stage == "store" else ""
            print(f"  {stage:6s} median {statistics.median(per):6.2f} µs/line, min {min(per):6.2f}{note}")


def main() -> int:
    """Print the median decode cost per line for the linux-auth collector."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    parser.add_argument("--passes", type=int, default=9)
    parser.add_argument("--stages", type=int, default=0, help="also time every stage on this many generated lines")
    args = parser.parse_args()
    loaded, errors = load_collectors(SHIPPED / "collectors")
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    decoder = Decoder(loaded["linux-auth"].spec, "UTC", "bench")
    path = args.corpus / "loghub" / "OpenSSH_2k.log"
    lines = [x for x in path.read_bytes().split(b"\n") if x] if path.exists() else SYNTHETIC * 400
    now = time.time()
    records = [RawRecord("linux-auth", "s", "p", i, i + 1, line, reference_time=now) for i, line in enumerate(lines)]
    runs = []
    for _ in range(args.passes):
        start = time.perf_counter()
        for rec in records:
            decoder.decode(rec, now)
        runs.append((time.perf_counter() - start) / len(records) * 1e6)
    source = "loghub OpenSSH_2k" if path.exists() else "synthetic sshd mix"
    print(f"linux-auth ({source}, {len(records)} lines): median {statistics.median(runs):.1f} µs/line, "
          f"min {min(runs):.1f} µs/line over {args.passes} passes")
    if args.stages:
        print(f"stages on {args.stages} generated auth.log lines, CPU time, {min(args.passes, 5)} passes:")
        stages(decoder, args.stages, min(args.passes, 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
