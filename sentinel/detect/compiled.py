"""A rule ready to run: what the loaders (native and Sigma) produce and the engine evaluates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.detect.model import RuleSpec
from sentinel.errors import ConfigError
from sentinel.events.conditions import Predicate


@dataclass(frozen=True)
class CompiledRule:
    """A validated rule with its filters compiled; ``actions`` lets the engine skip it for other events."""

    spec: RuleSpec
    path: Path
    predicate: Predicate
    step_predicates: tuple[Predicate, ...] = ()
    actions: frozenset[str] | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[ConfigError, ...] = ()  # e.g. an event.action value no loaded collector emits

    @property
    def id(self) -> str:
        return self.spec.id
