"""The loop of a background worker over the database: a step, then a wait for a wake-up or the poll."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def poll_until_stopped(step: Callable[[], object], woken: threading.Event, stop: threading.Event, interval: float,
                       name: str, logger: logging.Logger = log) -> None:
    """Run ``step`` until ``stop`` is set: again as soon as ``woken`` is set, else after ``interval`` seconds.

    The poll stays as the backstop: another process may write the database, and a wake-up may be missed. A
    failing step is logged and retried on the next turn, so one bad turn never ends the worker.
    """
    while not stop.is_set():
        woken.clear()  # before the step: a wake-up during it makes the wait below return at once
        try:
            step()
        except sqlite3.OperationalError as exc:  # busy/locked: the next turn retries
            logger.warning("%s: database busy (%s); retrying", name, exc)
        except Exception:
            logger.exception("%s step failed; retrying", name)
        woken.wait(interval)
