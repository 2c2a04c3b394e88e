"""No traceback, ever: every subcommand (read from the CLI's own parser, so a new one is covered) against a
missing, unreadable, directory, empty, binary and huge file for each path argument, and a malformed value for
each option. Each must end non-zero with a short message naming the argument or the file, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sentinel.cli.common import input_file
from sentinel.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
FILE_KINDS = ("missing", "unreadable", "directory", "empty", "binary", "huge")
LOG_DATA = {"paths", "--log"}
HUGE_BYTES = 64 << 20  # sparse: big enough to trip any reader that slurps a file whole

# Values for the required arguments a command needs besides the one under test.
REQUIRED = {"id": ["0123456789abcdef"], "matchers": ["user.name=alice"], "rule": ["sudo-failure"],
            "--collector": ["linux-auth"], "--duration": ["1h"], "--reason": ["test"], "--from": ["2026-01-01"],
            "paths": None}  # paths: a file made per case
# Keep commands that would otherwise run for long short (the demo runs for real when its input is fine).
EXTRA = {("demo",): ["--days", "1", "--users", "10", "--duration", "0.2", "--interval", "0.1"],
         # --duration is optional only for a silence bound to an alert (--alert): an unbound one needs it.
         ("silence", "add"): ["--duration", "1h"]}
# Options whose value the command parses itself (no argparse type), with a value that cannot be right.
PARSED_BY_COMMAND = {"--since": "yesterday-ish", "--until": "soon", "--from": "last week", "--to": "2026-13-45",
                     "--duration": "a while", "--gap": "often", "--as-of": "someday", "--days": "many",
                     "--timeout": "-1", "--limit": "-5", "--show": "lots", "--workers": "999", "--users": "0",
                     "--interval": "0"}


def leaves(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaves(sub, (*prefix, name))


COMMANDS = dict(leaves(build_parser()))


CREATED_FOLDERS = {"dir", "prefix", "destdir"}


def is_path(action: argparse.Action) -> bool:
    return action.type in (Path, input_file)


def path_cases() -> list[tuple[tuple[str, ...], str, str]]:
    out = []
    for cmd, parser in COMMANDS.items():
        for action in parser._actions:
            if is_path(action):
                name = action.option_strings[0] if action.option_strings else action.dest
                # A folder a command creates (demo --dir, init --prefix/--destdir) is fine missing or empty; a
                # file there is not.
                kinds = [k for k in FILE_KINDS
                         if action.dest not in CREATED_FOLDERS or k not in ("missing", "directory")]
                out += [(cmd, name, kind) for kind in kinds]
    return out


def option_cases() -> list[tuple[tuple[str, ...], str, str]]:
    out = []
    for cmd, parser in COMMANDS.items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or is_path(action) or isinstance(
                    action, argparse._HelpAction):
                continue
            opt = action.option_strings[0]
            if action.choices is not None:
                out.append((cmd, opt, "no-such-choice"))
            elif action.type is not None:
                out.append((cmd, opt, "not-a-number"))
            elif opt in PARSED_BY_COMMAND:
                out.append((cmd, opt, PARSED_BY_COMMAND[opt]))
        for opt, value in PARSED_BY_COMMAND.items():
            if any(opt in a.option_strings and a.type is not None for a in parser._actions):
                out.append((cmd, opt, value))
    return sorted(set(out))


def test_the_table_covers_every_subcommand() -> None:
    covered = {cmd for cmd, _, _ in path_cases()} | {cmd for cmd, _, _ in option_cases()}
    assert covered == set(COMMANDS), set(COMMANDS) - covered
    assert len(COMMANDS) >= 20


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A valid config, log and events file, so only the argument under test is wrong."""
    (tmp_path / "state").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "events.jsonl").write_text("")
    (tmp_path / "logs" / "auth.log").write_text("")
    doc = {"state_dir": str(tmp_path / "state"), "collectors_dir": str(SHIPPED / "collectors"),
           "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(SHIPPED / "alerts"),
           "sources": [{"collector": "linux-auth", "paths": [str(tmp_path / "logs" / "auth.log")]}],
           "metrics": {"enabled": False}, "api": {"enabled": False}}
    (tmp_path / "sentinel.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def bad_file(world: Path, kind: str) -> Path:
    path = world / f"bad-{kind}"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 64 + b"\xff\xfe\x00\x00")
    elif kind == "huge":
        with path.open("wb") as f:
            f.truncate(HUGE_BYTES)
    elif kind == "unreadable":
        path.write_text("state_dir: /tmp\n")
        path.chmod(0)
    return path


def argv_for(cmd: tuple[str, ...], world: Path, replace: str | None = None, value: str | None = None) -> list[str]:
    parser = COMMANDS[cmd]
    argv = [*cmd, *EXTRA.get(cmd, [])]
    for action in parser._actions:
        name = action.option_strings[0] if action.option_strings else action.dest
        if name == replace:
            continue
        if name == "--config":
            argv += ["--config", str(world / "sentinel.yaml")]
        elif action.required and name in REQUIRED:
            values = REQUIRED[name] or [str(world / "logs" / "auth.log")]
            argv += ([name] if action.option_strings else []) + values
    for group in parser._mutually_exclusive_groups:
        names = [a.option_strings[0] for a in group._group_actions]
        if group.required and replace not in names:
            argv += [names[0], str(world / "events.jsonl")]  # test-rule: --events or --log
    if replace == "--log":
        argv += ["--collector", "linux-auth"]  # a log needs the collector that decodes it
    if replace is not None:
        argv += [replace, value] if replace.startswith("-") else [value]  # type: ignore[list-item]
    return [a for a in argv if a is not None]


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err


def run_unprivileged(argv: list[str], world: Path) -> tuple[int, str]:
    """As root every file is readable: the child loses the capabilities that override file modes (setpriv,
    util-linux) so mode 000 really refuses the read."""
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run([*drop, sys.executable, "-m", "sentinel", *argv], capture_output=True, text=True,
                          timeout=120, cwd=world)
    return done.returncode, done.stdout + done.stderr


def assert_clean_failure(code: int, text: str, names: list[str]) -> None:
    assert "Traceback" not in text and "unexpected error" not in text, text
    assert code != 0, f"exit 0 for a bad input:\n{text}"
    lines = text.splitlines()
    assert any(any(n in line for n in names) for line in lines), f"the message names none of {names}:\n{text}"


@pytest.mark.parametrize("cmd, arg, kind", path_cases(), ids=[f"{' '.join(c)} {a} {k}" for c, a, k in path_cases()])
def test_bad_file_for_every_path_argument(cmd: tuple[str, ...], arg: str, kind: str, world: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_file(world, kind)
    argv = argv_for(cmd, world, arg, str(path))
    code, text = (run_unprivileged(argv, world) if kind == "unreadable" else run_in_process(argv, capsys))
    if (arg in LOG_DATA and kind in ("empty", "binary", "huge")) or (arg == "--events" and kind == "empty"):
        # Logs are data: such a file is read (its lines stored as unparsed and counted), not refused.
        assert "Traceback" not in text and "unexpected error" not in text, text
        assert code == 0 or any(str(path) in line for line in text.splitlines()), text
        return
    assert_clean_failure(code, text, [str(path), arg])


@pytest.mark.parametrize("cmd, opt, value", option_cases(), ids=[f"{' '.join(c)} {o} {v}" for c, o, v in
                                                                option_cases()])
def test_malformed_value_for_every_option(cmd: tuple[str, ...], opt: str, value: str, world: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run_in_process(argv_for(cmd, world, opt, value), capsys)
    assert_clean_failure(code, text, [opt, value])
