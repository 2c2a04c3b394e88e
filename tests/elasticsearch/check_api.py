"""Which Elasticsearch APIs the Maven-assembled test node supports, checked with the real Python client.

    python -m tests.elasticsearch.check_api            # starts its own node in a temp dir
    python -m tests.elasticsearch.check_api --url URL  # against a running node

Needs ``pip install 'elasticsearch>=8.19,<9'``. Not a pytest module (no ``test_`` prefix): a report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch, helpers

results: list[tuple[str, bool, str]] = []


def check(name: str):
    def deco(fn):
        try:
            detail = fn()
            results.append((name, True, str(detail or "")))
        except ApiError as e:  # the server's own answer: status + error type/reason
            reason = e.body.get("error", e.body) if isinstance(e.body, dict) else e.body
            if isinstance(reason, dict):
                reason = f"{reason.get('type')}: {reason.get('reason')}"
            results.append((name, False, f"HTTP {e.meta.status}: {reason}"))
        except Exception as e:
            results.append((name, False, f"{type(e).__name__}: {e}"))
        return fn

    return deco


def run(es: Elasticsearch) -> None:
    idx = "sentinel-events-2026.01.01"

    @check("info() (GET /) + product check")
    def _():
        r = es.info()
        return f"version {r['version']['number']}, cluster {r['cluster_name']}"

    @check("ping() (HEAD /)")
    def _():
        assert es.ping() is True
        return "True"

    @check("cluster.health")
    def _():
        r = es.cluster.health(wait_for_status="green", timeout="10s")
        assert r.meta.headers.get("X-Elastic-Product") == "Elasticsearch", r.meta.headers
        return f"status={r['status']} (X-Elastic-Product header present)"

    @check("indices.put_index_template (composable; keyword/ip/date/long/text)")
    def _():
        es.indices.put_index_template(
            name="sentinel-events",
            index_patterns=["sentinel-events-*"],
            priority=100,
            template={
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": {
                    "dynamic": "strict",
                    "properties": {
                        "@timestamp": {"type": "date"},
                        "host": {"type": "keyword"},
                        "source_ip": {"type": "ip"},
                        "bytes": {"type": "long"},
                        "message": {"type": "text"},
                        "user": {"type": "keyword"},
                    },
                },
            },
        )
        got = es.indices.get_index_template(name="sentinel-events")
        return f"stored, {len(got['index_templates'])} template"

    docs = [
        {
            "_id": f"ev-{i}",
            "@timestamp": f"2026-01-01T00:{i % 60:02d}:00Z",
            "host": f"host-{i % 3}",
            "source_ip": f"10.0.0.{i % 5}",
            "bytes": i * 10,
            "message": f"failed password for user{i % 4}",
            "user": f"user{i % 4}",
        }
        for i in range(20)
    ]

    def bulk_create():
        ops = []
        for d in docs:
            d = dict(d)
            ops.append({"create": {"_index": idx, "_id": d.pop("_id")}})
            ops.append(d)
        return es.bulk(operations=ops)

    @check("bulk op_type=create with explicit _id (auto-creates index from template)")
    def _():
        r = bulk_create()
        assert not r["errors"], r
        assert all(it["create"]["status"] == 201 for it in r["items"])
        mapping = es.indices.get_mapping(index=idx)[idx]["mappings"]["properties"]
        assert mapping["source_ip"]["type"] == "ip"
        settings = es.indices.get_settings(index=idx)[idx]["settings"]["index"]
        return f"{len(r['items'])} x 201; template applied (replicas={settings['number_of_replicas']})"

    @check("bulk create again with the same _ids -> 409 per item")
    def _():
        r = bulk_create()
        statuses = {it["create"]["status"] for it in r["items"]}
        types = {it["create"]["error"]["type"] for it in r["items"]}
        assert r["errors"] and statuses == {409}, r["items"][0]
        return f"errors=true, statuses={statuses}, {types}"

    @check("helpers.bulk (create) -> BulkIndexError on duplicates")
    def _():
        try:
            helpers.bulk(es, [{"_op_type": "create", "_index": idx, **docs[0]}])
        except helpers.BulkIndexError as e:
            return f"raised, first error status {e.errors[0]['create']['status']}"
        raise AssertionError("no error")

    @check("indices.refresh")
    def _():
        es.indices.refresh(index=idx)
        return "ok"

    @check("count")
    def _():
        n = es.count(index=idx)["count"]
        assert n == 20, n
        n2 = es.count(index=idx, query={"term": {"host": "host-0"}})["count"]
        return f"{n} total, {n2} for host-0"

    @check("search: query + terms agg + max agg (+ sub-agg)")
    def _():
        r = es.search(
            index=idx,
            size=2,
            query={"bool": {"filter": [{"range": {"@timestamp": {"gte": "2026-01-01T00:00:00Z"}}}],
                            "must": [{"match": {"message": "password"}}]}},
            aggs={
                "by_host": {"terms": {"field": "host", "size": 10}, "aggs": {"max_bytes": {"max": {"field": "bytes"}}}},
                "max_bytes": {"max": {"field": "bytes"}},
                "by_ip": {"terms": {"field": "source_ip"}},
            },
        )
        b = {x["key"]: x["doc_count"] for x in r["aggregations"]["by_host"]["buckets"]}
        assert r["aggregations"]["max_bytes"]["value"] == 190.0
        return f"hits={r['hits']['total']['value']}, by_host={b}, max={r['aggregations']['max_bytes']['value']}"

    @check("search: cardinality agg")
    def _():
        r = es.search(index=idx, size=0, aggs={"users": {"cardinality": {"field": "user"}},
                                                "ips": {"cardinality": {"field": "source_ip"}}})
        return f"users={r['aggregations']['users']['value']}, ips={r['aggregations']['ips']['value']}"

    @check("search: date_histogram agg")
    def _():
        r = es.search(index=idx, size=0, aggs={"per_10m": {"date_histogram": {
            "field": "@timestamp", "fixed_interval": "10m", "min_doc_count": 0}}})
        return f"{len(r['aggregations']['per_10m']['buckets'])} buckets"

    @check("search: percentiles / composite / top_hits / filter aggs")
    def _():
        es.search(index=idx, size=0, aggs={
            "p": {"percentiles": {"field": "bytes", "percents": [50, 99]}},
            "c": {"composite": {"sources": [{"h": {"terms": {"field": "host"}}}]}},
            "t": {"top_hits": {"size": 1, "sort": [{"@timestamp": "desc"}]}},
            "f": {"filter": {"term": {"user": "user1"}}},
        })
        return "ok"

    @check("search: sort + search_after + point-in-time")
    def _():
        pit = es.open_point_in_time(index=idx, keep_alive="1m")["id"]
        r = es.search(size=5, pit={"id": pit, "keep_alive": "1m"}, sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}])
        r2 = es.search(size=5, pit={"id": pit, "keep_alive": "1m"}, sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
                       search_after=r["hits"]["hits"][-1]["sort"])
        es.close_point_in_time(id=pit)
        return f"{len(r['hits']['hits'])}+{len(r2['hits']['hits'])} hits"

    @check("get / mget / exists by _id")
    def _():
        assert es.get(index=idx, id="ev-1")["found"]
        assert es.exists(index=idx, id="ev-1")
        return "ok"

    @check("index with strict mapping rejects unknown field (400)")
    def _():
        try:
            es.index(index=idx, id="x", document={"nope": 1})
        except ApiError as e:
            return f"HTTP {e.meta.status} {e.body['error']['type']}"
        raise AssertionError("accepted")

    @check("aliases + rollover (write alias)")
    def _():
        es.indices.create(index="sentinel-roll-000001", aliases={"sentinel-roll": {"is_write_index": True}},
                          settings={"number_of_replicas": 0})
        es.index(index="sentinel-roll", document={"a": 1}, refresh=True)
        r = es.indices.rollover(alias="sentinel-roll", conditions={"max_docs": 1})
        es.indices.delete(index=["sentinel-roll-000001", r["new_index"]])
        return f"rolled_over={r['rolled_over']} -> {r['new_index']}"

    @check("cat.indices / indices.stats / cluster.state")
    def _():
        es.cat.indices(format="json")
        es.indices.stats(index=idx)
        es.cluster.state(metric="metadata")
        return "ok"

    @check("keyword normalizer 'lowercase' (analysis-common)")
    def _():
        es.indices.create(index="sentinel-norm", settings={"number_of_replicas": 0},
                          mappings={"properties": {"k": {"type": "keyword", "normalizer": "lowercase"}}})
        es.indices.delete(index="sentinel-norm")
        return "ok"

    @check("ingest pipeline with a 'set' processor (ingest-common)")
    def _():
        es.ingest.put_pipeline(id="sentinel-p", processors=[{"set": {"field": "a", "value": 1}}])
        return "ok"

    @check("delete_by_query (reindex module)")
    def _():
        r = es.delete_by_query(index=idx, query={"term": {"host": "host-0"}})
        return f"deleted {r['deleted']}"

    @check("ILM put_lifecycle (x-pack ilm)")
    def _():
        es.ilm.put_lifecycle(name="sentinel",
                             policy={"phases": {"delete": {"min_age": "7d", "actions": {"delete": {}}}}})
        return "ok"

    @check("put_index_template with data_stream: {}")
    def _():
        es.indices.put_index_template(
            name="sentinel-ds", index_patterns=["sentinel-ds-*"], data_stream={}, priority=200,
            template={"settings": {"number_of_replicas": 0},
                      "mappings": {"properties": {"@timestamp": {"type": "date"}}}})
        return "ok"

    @check("indices.create_data_stream (data-streams module)")
    def _():
        es.indices.create_data_stream(name="sentinel-ds-x")
        return "ok"

    @check("data stream auto-created by bulk create into a data_stream template")
    def _():
        r = es.bulk(operations=[{"create": {"_index": "sentinel-ds-y"}}, {"@timestamp": "2026-01-01T00:00:00Z"}],
                    refresh=True)
        assert not r["errors"], r["items"]
        n = es.count(index="sentinel-ds-y")["count"]
        return f"created in {r['items'][0]['create']['_index']}, count={n}"

    @check("indices.rollover of a data stream (server API)")
    def _():
        r = es.indices.rollover(alias="sentinel-ds-y")
        return f"-> {r['new_index']}"

    @check("indices.get_data_stream (data-streams module)")
    def _():
        es.indices.get_data_stream(name="sentinel-ds-y")
        return "ok"

    @check("indices.delete_data_stream (data-streams module)")
    def _():
        es.indices.delete_data_stream(name="sentinel-ds-y")
        return "ok"

    @check("delete a backing index of a data stream")
    def _():
        backing = sorted(es.indices.get(index=".ds-sentinel-ds-y-*", expand_wildcards="all"))
        es.indices.delete(index=backing[0])
        return f"deleted {backing[0]} (of {backing})"

    @check("delete_index_template of a template used by a data stream")
    def _():
        es.indices.delete_index_template(name="sentinel-ds")
        return "ok"

    @check("indices.delete with wildcard (action.destructive_requires_name)")
    def _():
        es.indices.delete(index="sentinel-events-*")
        return "ok"

    @check("indices.delete (explicit name) + delete_index_template")
    def _():
        if es.indices.exists(index=idx):
            es.indices.delete(index=idx)
        assert not es.indices.exists(index=idx)
        es.indices.delete_index_template(name="sentinel-events")
        return "ok"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    args = ap.parse_args()
    node = None
    if args.url:
        url = args.url
    else:
        from tests.elasticsearch.node import start_node

        tmp = tempfile.TemporaryDirectory(prefix="sentinel-es-check-")
        t0 = time.monotonic()
        node = start_node(Path(tmp.name))
        print(f"node up at {node.url} in {time.monotonic() - t0:.1f}s")
        url = node.url
    try:
        run(Elasticsearch(url, request_timeout=30))
    finally:
        if node:
            node.stop()
            tmp.cleanup()
    width = max(len(n) for n, _, _ in results)
    for name, ok, detail in results:
        print(f"{'WORKS' if ok else 'FAILS'}  {name:<{width}}  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
