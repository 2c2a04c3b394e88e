"""Elasticsearch backend: config safety and mappings (unit), then against the real node (integration):
every source lands typed, dead letters, alerts index, retention, `sentinel search`, the fleet analyzer."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from sentinel.cli.logsetup import mask
from sentinel.cli.main import main as cli_main
from sentinel.daemon.build import database_path
from sentinel.daemon.collectors import load_collectors
from sentinel.daemon.tables import open_database
from sentinel.decode.engine import Decoder
from sentinel.errors import ConfigError, ConfigErrors
from sentinel.events.alerts import Alert
from sentinel.events.ecs import FIELD_TYPES
from sentinel.events.model import Event
from sentinel.events.records import RawRecord
from sentinel.metrics.registry import Metrics
from sentinel.route.lifecycle import acknowledge, resolve
from sentinel.store.alerts import write_alerts
from sentinel.store.elasticsearch.bulk import SpoolRow, classify, payload
from sentinel.store.elasticsearch.client import build_client, resolve_secret
from sentinel.store.elasticsearch.indices import IndexManager
from sentinel.store.elasticsearch.mappings import event_mappings, events_alias, field_mapping
from sentinel.store.elasticsearch.spool import dead_letters
from tests.fixtures.elasticsearch import NOW, db_rows, es_settings, flat_event, sample, ship_events, spool_depth

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
DAY = 86400.0


# ------------------------------------------------------------------------------------------------ unit


def test_inline_secret_is_refused_with_its_location(make_config, tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as err:
        make_config(storage={"backend": "elasticsearch", "elasticsearch": {"api_key": "c2VjcmV0LWtleQ=="}})
    text = str(err.value)
    assert "storage.elasticsearch.api_key" in text and "${" in text
    assert "c2VjcmV0LWtleQ==" not in text


def test_secret_from_env_and_file_is_masked_in_logs(make_config, tmp_path: Path, monkeypatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SENTINEL_TEST_ES_PW", "hunter2-very-secret")
    (tmp_path / "es.key").write_text("aWQ6YXBpa2V5LXNlY3JldA==\n")
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": {
        "hosts": ["https://es.example:9200"], "api_key": "file:es.key"}})
    where = ConfigError("x").location
    assert resolve_secret("${SENTINEL_TEST_ES_PW}", where) == "hunter2-very-secret"
    with pytest.raises(ConfigError, match="SENTINEL_TEST_NOT_SET is not set"):
        resolve_secret("${SENTINEL_TEST_NOT_SET}", where)
    es = build_client(cfg.config.storage.elasticsearch, cfg.origin)
    assert es.transport.node_pool.get().config.verify_certs is True  # TLS verification is the default
    assert "aWQ6YXBpa2V5LXNlY3JldA==" in str(es._headers.get("authorization"))
    es.close()
    assert mask("key aWQ6YXBpa2V5LXNlY3JldA== and hunter2-very-secret") == "key *** and ***"


def test_mappings_follow_the_field_table() -> None:
    props = event_mappings()["properties"]
    assert props["@timestamp"] == {"type": "date"}
    assert props["source"]["properties"]["ip"] == {"type": "ip"}
    assert props["phi"]["properties"]["record_count"] == {"type": "long"}
    assert props["user"]["properties"]["name"] == {"type": "keyword", "ignore_above": 1024,
                                                   "fields": {"text": {"type": "match_only_text"}}}
    assert props["message"]["type"] == "match_only_text"
    assert props["process"]["properties"]["command_line"] == {"type": "wildcard",
                                                              "fields": {"text": {"type": "match_only_text"}}}
    assert props["labels"] == {"type": "object"}
    assert props["event"]["properties"]["original"]["index"] is False
    # A node without ECS's newer types gets their fallbacks, field by field.
    old = event_mappings(unsupported={"match_only_text", "wildcard"})["properties"]
    assert old["message"]["type"] == "text" and old["process"]["properties"]["command_line"]["type"] == "keyword"

    def leaves(node: dict, prefix: str = "") -> dict[str, str]:
        out = {}
        for key, value in node.items():
            if "properties" in value:
                out.update(leaves(value["properties"], f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value["type"]
        return out

    assert leaves(props) == {name: field_mapping(name, kind)["type"] for name, kind in FIELD_TYPES.items()}


def test_bulk_payload_and_item_classification() -> None:
    rows = [SpoolRow(i, f"id{i}", "p-events-x", b'{"a":%d}' % i) for i in range(5)]
    assert payload(rows[:1]) == b'{"create":{"_index":"p-events-x","_id":"id0"}}\n{"a":0}\n'
    items = [{"create": {"status": 201}}, {"create": {"status": 409}},
             {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
             {"create": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "bad ip"}}},
             {"create": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "x"}}}]
    out = classify(rows, {"errors": True, "items": items})
    assert (out.created, out.duplicates) == (1, 1)
    assert [r.id for r in out.retry] == ["id2", "id4"]
    assert [(r.id, st, etype) for r, st, etype, _ in out.rejected] == [("id3", 400, "document_parsing_exception")]


# ----------------------------------------------------------------------------------------- integration


def _examples() -> list[Event]:
    """Every collector's documented example lines, decoded by the project's Decoder."""
    collectors, _ = load_collectors(SHIPPED / "collectors")
    events = []
    for name, loaded in sorted(collectors.items()):
        decoder = Decoder(loaded.spec, "UTC", "app01")
        for i, ex in enumerate(loaded.spec.examples):
            data = ex.line.encode()
            rec = RawRecord(name, f"{name}-stream", f"/var/log/{name}.log", i * 4096, i * 4096 + len(data) + 1, data,
                            reference_time=NOW)
            ev, _ = decoder.decode(rec, NOW)
            events.append(ev)
    return events


def _billing_and_endpoint() -> list[Event]:
    """Sources without a collector file yet: the billing app's audit log and an endpoint agent."""
    return [
        flat_event("billing-audit", 1, NOW - 60, event__action="phi_export", event__category=["database"],
                   event__type=["access"], event__outcome="success", user__name="mlopez", source__ip="10.1.2.3",
                   host__name="billing01", phi__record_count=1200, phi__patient_count=310,
                   phi__export__destination="s3://reports", phi__export__destination_type="cloud_storage",
                   phi__patient_ids=["P001", "P002"], related__user=["mlopez"], related__ip=["10.1.2.3"]),
        flat_event("endpoint", 1, NOW - 30, event__action="removable_media_mounted", event__category=["host"],
                   event__type=["info"], host__name="ws-17", device__id="usb-0781:5581",
                   device__model__name="SanDisk Ultra", file__path="/media/usb0", labels={"site": "denver"}),
    ]


@pytest.mark.integration
def test_every_source_lands_with_ecs_mappings(make_config, es_node, es_prefix: str) -> None:
    events = _examples() + _billing_and_endpoint()
    sources = sorted({e.source for e in events})
    assert "linux-auth" in sources and len(events) >= 5
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    metrics = ship_events(cfg, events)
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    # ECS types the node lacks (the test node has no mapper-extras/wildcard module) are mapped as fallbacks.
    unsupported = IndexManager(es, cfg.config.storage.elasticsearch).detect_field_types()
    for source in sources:
        alias = events_alias(es_prefix, source)
        want = {e.id for e in events if e.source == source}
        hits = es.search(index=alias, size=1000, source=False)["hits"]["hits"]
        assert {h["_id"] for h in hits} == want, source
        mapping = next(iter(es.indices.get_mapping(index=alias).body.values()))["mappings"]["properties"]
        assert mapping["@timestamp"]["type"] == "date"
        assert mapping["source"]["properties"]["ip"]["type"] == "ip"
        assert mapping["phi"]["properties"]["record_count"]["type"] == "long"
        assert mapping["user"]["properties"]["name"]["type"] == "keyword"
        assert mapping["message"]["type"] == field_mapping("message", "text", unsupported)["type"]
    # every field a decoder produced is mapped with the field table's type, whatever the source
    for ev in events:
        alias = events_alias(es_prefix, ev.source)
        for name, value in ev.fields.items():
            if name not in FIELD_TYPES or value is None:
                continue
            want = field_mapping(name, FIELD_TYPES[name], unsupported)["type"]
            if want == "object":  # ECS's labels: an object whose keys are mapped as keywords
                for key in value:
                    got = es.indices.get_field_mapping(index=alias, fields=f"{name}.{key}").body
                    leaf = next(iter(got.values()))["mappings"][f"{name}.{key}"]["mapping"]
                    assert next(iter(leaf.values()))["type"] == "keyword", (ev.source, name, key)
                continue
            got = es.indices.get_field_mapping(index=alias, fields=name).body
            leaf = next(iter(got.values()))["mappings"][name]["mapping"]
            assert next(iter(leaf.values()))["type"] == want, (ev.source, name)
    # typed queries work: a CIDR on source.ip and a range on phi.record_count
    assert es.count(index=f"{es_prefix}-events-*", query={"range": {"phi.record_count": {"gte": 1000}}})["count"] == 1
    assert sample(metrics, "sentinel_elasticsearch_documents_total", {"result": "created"}) == len(events)
    assert sample(metrics, "sentinel_elasticsearch_up") == 1
    es.close()


@pytest.mark.integration
def test_mapping_conflict_is_dead_lettered_and_replay_never_duplicates(make_config, es_node, es_prefix: str) -> None:
    good = [flat_event("billing-audit", i, NOW - i, user__name=f"u{i}", phi__record_count=i) for i in range(50)]
    bad = flat_event("billing-audit", 99, NOW, user__name="x", phi__record_count="lots", source__ip="not-an-ip")
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    metrics = ship_events(cfg, [*good, bad])
    parked = dead_letters(sqlite3.connect(database_path(cfg)))
    assert [(d["id"], d["status"]) for d in parked] == [(bad.id, 400)]
    assert "exception" in str(parked[0]["error_type"]) and parked[0]["reason"]
    assert sample(metrics, "sentinel_elasticsearch_dead_letters_total") == 1
    # the same events spooled again (a replay after a crash): 409s count as delivered, nothing doubles
    metrics = ship_events(cfg, good)
    assert sample(metrics, "sentinel_elasticsearch_documents_total", {"result": "duplicate"}) == 50
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    assert es.count(index=events_alias(es_prefix, "billing-audit"))["count"] == 50
    es.close()


@pytest.mark.integration
def test_alerts_go_to_their_own_index_once(make_config, es_node, es_prefix: str) -> None:
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(cfg)
    alerts = [Alert(id=f"a{i}", rule_id="auth.brute_force", title="Brute force", severity="high", group_key=f"k{i}",
                    first_seen=NOW, last_seen=NOW + 5, count=7, event_ids=["e1"], summary="7 failures",
                    labels={"rule": "auth.brute_force"}, details={"n": i}, created=NOW + 6) for i in range(3)]
    with db.transaction() as tx:
        write_alerts(tx, alerts)
    db.close()
    metrics = ship_events(cfg, [])
    assert sample(metrics, "sentinel_elasticsearch_documents_total", {"result": "alert"}) == 3
    metrics = ship_events(cfg, [])  # a second run must not send them again
    assert sample(metrics, "sentinel_elasticsearch_documents_total", {"result": "alert"}) == 0
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-alerts")
    hits = sorted(es.search(index=f"{es_prefix}-alerts", size=10)["hits"]["hits"], key=lambda h: h["_id"])
    assert [h["_id"] for h in hits] == ["a0", "a1", "a2"]
    src = hits[0]["_source"]
    assert src["event"]["kind"] == "alert" and src["rule"]["id"] == "auth.brute_force"
    assert src["sentinel"]["alert"]["severity"] == "high"
    assert db_rows(database_path(cfg), "SELECT value FROM es_state WHERE key = 'alerts_rowid'") == [("3",)]
    es.close()


@pytest.mark.integration
def test_acknowledging_and_resolving_reach_the_alerts_index(make_config, es_node, es_prefix: str) -> None:
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(cfg)
    with db.transaction() as tx:
        write_alerts(tx, [Alert(id=f"s{i}", rule_id="auth.brute_force", title="Brute force", severity="high",
                                group_key=f"k{i}", first_seen=NOW, last_seen=NOW + 5, count=7, event_ids=["e1"],
                                summary="7 failures", created=NOW + 6) for i in range(2)])
    ship_events(cfg, [])
    es = es_node.client()

    def statuses() -> dict[str, dict]:
        es.indices.refresh(index=f"{es_prefix}-alerts")
        hits = es.search(index=f"{es_prefix}-alerts", size=10)["hits"]["hits"]
        return {h["_id"]: h["_source"]["sentinel"]["alert"] for h in hits}

    assert {k: v["status"] for k, v in statuses().items()} == {"s0": "open", "s1": "open"}
    with db.transaction() as tx:
        acknowledge(tx, "s0", "ann", NOW + 60)
    ship_events(cfg, [])
    with db.transaction() as tx:
        resolve(tx, "s1", "bob", NOW + 120)
    ship_events(cfg, [])
    got = statuses()
    assert got["s0"]["status"] == "acknowledged" and got["s0"]["acked_by"] == "ann"
    assert got["s1"]["status"] == "resolved" and got["s1"]["resolved_by"] == "bob"
    assert got["s1"]["acked_by"] == "bob"  # resolving an open alert acknowledges it at the same moment
    assert es.count(index=f"{es_prefix}-alerts", query={"term": {"sentinel.alert.status": "resolved"}})["count"] == 1
    assert es.count(index=f"{es_prefix}-alerts")["count"] == 2  # replaced, not added
    assert db_rows(database_path(cfg), "SELECT count(*) FROM es_alert_changes") == [(0,)]
    db.close()
    es.close()


@pytest.mark.integration
def test_retention_deletes_whole_indices_past_the_horizon(make_config, es_node, es_prefix: str) -> None:
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(
        es_node.url, es_prefix, retention_days=2190)})
    old = [flat_event("linux-auth", i, NOW - 2200 * DAY + i) for i in range(5)]
    ship_events(cfg, old)
    es = es_node.client()
    alias = events_alias(es_prefix, "linux-auth")
    es.indices.rollover(alias=alias)  # what the age condition does after rollover_max_age_days
    recent = [flat_event("linux-auth", 100 + i, NOW - 10 * DAY) for i in range(3)]
    ship_events(cfg, recent)  # the shipper checks retention when it starts: -000001 is six years old
    assert sorted(es.indices.get_alias(name=alias).body) == [f"{alias}-000002"]
    es.indices.rollover(alias=alias)
    manager = IndexManager(es, cfg.config.storage.elasticsearch)
    assert manager.detect_ilm() is False  # this node has no ILM: sentinel enforces retention itself
    assert manager.enforce_retention(NOW).deleted == []  # ten days old: kept
    es.indices.refresh(index=alias)
    assert es.count(index=alias)["count"] == 3
    report = manager.enforce_retention(NOW + 2190 * DAY)
    assert report.deleted == [f"{alias}-000002"]
    # the write index is never deleted, however old: it is where new events go
    assert sorted(es.indices.get_alias(name=alias).body) == [f"{alias}-000003"]
    es.close()


@pytest.mark.integration
def test_sentinel_search_cli_queries_elasticsearch(make_config, es_node, es_prefix: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    events = [flat_event("linux-auth", i, NOW - 3600 + i, user__name="alice" if i % 3 == 0 else "bob",
                         event__outcome="failure" if i % 2 else "success", source__ip=f"10.0.{i}.1",
                         host__name=f"web{i % 4}", event__category=["authentication"]) for i in range(30)]
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    ship_events(cfg, events)
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    es.close()
    capsys.readouterr()
    assert cli_main(["search", "-c", str(cfg.path), "user.name=alice", "event.outcome=failure", "--format", "json",
                     "--since", "2025-12-31T00:00:00Z"]) == 0
    import orjson

    docs = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = [e for e in events if e.fields["user.name"] == "alice" and e.fields["event.outcome"] == "failure"]
    assert [d["event.id"] for d in docs] == [e.id for e in sorted(want, key=lambda e: -e.timestamp)]
    assert cli_main(["search", "-c", str(cfg.path), "source.ip=10.0.0.0/16", "host.name=web1", "--limit", "100",
                     "--format", "json"]) == 0
    docs = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(docs) == sum(1 for e in events if e.fields["host.name"] == "web1")
    assert cli_main(["search", "-c", str(cfg.path), "host.name=web*", "user.name!=bob", "--text", "record 12",
                     "--format", "json"]) == 0
    docs = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["message"] for d in docs] == ["linux-auth record 12"]


def _fleet_events(now: float) -> list[Event]:
    """Planted cases and look-alikes that must not alert, spread over several hosts."""
    ev: list[Event] = []
    n = 0

    def add(source: str, ts: float, **fields: object) -> None:
        nonlocal n
        n += 1
        ev.append(flat_event(source, n, ts, **fields))

    login = {"event__action": "ssh_login", "event__category": ["authentication"]}
    # dormant: "oldadmin" last seen 200 days ago on db01, logs in now on app02; "alice" works every day
    add("linux-auth", now - 200 * DAY, user__name="oldadmin", host__name="db01", event__outcome="success", **login)
    add("linux-auth", now - 120, user__name="oldadmin", host__name="app02", event__outcome="success", **login)
    for d in range(1, 30):
        add("linux-auth", now - d * DAY, user__name="alice", host__name=f"app0{d % 3}", event__outcome="success",
            **login)
    add("linux-auth", now - 60, user__name="alice", host__name="app01", event__outcome="success", **login)
    # idle but not active again: counts in the access review only
    add("linux-auth", now - 150 * DAY, user__name="leaver", host__name="db01", event__outcome="success", **login)
    # export baseline: "carol" exports ~100 records a day on several app servers, today 6,000; "dave" steady
    export = {"event__action": "phi_export", "event__category": ["database"], "event__outcome": "success"}
    for d in range(1, 15):
        add("billing-audit", now - d * DAY, user__name="carol", host__name=f"app0{d % 3}",
            phi__record_count=90 + d % 5 * 5, **export)
        add("billing-audit", now - d * DAY, user__name="dave", host__name="app01", phi__record_count=900, **export)
    today = now - now % DAY
    add("billing-audit", today + 60, user__name="carol", host__name="app01", phi__record_count=3500, **export)
    add("billing-audit", today + 120, user__name="carol", host__name="app02", phi__record_count=2500, **export)
    add("billing-audit", today + 60, user__name="dave", host__name="app01", phi__record_count=1000, **export)
    # spraying: 203.0.113.9 fails 12 users over 3 hosts; 198.51.100.4 fails 12 users on one host only
    fail = {"event__category": ["authentication"], "event__outcome": "failure", "event__action": "ssh_login"}
    for i in range(12):
        add("linux-auth", now - 300 + i, user__name=f"user{i}", source__ip="203.0.113.9", host__name=f"web0{i % 3}",
            **fail)
        add("linux-auth", now - 300 + i, user__name=f"user{i}", source__ip="198.51.100.4", host__name="web01", **fail)
    return ev


@pytest.mark.integration
def test_fleet_analyzer_finds_planted_cases(make_config, es_node, es_prefix: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    settings = es_settings(es_node.url, es_prefix, analyzer={"baseline_min_records": 500, "interval_seconds": 600})
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": settings})
    ship_events(cfg, _fleet_events(now))
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    es.close()
    capsys.readouterr()
    assert cli_main(["analyzer", "-c", str(cfg.path), "--once"]) == 0
    out = capsys.readouterr().out
    rows = db_rows(database_path(cfg), "SELECT a.rule_id, a.group_key, a.severity FROM alerts a "
                                       "JOIN outbox o ON o.alert_id = a.id ORDER BY a.rule_id, a.group_key")
    assert rows == [
        ("fleet.dormant_account_activity", "user=oldadmin", "high"),
        ("fleet.password_spraying", "source.ip=203.0.113.9", "critical"),
        ("fleet.phi_export_baseline", "user=carol", "high"),
    ], out
    assert "(3 new alerts written to the outbox)" in out
    # a second pass over the same data raises nothing new (deterministic ids, the outbox is not refilled)
    assert cli_main(["analyzer", "-c", str(cfg.path), "--once"]) == 0
    assert "(0 new alerts" in capsys.readouterr().out
    assert len(db_rows(database_path(cfg), "SELECT alert_id FROM outbox")) == 3


@pytest.mark.integration
def test_access_review_counts_idle_accounts(make_config, es_node, es_prefix: str) -> None:
    from sentinel.store.elasticsearch.analyzer import FleetAnalyzer

    now = time.time()
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    ship_events(cfg, _fleet_events(now))
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    metrics = Metrics()
    analyzer = FleetAnalyzer(es, es_prefix, cfg.config.storage.elasticsearch.analyzer, metrics)
    idle = analyzer.idle_accounts(now)
    assert sorted(a.user for a in idle) == ["leaver"]  # oldadmin is active again, so no longer idle
    analyzer.run(now, now - 600)
    assert sample(metrics, "sentinel_dormant_accounts") == 1
    es.close()


def test_config_file_round_trip_documents_the_settings(tmp_path: Path) -> None:
    """The shipped config can name the Elasticsearch backend with references only."""
    from sentinel.conf.loader import load_config

    path = tmp_path / "sentinel.yaml"
    es = {"hosts": ["https://es1:9200"], "username": "sentinel", "password": "${ES_PASSWORD}", "ca_certs": "ca.pem",
          "retention_days": 2190}
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path), "storage": {"backend": "elasticsearch",
                                                                            "elasticsearch": es}}))
    cfg = load_config(path)
    assert cfg.config.storage.elasticsearch.verify_certs is True
    with pytest.raises(ConfigError, match=r"ca\.pem does not exist"):
        build_client(cfg.config.storage.elasticsearch, cfg.origin)


@pytest.mark.integration
def test_replay_with_the_elasticsearch_backend_lands_there_once(make_config, es_node, es_prefix: str,
                                                               tmp_path: Path, capsys) -> None:
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": es_settings(es_node.url, es_prefix)})
    log = tmp_path / "auth.log"
    log.write_text("".join(f"Nov 27 09:{i // 60:02d}:{i % 60:02d} web1 sshd[{i}]: Failed password for user{i} "
                           f"from 10.0.{i // 250}.{i % 250 + 1} port {2000 + i} ssh2\n" for i in range(300)))
    args = ["replay", "-c", str(cfg.path), "--collector", "linux-auth", "-q", "--no-detect", str(log)]
    assert cli_main(args) == 0
    assert cli_main(args) == 0  # a second replay of the same file
    out = capsys.readouterr()
    assert "still spooled" not in out.err
    es = es_node.client()
    es.indices.refresh(index=f"{es_prefix}-*")
    alias = events_alias(es_prefix, "linux-auth")
    assert es.count(index=alias)["count"] == 300  # every line once, though replayed twice
    hit = es.search(index=alias, query={"term": {"user.name": "user7"}})["hits"]["hits"]
    assert [h["_source"]["source"]["ip"] for h in hit] == ["10.0.0.8"]
    assert spool_depth(cfg) == 0
    with sqlite3.connect(database_path(cfg)) as conn:  # nothing went to the embedded store instead
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    es.close()
