"""The typed model of one rule file (``rules/**/*.yaml``); unknown keys are rejected."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from sentinel.events.alerts import SEVERITIES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(value: Any) -> float:
    """``90``, ``"30s"``, ``"10m"``, ``"1h"``, ``"90d"``, ``"2w"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 1h or 90d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"expected a duration such as 30s, 10m, 1h or 90d, got {value!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds → the largest whole unit (``600`` → ``10m``), for summaries."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
Severity = Literal["info", "low", "medium", "high", "critical"]
assert set(SEVERITIES) == {"info", "low", "medium", "high", "critical"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Suppress(Strict):
    """After an alert for a group key, no further alert for that key during ``for`` (event time)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    for_: Duration = Field(alias="for")


class ThresholdParams(Strict):
    """count / distinct count / sum of a field over a sliding window per group key."""

    metric: Literal["count", "distinct", "sum"] = "count"
    field: str | None = Field(default=None, description="the field counted distinct or summed")
    min: float = Field(gt=0, description="fires when the metric reaches this value")
    window: Duration

    @model_validator(mode="after")
    def _field_needed(self) -> ThresholdParams:
        if self.metric != "count" and not self.field:
            raise ValueError(f"metric {self.metric} needs a field")
        return self


class Step(Strict):
    """One step of a sequence: a filter and how many matching events it needs."""

    name: str | None = None
    filter: dict[str, Any]
    count: int = Field(default=1, ge=1, le=200)
    group_by: list[str] | None = Field(
        default=None, description="this step's key fields when they differ (user.target.name at creation)")


class SequenceParams(Strict):
    """Ordered steps per group key, all within ``window`` of the first counted event."""

    window: Duration
    steps: list[Step] = Field(min_length=2)


class PeerParams(Strict):
    """Compare the entity's current bucket with the distribution across all entities."""

    min_entities: int = Field(default=10, ge=3, description="peer values needed before it may fire")
    buckets: int = Field(default=7, ge=1, description="how many recent buckets of peers form the distribution")
    mad_multiplier: float = Field(default=6.0, gt=0)
    min_ratio: float = Field(default=3.0, ge=1.0, description="must also be at least this times the peer median")


class BaselineParams(Strict):
    """A per-entity metric per time bucket against the entity's own history (median/MAD), or its peers."""

    metric: Literal["count", "distinct", "sum"] = "sum"
    field: str | None = None
    bucket: Duration = 86400.0
    history: int = Field(default=30, ge=3, le=400, description="completed buckets remembered per entity")
    min_history: int = Field(default=7, ge=1, description="completed buckets needed before it may fire")
    floor: float = Field(default=0, ge=0, description="never fires below this value")
    mad_multiplier: float = Field(default=6.0, gt=0)
    min_ratio: float = Field(default=3.0, ge=1.0, description="must also be at least this times the median")
    compare: Literal["self", "peers", "either"] = "self"
    peers: PeerParams = PeerParams()

    @model_validator(mode="after")
    def _check(self) -> BaselineParams:
        if self.metric != "count" and not self.field:
            raise ValueError(f"metric {self.metric} needs a field")
        if self.min_history > self.history:
            raise ValueError("min_history cannot exceed history")
        return self


class NewValueParams(Strict):
    """The first time an entity (the group key) shows a value of ``field``, after it has been learnt."""

    field: str = Field(description="an event field, or @local_hour: the hour of day in the configured time zone")
    learn_for: Duration = Field(description="per entity: values seen this long after its first event are learnt")
    neighbors: int = Field(default=0, ge=0, le=6, description="@local_hour: hours this close to a known one count "
                                                              "as known")
    max_values: int = Field(default=256, ge=1, le=10_000, description="values remembered per entity")
    transform: Literal["none", "lower", "domain"] = Field(
        default="lower", description="domain: keep what follows the last @ (an e-mail address's domain)")


class DormantParams(Strict):
    """Activity by an account idle at least ``idle``; plus a digest of all idle accounts every ``digest_every``."""

    idle: Duration = 90 * 86400.0
    digest_every: Duration | None = Field(default=7 * 86400.0, description="null: no scheduled digest")
    digest_severity: Severity = "low"
    digest_max_accounts: int = Field(default=500, ge=1)


RuleType = Literal["match", "threshold", "sequence", "baseline", "new_value", "dormant"]
TYPE_PARAMS = ("threshold", "sequence", "baseline", "new_value", "dormant")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
_TAGS = {
    "hipaa": re.compile(r"^hipaa:164\.\d{3}(\([a-zA-Z0-9]+\))*$"),
    "attack": re.compile(r"^attack:(T\d{4}(\.\d{3})?|TA\d{4})$"),
}
_TAG = re.compile(r"^[a-z][a-z0-9_-]*:\S+$")


class RuleSpec(Strict):
    """One detection rule as written in YAML."""

    id: str
    title: str = Field(min_length=1)
    description: str = ""
    severity: Severity
    tags: list[str] = []
    enabled: bool = True
    filter: dict[str, Any] = {}
    type: RuleType
    threshold: ThresholdParams | None = None
    sequence: SequenceParams | None = None
    baseline: BaselineParams | None = None
    new_value: NewValueParams | None = None
    dormant: DormantParams | None = None
    group_by: list[str] = []
    suppress: Suppress | None = None
    summary: str = Field(min_length=1)
    runbook: str = Field(min_length=1)
    labels: dict[str, str] = {}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("expected lower-case letters, digits and dashes, 2-80 characters")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            strict = _TAGS.get(tag.split(":", 1)[0])
            if not (strict or _TAG).match(tag):
                raise ValueError(f"tag {tag!r}: expected hipaa:164.xxx(..), attack:Txxxx[.xxx] or namespace:value")
        return value

    @model_validator(mode="after")
    def _params_match_type(self) -> RuleSpec:
        for name in TYPE_PARAMS:
            given = getattr(self, name) is not None
            if name == self.type and not given and name != "dormant":
                raise ValueError(f"type {self.type} needs a '{name}:' section with its parameters")
            if name != self.type and given:
                raise ValueError(f"a '{name}:' section does not belong to a rule of type {self.type}")
        if self.type in ("new_value", "dormant", "baseline") and not self.group_by:
            raise ValueError(f"type {self.type} needs group_by: the entity (for example [user.name])")
        for step in self.sequence.steps if self.sequence else ():
            if step.group_by is not None and len(step.group_by) != len(self.group_by):
                raise ValueError("a step's group_by needs as many fields as the rule's group_by")
        return self

    def params(self) -> Any:
        if self.type == "dormant":
            return self.dormant or DormantParams()
        return getattr(self, self.type) if self.type != "match" else None

    def hipaa(self) -> list[str]:
        return [t.split(":", 1)[1] for t in self.tags if t.startswith("hipaa:")]
