"""Index templates, rollover aliases and retention, created idempotently at start-up.

Events go to one rollover alias per source type (``<prefix>-events-<source>``) whose backing indices are
``<alias>-000001``, ``-000002``...; alerts to ``<prefix>-alerts``. Retention uses the cluster's lifecycle
policy (ILM) when it has one; otherwise sentinel rolls the aliases over by age and deletes whole
backing indices whose newest document is older than ``retention_days``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from sentinel.conf.models import ElasticsearchSettings
from sentinel.store.elasticsearch.mappings import (
    FALLBACK_TYPES,
    alert_mappings,
    alerts_alias,
    event_mappings,
    events_pattern,
)

log = logging.getLogger(__name__)
DAY = 86400.0


@dataclass
class RetentionReport:
    rolled_over: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class IndexManager:
    """Creates templates/aliases on demand and enforces retention for one index prefix."""

    def __init__(self, es: Elasticsearch, settings: ElasticsearchSettings) -> None:
        self.es = es
        self.s = settings
        self.prefix = settings.index_prefix
        self.ilm: bool | None = None
        # ECS field types this cluster cannot map (a node without mapper-extras / wildcard): mapped as fallbacks.
        self.unsupported: frozenset[str] = frozenset()
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    # -- set-up -------------------------------------------------------------------------------------

    def detect_ilm(self) -> bool:
        """True when the cluster has index lifecycle management (x-pack); the test node does not."""
        if self.s.lifecycle != "auto":
            return self.s.lifecycle == "ilm"
        try:
            self.es.perform_request("GET", "/_ilm/status", headers={"accept": "application/json"})
            return True
        except ApiError as exc:
            if exc.meta.status in (400, 404, 405):  # "no handler found for uri": no ILM module
                return False
            raise

    def detect_field_types(self) -> frozenset[str]:
        """Which of ECS's newer field types the cluster lacks, asked without creating anything."""
        missing = set()
        for kind in FALLBACK_TYPES:
            try:
                self.es.indices.simulate_template(index_patterns=[f"{self.prefix}-probe-*"],
                                                  template={"mappings": {"properties": {"probe": {"type": kind}}}})
            except ApiError as exc:
                if exc.meta.status != 400 or "mapper" not in str(exc.error) + str(exc.info):
                    raise
                missing.add(kind)
        if missing:
            log.warning("elasticsearch lacks the ECS field type(s) %s; mapping them as %s", ", ".join(sorted(missing)),
                        ", ".join(FALLBACK_TYPES[k] for k in sorted(missing)))
        return frozenset(missing)

    def setup(self) -> None:
        """Idempotent: lifecycle policy (if ILM), the alerts template and alias."""
        self.ilm = self.detect_ilm()
        self.unsupported = self.detect_field_types()
        if self.ilm:
            self.es.perform_request(
                "PUT", f"/_ilm/policy/{self.prefix}-retention",
                headers={"accept": "application/json", "content-type": "application/json"},
                body={"policy": {"phases": {
                    "hot": {"actions": {"rollover": {
                        "max_age": f"{self.s.rollover_max_age_days}d",
                        "max_primary_shard_size": f"{self.s.rollover_max_primary_shard_gb}gb"}}},
                    "delete": {"min_age": f"{self.s.retention_days}d", "actions": {"delete": {}}},
                }}},
            )
        self.ensure_alias(alerts_alias(self.prefix), alert_mappings(self.unsupported))
        # An alerts index created by an older sentinel lacks fields added since (adding fields is allowed).
        self.es.indices.put_mapping(index=alerts_alias(self.prefix),
                                    properties=alert_mappings(self.unsupported)["properties"])
        log.info("elasticsearch indices ready (prefix %s, retention %d days by %s)", self.prefix,
                 self.s.retention_days, "ILM policy" if self.ilm else "sentinel")

    def _template_settings(self, alias: str) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "number_of_shards": self.s.number_of_shards,
            "number_of_replicas": self.s.number_of_replicas,
            "mapping": {"total_fields": {"limit": 4000}},
        }
        if self.ilm:
            settings["lifecycle"] = {"name": f"{self.prefix}-retention", "rollover_alias": alias}
        return {"index": settings}

    def ensure_alias(self, alias: str, mappings: dict[str, Any] | None = None) -> None:
        """Template for ``<alias>-*`` and the first backing index with ``alias`` as its write alias."""
        if alias in self._ready:
            return
        with self._lock:
            if alias in self._ready:
                return
            # a longer (more specific) alias wins where patterns overlap; equal priorities would be refused
            self.es.indices.put_index_template(
                name=alias, index_patterns=[f"{alias}-*"], priority=100 + len(alias),
                template={"settings": self._template_settings(alias),
                          "mappings": mappings or event_mappings(self.unsupported)},
                meta={"managed_by": "sentinel"},
            )
            if not self.es.indices.exists_alias(name=alias):
                try:
                    self.es.indices.create(index=f"{alias}-000001", aliases={alias: {"is_write_index": True}})
                except ApiError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
            self._ready.add(alias)

    # -- retention ----------------------------------------------------------------------------------

    def _backing_indices(self) -> dict[str, bool]:
        """Backing index → whether it is its alias's write index."""
        out: dict[str, bool] = {}
        pattern = f"{events_pattern(self.prefix)},{alerts_alias(self.prefix)}-*"
        try:
            resp = self.es.indices.get_alias(index=pattern, allow_no_indices=True, ignore_unavailable=True)
        except NotFoundError:
            return out
        for index, body in resp.body.items():
            aliases = body.get("aliases") or {}
            out[index] = any(a.get("is_write_index") for a in aliases.values())
        return out

    def enforce_retention(self, now: float) -> RetentionReport:
        """Roll over aliases by age/size and delete backing indices past retention (no-op with ILM)."""
        report = RetentionReport()
        if self.ilm is None:
            self.ilm = self.detect_ilm()
        if self.ilm:
            return report
        indices = self._backing_indices()
        aliases = {i.rsplit("-", 1)[0] for i, write in indices.items() if write}
        for alias in sorted(aliases):
            resp = self.es.indices.rollover(alias=alias, conditions={
                "max_age": f"{self.s.rollover_max_age_days}d",
                "max_primary_shard_size": f"{self.s.rollover_max_primary_shard_gb}gb"})
            if resp.get("rolled_over"):
                report.rolled_over.append(resp["old_index"])
        old = [i for i, write in indices.items() if not write]
        if not old:
            return report
        # rolled-over indices take no more writes; refresh so the newest document is visible to the query
        self.es.indices.refresh(index=",".join(old), ignore_unavailable=True)
        newest = self._newest_timestamps(old)
        created = self._creation_dates(old)
        cutoff = (now - self.s.retention_days * DAY) * 1000
        # an index without documents goes only once it was created before the horizon
        doomed = [i for i in old if newest.get(i, created.get(i, cutoff)) < cutoff]
        if doomed:
            # by name: action.destructive_requires_name forbids wildcards, and names are what we audit
            self.es.indices.delete(index=",".join(sorted(doomed)))
            report.deleted.extend(sorted(doomed))
            log.info("retention: deleted %d index(es) older than %d days: %s", len(doomed),
                     self.s.retention_days, ", ".join(sorted(doomed)))
        return report

    def _creation_dates(self, indices: list[str]) -> dict[str, float]:
        resp = self.es.indices.get_settings(index=",".join(indices), name="index.creation_date",
                                            ignore_unavailable=True)
        return {i: float(body["settings"]["index"]["creation_date"]) for i, body in resp.body.items()}

    def _newest_timestamps(self, indices: list[str]) -> dict[str, float]:
        resp = self.es.search(
            index=",".join(indices), size=0, ignore_unavailable=True,
            aggs={"by_index": {"terms": {"field": "_index", "size": max(10, len(indices))},
                               "aggs": {"newest": {"max": {"field": "@timestamp"}}}}},
        )
        out: dict[str, float] = {}
        for b in resp["aggregations"]["by_index"]["buckets"]:
            if b["newest"]["value"] is not None:
                out[b["key"]] = float(b["newest"]["value"])
        return out


def is_unavailable(exc: BaseException) -> bool:
    """Connection problems and 429/5xx: retry later, the data stays spooled."""
    if isinstance(exc, ApiError):
        return exc.meta.status == 429 or exc.meta.status >= 500
    return isinstance(exc, TransportError)
