"""The ``sentinel`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from sentinel.cli.args import SubParsers
from sentinel.errors import ConfigError, ConfigErrors, SentinelError

Register = Callable[[SubParsers], None]


def _register(module: str) -> Register:
    """The ``register`` of one command module, imported now: a module pulls in everything its commands run
    (the daemon, the rules, pydantic), so only the chosen command's module is imported."""
    loaded = importlib.import_module(f"sentinel.cli.{module}")
    register: Register = loaded.register
    return register


# Every sub-command, in the order `sentinel --help` lists them: its help line (what the module's own parser
# says too; tests/test_cli_main.py holds them equal) and the module (under sentinel.cli) that adds its parser.
COMMANDS: dict[str, tuple[str, str]] = {
    "alerts": ("list, show, acknowledge and resolve alerts", "cmd_alerts"),
    "silence": ("add, list and expire silences", "cmd_alerts"),
    "report": ("evidence report: alerts, time to acknowledge, silences, dormant accounts, ingestion gaps",
               "cmd_alerts"),
    "analyzer": ("run the fleet-wide Elasticsearch detections (dormant accounts, export baselines, password "
                 "spraying)", "cmd_analyzer"),
    "check": ("validate config, collectors, rules and alert routes; exit 0 if all good", "cmd_check"),
    "demo": ("generate a billing company's logs, run the daemon on them, show the alerts", "cmd_demo"),
    "run": ("run the daemon with the configuration", "cmd_ingest"),
    "replay": ("push existing log files (plain or .gz), or the journal, through the pipeline", "cmd_ingest"),
    "init": ("lay out /etc/sentinel/ and the state directory for this site", "cmd_init"),
    "reload": ("make the running daemon reload config, collectors, rules and routes", "cmd_ops"),
    "audit": ("the daemon's hash-chained audit trail", "cmd_ops"),
    "rules": ("list the enabled detection rules, or the HIPAA coverage matrix", "cmd_rules"),
    "test-rule": ("replay events against one rule and print the alerts it would raise", "cmd_rules"),
    "accounts": ("account reviews", "cmd_rules"),
    "search": ("search stored events: FIELD=VALUE terms (also != > >= < <=, VALUE* globs)", "cmd_search"),
}


def build_parser(command: str | None = None, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``lazy``, only ``command``'s module is imported (if it names one) and the
    other commands are names with their help line: enough to list them and to reject an unknown one."""
    parser = argparse.ArgumentParser(prog="sentinel", description="Security log monitoring and alerting for PHI")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = COMMANDS[command][1] if command in COMMANDS else None
    registered: set[str] = set()
    for name, (text, module) in COMMANDS.items():
        if lazy and module != chosen:
            sub.add_parser(name, help=text)
        elif module not in registered:
            # The module adds all of its commands at once; they are adjacent above, so the order holds.
            registered.add(module)
            _register(module)(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command argv names: the first word that is not an option (the top level has only -h)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_of(argv), lazy=True)
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
