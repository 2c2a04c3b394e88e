"""The ``sentinel`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sentinel.errors import ConfigError, ConfigErrors, SentinelError

Command = Callable[[argparse.Namespace], int]
_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(register: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    """Each command module registers its sub-parser through this decorator."""
    _COMMANDS.append(register)
    return register


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, default=None,
                   help="path to sentinel.yaml (default: $SENTINEL_CONFIG, /etc/sentinel/sentinel.yaml, "
                        "else the default config shipped in the package)")


def build_parser() -> argparse.ArgumentParser:
    from sentinel.cli import commands  # noqa: F401 - registers the commands

    parser = argparse.ArgumentParser(prog="sentinel", description="Security log monitoring and alerting for PHI")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _COMMANDS:
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
    # Run through the package module so commands register on the same registry object.
    from sentinel.cli.main import main as package_main

    sys.exit(package_main())
