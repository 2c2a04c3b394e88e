"""``sentinel report --format html`` on the demo's scenario, rendered by headless Chromium: the page loads
with no console error and no request beyond itself, every number on it equals ``--format json``'s, it
prints, and it holds no patient identifier, export destination or address from the logs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.chromium import Chromium
from tests.fixtures.receiver import Receiver
from tests.security_helpers import DemoScenario

pytestmark = pytest.mark.integration


def report(config: Path, fmt: str, out: Path, until: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "sentinel.cli.main", "report", "-c", str(config), "--from", "7d",
                           "--to", until, "--format", fmt, "-o", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def expected_numbers(rep: dict[str, Any]) -> dict[str, str]:
    """Every number the page must show, keyed as the page's data-metric attributes, from the JSON report."""
    want: dict[str, Any] = {"alerts.total": rep["alerts"]["total"], "incidents.count": len(rep["incidents"]),
                            "incidents.ba_window_missed": sum(i["ba_window_missed"] for i in rep["incidents"]),
                            "gaps.count": len(rep["ingestion_gaps"]),
                            "dormant.count": len(rep["dormant_accounts"]["accounts"]),
                            "coverage.covered": rep["coverage"]["covered"], "coverage.total": rep["coverage"]["total"],
                            "audit.records": rep["audit"]["records"], "audit.head_hash": rep["audit"]["head_hash"]}
    for sev, n in rep["alerts"]["by_severity"].items():
        want[f"alerts.by_severity.{sev}"] = n
    for r in rep["alerts"]["by_rule"]:
        for k in ("alerts", "events", "open", "acknowledged", "resolved"):
            want[f"alerts.by_rule.{r['rule']}/{r['severity']}.{k}"] = r[k]
    for t in rep["tuning"]:
        for k in ("alerts", "without_disposition", "auto_resolved"):
            want[f"tuning.{t['rule']}.{k}"] = t[k]
        for d, n in t["dispositions"].items():
            want[f"tuning.{t['rule']}.{d}"] = n
    per_day = rep["alerts"]["per_day"]
    for sev, counts in per_day["by_severity"].items():
        for day, n in zip(per_day["days"], counts, strict=True):
            want[f"alerts.per_day.{sev}.{day}"] = n
    cont = rep["continuity"]
    for src, s in cont["sources"].items():
        want[f"continuity.{src}.total"] = s["total"]
        want[f"continuity.{src}.days_without_events"] = s["days_without_events"]
        for day, n in zip(cont["days"], s["per_day"], strict=True):
            want[f"continuity.{src}.{day}"] = n
    want["continuity.sources_with_gaps"] = sum(1 for s in cont["sources"].values() if s["days_without_events"])
    for g in rep["ingestion_gaps"]:
        want[f"gaps.{g['source']}.count"] = want.get(f"gaps.{g['source']}.count", 0) + 1
    for c in rep["coverage"]["controls"]:
        want[f"coverage.{c['control']}.covered"] = int(c["covered"])
        for m in c["rules"]:
            want[f"coverage.rule.{m['rule']}.evaluations"] = m["evaluations"]
    for sev, t in rep["time_to_acknowledge"].items():
        want[f"tta.{sev}.acknowledged"] = t["acknowledged"]
        want[f"tta.{sev}.unacknowledged"] = t["unacknowledged"]
    for s in rep["silences"]:
        want[f"silences.{s['id']}.suppressed"] = s["suppressed"]
    for d in rep["delivery"]:
        want[f"delivery.{d['receiver']}.{d['status']}.notifications"] = d["notifications"]
    return {k: str(v) for k, v in want.items()}


ON_PAGE = ("JSON.stringify(Array.from(document.querySelectorAll('[data-metric]'))"
           ".map(e => [e.dataset.metric, e.dataset.value, e.tagName === 'rect' ? null : e.textContent]))")


def test_html_report_of_the_demo_renders_offline_and_matches_the_json(tmp_path: Path, receiver: Receiver,
                                                                      chromium: Chromium) -> None:
    demo = DemoScenario(tmp_path / "demo", receiver.url)
    try:
        demo.start()
        demo.wait_caught_up()
        acked, resolved = demo.respond()
    finally:
        demo.stop()
    until = subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True, text=True).stdout.strip()
    rep = json.loads(report(demo.config, "json", tmp_path / "report.json", until).read_text())
    page = report(demo.config, "html", tmp_path / "report.html", until)
    html = page.read_text()

    # What the demo did is in the report (so the comparison below is not of empty pages).
    assert rep["alerts"]["total"] >= 5 and len(rep["incidents"]) >= 3
    assert sum(r["acknowledged"] for r in rep["alerts"]["by_rule"]) == len(acked)
    assert sum(r["resolved"] for r in rep["alerts"]["by_rule"]) == len(resolved)
    assert set(rep["continuity"]["sources"]) == {"linux-auth", "auditd", "okta", "entra", "billing-audit", "osquery"}
    assert rep["audit"]["ok"] and re.fullmatch(r"[0-9a-f]{64}", rep["audit"]["head_hash"])
    assert rep["coverage"]["total"] > rep["coverage"]["covered"] > 0

    session, visit = chromium.open(page.as_uri())
    assert visit.requests and visit.requests[0] == page.as_uri()
    assert visit.external_requests == []
    assert visit.errors == []

    shown = json.loads(chromium.evaluate(session, ON_PAGE))
    on_page = {metric: value for metric, value, _text in shown}
    assert len(on_page) == len(shown), "a number is shown twice under one name"
    assert on_page == expected_numbers(rep)
    for metric, value, text in shown:  # and what a reader sees is that value
        if text is None:
            continue  # a chart's bar or cell: its value is in its tooltip
        if metric.startswith("coverage.1") and metric.endswith(".covered"):
            assert {"yes": "1", "NO": "0"}[text] == value, (metric, text, value)
        else:
            assert text.replace(",", "") == value, (metric, text, value)
    shot = chromium.screenshot(session, tmp_path / "report.png")
    keep = os.environ.get("SENTINEL_REPORT_KEEP")  # a folder to keep the page, its JSON and the screenshot in
    if keep:
        for made in (page, tmp_path / "report.json", shot):
            shutil.copy(made, keep)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Printable: the print stylesheet applies (navigation hidden) and Chromium makes a PDF of it.
    chromium.send("Emulation.setEmulatedMedia", session, media="print")
    assert chromium.evaluate(session, "getComputedStyle(document.querySelector('nav')).display") == "none"
    assert chromium.print_pdf(session)[:5] == b"%PDF-"

    # No PHI and no event content: patient ids, export destinations and addresses from the logs are absent.
    exports = demo.fields("action LIKE 'phi_%'")
    patients = {p for f in exports for p in f.get("phi.patient_ids") or ()}
    destinations = {f["phi.export.destination"] for f in exports if f.get("phi.export.destination")}
    addresses = {r[0] for r in demo.rows("SELECT DISTINCT ip FROM events WHERE ip IS NOT NULL")}
    assert patients and destinations and addresses
    assert [p for p in patients if p in html] == []
    assert [d for d in destinations if d in html] == []
    assert [a for a in addresses if re.search(rf"(?<![\d.]){re.escape(a)}(?![\d.])", html)] == []


def test_the_offline_check_catches_a_fetch_and_a_console_error(tmp_path: Path, chromium: Chromium) -> None:
    """The checks above can fail: a page that fetches an image and logs an error is caught on both."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/pixel.png">'
                    '<script>console.error("boom")</script></body></html>')
    _session, visit = chromium.open(page.as_uri())
    assert "http://127.0.0.1:9/pixel.png" in visit.external_requests
    assert any("boom" in e for e in visit.errors)
