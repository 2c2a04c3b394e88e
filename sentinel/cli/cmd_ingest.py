"""``sentinel run`` (the daemon) and ``sentinel replay`` (backfill files through the same pipeline)."""

from __future__ import annotations

import argparse
import logging

from sentinel.cli.common import config_from
from sentinel.cli.logsetup import setup_logging
from sentinel.cli.main import add_config_arg, command


def run(args: argparse.Namespace) -> int:
    from sentinel.daemon.assemble import assemble

    cfg = config_from(args)
    setup_logging(args.log_level or cfg.config.logging.level, cfg.config.logging.format)
    daemon = assemble(cfg)
    daemon.install_signals()
    daemon.run()
    return 0


def replay(args: argparse.Namespace) -> int:
    from sentinel.daemon.replay import replay_files

    cfg = config_from(args)
    setup_logging("WARNING", cfg.config.logging.format)
    result = replay_files(cfg, args.collector, args.paths, progress=not args.quiet, detect=not args.no_detect)
    print(f"replayed {result.records} records from {result.files} file(s): {result.new} new events stored, "
          f"{result.duplicates} already present; outcomes: "
          + ", ".join(f"{k}={v}" for k, v in sorted(result.outcomes.items())))
    logging.shutdown()
    return 0


@command
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon with the configuration")
    add_config_arg(p)
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    p.set_defaults(func=run)

    r = sub.add_parser("replay", help="push existing log files (plain or .gz) through the pipeline")
    add_config_arg(r)
    r.add_argument("--collector", required=True, help="collector that decodes these files")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--no-detect", action="store_true", help="store only; do not run the rules")
    r.add_argument("paths", nargs="+", help="files to replay")
    r.set_defaults(func=replay)
