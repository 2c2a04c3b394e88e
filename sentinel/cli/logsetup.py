"""sentinel's own logs: plain or JSON lines, never event content (so never PHI) and never secrets."""

from __future__ import annotations

import logging
import sys

import orjson

from sentinel.credentials import SECRETS, Secrets, mask
from sentinel.credentials import remember as register_secret

__all__ = ["mask", "register_secret", "setup_logging"]


class _JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Secrets = SECRETS) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "msg": self.secrets.mask(record.getMessage())}
        if record.exc_info:
            doc["exc"] = self.secrets.mask(self.formatException(record.exc_info))
        return orjson.dumps(doc).decode()


class _TextFormatter(logging.Formatter):
    def __init__(self, fmt: str | None = None, secrets: Secrets = SECRETS) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets.mask(super().format(record))


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Secrets = SECRETS) -> None:
    """Log lines to stderr with every secret ``secrets`` knows masked (the process's resolved ones by default)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(secrets))
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("elasticsearch", "elastic_transport", "urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
