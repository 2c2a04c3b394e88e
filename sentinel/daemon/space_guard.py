"""What the daemon does while the state directory's file system is full.

A batch whose commit fails for lack of space has been rolled back and the tailers rewound to the
committed checkpoints (the pipeline does that), so its lines are read again later. This part decides
when reading may resume, and says what is going on: a gauge, a log line at most once a minute, and
the hooks the operations part turns into an audit record and an sd_notify STATUS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sentinel.metrics.registry import Metrics
from sentinel.store.space import SpaceReserve

log = logging.getLogger(__name__)

REMIND_SECONDS = 60.0


class SpaceGuard:
    """Pause reading while the disk is full; try again every ``retry_seconds`` once the reserve fits again
    with as much room to spare."""

    def __init__(self, reserve: SpaceReserve, metrics: Metrics, retry_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reserve = reserve
        self.metrics = metrics
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.full = False
        self.since = 0.0
        self.last_error = ""
        self._last_try = 0.0
        self._last_log = 0.0
        self.on_full: list[Callable[[str], None]] = []
        self.on_recovered: list[Callable[[str, float], None]] = []

    def start(self) -> None:
        if not self.reserve.ensure():
            log.warning("no room for the %d-byte space reserve %s: the state directory is nearly full",
                        self.reserve.size_bytes, self.reserve.path)
        self.metrics.storage_full.set(0)

    def may_read(self) -> bool:
        """False while full; every ``retry_seconds``, True once the reserve could be allocated again."""
        if not self.full:
            return True
        now = self.clock()
        if now - self._last_try < self.retry_seconds:
            return False
        self._last_try = now
        # Without room beyond the reserve, the batch would only fail again and release it.
        if self.reserve.ensure() and self.reserve.room_beyond():
            return True
        self._remind(now)
        return False

    def failed(self, exc: BaseException) -> None:
        """A batch rolled back for lack of space (and the tailers are rewound)."""
        now = self.clock()
        self.metrics.storage_full_rollbacks.inc()
        self.reserve.release()  # room for the audit record and the logs; allocated again before resuming
        self._last_try = now
        self.last_error = str(exc)
        if self.full:
            self._remind(now)
            return
        self.full, self.since, self._last_log = True, now, now
        self.metrics.storage_full.set(1)
        message = (f"state directory full ({exc}): batch rolled back, reading paused; "
                   f"it resumes by itself when space returns")
        log.error("%s (reserve %s released)", message, self.reserve.path)
        for hook in self.on_full:
            hook(message)

    def committed(self) -> None:
        """A batch committed: if the disk was full, it no longer is."""
        if not self.full:
            return
        seconds = self.clock() - self.since
        self.full = False
        self.metrics.storage_full.set(0)
        message = f"state directory has space again after {seconds:.0f} s: reading resumed"
        log.warning("%s", message)
        for hook in self.on_recovered:
            hook(message, seconds)

    def _remind(self, now: float) -> None:
        if now - self._last_log >= REMIND_SECONDS:
            self._last_log = now
            log.error("state directory still full for %.0f s (%s); reading paused, nothing is lost",
                      now - self.since, self.last_error)
