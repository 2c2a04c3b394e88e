"""Helpers shared by commands: loading the config, opening the database read-only."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from sentinel.conf.loader import default_config_path, load_config
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.daemon.tables import open_database
from sentinel.errors import SentinelError
from sentinel.store.database import connect


def config_from(args: argparse.Namespace) -> LoadedConfig:
    return load_config(args.config or default_config_path())


def open_db(cfg: LoadedConfig, write: bool = False) -> sqlite3.Connection:
    path = database_path(cfg)
    if write:
        return open_database(cfg, path).conn
    if not path.exists():
        raise SentinelError(f"no database at {path}: has sentinel run with this config yet?")
    return connect(path, readonly=True)


# argparse value types: a malformed value is refused while parsing, in one line naming the option.
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def count_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def time_arg(text: str) -> str:
    """``15m``, ``7d`` (ago) or an ISO time; kept as text, the command reads it against its own clock."""
    from sentinel.store.query import QueryError, parse_time

    try:
        parse_time(text)
    except QueryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def duration_arg(text: str) -> str:
    from sentinel.route.durations import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def input_file(text: str) -> Path:
    """A file the command reads: refused while parsing, naming the argument, if it cannot be opened."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc.strerror}") from None
    return path
