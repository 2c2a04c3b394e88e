"""``sentinel demo``: a one-command tour on synthetic billing-company logs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentinel.cli.args import SubParsers
from sentinel.cli.common import positive_float, positive_int

MIN_USERS = 10  # the generator needs this many people to plant every incident


def run(args: argparse.Namespace) -> int:
    from sentinel.demo.runner import DemoOptions, run_demo

    opts = DemoOptions(directory=args.dir, days=args.days, duration=args.duration, users=args.users,
                       seed=args.seed, interval=args.interval, now=args.now)
    run_demo(opts, sys.stdout)
    return 0


def _users(text: str) -> int:
    value = positive_int(text)
    if value < MIN_USERS:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_USERS} people (the incidents need them), "
                                         f"got {text!r}")
    return value


def _instant(text: str) -> float:
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def register(sub: SubParsers) -> None:
    p = sub.add_parser("demo", help="generate a billing company's logs, run the daemon on them, show the alerts")
    p.add_argument("--dir", type=Path, default=None,
                   help="a new or empty folder for the demo (kept afterwards); default: a new one under /tmp")
    p.add_argument("--days", type=positive_int, default=10,
                   help="days of history to generate before going live (default 10: the rules learn for a week)")
    p.add_argument("--duration", type=positive_float, default=30.0, help="seconds to run live (default 30)")
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)  # the folder is always kept now
    p.add_argument("--users", type=_users, default=80, help="people in the simulated company (default 80)")
    p.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    p.add_argument("--interval", type=positive_float, default=5.0, help=argparse.SUPPRESS)
    # Pins the demo's clock (an ISO time): tests run the demo on every weekday and across a New Year.
    p.add_argument("--now", type=_instant, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
