"""The field vocabulary rules may use: ECS facts sentinel writes plus what the loaded collectors emit.

Built by the wiring (from :mod:`sentinel.decode.vocabulary`) and handed to whoever checks rules or queries,
so a misspelt field is an error with a suggestion instead of a rule that can never fire.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

# Fields whose values are a closed set the collectors decide: a rule value no collector emits never matches.
ENUMERATED = ("event.action", "event.category", "event.outcome", "event.kind")
# ECS object fields holding arbitrary keys below them.
FLATTENED_PREFIXES = ("labels.", "log.syslog.structured_data.")


@dataclass(frozen=True)
class FieldVocabulary:
    """Known field names and, per enumerated field, the values some loaded collector emits.

    An enumerated field missing from ``values`` is open: a collector copies it from the raw record.
    """

    fields: frozenset[str]
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def known(self, name: str) -> bool:
        return name in self.fields or name.startswith(FLATTENED_PREFIXES)

    def emits_namespace(self, prefix: str) -> bool:
        """Is some known field below ``prefix.``?"""
        prefix = f"{prefix}."
        return any(f.startswith(prefix) for f in self.fields)

    def suggest(self, name: str) -> str:
        """`` (did you mean `x`?)`` for the closest known field, or an empty string."""
        close = difflib.get_close_matches(name, sorted(self.fields), n=1, cutoff=0.6)
        return f" (did you mean `{close[0]}`?)" if close else ""

    def emits(self, name: str, value: str) -> bool:
        allowed = self.values.get(name)
        return allowed is None or value in allowed

    def closest_values(self, name: str, value: str, n: int = 3) -> list[str]:
        allowed = sorted(self.values.get(name, ()))
        return difflib.get_close_matches(value, allowed, n=n, cutoff=0.4) or allowed[:n]
