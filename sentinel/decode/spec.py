"""Typed model of a collector definition (``collectors/*.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LookupSpec(Strict):
    """Translate a raw value through a table (e.g. Okta's ``outcome.result`` into ECS outcome)."""

    source: str | list[str] = Field(alias="from", description="context key(s) looked up; the first present wins")
    table: dict[str, Any] = Field(default_factory=dict)
    standard: Literal["iso3166-alpha2"] | None = Field(
        default=None, description="a maintained table to start from (table entries override it)")
    default: Any = None


class PatternSpec(Strict):
    """One way of recognising a record; the first matching pattern decides its fields."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    program: list[str] | None = Field(default=None, description="syslog program names this applies to")
    when: dict[str, Any] | None = Field(default=None, description="condition over the record's context")
    regex: str | None = Field(default=None, description="named groups user__name -> user.name; _x -> scratch")
    field: str = Field(default="message", description="context key the regex is applied to")
    map: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="ECS field <- context key(s); key[N].sub or key[field=value].sub picks from a JSON list")
    set: dict[str, Any] = Field(default_factory=dict, description="ECS field <- constant")
    lookup: dict[str, LookupSpec] = Field(default_factory=dict)
    next: bool = Field(default=False, description="also try the following patterns")


class FramingModel(Strict):
    mode: Literal["lines", "multiline", "auditd"] = "lines"
    pattern: str | None = Field(default=None, description="multiline: a line matching this continues the record")
    negate: bool = False
    max_lines: int = Field(default=500, gt=0)


class TimestampSpec(Strict):
    field: list[str] = Field(description="context keys to try in order")
    zone: str | None = None


class ExampleSpec(Strict):
    """A line and fields it must decode to; ``sentinel check`` verifies every example."""

    line: str
    expect: dict[str, Any]


class JournalSpec(Strict):
    """What a ``type: journal`` source of this collector follows in the systemd journal by default."""

    identifiers: list[str] = Field(default_factory=list, description="SYSLOG_IDENTIFIER values")
    units: list[str] = Field(default_factory=list, description="systemd units (_SYSTEMD_UNIT)")
    matches: list[str] = Field(default_factory=list, description="FIELD=value matches, each an alternative")


class CollectorSpec(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str
    paths: list[str] = Field(default_factory=list, description="default globs; config sources may override")
    format: Literal["syslog", "json", "auditd", "plain", "atna"] = Field(
        description="atna: IHE ATNA / RFC 3881 audit message XML, in syslog or one message per line")
    framing: FramingModel = FramingModel()
    journal: JournalSpec | None = Field(default=None, description="how to find this source in the systemd journal")
    timestamp: TimestampSpec | None = None
    host_field: list[str] | None = Field(default=None, description="context keys holding the host name")
    cloud: bool = Field(default=False, description="a cloud service's log: host.name is the organisation or "
                                                   "tenant (host_field, else the source's host_name, else the "
                                                   "collector's name), never the machine that collects it")
    raw: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
                            description="json: keep the vendor's whole record under this prefix (okta, "
                                        "azure.signinlogs), so rules written against the vendor's own field names "
                                        "(Sigma) match")
    set: dict[str, Any] = Field(default_factory=dict, description="fields every event of this source carries")
    map: dict[str, str | list[str]] = Field(default_factory=dict)
    lookup: dict[str, LookupSpec] = Field(default_factory=dict)
    patterns: list[PatternSpec] = Field(default_factory=list)
    examples: list[ExampleSpec] = Field(default_factory=list)
