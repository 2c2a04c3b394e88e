"""Helpers shared by commands: loading the config, opening the database read-only."""

from __future__ import annotations

import argparse
import sqlite3

from sentinel.conf.loader import default_config_path, load_config
from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.errors import SentinelError
from sentinel.store.database import Database, connect


def config_from(args: argparse.Namespace) -> LoadedConfig:
    return load_config(args.config or default_config_path())


def open_db(cfg: LoadedConfig, write: bool = False) -> sqlite3.Connection:
    path = database_path(cfg)
    if write:
        return Database(path).conn
    if not path.exists():
        raise SentinelError(f"no database at {path}: has sentinel run with this config yet?")
    return connect(path, readonly=True)
