"""``sentinel analyzer``: the fleet-wide detections that run as scheduled Elasticsearch queries."""

from __future__ import annotations

import argparse
import logging

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from
from sentinel.cli.logsetup import setup_logging
from sentinel.errors import SentinelError


def run(args: argparse.Namespace) -> int:
    """``--once``: one pass, print the alerts it raised; otherwise run as a daemon with the analyzer on."""
    cfg = config_from(args)
    if cfg.config.storage.backend != "elasticsearch":
        raise SentinelError(f"{cfg.path}: storage.backend: the analyzer needs elasticsearch (it is "
                            f"{cfg.config.storage.backend!r})")
    setup_logging(args.log_level or cfg.config.logging.level, cfg.config.logging.format)
    from sentinel.daemon.build import database_path
    from sentinel.daemon.tables import database_tables
    from sentinel.metrics.registry import Metrics
    from sentinel.store.database import Database
    from sentinel.store.elasticsearch.analyzer import ANALYZER_DDL, AnalyzerWorker

    if args.once:
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        worker = AnalyzerWorker.from_settings(cfg.config.storage.elasticsearch, cfg.origin, database_path(cfg),
                                              Metrics())
        db = Database(database_path(cfg), (*database_tables(cfg), ANALYZER_DDL))
        try:
            alerts = worker.run_once(db)
        finally:
            db.close()
            worker.analyzer.es.close()
        for a in alerts:
            print(f"{a.severity}\t{a.rule_id}\t{a.group_key}\t{a.summary}")
        print(f"({len(alerts)} new alerts written to the outbox)")
        logging.shutdown()
        return 0

    from sentinel.daemon.assemble import assemble

    # the analyzer instance is a daemon too: its alerts leave through the same routing and delivery
    storage = cfg.config.storage
    es = storage.elasticsearch.model_copy(update={"analyzer": storage.elasticsearch.analyzer.model_copy(
        update={"enabled": True})})
    cfg = cfg.model_copy(update={"config": cfg.config.model_copy(update={
        "storage": storage.model_copy(update={"elasticsearch": es})})})
    daemon = assemble(cfg)
    daemon.install_signals()
    daemon.run()
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("analyzer", help="run the fleet-wide Elasticsearch detections (dormant accounts, export "
                                        "baselines, password spraying)")
    add_config_arg(p)
    p.add_argument("--once", action="store_true", help="one pass, print the new alerts, exit")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=None)
    p.set_defaults(func=run)
