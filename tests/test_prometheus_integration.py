"""A real Prometheus scrapes the real daemon while it ingests; the dashboard's and alerts' queries get data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.prometheus import StartPrometheus
from tests.ops_helpers import DaemonProcess, OpsEnv, append, auth_line, scrape, wait_until

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
DASHBOARD = SHIPPED / "config" / "grafana" / "sentinel.json"
DASHBOARDS = [DASHBOARD, SHIPPED / "config" / "grafana" / "security-overview.json"]
RULES = SHIPPED / "config" / "prometheus" / "sentinel-alerts.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

pytestmark = pytest.mark.integration


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, with Grafana's variables replaced as Grafana would."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in (("$__rate_interval", "5s"), ("$job", ".+"), ("$instance", ".+"), ("$source", ".+")):
                expr = expr.replace(var, value)
            out.append((panel["title"], expr))
    return out


def test_promtool_checks_the_alert_rules() -> None:
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_prometheus_scrapes_the_ingesting_daemon(tmp_path: Path, prometheus: StartPrometheus) -> None:
    env = OpsEnv(tmp_path)
    append(env.log, [auth_line(i, ok=i % 5 != 0) for i in range(200)])
    daemon = DaemonProcess(env.config)
    stop = threading.Event()

    def keep_writing() -> None:  # a live log: lines keep arriving while Prometheus scrapes
        i = 200
        while not stop.is_set():
            append(env.log, [auth_line(j, ok=j % 5 != 0) for j in range(i, i + 20)])
            i += 20
            time.sleep(0.1)

    writer = threading.Thread(target=keep_writing, daemon=True)
    try:
        wait_until(lambda: env.events_stored() >= 200, what="the daemon to ingest")
        writer.start()
        prom = prometheus([f"127.0.0.1:{env.metrics_port}"], rule_files=[RULES])
        wait_until(lambda: len(prom.query('sentinel_lines_read_total{job="sentinel"}')) == 1, 30, "first scrape")
        time.sleep(6)  # enough samples for rate() over the dashboard's 5s windows

        # promtool check metrics on exactly what Prometheus scrapes
        text = scrape(env.metrics_port)
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        empty = [(title, expr) for title, expr in dashboard_exprs() if not prom.query(expr)]
        assert not empty, f"dashboard expressions without data: {empty}"

        rate = prom.query('sum(rate(sentinel_lines_read_total{job="sentinel"}[5s]))')
        assert float(rate[0]["value"][1]) > 0
        unparsed = prom.query('sum(sentinel_events_total{job="sentinel", outcome!="parsed"})')
        assert float(unparsed[0]["value"][1]) > 0

        # every alert rule loaded and evaluates without error; nothing is firing for a healthy daemon
        groups = prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == len(re.findall(r"^\s+- alert:", RULES.read_text(), re.M))
        wait_until(lambda: all(r.get("lastEvaluation", "0001").startswith("20")
                               for g in prom.api("rules")["groups"] for r in g["rules"]), 15, "rule evaluation")
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        assert [r["name"] for r in rules if r["health"] != "ok"] == []
        assert [r["name"] for r in rules if r["state"] == "firing"] == []
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(5)
        daemon.stop()


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_follows_the_linter_rules(dashboard: Path) -> None:
    """The rules dashboard-linter enforces, checked here because its module cannot be fetched in this sandbox."""
    doc = json.loads(dashboard.read_text())
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"]["uid"] == "${datasource}"
        assert v["multi"] and v["allValue"] == ".+" and v["label"] == name.title() and v["refresh"] == 2
    assert doc["editable"] is False
    for panel in doc["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["fieldConfig"]["defaults"]["unit"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for selector in re.findall(r"[a-z_:]+\{[^}]*\}", expr):
                assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, (panel["title"], selector)
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", (panel["title"], window)
            for counter in re.findall(r"(\w+_total)\{", expr):
                assert re.search(rf"(rate|increase)\({counter}\{{", expr), (panel["title"], counter)
