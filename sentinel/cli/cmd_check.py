"""``sentinel check``: validate everything a reload would load, start nothing."""

from __future__ import annotations

import argparse
import sys

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from
from sentinel.daemon.validate import validate_all
from sentinel.errors import ConfigError, ConfigErrors


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from(args)
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = validate_all(cfg)
    for err in report.errors:
        print(f"error: {err}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.summary:
        print(line)
    if report.errors:
        print(f"{len(report.errors)} problem(s) found", file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("check", help="validate config, collectors, rules and alert routes; exit 0 if all good")
    add_config_arg(p)
    p.set_defaults(func=run)
