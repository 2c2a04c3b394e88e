"""The command line imports only the chosen command's module, and the cheap listing says what the full one says."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from sentinel.cli.main import COMMANDS, build_parser


def _helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in sub._choices_actions}


def test_the_table_names_every_command_with_its_own_help_line() -> None:
    full = _helps(build_parser())
    assert full == {name: text for name, (text, _load) in COMMANDS.items()}
    assert list(full) == list(COMMANDS)  # `sentinel --help` lists them in the table's order


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_a_lazy_parser_lists_the_same_commands(command: str | None) -> None:
    assert _helps(build_parser(command, lazy=True)) == _helps(build_parser())


def test_only_the_chosen_commands_module_is_imported() -> None:
    probe = ("import sys; from sentinel.cli.main import build_parser; build_parser('search', lazy=True); "
             "import json; print(json.dumps([m for m in sys.modules if m.startswith('sentinel.cli.cmd_')]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    imported = json.loads(done.stdout)
    assert "sentinel.cli.cmd_search" in imported
    assert not [m for m in imported if m.startswith("sentinel.cli.cmd_") and m != "sentinel.cli.cmd_search"]


def test_importing_the_entry_point_imports_no_command() -> None:
    probe = "import json, sys, sentinel.cli.main; print(json.dumps(list(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert not [m for m in json.loads(done.stdout) if m.startswith(("sentinel.cli.cmd_", "sentinel.daemon"))]
