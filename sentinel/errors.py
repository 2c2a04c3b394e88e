"""One exception root; subclasses carry where the problem is (file, line, field)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in an operator-edited file a problem sits."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text


class SentinelError(Exception):
    """Root of every error sentinel raises on purpose."""


class ConfigError(SentinelError):
    """A configuration, collector, rule or route file is invalid."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConfigErrors(SentinelError):
    """Every problem found while loading a set of files, so one run reports them all."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class StoreError(SentinelError):
    """The store could not do what was asked (disk full, locked, corrupt)."""


class DecodeError(SentinelError):
    """A line could not be decoded; the line is still stored as unparsed."""
