"""Signal handling that cannot deadlock the process it is meant to stop.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread is
inside ``threading.Event.wait()`` or ``clear()`` and holds the event's internal, non-reentrant lock.
Setting that event from the handler then waits for a lock its own thread holds: the daemon hangs
until systemd kills it, without its drain. (Seen in CI: a SIGTERM that never stopped the daemon;
reproduced in 3 of 5 runs of a loop on ``wake.wait(); wake.clear()`` sent 5,000 signals.)

So the Python-level handler does nothing; the C-level handler writes the signal number to a pipe
(``signal.set_wakeup_fd``) and a thread of ours reads it and runs the action, taking any lock it needs
like any other thread.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("sentinel.daemon")


def _no_op(signum: int, frame: object) -> None:
    """Installed so the signal is caught (not fatal); the relay thread does the work."""


class SignalRelay:
    """Runs each signal's action in a thread of its own, never inside the interrupted main thread."""

    def __init__(self, actions: Mapping[signal.Signals, Callable[[signal.Signals], None]]) -> None:
        self.actions = dict(actions)
        self._read_fd = -1
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        """Take over the signals; only the main thread may call this (as ``signal.signal`` requires)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # set_wakeup_fd requires it: the C handler must never block
        self._read_fd = read_fd
        for sig in self.actions:
            signal.signal(sig, _no_op)
        # warn_on_full_buffer=False: a full pipe means the reader already has work to do; a burst of the
        # same signal then collapses into fewer actions, which is what each action expects anyway.
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._relay, name="signals", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 512)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            for number in data:
                try:
                    sig = signal.Signals(number)
                except ValueError:
                    continue
                action = self.actions.get(sig)
                if action is None:
                    continue
                try:
                    action(sig)
                except Exception:
                    log.exception("handling %s failed", sig.name)
