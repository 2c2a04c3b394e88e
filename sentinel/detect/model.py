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
    unseen: str | None = Field(
        default=None, description="counts only when this field's value (a source.ip) is new for the key: not seen "
                                  "on this step's events within the sequence's remember period")


class SequenceParams(Strict):
    """Ordered steps per group key, all within ``window`` of the first counted event."""

    window: Duration
    steps: list[Step] = Field(min_length=2)
    remember: Duration = Field(default=30 * 86400.0, description="how long an unseen step's values stay known")
    ordered: bool = Field(default=True, description="false: every step within the window, in any order (Sigma's "
                                                    "temporal correlation)")


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


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class WorkingHours(Strict):
    """The organisation's working hours in its own time zone (DST included): never unusual for anyone."""

    zone: str | None = Field(default=None, description="IANA time zone (America/Chicago); default: the configured "
                                                       "timezone")
    start: str = Field(default="07:00", description="HH:MM local")
    end: str = Field(default="19:00", description="HH:MM local, exclusive")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected HH:MM, got {value!r}")
        return value

    def minutes(self, text: str) -> int:
        h, m = text.split(":")
        return int(h) * 60 + int(m)

    def covers(self, weekday: int, minute_of_day: int) -> bool:
        return _DAYS[weekday] in self.days and self.minutes(self.start) <= minute_of_day < self.minutes(self.end)


class NewValueParams(Strict):
    """The first time an entity (the group key) shows a value of ``field``, after it has been learnt."""

    field: str = Field(description="an event field, or @local_hour: the hour of day in the configured time zone")
    learn_for: Duration = Field(description="per entity: values seen this long after its first event are learnt")
    neighbors: int = Field(default=0, ge=0, le=6, description="@local_hour: hours this close to a known one count "
                                                              "as known")
    max_values: int = Field(default=256, ge=1, le=10_000, description="values remembered per entity")
    transform: Literal["none", "lower", "domain"] = Field(
        default="lower", description="domain: keep what follows the last @ (an e-mail address's domain)")
    min_samples: int = Field(default=0, ge=0, description="events an entity needs (besides learn_for) before it may "
                                                          "fire: silent while its history is thin")
    fire_on: dict[str, Any] | None = Field(
        default=None, description="only events matching this may fire; the rule's other events only teach values "
                                  "(a user's views teach their working hours, their exports are judged)")
    working_hours: WorkingHours | None = Field(
        default=None, description="@local_hour: hours inside these are known for everyone, and the hour is taken "
                                  "in this zone")


class HourlyParams(Strict):
    """A per-entity metric per local clock hour against that entity's own pattern at that hour of day, and its
    team's; an absolute floor decides alone while neither pattern is known."""

    metric: Literal["count", "distinct", "sum"] = "distinct"
    field: str | None = None
    days: int = Field(default=28, ge=3, le=120, description="active days remembered per entity")
    min_days: int = Field(default=10, ge=1, description="active days before the entity's own pattern counts")
    neighbors: int = Field(default=1, ge=0, le=3, description="hours this close count as the same hour of day")
    floor: float = Field(gt=0, description="never fires below this value in an hour")
    fallback: float = Field(gt=0, description="while the entity's own pattern is not known, fires only from this "
                                              "value (and only if the team's pattern, when known, is exceeded too)")
    mad_multiplier: float = Field(default=6.0, gt=0)
    min_ratio: float = Field(default=3.0, ge=1.0)
    team_by: str | None = Field(default=None, description="event field naming the entity's team (user.roles)")
    min_team_days: int = Field(default=30, ge=1, description="member-days before the team's pattern counts")

    @model_validator(mode="after")
    def _check(self) -> HourlyParams:
        if self.metric != "count" and not self.field:
            raise ValueError(f"metric {self.metric} needs a field")
        if self.min_days > self.days:
            raise ValueError("min_days cannot exceed days")
        return self


class TerminatedParams(Strict):
    """Activity by an account after the identity provider ended it (or while it is on an operator's list)."""

    revoke: dict[str, Any] = Field(description="events that end an account (Okta deactivate/suspend, Entra 50057)")
    revoke_key: list[str] = Field(default=["user.target.name", "user.name"],
                                  description="the ended account's field in a revoke event; the first present")
    restore: dict[str, Any] = Field(default={}, description="events that bring an account back (unsuspend)")
    listed: dict[str, Any] = Field(default={}, description="a condition that marks an account as terminated "
                                                           "regardless of the identity provider (the operator list)")
    grace: Duration = Field(default=600.0, description="activity this soon after the revoke is its own clean-up")


class DormantParams(Strict):
    """Activity by an account idle at least ``idle``; plus a digest of all idle accounts every ``digest_every``."""

    idle: Duration = 90 * 86400.0
    digest_every: Duration | None = Field(default=7 * 86400.0, description="null: no scheduled digest")
    digest_severity: Severity = "low"
    digest_max_accounts: int = Field(default=500, ge=1)


RuleType = Literal["match", "threshold", "sequence", "baseline", "new_value", "dormant", "hourly", "terminated"]
TYPE_PARAMS = ("threshold", "sequence", "baseline", "new_value", "dormant", "hourly", "terminated")
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
    hourly: HourlyParams | None = None
    terminated: TerminatedParams | None = None
    group_by: list[str] = []
    suppress: Suppress | None = None
    resolve_after: Duration | None = Field(
        default=None, description="resolve the rule's open alerts once their key raised nothing for this long "
                                  "(null: only a person resolves them)")
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
        if self.type in ("new_value", "dormant", "baseline", "hourly", "terminated") and not self.group_by:
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
