"""``sentinel search`` against Elasticsearch: the analysts' field query translated to query DSL."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from sentinel.conf.models import ConfigFile, ElasticsearchSettings
from sentinel.events.ecs import FIELD_TYPES
from sentinel.events.model import flatten, iso
from sentinel.store.elasticsearch.client import build_client
from sentinel.store.elasticsearch.mappings import events_pattern
from sentinel.store.query import Query, QueryError

RANGE_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def _term(name: str, value: Any) -> dict[str, Any]:
    kind = FIELD_TYPES.get(name)
    text = str(value)
    if kind == "text":
        return {"match_phrase": {name: text}}
    if "*" in text and kind in (None, "keyword"):
        return {"wildcard": {name: {"value": text}}}
    if kind == "ip" and "*" in text:
        raise QueryError(f"{name}={text}: IP fields take an address or a CIDR range (10.0.0.0/8), not a glob")
    return {"term": {name: value}}


def to_dsl(query: Query) -> dict[str, Any]:
    """The bool query for a parsed :class:`Query` (terms, time range, free text)."""
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    for name, op, value in query.terms:
        if op == "exists":
            must.append({"exists": {"field": name}})
        elif op == "=":
            must.append(_term(name, value))
        elif op == "!=":
            must_not.append(_term(name, value))
        else:
            must.append({"range": {name: {RANGE_OPS[op]: value}}})
    span: dict[str, str] = {}
    if query.since is not None:
        span["gte"] = iso(query.since)
    if query.until is not None:
        span["lt"] = iso(query.until)
    if span:
        must.append({"range": {"@timestamp": span}})
    if query.text:
        # substring-ish: the phrase anywhere in the analysed fields (message, keywords); lenient skips ip/long
        must.append({"multi_match": {"query": query.text, "type": "phrase", "lenient": True}})
    return {"bool": {"filter": must, "must_not": must_not}}


def search_events(es: Elasticsearch, prefix: str, query: Query) -> list[dict[str, Any]]:
    """Matching events, newest first, as flat ECS field dicts (as the SQLite search returns them)."""
    resp = es.search(
        index=events_pattern(prefix), query=to_dsl(query), size=query.limit,
        sort=[{"@timestamp": {"order": "desc"}}, {"sentinel.log.offset": {"order": "desc", "unmapped_type": "long"}}],
        ignore_unavailable=True, allow_no_indices=True, track_total_hits=False,
    )
    return [flatten(hit["_source"]) for hit in resp["hits"]["hits"]]


def search_elasticsearch(s: ElasticsearchSettings, origin: ConfigFile, query: Query) -> list[dict[str, Any]]:
    """Entry point for ``sentinel search`` with ``storage.backend: elasticsearch``."""
    es = build_client(s, origin)
    try:
        return search_events(es, s.index_prefix, query)
    finally:
        es.close()
