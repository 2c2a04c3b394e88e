"""Routing and delivery alone, without the daemon: ``python -m sentinel.cli.notify_worker --config sentinel.yaml``."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from sentinel.audit.chain import AuditLog
from sentinel.cli.logsetup import setup_logging
from sentinel.conf.loader import load_config
from sentinel.daemon.assemble import resolve_after
from sentinel.daemon.lifecycle import audit_path
from sentinel.daemon.notify_service import build_service
from sentinel.daemon.signals import SignalRelay
from sentinel.daemon.tables import open_database

log = logging.getLogger("sentinel.notify.worker")  # the name its log lines always had


def main(argv: Sequence[str] | None = None) -> int:
    """Run routing and delivery alone until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m sentinel.cli.notify_worker")
    parser.add_argument("--config", "-c", type=Path, required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    setup_logging(cfg.config.logging.level, cfg.config.logging.format)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    open_database(cfg).close()  # creates every table, including ours
    routing, delivery = build_service(cfg, resolve_after=resolve_after(cfg), audit=AuditLog(audit_path(cfg)).append)
    stop = threading.Event()
    SignalRelay({signal.SIGTERM: lambda _: stop.set(), signal.SIGINT: lambda _: stop.set()}).install()
    delivery.start()
    routing.start()
    log.info("notification worker running")
    stop.wait()
    routing.stop()
    delivery.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
