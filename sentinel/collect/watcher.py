"""File-system notifications through watchdog, to wake the pipeline early; polling stays the backstop."""

from __future__ import annotations

import glob
import logging
import os
import threading

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ChangeWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.notify(event.event_type in ("created", "moved", "deleted"))


class ChangeWatcher:
    """Sets ``wake`` when a watched directory changes; ``structural`` when files appear, move or vanish."""

    def __init__(self, patterns: list[str], wake: threading.Event) -> None:
        self.wake = wake
        self.structural = threading.Event()
        self.observer: Observer | None = None  # type: ignore[valid-type]
        self.directories = sorted({os.path.dirname(os.path.abspath(p)) or "/" for p in patterns
                                   if not glob.has_magic(os.path.dirname(p))})

    def notify(self, structural: bool) -> None:
        if structural:
            self.structural.set()
        self.wake.set()

    def start(self) -> bool:
        """Start watching; False (and polling only) when the OS refuses (e.g. inotify limits)."""
        try:
            observer = Observer()
            handler = _Handler(self)
            for directory in self.directories:
                if os.path.isdir(directory):
                    observer.schedule(handler, directory, recursive=False)
            observer.daemon = True
            observer.start()
            self.observer = observer
            return True
        except OSError as exc:
            log.warning("file notifications unavailable (%s); relying on polling", exc)
            return False

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
