"""Liveness and readiness as /healthz, /readyz and the systemd watchdog see them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentinel.daemon.service import Daemon

# A batch commit or a reload never takes this long; a main loop silent for longer is stuck.
STALL_SECONDS = 30.0


class Health:
    """Reads the daemon's heartbeat and state; never blocks on the pipeline."""

    def __init__(self, daemon: Daemon, stall_seconds: float = STALL_SECONDS) -> None:
        self.daemon = daemon
        self.stall_seconds = stall_seconds

    def alive(self) -> bool:
        """The main loop advanced recently (or is legitimately draining)."""
        return self.daemon.draining or time.monotonic() - self.daemon.heartbeat < self.stall_seconds

    def live(self) -> tuple[bool, str]:
        age = time.monotonic() - self.daemon.heartbeat
        if self.alive():
            return True, f"ok: main loop advanced {age:.1f}s ago"
        return False, f"stalled: main loop has not advanced for {age:.0f}s"

    def ready(self) -> tuple[bool, str]:
        d = self.daemon
        if d.draining:
            return False, "draining: shutting down"
        if not d.ready.is_set():
            return False, "starting"
        if not self.alive():
            return False, "stalled"
        if d.space is not None and d.space.full:
            return False, "storage full: reading paused until the state directory has space again"
        return True, "ready"
