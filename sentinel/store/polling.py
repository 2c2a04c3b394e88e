"""A background worker's thread over the database: a step, then a wait for a wake-up or the poll."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable


class PollingThread:
    """Runs ``step`` on a thread of its own until stopped: again as soon as :meth:`wake` is called, else after
    ``interval`` seconds.

    The poll stays as the backstop: another process may write the database, and a wake-up may be missed. A
    failing step is logged and retried on the next turn, so one bad turn never ends the worker.
    """

    def __init__(self, step: Callable[[], object], name: str, interval: float, logger: logging.Logger) -> None:
        self.step = step
        self.name = name
        self.interval = interval
        self.log = logger
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._woken.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sentinel-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after the step in progress (waiting at most ``timeout`` seconds for it)."""
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._woken.clear()  # before the step: a wake-up during it makes the wait below return at once
            try:
                self.step()
            except sqlite3.OperationalError as exc:  # busy/locked: the next turn retries
                self.log.warning("%s: database busy (%s); retrying", self.name, exc)
            except Exception:
                self.log.exception("%s step failed; retrying", self.name)
            self._woken.wait(self.interval)
