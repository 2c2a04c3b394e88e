"""Typed models of ``alerts/routes.yaml`` and ``alerts/receivers.yaml`` (unknown keys are rejected)."""

from __future__ import annotations

import re
from datetime import time as dtime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from sentinel.route.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
Severity = Literal["info", "low", "medium", "high", "critical"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _clock_time(value: object) -> dtime:
    if isinstance(value, int) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480 (minutes).
        return dtime(value // 60, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        h, m = (int(x) for x in value.strip().split(":"))
        if h < 24 and m < 60:
            return dtime(h, m)
    raise ValueError(f"expected a time of day such as \"08:00\", got {value!r}")


ClockTime = Annotated[dtime, BeforeValidator(_clock_time)]


class Timing(Strict):
    """Grouping timings; unset values come from the parent route, then the severity tier."""

    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be longer than 0s (it spaces messages of one group)")
        return value


BUILTIN_TIMING = Timing(group_by=["rule", "user.name"], group_wait=30.0, group_interval=300.0,
                        repeat_interval=4 * 3600.0)


class Route(Timing):
    """One node of the routing tree."""

    name: str | None = None
    match: dict[str, str | list[str]] = {}
    match_re: dict[str, str] = {}
    severity_at_least: Severity | None = None
    active: Literal["always", "business_hours", "off_hours"] = "always"
    receivers: list[str] = []
    digest: bool = Field(default=False, description="send as part of the daily digest instead of grouped pages")
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = []

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: invalid regular expression: {exc}") from None
        return value


class Tier(Timing):
    receivers: list[str] = []


class BusinessHours(Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = ["mon", "tue", "wed", "thu", "fri"]
    start: ClockTime = dtime(8, 0)
    end: ClockTime = dtime(18, 0)

    @model_validator(mode="after")
    def _order(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("business hours end must be after start")
        return self


class Digest(Strict):
    at: ClockTime = dtime(8, 0)
    receivers: list[str] = []


class Inhibit(Strict):
    """A firing alert matching ``source`` mutes alerts matching ``target`` that share the ``equal`` labels."""

    source: dict[str, str | list[str]]
    target: dict[str, str | list[str]]
    equal: list[str] = ["user.name"]
    within: Duration = 86400.0


class EscalationStep(Strict):
    after: Duration
    receivers: list[str]


class Escalation(Strict):
    match: dict[str, str | list[str]] = {"severity": "critical"}
    steps: list[EscalationStep]


class Incident(Strict):
    severities: list[Severity] = ["high", "critical"]
    window: Duration = Field(default=86400.0, description="business-associate notification window")
    breach_limit: Duration = Field(default=60 * 86400.0, description="HIPAA breach-notification limit")
    remind_before: list[Duration] = [4 * 3600.0, 3600.0]
    receivers: list[str] = Field(default=[], description="who gets reminders; default: the alert's receivers")


class RoutesFile(Strict):
    timezone: str | None = None
    business_hours: BusinessHours = BusinessHours()
    digest: Digest = Digest()
    defaults: Timing = BUILTIN_TIMING
    tiers: dict[Severity, Tier] = {}
    route: Route
    inhibit: list[Inhibit] = []
    escalation: list[Escalation] = []
    incident: Incident = Incident()


class ReceiverSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    urls: list[str] = Field(min_length=1, description="apprise URLs; secrets as ${ENV} or file:/path")
    fallback: str | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    template: str = "default"


class ReceiversFile(Strict):
    receivers: list[ReceiverSpec]
