"""sentinel's own logs: plain or JSON lines, never event content (so never PHI) and never secrets."""

from __future__ import annotations

import logging
import sys

import orjson

from sentinel.credentials import mask
from sentinel.credentials import remember as register_secret

__all__ = ["mask", "register_secret", "setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "msg": mask(record.getMessage())}
        if record.exc_info:
            doc["exc"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(doc).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("elasticsearch", "elastic_transport", "urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
