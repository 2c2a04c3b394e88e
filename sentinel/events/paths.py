"""File names as text: Linux names are bytes, JSON, SQLite and log lines want valid UTF-8."""

from __future__ import annotations

import os


def display_path(path: str) -> tuple[str, bool]:
    """The name as valid UTF-8 text, and whether it already was.

    A name that is not UTF-8 arrives from the OS with surrogate escapes, which no JSON encoder or
    database text column accepts; its undecodable bytes are shown as ``\\xNN`` instead.
    """
    try:
        path.encode("utf-8")
        return path, True
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace"), False


def shown(path: str) -> str:
    """The name as valid UTF-8 text (for log messages)."""
    return display_path(path)[0]


def path_to_db(path: str) -> str | bytes:
    """Lossless storage of a name: text when it is UTF-8, its raw bytes otherwise."""
    text, ok = display_path(path)
    return text if ok else os.fsencode(path)


def path_from_db(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value
