"""``sentinel run`` (the daemon) and ``sentinel replay`` (backfill files through the same pipeline)."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from, input_file
from sentinel.cli.logsetup import setup_logging


def run(args: argparse.Namespace) -> int:
    from sentinel.daemon.assemble import assemble
    from sentinel.daemon.validate import validate_all
    from sentinel.errors import ConfigErrors

    cfg = config_from(args)
    setup_logging(args.log_level or cfg.config.logging.level, cfg.config.logging.format)
    # Everything is checked before the state directory, database or audit trail is touched, so a refused
    # start leaves no files behind.
    report = validate_all(cfg)
    if report.errors:
        raise ConfigErrors(report.errors)
    for warning in report.warnings:
        logging.getLogger("sentinel.daemon").warning("%s", warning)
    daemon = assemble(cfg, reset_state=args.reset_state)
    daemon.install_signals()
    daemon.run()
    return 0


def replay(args: argparse.Namespace) -> int:
    from sentinel.daemon.build import database_path
    from sentinel.daemon.decode_pool import DecodeWorkerDied
    from sentinel.daemon.replay import replay_files, replay_journal
    from sentinel.store.space import is_disk_full

    cfg = config_from(args)
    setup_logging("WARNING", cfg.config.logging.format)
    if args.journal == bool(args.paths):
        print("error: give files to replay, or --journal (not both)", file=sys.stderr)
        return 2
    if (args.since or args.journal_directory) and not args.journal:
        print("error: --since and --journal-directory go with --journal", file=sys.stderr)
        return 2
    try:
        if args.journal:
            result = replay_journal(cfg, args.collector, args.since, args.journal_directory,
                                    progress=not args.quiet, detect=not args.no_detect)
        else:
            result = replay_files(cfg, args.collector, args.paths, progress=not args.quiet,
                                  detect=not args.no_detect, workers=args.workers)
    except DecodeWorkerDied:
        # Batches committed so far stay; replaying again stores only what is missing (ids come from content).
        print("error: a decode worker process died (out of memory or killed); replay again to finish, or use "
              "--workers 0 to decode in this process", file=sys.stderr)
        return 1
    except (sqlite3.OperationalError, OSError) as exc:
        if not is_disk_full(exc):
            raise
        print(f"error: no space left for the database in {database_path(cfg).parent}: the batches committed "
              "before are stored; free some space and replay again to finish (nothing is stored twice)",
              file=sys.stderr)
        return 1
    print(f"replayed {result.records} records from {result.files} file(s): {result.new} new events stored, "
          f"{result.duplicates} already present; outcomes: "
          + ", ".join(f"{k}={v}" for k, v in sorted(result.outcomes.items())))
    for problem in result.unreadable:
        print(f"error: cannot read {problem}", file=sys.stderr)
    if result.still_spooled:
        print(f"{result.still_spooled} events are still spooled for Elasticsearch; the daemon ships them "
              "(sentinel run), or replay again later", file=sys.stderr)
    logging.shutdown()
    return 1 if result.unreadable else 0


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 0 to 64, got {text!r}")
    return value


def register(sub: SubParsers) -> None:
    p = sub.add_parser("run", help="run the daemon with the configuration")
    add_config_arg(p)
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    p.add_argument("--reset-state", action="store_true",
                   help="start even though the state directory's database is missing or is another one "
                        "(recorded in the audit trail)")
    p.set_defaults(func=run)

    r = sub.add_parser("replay", help="push existing log files (plain or .gz), or the journal, through the pipeline")
    add_config_arg(r)
    r.add_argument("--collector", required=True, help="collector that decodes these files")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--no-detect", action="store_true", help="store only; do not run the rules")
    r.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="decode in N worker processes while this one stores (default: spare cores, up to 4; "
                        "0 decodes here)")
    r.add_argument("--journal", action="store_true",
                   help="backfill from the systemd journal: the entries the collector follows there")
    r.add_argument("--since", metavar="TIME", help='with --journal: from this time on (journalctl --since: '
                   '"2026-11-01", "yesterday", "-2h")')
    r.add_argument("--journal-directory", metavar="DIR", help="with --journal: journal files in DIR instead")
    r.add_argument("paths", nargs="*", type=input_file, help="files to replay")
    r.set_defaults(func=replay)
