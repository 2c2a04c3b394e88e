"""Which parts' tables the one database holds: decided here, from the config, not by what was imported first."""

from __future__ import annotations

from pathlib import Path

from sentinel.conf.models import LoadedConfig
from sentinel.daemon.build import database_path
from sentinel.store.database import Database


def database_tables(cfg: LoadedConfig) -> tuple[str, ...]:
    """The DDL beside the store's own (which includes routing's): the Elasticsearch spool and the fleet analyzer's
    state with that backend. Rule state is created by the rule engine when it is built."""
    tables: list[str] = []
    storage = cfg.config.storage
    if storage.backend == "elasticsearch":
        from sentinel.store.elasticsearch.analyzer import ANALYZER_DDL
        from sentinel.store.elasticsearch.spool import SPOOL_DDL

        tables.append(SPOOL_DDL)
        if storage.elasticsearch.analyzer.enabled:
            tables.append(ANALYZER_DDL)
    return tuple(tables)


def open_database(cfg: LoadedConfig, path: Path | None = None) -> Database:
    """The config's database (or ``path``) with every table the configured parts use."""
    return Database(path or database_path(cfg), database_tables(cfg))
