"""The Sigma processing pipeline (``pipeline.yaml``): a Sigma logsource -> the events it means, and each Sigma
field name -> the event fields it reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogsourceSpec(_Strict):
    """One entry of the pipeline table."""

    logsource: dict[str, str]
    datasets: list[str] = Field(min_length=1)
    where: dict[str, list[str]] = {}
    keywords: str = "event.original"
    fields: dict[str, str | list[str]] = {}
    patterns: dict[str, str] = {}
    raw: str | None = None
    raw_roots: list[str] = []
    raw_shapes: list[str] = [""]


class PipelineSpec(_Strict):
    logsources: list[LogsourceSpec]


class Unmappable(ValueError):
    """A Sigma rule sentinel cannot run as written; the message is the reason shown by ``sentinel check``."""


def _key(product: str | None, service: str | None, category: str | None) -> tuple[str, str, str]:
    return ((product or "").lower(), (service or "").lower(), (category or "").lower())


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass(frozen=True)
class Logsource:
    """What one Sigma logsource reads, resolved for one rule."""

    spec: LogsourceSpec
    patterns: tuple[tuple[re.Pattern[str], str], ...]

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(self.spec.datasets)

    def fields(self, name: str) -> tuple[str, ...]:
        """The event fields a Sigma field reads (the first present wins); raises Unmappable."""
        mapped = self.spec.fields.get(name)
        if mapped is not None:
            return (mapped,) if isinstance(mapped, str) else tuple(mapped)
        for pattern, target in self.patterns:
            m = pattern.match(name)
            if m is not None:
                return (m.expand(target),)
        raw = self.spec.raw
        if raw is not None:
            root = name.split(".", 1)[0]
            roots = {r.lower() for r in self.spec.raw_roots}
            if root.lower() in roots:
                spelled = ".".join(_lower_first(part) for part in name.split("."))
                out: list[str] = []
                for shape in self.spec.raw_shapes:
                    for candidate in (name, spelled):
                        full = f"{raw}.{shape}{candidate}"
                        if full not in out:
                            out.append(full)
                return tuple(out)
            raise Unmappable(f"unmapped field {name!r}: not a field of the {raw} record "
                             f"(known: {', '.join(sorted(self.spec.raw_roots))}) nor in sentinel's Sigma pipeline")
        known = sorted(self.spec.fields)
        raise Unmappable(f"unmapped field {name!r}: sentinel's Sigma pipeline maps "
                         f"{', '.join(known) if known else 'no fields'} for this logsource")


@dataclass(frozen=True)
class SigmaPipeline:
    """The pipeline table, looked up by logsource."""

    by_key: Mapping[tuple[str, str, str], LogsourceSpec]

    @classmethod
    def from_data(cls, data: Any) -> SigmaPipeline:
        spec = PipelineSpec.model_validate(data)
        table: dict[tuple[str, str, str], LogsourceSpec] = {}
        for entry in spec.logsources:
            extra = set(entry.logsource) - {"product", "service", "category"}
            if extra:
                raise ValueError(f"logsource keys are product, service and category, not {sorted(extra)}")
            ls = entry.logsource
            table[_key(ls.get("product"), ls.get("service"), ls.get("category"))] = entry
        return cls(table)

    def resolve(self, product: str | None, service: str | None, category: str | None) -> Logsource:
        entry = self.by_key.get(_key(product, service, category))
        if entry is None:
            parts = [f"{k}: {v}" for k, v in (("product", product), ("service", service), ("category", category))
                     if v]
            served = sorted({"/".join(p for p in k if p) for k in self.by_key})
            raise Unmappable(f"unknown logsource {{{', '.join(parts)}}}: no sentinel collector reads it "
                             f"(the pipeline knows {', '.join(served)})")
        patterns = tuple((re.compile(p), t) for p, t in entry.patterns.items())
        return Logsource(entry, patterns)


@cache
def shipped_pipeline() -> SigmaPipeline:
    """The pipeline that ships with sentinel (read once: it is part of the package, not configuration)."""
    text = resources.files("sentinel.detect.sigma").joinpath("pipeline.yaml").read_text(encoding="utf-8")
    return SigmaPipeline.from_data(yaml.safe_load(text))
