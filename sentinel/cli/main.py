"""The ``sentinel`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sentinel.cli import (
    cmd_alerts,
    cmd_analyzer,
    cmd_check,
    cmd_demo,
    cmd_ingest,
    cmd_init,
    cmd_ops,
    cmd_rules,
    cmd_search,
)
from sentinel.cli.args import SubParsers
from sentinel.errors import ConfigError, ConfigErrors, SentinelError

# Every sub-command, in the order `sentinel --help` lists them: each module adds its parsers.
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    cmd_alerts.register,
    cmd_analyzer.register,
    cmd_check.register,
    cmd_demo.register,
    cmd_ingest.register,
    cmd_init.register,
    cmd_ops.register,
    cmd_rules.register,
    cmd_search.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description="Security log monitoring and alerting for PHI")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigErrors as exc:
        for err in exc.errors:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except (ConfigError, SentinelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # A file or folder an argument named could not be used: say which and why, in one line.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
