"""Test support for detection: realistic flat ECS events (docs/events.md) and an engine over a real database."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.conf.models import DetectionSettings
from sentinel.detect.engine import RuleEngine
from sentinel.detect.lists import NamedLists
from sentinel.detect.loader import load_rules
from sentinel.events.alerts import Alert
from sentinel.events.model import Event, iso
from sentinel.metrics.registry import Metrics
from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert
from sentinel.store.database import Database

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
RULES = SHIPPED / "rules"
# Monday 2 March 2026, 09:00 UTC: test days start here.
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0

_SOURCES = {
    "billing": ("billing-audit", "billing", "billing.audit", "billing-app-01"),
    "okta": ("okta", "okta", "okta.system", None),
    "linux": ("linux-auth", "system", "system.auth", "app-srv-01"),
    "osquery": ("osquery", "osquery", "osquery.result", None),
    "auditd": ("auditd", "auditd", "auditd.log", None),
}
_counter = itertools.count(1)


def _source_of(action: str) -> str:
    if action.startswith("phi_"):
        return "billing"
    if action.startswith(("mfa_", "user_login", "user_created", "user_added_to_group", "account_")):
        return "okta"
    if action.startswith(("removable_media", "endpoint_protection")):
        return "osquery"
    if action.startswith("audit_"):
        return "auditd"
    return "linux"


def ev(action: str, at: float, user: str | None = None, outcome: str | None = None, source: str | None = None,
       **fields: Any) -> Event:
    """An event as the decoders emit it. ``at`` is seconds after BASE; keyword ``a__b`` means field ``a.b``."""
    src = source or _source_of(action)
    name, module, dataset, host = _SOURCES[src]
    n = next(_counter)
    ts = BASE + at
    flat: dict[str, Any] = {
        "@timestamp": iso(ts), "event.id": f"{name}-{n:010d}", "event.kind": "event", "event.action": action,
        "event.module": module, "event.dataset": dataset, "sentinel.source": name,
        "log.file.path": f"/var/log/{name}.log", "sentinel.log.offset": n * 100,
            "event.original": f"<{action} line {n}>",
    }
    if host:
        flat["host.name"] = host
    if user is not None:
        flat["user.name"] = user
        flat["related.user"] = [user]
    if outcome is not None:
        flat["event.outcome"] = outcome
    for key, value in fields.items():
        flat[key.replace("__", ".")] = value
    return Event(flat["event.id"], ts, name, flat)


# The class the billing collector gives each kind of destination used here (collectors/billing-audit.yaml).
DEST_CLASS = {"sftp": "clearinghouse", "email": "email_external", "printer": "printer", "file": "internal_share",
              "download": "own_device"}


def export(at: float, user: str, records: int, dest: str = "sftp://edi.clearinghouse.example/claims",
           dest_type: str = "sftp", action: str = "phi_export", dest_class: str | None = None) -> Event:
    """A billing-app export with the fields the billing collector maps."""
    return ev(action, at, user, "success", phi__record_count=records, phi__patient_count=max(1, records // 4),
              phi__patient_ids=[f"MRN-{100000 + i}" for i in range(min(5, records))],
              phi__export__destination=dest, phi__export__destination_type=dest_type, source__ip="10.1.2.30",
              phi__workstation="ws-billing-07",
              phi__export__destination_class=dest_class or DEST_CLASS.get(dest_type, "external_host"))


class Harness:
    """A rule engine over a real SQLite database in ``tmp``, with a chosen subset of the shipped pack."""

    def __init__(self, tmp: Path, rules: Sequence[str] | None = None, lists: dict[str, Sequence[str]] | None = None,
                 metrics: Metrics | None = None, zone: str = "UTC", **settings: Any) -> None:
        self.tmp = tmp
        self.zone = zone
        self.metrics = metrics or Metrics()
        files: dict[str, Path | None] = {"terminated_accounts": None, "phi_workstations": None}
        for name, names in (lists or {}).items():
            path = tmp / f"{name}.txt"
            path.write_text("# maintained by HR / IT\n" + "\n".join(names) + "\n")
            files[name] = path
        self.lists = NamedLists(files)
        self.lists.reload()
        loaded, errors = load_rules(RULES, self.lists)
        assert not errors, errors
        self.rules = [r for r in loaded if rules is None or r.id in rules]
        assert rules is None or {r.id for r in self.rules} == set(rules), "unknown rule id in test"
        self.settings = DetectionSettings(**settings)
        self.db = Database(tmp / "state" / "events.db")
        self.engine = self.new_engine()

    def new_engine(self) -> RuleEngine:
        """A fresh engine loading its state from the database, as after a restart."""
        return RuleEngine(self.rules, self.settings, self.db.conn, self.metrics, self.lists, clock=lambda: 0.0,
                          zone=self.zone)

    def feed(self, events: Iterable[Event], batch: int = 500) -> list[Alert]:
        """Process events in committed batches; returns the alerts newly written."""
        before = self.count()
        pending = list(events)
        for i in range(0, len(pending), batch):
            with self.db.transaction() as tx:
                self.engine.process(tx, pending[i:i + batch], BASE)
        return self.alerts()[before:]

    def count(self) -> int:
        return int(self.db.conn.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def alerts(self, rule: str | None = None) -> list[Alert]:
        rows = self.db.conn.execute(f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY rowid").fetchall()
        found = [row_to_alert(r) for r in rows]
        return [a for a in found if rule is None or a.rule_id == rule]

    def outbox(self) -> list[str]:
        return [r[0] for r in self.db.conn.execute("SELECT alert_id FROM outbox ORDER BY seq")]

    def close(self) -> None:
        self.db.close()
