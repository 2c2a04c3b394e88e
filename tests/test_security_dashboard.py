"""The security metrics and the "Security overview" dashboard on the demo's scenario, scraped by a real
Prometheus: every panel's expression has data, the metrics pass promtool, the counters agree with the
stored events exactly, and no label carries a user, address, patient or destination."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.prometheus import StartPrometheus
from tests.fixtures.receiver import Receiver
from tests.ops_helpers import metric_value, scrape, wait_until
from tests.security_helpers import DemoScenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
DASHBOARD = SHIPPED / "config" / "grafana" / "security-overview.json"
DAEMON_DASHBOARD = SHIPPED / "config" / "grafana" / "sentinel.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

pytestmark = pytest.mark.integration


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    doc = json.loads(path.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in (("$__rate_interval", "5s"), ("$job", ".+"), ("$instance", ".+")):
                expr = expr.replace(var, value)
            out.append((panel["title"], expr))
    return out


def series(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of ``name`` in a Prometheus text exposition."""
    out = []
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} ", text, re.M):
        out.append(dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1))))
    return out


def test_security_dashboard_has_data_on_the_demo_scenario(tmp_path: Path, prometheus: StartPrometheus,
                                                          receiver: Receiver) -> None:
    demo = DemoScenario(tmp_path / "demo", receiver.url)
    prom = prometheus([f"127.0.0.1:{demo.metrics_port}"])
    try:
        demo.start()
        demo.wait_caught_up()
        acked, resolved = demo.respond()
        demo.go_live(25)
        wait_until(lambda: len(prom.query('sentinel_alert_acknowledge_duration_seconds_count{job="sentinel"}')) > 0
                   and sum(float(r["value"][1]) for r in prom.query(
                       'sentinel_alert_acknowledge_duration_seconds_count{job="sentinel"}')) >= len(acked),
                   60, "the acknowledgements to reach Prometheus")
        time.sleep(8)  # live lines keep arriving: samples for rate() over the 5 s windows

        text = scrape(demo.metrics_port)
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        empty = [(title, expr) for title, expr in dashboard_exprs(DASHBOARD) if not prom.query(expr)]
        assert not empty, f"dashboard expressions without data: {empty}"

        ack_count = sum(metric_value(text, "sentinel_alert_acknowledge_duration_seconds_count", f'severity="{s}"')
                        or 0 for s in ("critical", "high", "medium", "low", "info"))
        resolve_count = sum(metric_value(text, "sentinel_alert_resolve_duration_seconds_count", f'severity="{s}"')
                            or 0 for s in ("critical", "high", "medium", "low", "info"))
        # Resolving an unacknowledged alert acknowledges it at the same moment: it counts in both.
        assert ack_count == len(acked) + len(resolved) and resolve_count == len(resolved)
        deadline = metric_value(text, "sentinel_incident_clock_deadline_seconds", 'clock="business_associate"')
        nearest = demo.rows("SELECT MIN(i.ba_deadline) FROM incidents i JOIN alerts a ON a.id = i.alert_id "
                            "WHERE a.acked_at IS NULL")[0][0]
        assert deadline is not None and abs(deadline - (nearest - time.time())) < 30
        covered = {s["control"]: metric_value(text, "sentinel_hipaa_control_covered", f'control="{s["control"]}"')
                   for s in series(text, "sentinel_hipaa_control_covered")}
        assert covered["164.312(b)"] == 1 and covered["164.312(d)"] == 1
        assert covered["164.312(a)(2)(iii)"] == 0  # automatic logoff: no rule in the pack supports it

        # With the stream over and everything read, the queue and the clocks say what the database says
        # (refreshed every 5 s) and the counters equal the stored events exactly: each counted once.
        assert demo.writer is not None
        demo.writer.stop()
        demo.wait_caught_up()

        def unacked_matches() -> bool:
            text = scrape(demo.metrics_port)
            gauge = sum(metric_value(text, "sentinel_alerts_unacknowledged", f'severity="{s}"') or 0
                        for s in ("high", "critical"))
            return gauge == demo.count("SELECT count(*) FROM alerts WHERE status = 'open' AND severity IN "
                                       "('high', 'critical')")

        wait_until(unacked_matches, 15, "the unacknowledged gauge to match the alert table")
        text = scrape(demo.metrics_port)
        logins = demo.count("SELECT count(*) FROM events WHERE action IN ('user_login', 'ssh_login') AND parsed = 1")
        failed = demo.count("SELECT count(*) FROM events WHERE action IN ('user_login', 'ssh_login') AND parsed = 1 "
                            "AND outcome = 'failure'")
        exported = sum(f.get("phi.record_count") or 0 for f in demo.fields(
            "action IN ('phi_export', 'phi_print', 'phi_download') AND coalesce(outcome, '') != 'failure'"))
        denied = demo.count("SELECT count(*) FROM events WHERE action = 'mfa_push_denied' AND parsed = 1")
        assert logins and failed and exported and denied
        assert total(text, "sentinel_sign_ins_total") == logins
        assert total(text, "sentinel_sign_ins_total", 'outcome="failure"') == failed
        assert total(text, "sentinel_phi_records_exported_total") == exported
        assert total(text, "sentinel_mfa_events_total", 'kind="denial"') == denied
    finally:
        demo.stop()


def total(text: str, name: str, having: str = "") -> float:
    """The sum of every sample of ``name`` whose labels include ``having``."""
    return sum(float(v) for labels, v in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M) if having in labels)


def test_security_labels_never_carry_event_content(tmp_path: Path, receiver: Receiver) -> None:
    """Users, addresses, patients and destinations from the demo's logs appear in no label of /metrics."""
    demo = DemoScenario(tmp_path / "demo", receiver.url, days=2, users=20)
    try:
        demo.start()
        demo.wait_caught_up()
        text = scrape(demo.metrics_port)
    finally:
        demo.stop()
    values = {v for line in text.splitlines() if not line.startswith("#")
              for v in re.findall(r'="((?:[^"\\]|\\.)*)"', line)}
    users = {r[0] for r in demo.rows("SELECT DISTINCT user FROM events WHERE user IS NOT NULL")}
    ips = {r[0] for r in demo.rows("SELECT DISTINCT ip FROM events WHERE ip IS NOT NULL")}
    dests = {f["phi.export.destination"] for f in demo.fields("action LIKE 'phi_%'") if f.get("phi.export.destination")}
    assert users and ips and dests
    assert not values & (users | ips | dests)
    assert not [v for v in values if "MRN" in v or "@" in v or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", v)]
    # The closed vocabularies hold: only known methods and destination types were minted.
    methods = {s["method"] for s in series(text, "sentinel_sign_ins_total")}
    assert methods and methods <= {"password", "publickey", "keyboard_interactive", "sso", "certificate", "mfa",
                                   "other", "unknown"}
    kinds = {s["destination_type"] for s in series(text, "sentinel_phi_records_exported_total")}
    assert kinds and kinds <= {"email", "printer", "file", "sftp", "external_host", "removable_media",
                               "cloud_storage", "fax", "other", "unknown"}


def test_the_dashboards_link_to_each_other_and_to_runbooks() -> None:
    security = json.loads(DASHBOARD.read_text())
    daemon = json.loads(DAEMON_DASHBOARD.read_text())
    assert any(link["url"].startswith(f"/d/{daemon['uid']}") and link["includeVars"] and link["keepTime"]
               for link in security["links"])
    assert any(link["url"].startswith(f"/d/{security['uid']}") and link["includeVars"] and link["keepTime"]
               for link in daemon["links"])
    runbook = (ROOT / "docs" / "runbooks" / "security-overview.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^## (.+)$", runbook, re.M)}
    for panel in security["panels"]:
        if panel["type"] == "row":
            continue
        links = [link["url"] for link in panel.get("links", [])]
        assert links, panel["title"]
        for url in links:
            assert url.startswith("${runbooks}/security-overview.md#"), url
            assert url.split("#", 1)[1] in anchors, (panel["title"], url)
