"""The evidence report as one self-contained, printable HTML page: inline CSS, hand-drawn inline SVG charts,
no script and no external resource, so it opens the same from an e-mail attachment, a USB stick or an
auditor's archive years later.

Every number shown carries ``data-metric``/``data-value`` attributes naming where it comes from in the JSON
report, so a reader (or a test) can check the page against ``sentinel report --format json``. The page
holds counts, rule ids, alert ids and the account names of the access review: never an event, a summary,
a patient identifier or an export destination.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from sentinel.route.durations import format_duration

SEVERITIES = ("critical", "high", "medium", "low", "info")
NUMERIC = ' class="n"'
LONGEST_GAPS = 15
YES, NO = '<span class="badge ok">yes</span>', '<span class="badge bad">NO</span>'
SEVERITY_COLOURS = {"critical": "#8e1b1b", "high": "#d9480f", "medium": "#e8a317", "low": "#3b7dd8",
                    "info": "#8a94a6"}

CSS = """
:root { --ink: #1d2433; --muted: #5b6577; --line: #d8dde6; --panel: #f6f8fb; --ok: #1f7a3a; --bad: #b3261e;
        --warn: #b26a00; --accent: #1f4e99; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
header { padding: 28px 40px 18px; border-bottom: 4px solid var(--accent); background: var(--panel); }
header h1 { margin: 0 0 4px; font-size: 24px; letter-spacing: .2px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 40px; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
main { padding: 8px 40px 40px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 18px; margin: 0 0 4px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h2 small { font-weight: normal; color: var(--muted); font-size: 12px; margin-left: 8px; }
p.why { margin: 4px 0 12px; color: var(--muted); font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-top: 18px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: #fff; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
.card .v { font-size: 26px; font-weight: 600; }
.card.ok .v { color: var(--ok); } .card.bad .v { color: var(--bad); } .card.warn .v { color: var(--warn); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 4px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; font-size: 12px; color: var(--muted); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.sev { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff; font-size: 11px; font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 12px; font-weight: 600; }
.badge.ok { background: #e3f4e8; color: var(--ok); } .badge.bad { background: #fbe4e2; color: var(--bad); }
.badge.warn { background: #fff1d6; color: var(--warn); } .badge.none { background: #eceff4; color: var(--muted); }
.chart { width: 100%; height: auto; display: block; margin: 6px 0; }
.legend { font-size: 12px; color: var(--muted); }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
.empty { color: var(--muted); font-style: italic; }
.matrix th.ctl { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-family:
       ui-monospace, Menlo, Consolas, monospace; font-size: 11px; padding: 6px 2px; text-align: left; }
.matrix td.cell { text-align: center; padding: 3px 2px; font-size: 13px; }
.matrix td.on { color: var(--ok); } .matrix td.idle { color: var(--warn); } .matrix td.off { color: #a7afbd; }
.hash { word-break: break-all; }
.signoff td { height: 28px; }
footer { margin: 32px 40px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted);
         font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { font-size: 10pt; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  header { padding: 0 0 8px; background: none; }
  nav { display: none; }
  main { padding: 0; max-width: none; }
  section { break-inside: avoid-page; margin-top: 16px; }
  section.long { break-inside: auto; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  footer { margin: 16px 0 0; }
  a { color: inherit; text-decoration: none; }
}
"""


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: int | float, metric: str, tag: str = "td", cls: str = "n") -> str:
    shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    return f'<{tag} class="{cls}" data-metric="{_e(metric)}" data-value="{_e(value)}">{shown}</{tag}>'


def _sev(sev: str) -> str:
    return f'<span class="sev" style="background:{SEVERITY_COLOURS.get(sev, "#666")}">{_e(sev)}</span>'


def _section(anchor: str, title: str, why: str, body: str, note: str = "", long: bool = False) -> str:
    small = f"<small>{_e(note)}</small>" if note else ""
    cls = ' class="long"' if long else ""
    return f'<section id="{anchor}"{cls}><h2>{_e(title)}{small}</h2><p class="why">{why}</p>{body}</section>'


def _table(head: list[str], rows: list[str], numeric: set[int] | None = None, empty: str = "none") -> str:
    numeric = numeric or set()
    ths = "".join(f'<th{NUMERIC if i in numeric else ""}>{h}</th>' for i, h in enumerate(head))
    body = "".join(rows) if rows else f'<tr><td class="empty" colspan="{len(head)}">{_e(empty)}</td></tr>'
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


# --- charts ---------------------------------------------------------------------------------------------------


def _day_label_every(n: int) -> int:
    return 1 if n <= 14 else 2 if n <= 31 else 7


def continuity_chart(cont: dict[str, Any], gaps: list[dict[str, Any]], since: float, until: float) -> str:
    """Sources by days: a filled cell per day with events (darker = more), a hatched red cell for none, and
    under each row a red mark for every gap in ingestion, drawn to scale."""
    days: list[str] = cont["days"]
    sources = cont["sources"]
    if not sources or not days:
        return '<p class="empty">No events were stored in this period.</p>'
    left, top, cell_h = 120, 10, 22
    width = 1100
    cell_w = max(4.0, (width - left - 10) / len(days))
    height = top + cell_h * len(sources) + 34
    peak = max((max(s["per_day"]) for s in sources.values()), default=1) or 1
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Events per source and day">',
           '<defs><pattern id="gap" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbe4e2"/>'
           '<line x1="0" y1="0" x2="0" y2="6" stroke="#b3261e" stroke-width="2"/></pattern></defs>']
    for row, (source, s) in enumerate(sources.items()):
        y = top + row * cell_h
        out.append(f'<text x="{left - 8}" y="{y + cell_h * 0.68:.1f}" text-anchor="end" font-size="12" '
                   f'fill="#1d2433">{_e(source)}</text>')
        for col, n in enumerate(s["per_day"]):
            x = left + col * cell_w
            if n:
                shade = 0.25 + 0.75 * (n / peak) ** 0.5
                fill = f'fill="#1f4e99" fill-opacity="{shade:.2f}"'
            else:
                fill = 'fill="url(#gap)"'
            out.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{max(1.0, cell_w - 2):.1f}" height="{cell_h - 4}" {fill} '
                       f'data-metric="continuity.{_e(source)}.{days[col]}" data-value="{n}">'
                       f'<title>{_e(source)} {days[col]}: {n:,} events</title></rect>')
    rows = {source: i for i, source in enumerate(sources)}
    first_day = datetime.strptime(days[0], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    scale = cell_w / 86400
    for g in gaps:
        at = rows.get(g["source"])
        if at is None:
            continue
        x0 = left + (max(g["from"], since) - first_day) * scale
        x1 = left + (min(g["to"], until) - first_day) * scale
        line_y = top + at * cell_h + cell_h - 1.5
        out.append(f'<line x1="{x0:.1f}" x2="{max(x1, x0 + 1):.1f}" y1="{line_y:.1f}" y2="{line_y:.1f}" '
                   f'stroke="#b3261e" stroke-width="3"><title>{_e(g["source"])}: no events for '
                   f'{_e(format_duration(g["seconds"]))}</title></line>')
    step = _day_label_every(len(days))
    base = top + cell_h * len(sources) + 16
    for col in range(0, len(days), step):
        x = left + col * cell_w + cell_w / 2
        out.append(f'<text x="{x:.1f}" y="{base}" text-anchor="middle" font-size="10" fill="#5b6577">'
                   f'{days[col][5:]}</text>')
    out.append("</svg>")
    legend = ('<div class="legend"><span><i style="background:#1f4e99"></i>events stored (darker: more)</span>'
              '<span><i style="background:#fbe4e2;outline:1px solid #b3261e"></i>no event that day</span>'
              '<span><i style="background:#b3261e;height:3px;vertical-align:2px"></i>a gap in ingestion, to scale'
              '</span></div>')
    return "".join(out) + legend


def alerts_chart(per_day: dict[str, Any]) -> str:
    """Stacked bars: alerts raised per UTC day, by severity."""
    days: list[str] = per_day["days"]
    series: dict[str, list[int]] = per_day["by_severity"]
    if not days:
        return ""
    totals = [sum(series.get(s, [0] * len(days))[i] for s in SEVERITIES) for i in range(len(days))]
    peak = max(totals) or 1
    left, top, plot_h, width = 48, 10, 180, 1100
    bar_w = (width - left - 10) / len(days)
    height = top + plot_h + 30
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Alerts per day by severity">']
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dde6"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#5b6577">'
                   f'{round(peak * frac):,}</text>')
    for col, day in enumerate(days):
        x = left + col * bar_w + 1
        y = top + plot_h
        for sev in reversed(SEVERITIES):  # info at the bottom, critical on top
            n = series.get(sev, [0] * len(days))[col]
            if sev not in series:
                continue
            h = plot_h * n / peak
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, bar_w - 2):.1f}" height="{h:.1f}" '
                       f'fill="{SEVERITY_COLOURS[sev]}" data-metric="alerts.per_day.{sev}.{day}" data-value="{n}">'
                       f'<title>{day}: {n:,} {sev}</title></rect>')
    step = _day_label_every(len(days))
    for col in range(0, len(days), step):
        x = left + col * bar_w + bar_w / 2
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" '
                   f'fill="#5b6577">{days[col][5:]}</text>')
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{SEVERITY_COLOURS[s]}"></i>{s}</span>' for s in SEVERITIES
                     if s in series)
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _clock_bar(inc: dict[str, Any], now: float) -> str:
    """The business-associate window as a bar: how much of it passed before acknowledgement (or until now)."""
    start, deadline = inc["detected_at"], inc["ba_deadline"]
    end = inc["acked_at"] if inc["acked_at"] is not None else now
    frac = (end - start) / max(1.0, deadline - start)
    colour = "#b3261e" if frac > 1 else "#1f7a3a" if inc["acked_at"] is not None else "#b26a00"
    w = 140 * min(1.0, max(0.0, frac))
    return (f'<svg width="150" height="14" viewBox="0 0 150 14" role="img" aria-label="share of the window used">'
            f'<rect x="0" y="3" width="140" height="8" fill="#eceff4"/><rect x="0" y="3" width="{w:.1f}" height="8" '
            f'fill="{colour}"/><line x1="140" x2="140" y1="0" y2="14" stroke="#1d2433"/></svg>')


# --- the page -------------------------------------------------------------------------------------------------


def to_html(rep: dict[str, Any]) -> str:
    p = rep["period"]
    now = p["generated"]
    alerts = rep["alerts"]
    incidents = rep["incidents"]
    cont = rep.get("continuity") or {"days": [], "sources": {}}
    cov = rep.get("coverage") or {"controls": [], "covered": 0, "total": 0}
    audit = rep.get("audit")
    dormant = rep["dormant_accounts"]
    gaps = rep["ingestion_gaps"]
    missed = sum(1 for i in incidents if i["ba_window_missed"])
    sources_with_gaps = sum(1 for s in cont["sources"].values() if s["days_without_events"])

    audit_ok = bool(audit and audit["ok"])
    cards = [
        ("alerts", _num(alerts["total"], "alerts.total", "div", "v"), ""),
        ("incidents (high/critical)", _num(len(incidents), "incidents.count", "div", "v"), ""),
        ("BA windows missed", _num(missed, "incidents.ba_window_missed", "div", "v"), "bad" if missed else "ok"),
        ("sources with gap days", _num(sources_with_gaps, "continuity.sources_with_gaps", "div", "v"),
         "warn" if sources_with_gaps else "ok"),
        ("HIPAA controls covered", f'<div class="v"><span data-metric="coverage.covered" data-value="{cov["covered"]}">'
         f'{cov["covered"]}</span>/<span data-metric="coverage.total" data-value="{cov["total"]}">{cov["total"]}'
         f'</span></div>', "ok" if cov["covered"] == cov["total"] else "warn"),
        ("audit trail", f'<div class="v">{"verified" if audit_ok else "NOT verified"}</div>',
         "ok" if audit_ok else "bad"),
    ]
    card_html = "".join(f'<div class="card {cls}"><div class="k">{_e(k)}</div>{v}</div>' for k, v, cls in cards)

    parts: list[str] = []

    # 1. continuity
    src_rows = [f'<tr><td>{_e(s)}</td>{_num(v["total"], f"continuity.{s}.total")}'
                f'{_num(v["days_without_events"], f"continuity.{s}.days_without_events")}</tr>'
                for s, v in cont["sources"].items()]
    longest = sorted(gaps, key=lambda g: -g["seconds"])[:LONGEST_GAPS]
    gap_rows = [f'<tr><td>{_e(g["source"])}</td><td>{_iso(g["from"])}</td><td>{_iso(g["to"])}</td>'
                f'<td class="n">{_e(format_duration(g["seconds"]))}</td></tr>' for g in longest]
    per_source: dict[str, list[float]] = {}
    for g in gaps:
        per_source.setdefault(g["source"], []).append(g["seconds"])
    gap_summary = [f'<tr><td>{_e(src)}</td>{_num(len(secs), f"gaps.{src}.count")}'
                   f'<td class="n">{_e(format_duration(max(secs)))}</td>'
                   f'<td class="n">{_e(format_duration(sum(secs)))}</td></tr>'
                   for src, secs in sorted(per_source.items())]
    parts.append(_section(
        "continuity", "Monitoring continuity", "Events stored per source and UTC day (HIPAA 164.312(b) audit "
        "controls, 164.308(a)(1)(ii)(D) activity review). A hatched cell is a day the source sent nothing.",
        continuity_chart(cont, gaps, p["from"], p["to"])
        + _table(["source", "events", "days without events"], src_rows, {1, 2}, "no sources")
        + f'<p class="why">Gaps in ingestion (<span data-metric="gaps.count" data-value="{len(gaps)}">'
          f'{len(gaps)}</span>): stretches of at least the report\'s gap length with no stored event from a '
          'source, per source, then the longest ones (the JSON report lists them all).</p>'
        + _table(["source", "gaps", "longest", "total silent time"], gap_summary, {1, 2, 3}, "no gaps")
        + (_table(["source", "from", "to", "length"], gap_rows, {3}) if gap_rows else ""), long=True))

    # 2. alerts over time
    sev_rows = [f'<tr><td>{_sev(s)}</td>{_num(alerts["by_severity"][s], f"alerts.by_severity.{s}")}</tr>'
                for s in SEVERITIES if s in alerts["by_severity"]]
    parts.append(_section("alerts", "Alerts by severity over time", "Alerts raised per UTC day.",
                          alerts_chart(alerts["per_day"]) + _table(["severity", "alerts"], sev_rows, {1},
                                                                   "no alerts in this period")))

    # 3. per rule
    rule_rows = []
    for r in alerts["by_rule"]:
        key = f'alerts.by_rule.{r["rule"]}/{r["severity"]}'
        rule_rows.append(f'<tr><td class="mono">{_e(r["rule"])}</td><td>{_sev(r["severity"])}</td>'
                         + "".join(_num(r[k], f"{key}.{k}") for k in ("alerts", "events", "open", "acknowledged",
                                                                        "resolved")) + "</tr>")
    parts.append(_section("rules", "Alerts per rule and disposition", "What each rule raised and what became of "
                          "it: still open, acknowledged by a responder, or resolved.",
                          _table(["rule", "severity", "alerts", "events", "open", "acknowledged", "resolved"],
                                 rule_rows, {2, 3, 4, 5, 6}, "no alerts in this period"), long=True))

    # 4. time to acknowledge
    tta_rows = []
    for sev, t in rep["time_to_acknowledge"].items():
        cells = "".join(f'<td class="n">{_e(format_duration(t[k])) if t[k] is not None else "-"}</td>'
                        for k in ("median_seconds", "p90_seconds", "max_seconds"))
        tta_rows.append(f"<tr><td>{_sev(sev)}</td>{_num(t['acknowledged'], f'tta.{sev}.acknowledged')}"
                        f"{_num(t['unacknowledged'], f'tta.{sev}.unacknowledged')}{cells}</tr>")
    parts.append(_section("response", "Time to acknowledge", "From an alert being raised to a responder "
                          "acknowledging it (HIPAA 164.308(a)(6) security incident procedures).",
                          _table(["severity", "acknowledged", "unacknowledged", "median", "p90", "max"], tta_rows,
                                 {1, 2, 3, 4, 5})))

    # 4b. rule tuning
    tuning_rows = []
    for t in rep.get("tuning", []):
        key = f'tuning.{t["rule"]}'
        rate = "-" if t["false_positive_rate"] is None else f'{100 * t["false_positive_rate"]:.0f}%'
        tta = t["median_time_to_acknowledge_seconds"]
        tuning_rows.append(
            f'<tr><td class="mono">{_e(t["rule"])}</td>{_num(t["alerts"], f"{key}.alerts")}'
            + "".join(_num(t["dispositions"][d], f"{key}.{d}") for d in ("true_positive", "false_positive", "benign",
                                                                          "duplicate"))
            + f'{_num(t["without_disposition"], f"{key}.without_disposition")}'
            f'{_num(t["auto_resolved"], f"{key}.auto_resolved")}<td class="n">{_e(rate)}</td>'
            f'<td class="n">{_e("-" if tta is None else format_duration(round(tta)))}</td></tr>')
    parts.append(_section("tuning", "Rule tuning: dispositions and false positives", "How each rule's alerts were "
                          "judged when resolved, the share judged false positive, and the median time to "
                          "acknowledge: what a team tunes its rules by.",
                          _table(["rule", "alerts", "true positive", "false positive", "benign", "duplicate",
                                  "no disposition", "auto-resolved", "false-positive rate",
                                  "median time to acknowledge"], tuning_rows, {1, 2, 3, 4, 5, 6, 7, 8, 9},
                                 "no alerts in this period"), long=True))

    # 5. incidents
    inc_rows = []
    for i in incidents:
        if i["within_ba_window"]:
            verdict = '<span class="badge ok">met</span>'
        elif i["ba_window_missed"]:
            verdict = '<span class="badge bad">MISSED</span>'
        else:
            verdict = f'<span class="badge warn">running: {_e(format_duration(max(0, i["ba_deadline"] - now)))}' \
                      ' left</span>'
        inc_rows.append(f'<tr><td class="mono">{_e(i["alert_id"][:12])}</td><td class="mono">{_e(i["rule"])}</td>'
                        f'<td>{_sev(i["severity"])}</td><td>{_iso(i["detected_at"])}</td>'
                        f'<td>{_iso(i["ba_deadline"])}</td><td>{_iso(i["breach_deadline"])}</td>'
                        f'<td>{_iso(i["acked_at"])}</td><td>{_e(i["status"])}</td>'
                        f'<td>{_clock_bar(i, now)} {verdict}</td></tr>')
    parts.append(_section(
        "incidents", "Incidents and their notification clocks", "Every high and critical alert starts the clock: "
        "the business-associate notification window (acknowledgement) and the breach notification deadline "
        "(45 CFR 164.404-164.410, at most 60 days).",
        _table(["alert", "rule", "severity", "detected", "BA deadline", "breach deadline", "acknowledged",
                "status", "BA window"], inc_rows, None, "no incidents in this period"), long=True))

    # 6. silences and delivery
    sil_rows = []
    for s in rep["silences"]:
        end = s["ends_at"] if s["expired_at"] is None else min(s["ends_at"], s["expired_at"])
        sil_rows.append(f'<tr><td class="mono">{_e(s["id"])}</td><td class="mono">{_e(" ".join(s["matchers"]))}</td>'
                        f'<td>{_iso(s["starts_at"])}</td><td>{_iso(end)}</td><td>{_e(s["author"])}</td>'
                        f'<td>{_e(s["reason"])}</td>{_num(s["suppressed"], "silences." + s["id"] + ".suppressed")}'
                        "</tr>")
    del_rows = [f'<tr><td>{_e(d["receiver"])}</td><td>{_e(d["status"])}</td>'
                f'{_num(d["notifications"], ".".join(("delivery", d["receiver"], d["status"], "notifications")))}'
                f'<td class="n">{_e(d["attempts"])}</td></tr>' for d in rep["delivery"]]
    parts.append(_section("silences", "Silences and notification delivery", "Who muted what, why, and how many "
                          "notifications it held back; whether the notifications reached their receivers.",
                          _table(["id", "matchers", "from", "until", "author", "reason", "suppressed"], sil_rows,
                                 {6}, "no silences")
                          + _table(["receiver", "status", "notifications", "attempts"], del_rows, {2, 3},
                                   "no notifications in this period")))

    # 7. dormant accounts
    acc_rows = [f'<tr><td class="mono">{_e(a["user"])}</td><td>{_iso(a["last_event"])}</td>'
                f'<td class="n">{_e(a["idle_days"])}</td><td class="n">{_e(a["events"] or "-")}</td>'
                f'<td></td><td></td></tr>' for a in dormant["accounts"]]
    parts.append(_section(
        "dormant", "Dormant-account access review",
        f'Accounts with no activity for {dormant["threshold_days"]:g} days or more '
        f'(<span data-metric="dormant.count" data-value="{len(dormant["accounts"])}">{len(dormant["accounts"])}'
        f'</span>; source: {_e(dormant["source"])}). The reviewer records a decision for each '
        '(HIPAA 164.308(a)(3)(ii)(C), 164.308(a)(4)).',
        _table(["account", "last event", "idle days", "events retained", "decision (keep / disable)", "reviewer"],
               acc_rows, {2, 3}, "no dormant accounts"), long=True))

    # 8. coverage matrix
    parts.append(_section("coverage", "HIPAA control coverage",
                          "Which rule supports which control, and whether it evaluated events in the period: "
                          "● evaluated events, ○ enabled but saw none, · disabled. A control is covered when one "
                          "of its enabled rules evaluated events.", _coverage_matrix(cov), long=True))

    # 9. audit trail
    parts.append(_section("audit", "Audit trail verification", "The daemon's hash-chained audit log "
                          "(starts, reloads, rule changes, acknowledgements, silences), checked record by record "
                          "from the oldest retained one, as <span class=\"mono\">sentinel audit verify "
                          "--allow-pruned</span> does.", _audit(audit)))

    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("continuity", "Continuity"), ("alerts", "Alerts"), ("rules", "Rules"), ("response", "Response"),
        ("tuning", "Tuning"), ("incidents", "Incidents"), ("silences", "Silences"), ("dormant", "Access review"),
        ("coverage", "Coverage"), ("audit", "Audit trail")))
    title = f"sentinel evidence report {_iso(p['from'])} to {_iso(p['to'])}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            f'img-src data:">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f'<header><h1>sentinel evidence report</h1><p>Period <b>{_iso(p["from"])}</b> to <b>{_iso(p["to"])}'
            f'</b> · generated {_iso(now)}</p><div class="cards">{card_html}</div></header>'
            f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
            "<footer>Generated by sentinel from its own database and audit trail. The report holds counts, rule "
            "and alert identifiers and the workforce accounts under review; it holds no protected health "
            "information: no event contents, patient identifiers, record details or export destinations."
            "</footer></body></html>\n")


def _coverage_matrix(cov: dict[str, Any]) -> str:
    controls = cov["controls"]
    if not controls:
        return '<p class="empty">No rules are mapped to HIPAA controls.</p>'
    rules: dict[str, dict[str, Any]] = {}
    for c in controls:
        for m in c["rules"]:
            rules.setdefault(m["rule"], m)
    head = "".join(f'<th class="ctl">{_e(c["control"])}</th>' for c in controls)
    rows = []
    for rule, info in sorted(rules.items(), key=lambda kv: (SEVERITIES.index(kv[1]["severity"])
                                                           if kv[1]["severity"] in SEVERITIES else 9, kv[0])):
        cells = []
        for c in controls:
            member = next((m for m in c["rules"] if m["rule"] == rule), None)
            if member is None:
                cells.append('<td class="cell"></td>')
            elif not member["enabled"]:
                cells.append('<td class="cell off" title="disabled">·</td>')
            elif member["evaluations"]:
                cells.append(f'<td class="cell on" title="{member["evaluations"]:,} events evaluated">●</td>')
            else:
                cells.append('<td class="cell idle" title="enabled, no events evaluated">○</td>')
        rows.append(f'<tr><td class="mono">{_e(rule)}</td><td>{_sev(info["severity"])}</td>'
                    f'{_num(info["evaluations"], f"coverage.rule.{rule}.evaluations")}{"".join(cells)}</tr>')
    verdict = "".join(
        f'<td class="cell" data-metric="coverage.{_e(c["control"])}.covered" data-value="{1 if c["covered"] else 0}">'
        f'{YES if c["covered"] else NO}</td>'
        for c in controls)
    return (f'<table class="matrix"><thead><tr><th>rule</th><th>severity</th><th class="n">events evaluated</th>'
            f'{head}</tr></thead><tbody>{"".join(rows)}</tbody><tfoot><tr><th colspan="3">covered in this period'
            f'</th>{verdict}</tr></tfoot></table>')


def _audit(audit: dict[str, Any] | None) -> str:
    if audit is None or not audit["found"]:
        where = f" at {_e(audit['path'])}" if audit else ""
        return f'<p><span class="badge bad">no audit log</span> No audit trail was found{where}.</p>'
    badge = '<span class="badge ok">chain intact</span>' if audit["ok"] else '<span class="badge bad">TAMPERED</span>'
    problems = "".join(f"<li>{_e(x)}</li>" for x in audit["problems"])
    return (f'<table><tbody><tr><th>result</th><td>{badge}</td></tr>'
            f'<tr><th>records checked</th>{_num(audit["records"], "audit.records", "td", "")}</tr>'
            f'<tr><th>head sequence</th><td>{_e(audit["head_seq"] if audit["head_seq"] is not None else "-")}</td></tr>'
            f'<tr><th>head hash (SHA-256)</th><td class="mono hash" data-metric="audit.head_hash" '
            f'data-value="{_e(audit["head_hash"] or "")}">{_e(audit["head_hash"] or "-")}</td></tr>'
            f'<tr><th>log</th><td class="mono">{_e(audit["path"])}</td></tr></tbody></table>'
            + (f"<ul>{problems}</ul>" if problems else ""))
