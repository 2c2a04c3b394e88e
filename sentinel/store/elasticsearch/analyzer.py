"""The analyzer role: fleet-wide detections as scheduled Elasticsearch queries.

Each detection reads every host's events at once, which no single agent can: dormant accounts
(latest activity per user across all systems), PHI export baselines per user across all
application servers, and password spraying (one address failing many users on several hosts).
Alerts are written with :func:`sentinel.store.alerts.write_alerts` into the local outbox, so they
take the same routing as the agents' own; deterministic alert ids make a re-run a no-op.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from sentinel.conf.models import AnalyzerSettings, ConfigFile, ElasticsearchSettings
from sentinel.events.alerts import Alert
from sentinel.events.ids import alert_id
from sentinel.events.model import iso
from sentinel.metrics.registry import Metrics
from sentinel.store.alerts import write_alerts
from sentinel.store.database import Database
from sentinel.store.elasticsearch.client import build_client
from sentinel.store.elasticsearch.mappings import events_pattern

log = logging.getLogger(__name__)
DAY = 86400.0
USER_CHUNK = 1000
RUNBOOK = "docs/runbooks/fleet.md"
ANALYZER_DDL = "CREATE TABLE IF NOT EXISTS analyzer_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


def _ms(ts: float) -> str:
    return iso(ts)


def _composite(es: Elasticsearch, index: str, query: dict[str, Any], sources: list[dict[str, Any]],
               aggs: dict[str, Any], page: int = 1000) -> Iterator[dict[str, Any]]:
    """Every bucket of a composite aggregation, page by page."""
    after: dict[str, Any] | None = None
    while True:
        comp: dict[str, Any] = {"size": page, "sources": sources}
        if after:
            comp["after"] = after
        resp = es.search(index=index, size=0, query=query, ignore_unavailable=True, allow_no_indices=True,
                         aggs={"c": {"composite": comp, "aggs": aggs}})
        agg = (resp.get("aggregations") or {}).get("c")
        if not agg or not agg["buckets"]:
            return
        yield from agg["buckets"]
        after = agg.get("after_key")
        if not after or len(agg["buckets"]) < page:
            return


@dataclass
class DormantAccount:
    user: str
    last_seen: float


class FleetAnalyzer:
    """Runs the three fleet detections for one window; pure queries plus alert objects."""

    def __init__(self, es: Elasticsearch, index_prefix: str, settings: AnalyzerSettings,
                 metrics: Metrics | None = None) -> None:
        self.es = es
        self.index = events_pattern(index_prefix)
        self.s = settings
        self.metrics = metrics

    def run(self, now: float, window_start: float) -> list[Alert]:
        """Every detection over ``[window_start, now)``; one failing detection does not stop the others."""
        alerts: list[Alert] = []
        for name, fn in (("dormant", self.dormant_activity), ("export_baseline", self.export_baselines),
                         ("spraying", self.password_spraying)):
            try:
                alerts.extend(fn(now, window_start))
            except Exception as exc:
                log.error("fleet detection %s failed: %s: %s", name, type(exc).__name__, str(exc)[:300])
        try:
            idle = self.idle_accounts(now)
            if self.metrics is not None:
                self.metrics.dormant_accounts.set(len(idle))
        except Exception as exc:
            log.error("dormant account review failed: %s", type(exc).__name__)
        for a in alerts:
            a.created = now
        return alerts

    # -- dormant accounts ---------------------------------------------------------------------------

    def _activity(self, since: float, until: float, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"bool": {
            "filter": [{"range": {"@timestamp": {"gte": _ms(since), "lt": _ms(until)}}},
                       {"exists": {"field": "user.name"}}, *(extra or [])],
            # a failed log-in is someone trying the account, not the account being used
            "must_not": [{"term": {"event.outcome": "failure"}}],
        }}

    def idle_accounts(self, now: float) -> list[DormantAccount]:
        """Access review: accounts seen within the look-back whose latest activity anywhere is older than
        ``dormant_days`` (terms on user.name with the max @timestamp across all hosts)."""
        cutoff = now - self.s.dormant_days * DAY
        out = []
        for b in _composite(self.es, self.index, self._activity(now - self.s.dormant_lookback_days * DAY, now),
                            [{"user": {"terms": {"field": "user.name"}}}],
                            {"last": {"max": {"field": "@timestamp"}}}):
            last = b["last"]["value"] / 1000.0
            if last < cutoff:
                out.append(DormantAccount(b["key"]["user"], last))
        return out

    def dormant_activity(self, now: float, window_start: float) -> list[Alert]:
        """Accounts active in the window whose previous activity on any host is ``dormant_days`` older."""
        active: dict[str, dict[str, Any]] = {}
        for b in _composite(self.es, self.index, self._activity(window_start, now),
                            [{"user": {"terms": {"field": "user.name"}}}],
                            {"first": {"min": {"field": "@timestamp"}},
                             "hosts": {"terms": {"field": "host.name", "size": 10}}}):
            active[b["key"]["user"]] = {"first": b["first"]["value"] / 1000.0, "count": b["doc_count"],
                                        "hosts": [h["key"] for h in b["hosts"]["buckets"]]}
        alerts = []
        users = sorted(active)
        lookback = window_start - self.s.dormant_lookback_days * DAY
        for i in range(0, len(users), USER_CHUNK):
            chunk = users[i:i + USER_CHUNK]
            resp = self.es.search(
                index=self.index, size=0, ignore_unavailable=True, allow_no_indices=True,
                query=self._activity(lookback, window_start, [{"terms": {"user.name": chunk}}]),
                aggs={"u": {"terms": {"field": "user.name", "size": len(chunk)},
                            "aggs": {"last": {"max": {"field": "@timestamp"}}}}},
            )
            for b in resp["aggregations"]["u"]["buckets"]:
                user, previous = b["key"], b["last"]["value"] / 1000.0
                seen = active[user]
                idle_days = (seen["first"] - previous) / DAY
                if idle_days < self.s.dormant_days:
                    continue
                group = f"user={user}"
                alerts.append(Alert(
                    id=alert_id("fleet.dormant_account_activity", group, f"{previous:.3f}"),
                    rule_id="fleet.dormant_account_activity",
                    title="Dormant account active again (fleet-wide)",
                    severity="high", group_key=group, first_seen=seen["first"], last_seen=now,
                    count=seen["count"], event_ids=[],
                    summary=(f"Account {user} was idle on every monitored system for {idle_days:.0f} days "
                             f"(threshold {self.s.dormant_days:.0f}) and is active again on "
                             f"{', '.join(seen['hosts'])}."),
                    runbook=RUNBOOK, tags=["fleet", "account_lifecycle", "hipaa:164.308(a)(3)(ii)(C)"],
                    labels={"rule": "fleet.dormant_account_activity", "severity": "high", "user": user},
                    details={"idle_days": round(idle_days, 1), "previous_activity": iso(previous),
                             "hosts": seen["hosts"]},
                ))
        return alerts

    # -- export baselines ---------------------------------------------------------------------------

    def export_baselines(self, now: float, window_start: float) -> list[Alert]:
        """Per user: PHI records exported today (all servers) against the user's own daily history."""
        today = math.floor(now / DAY) * DAY
        query = {"bool": {"filter": [
            {"range": {"@timestamp": {"gte": _ms(today - self.s.baseline_days * DAY), "lt": _ms(now)}}},
            {"terms": {"event.action": self.s.baseline_actions}},
            {"exists": {"field": "phi.record_count"}},
        ]}}
        per_user: dict[str, dict[float, float]] = {}
        hosts: dict[str, list[str]] = {}
        for b in _composite(self.es, self.index, query,
                            [{"user": {"terms": {"field": "user.name"}}},
                             {"day": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d"}}}],
                            {"records": {"sum": {"field": "phi.record_count"}},
                             "hosts": {"terms": {"field": "host.name", "size": 10}}}):
            user, day = b["key"]["user"], b["key"]["day"] / 1000.0
            per_user.setdefault(user, {})[day] = b["records"]["value"]
            if day >= today:
                hosts[user] = [h["key"] for h in b["hosts"]["buckets"]]
        alerts = []
        for user, days in per_user.items():
            current = days.get(today, 0.0)
            history = [v for d, v in days.items() if d < today]
            if current < self.s.baseline_min_records or len(history) < self.s.baseline_min_days:
                continue
            mean = sum(history) / len(history)
            std = math.sqrt(sum((v - mean) ** 2 for v in history) / len(history))
            threshold = max(mean + self.s.baseline_sigma * std, mean * self.s.baseline_factor)
            if current <= threshold:
                continue
            group = f"user={user}"
            alerts.append(Alert(
                id=alert_id("fleet.phi_export_baseline", group, iso(today)),
                rule_id="fleet.phi_export_baseline",
                title="PHI export volume far above the user's baseline (fleet-wide)",
                severity="high", group_key=group, first_seen=today, last_seen=now, count=int(current), event_ids=[],
                summary=(f"{user} exported {int(current)} PHI records today across "
                         f"{', '.join(hosts.get(user, []))}; their daily mean over {len(history)} days is "
                         f"{mean:.0f} (threshold {threshold:.0f})."),
                runbook=RUNBOOK, tags=["fleet", "phi_export", "hipaa:164.312(b)", "hipaa:164.308(a)(1)(ii)(D)"],
                labels={"rule": "fleet.phi_export_baseline", "severity": "high", "user": user},
                details={"records_today": int(current), "mean": round(mean, 1), "stddev": round(std, 1),
                         "threshold": round(threshold, 1), "history_days": len(history),
                         "hosts": hosts.get(user, [])},
            ))
        return alerts

    # -- password spraying --------------------------------------------------------------------------

    def password_spraying(self, now: float, window_start: float) -> list[Alert]:
        """One source.ip failing log-ins for many distinct users on several hosts within the window."""
        span = self.s.spray_window_minutes * 60
        since = min(window_start, now - span)
        query = {"bool": {"filter": [
            {"range": {"@timestamp": {"gte": _ms(since), "lt": _ms(now)}}},
            {"term": {"event.category": "authentication"}},
            {"term": {"event.outcome": "failure"}},
            {"exists": {"field": "source.ip"}},
        ]}}
        resp = self.es.search(
            index=self.index, size=0, query=query, ignore_unavailable=True, allow_no_indices=True,
            aggs={"ip": {"terms": {"field": "source.ip", "size": 1000, "order": {"users": "desc"}},
                         "aggs": {"users": {"cardinality": {"field": "user.name"}},
                                  "hosts": {"terms": {"field": "host.name", "size": 50}},
                                  "first": {"min": {"field": "@timestamp"}},
                                  "last": {"max": {"field": "@timestamp"}}}}},
        )
        alerts = []
        for b in (resp.get("aggregations") or {}).get("ip", {}).get("buckets", []):
            users = int(b["users"]["value"])
            host_names = [h["key"] for h in b["hosts"]["buckets"]]
            if users < self.s.spray_min_users:
                break  # ordered by distinct users
            if len(host_names) < self.s.spray_min_hosts:
                continue
            ip = b["key"]
            first = b["first"]["value"] / 1000.0
            group = f"source.ip={ip}"
            bucket = math.floor(first / span)  # one alert per address per spray window
            alerts.append(Alert(
                id=alert_id("fleet.password_spraying", group, str(bucket)),
                rule_id="fleet.password_spraying",
                title="Password spraying across hosts",
                severity="critical", group_key=group, first_seen=first, last_seen=b["last"]["value"] / 1000.0,
                count=b["doc_count"], event_ids=[],
                summary=(f"{ip} failed log-ins for {users} different accounts on {len(host_names)} hosts "
                         f"within {self.s.spray_window_minutes:.0f} minutes."),
                runbook=RUNBOOK, tags=["fleet", "authentication", "hipaa:164.308(a)(5)(ii)(C)", "hipaa:164.312(d)"],
                labels={"rule": "fleet.password_spraying", "severity": "critical", "source_ip": ip},
                details={"distinct_users": users, "hosts": host_names, "failures": b["doc_count"]},
            ))
        return alerts


class AnalyzerWorker:
    """Runs :class:`FleetAnalyzer` every ``interval_seconds`` and writes its alerts to the local outbox."""

    def __init__(self, analyzer: FleetAnalyzer, db_path: Path, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.analyzer = analyzer
        self.db_path = db_path
        self.interval = interval
        self.clock = clock
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, s: ElasticsearchSettings, origin: ConfigFile, db_path: Path, metrics: Metrics,
                      clock: Callable[[], float] = time.time) -> AnalyzerWorker:
        analyzer = FleetAnalyzer(build_client(s, origin), s.index_prefix, s.analyzer, metrics)
        return cls(analyzer, db_path, s.analyzer.interval_seconds, clock)

    def run_once(self, db: Database) -> list[Alert]:
        """One pass over the window since the last pass (state in the local database); returns new alerts."""
        now = self.clock()
        row = db.conn.execute("SELECT value FROM analyzer_state WHERE key = 'last_run'").fetchone()
        window_start = float(row[0]) if row else now - self.interval
        alerts = self.analyzer.run(now, window_start)
        with db.transaction() as tx:
            fresh = [a for a in alerts if tx.execute("SELECT 1 FROM alerts WHERE id = ?", (a.id,)).fetchone() is None]
            write_alerts(tx, fresh)
            tx.execute("INSERT INTO analyzer_state VALUES ('last_run', ?) ON CONFLICT(key) DO UPDATE SET "
                       "value = excluded.value", (repr(now),))
        if fresh:
            log.info("fleet analyzer raised %d new alert(s)", len(fresh))
        if self.analyzer.metrics is not None:
            for a in fresh:
                self.analyzer.metrics.alerts.labels(a.rule_id, a.severity).inc()
        return fresh

    def start(self) -> None:
        self.stop_event.clear()
        self.thread = threading.Thread(target=self._loop, name="fleet-analyzer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        db = Database(self.db_path, (ANALYZER_DDL,))
        try:
            while not self.stop_event.is_set():
                try:
                    self.run_once(db)
                except (sqlite3.Error, OSError) as exc:
                    log.error("fleet analyzer pass failed: %s", exc)
                self.stop_event.wait(self.interval)
        finally:
            db.close()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
            self.thread = None


