"""Per-line decode cost of the shipped collectors (median µs/line over repeated passes).

Usage: ``python tests/bench_decoders.py [--corpus /work/shared/corpus]``. Uses loghub's OpenSSH_2k.log
for the sshd path when the corpus is present, else a synthetic mix of sshd lines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sentinel.collect.records import RawRecord  # noqa: E402
from sentinel.decode.engine import Decoder  # noqa: E402
from sentinel.decode.registry import load_collectors  # noqa: E402

SYNTHETIC = [
    b"Dec 10 06:55:46 web1 sshd[24200]: Invalid user webmaster from 173.234.31.186",
    b"Dec 10 06:55:48 web1 sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    b"Dec 10 06:55:48 web1 sshd[24200]: Connection closed by 173.234.31.186 [preauth]",
    b"Dec 10 07:02:47 web1 sshd[24203]: Accepted password for alice from 10.0.0.5 port 52100 ssh2",
    b"Dec 10 07:07:38 web1 sshd[24206]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
    b"ruser= rhost=112.95.230.3  user=root",
]


def main() -> int:
    """Print the median decode cost per line for the linux-auth collector."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpus"))
    parser.add_argument("--passes", type=int, default=9)
    args = parser.parse_args()
    loaded, errors = load_collectors(ROOT / "collectors")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
