"""Synthetic logs of a 200-person medical billing company, with planted incidents and their ground truth.

``generate(out_dir)`` writes one file per source (auth.log, audit.log, okta.jsonl, entra.jsonl,
billing-audit.jsonl, osquery.jsonl) plus the operator's lists (terminated_accounts.txt,
phi_workstations.txt) and ground-truth.json. The same arguments always give the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sentinel.demo.activity import DAY, FILES, Sim
from sentinel.demo.background import simulate_day
from sentinel.demo.incidents import Cast, Incident, Planter, choose_cast, company_events
from sentinel.demo.population import Company, build_company

TERMINATED_FILE = "terminated_accounts.txt"
PHI_WORKSTATIONS_FILE = "phi_workstations.txt"
GROUND_TRUTH_FILE = "ground-truth.json"


@dataclass
class FileStats:
    lines: int
    bytes: int


@dataclass
class GroundTruth:
    """What was generated: the period, the files, the operator lists and every planted incident."""

    seed: int
    users: int
    start: datetime
    end: datetime
    files: dict[str, FileStats]
    terminated_accounts: list[str]
    phi_workstations: list[str]
    incidents: list[Incident] = field(default_factory=list)
    dormant_user: str | None = None

    def incident(self, name: str) -> Incident:
        """The incident called ``name``; KeyError if it was not planted."""
        for i in self.incidents:
            if i.name == name:
                return i
        raise KeyError(name)

    @property
    def expected_rules(self) -> list[str]:
        return sorted({r for i in self.incidents for r in i.expected_rules})

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "users": self.users,
            "start": self.start.isoformat().replace("+00:00", "Z"), "end": self.end.isoformat().replace("+00:00", "Z"),
            "files": {k: {"lines": v.lines, "bytes": v.bytes} for k, v in self.files.items()},
            "terminated_accounts": self.terminated_accounts, "phi_workstations": self.phi_workstations,
            "dormant_user": self.dormant_user,
            "incidents": [i.to_dict() for i in self.incidents],
        }

    def to_json(self) -> str:
        """The ground truth as indented JSON (times in UTC ISO 8601)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()


def day_start(value: datetime) -> datetime:
    """UTC midnight of the day ``value`` falls on (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def default_start(days: int, now: datetime | None = None) -> datetime:
    """The first of ``days`` whole days that end at today's UTC midnight, so the history lies in the past."""
    return day_start(now or datetime.now(UTC)) - timedelta(days=days)


@dataclass
class World:
    """A generated company and its simulation state, so a live stream can continue where history ended."""

    sim: Sim
    cast: Cast
    serials: dict[str, int]

    @property
    def company(self) -> Company:
        return self.sim.company


def simulate(days: int = 14, *, users: int = 200, seed: int = 7, start: datetime | None = None,
             incidents: bool = True) -> tuple[World, dict[str, list[tuple[int, str]]], GroundTruth]:
    """Run the simulation without writing: the world, each file's (ms, text) lines in time order, the truth."""
    if days < 1 or users < 10:
        raise ValueError("need at least 1 day and 10 users")
    first = day_start(start) if start is not None else default_start(days)
    start_ms = int(first.timestamp() * 1000)
    rng = random.Random(seed)
    company = build_company(rng, users)
    sim = Sim(rng, company)
    cast = choose_cast(sim, incidents)
    absent = set(cast.absent)
    for d in range(days):
        simulate_day(sim, start_ms + d * DAY, d, absent)
    company_events(sim, cast, start_ms, days)
    planted = Planter(sim, cast, start_ms, days).plant() if incidents else []
    serials: dict[str, int] = {}
    lines = sim.tl.render(serials)
    sim.tl.items = {f: [] for f in FILES}
    truth = GroundTruth(seed, users, first, first + timedelta(days=days), {},
                        sorted(p.name for p in cast.leavers) + sorted(p.email for p in cast.leavers),
                        sorted(company.phi_workstations), planted, cast.dormant.name if cast.dormant else None)
    return World(sim, cast, serials), lines, truth


def write_lists(out_dir: Path, truth: GroundTruth) -> None:
    """The operator-maintained lists the rules read."""
    (out_dir / TERMINATED_FILE).write_text(
        "# Terminated accounts (HR feed); one account per line, IdP logins by e-mail address\n"
        + "".join(f"{name}\n" for name in truth.terminated_accounts))
    (out_dir / PHI_WORKSTATIONS_FILE).write_text(
        "# Workstations that store or display PHI; one host name per line\n"
        + "".join(f"{host}\n" for host in truth.phi_workstations))


def generate(out_dir: Path, *, days: int = 14, users: int = 200, seed: int = 7, start: datetime | None = None,
             incidents: bool = True) -> GroundTruth:
    """Write ``days`` days of logs for ``users`` people into ``out_dir``; returns the ground truth.

    ``start`` is the first day (its UTC midnight is used); by default the days end at today's UTC midnight.
    """
    truth, _ = generate_world(out_dir, days=days, users=users, seed=seed, start=start, incidents=incidents)
    return truth


def generate_world(out_dir: Path, *, days: int = 14, users: int = 200, seed: int = 7, start: datetime | None = None,
                   incidents: bool = True) -> tuple[GroundTruth, World]:
    """``generate`` that also returns the simulation, for a live stream to continue it."""
    world, lines, truth = simulate(days, users=users, seed=seed, start=start, incidents=incidents)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        data = "".join(text + "\n" for _, text in lines[name]).encode()
        (out_dir / name).write_bytes(data)
        truth.files[name] = FileStats(data.count(b"\n"), len(data))
    write_lists(out_dir, truth)
    (out_dir / GROUND_TRUTH_FILE).write_text(truth.to_json() + "\n")
    return truth, world
