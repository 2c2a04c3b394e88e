"""The ``sentinel`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sentinel.cli.args import SubParsers
from sentinel.errors import ConfigError, ConfigErrors, SentinelError

Register = Callable[[SubParsers], None]

# One loader per command module: importing a module pulls in everything its commands run (the daemon, the
# rules, pydantic), so only the chosen command's module is imported; the others cost a name and a help line.


def _alerts() -> Register:
    from sentinel.cli import cmd_alerts
    return cmd_alerts.register


def _analyzer() -> Register:
    from sentinel.cli import cmd_analyzer
    return cmd_analyzer.register


def _check() -> Register:
    from sentinel.cli import cmd_check
    return cmd_check.register


def _demo() -> Register:
    from sentinel.cli import cmd_demo
    return cmd_demo.register


def _ingest() -> Register:
    from sentinel.cli import cmd_ingest
    return cmd_ingest.register


def _init() -> Register:
    from sentinel.cli import cmd_init
    return cmd_init.register


def _ops() -> Register:
    from sentinel.cli import cmd_ops
    return cmd_ops.register


def _rules() -> Register:
    from sentinel.cli import cmd_rules
    return cmd_rules.register


def _search() -> Register:
    from sentinel.cli import cmd_search
    return cmd_search.register


# Every sub-command, in the order `sentinel --help` lists them: its help line (what the module's own parser
# says too; tests/test_cli_main.py holds them equal) and the loader of the module that adds its parser.
COMMANDS: dict[str, tuple[str, Callable[[], Register]]] = {
    "alerts": ("list, show, acknowledge and resolve alerts", _alerts),
    "silence": ("add, list and expire silences", _alerts),
    "report": ("evidence report: alerts, time to acknowledge, silences, dormant accounts, ingestion gaps",
               _alerts),
    "analyzer": ("run the fleet-wide Elasticsearch detections (dormant accounts, export baselines, password "
                 "spraying)", _analyzer),
    "check": ("validate config, collectors, rules and alert routes; exit 0 if all good", _check),
    "demo": ("generate a billing company's logs, run the daemon on them, show the alerts", _demo),
    "run": ("run the daemon with the configuration", _ingest),
    "replay": ("push existing log files (plain or .gz), or the journal, through the pipeline", _ingest),
    "init": ("lay out /etc/sentinel/ and the state directory for this site", _init),
    "reload": ("make the running daemon reload config, collectors, rules and routes", _ops),
    "audit": ("the daemon's hash-chained audit trail", _ops),
    "rules": ("list the enabled detection rules, or the HIPAA coverage matrix", _rules),
    "test-rule": ("replay events against one rule and print the alerts it would raise", _rules),
    "accounts": ("account reviews", _rules),
    "search": ("search stored events: FIELD=VALUE terms (also != > >= < <=, VALUE* globs)", _search),
}


def build_parser(command: str | None = None, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``lazy``, only ``command``'s module is imported (if it names one) and the
    other commands are names with their help line: enough to list them and to reject an unknown one."""
    parser = argparse.ArgumentParser(prog="sentinel", description="Security log monitoring and alerting for PHI")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = COMMANDS[command][1] if command in COMMANDS else None
    registered: set[Callable[[], Register]] = set()
    for name, (text, load) in COMMANDS.items():
        if lazy and load is not chosen:
            sub.add_parser(name, help=text)
        elif load not in registered:
            # The module adds all of its commands at once; they are adjacent above, so the order holds.
            registered.add(load)
            load()(sub)
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
