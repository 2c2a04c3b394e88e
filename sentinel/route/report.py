"""The evidence report for auditors: alerts, acknowledgement times, silences, incident clocks, dormant
accounts and ingestion gaps over a period (HIPAA 164.308(a)(1)(ii)(D), 164.312(b), 164.308(a)(6))."""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from sentinel.route.durations import format_duration
from sentinel.route.silences import list_silences


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


DAY = 86400
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
_DISPOSITION = {"open": 2, "acknowledged": 3, "resolved": 4}  # where by_rule keeps each status's count


@dataclass(frozen=True)
class RuleControls:
    """One rule of the pack as the coverage matrix needs it (the CLI reads the pack; routing does not)."""

    rule: str
    severity: str
    enabled: bool
    controls: tuple[str, ...]


@dataclass(frozen=True)
class AuditStatus:
    """The audit trail's verification result, as ``sentinel audit verify`` finds it."""

    path: str
    found: bool
    records: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "found": self.found, "ok": self.found and not self.problems,
                "records": self.records, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "problems": list(self.problems)}


def build_report(conn: sqlite3.Connection, since: float, until: float, now: float, dormant_days: float = 90.0,
                 gap_seconds: float = 3600.0, rules: Sequence[RuleControls] = (), known_controls: Sequence[str] = (),
                 audit: AuditStatus | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain data (the JSON format is exactly this)."""
    rows = conn.execute("SELECT id, rule_id, severity, count, created, status, acked_at, acked_by, resolved_at "
                        "FROM alerts WHERE created >= ? AND created < ?", (since, until)).fetchall()
    by_sev: dict[str, int] = {}
    by_rule: dict[tuple[str, str], list[int]] = {}
    ack_times: dict[str, list[float]] = {}
    unacked: dict[str, int] = {}
    days = _days(since, until)
    per_day: dict[str, list[int]] = {}
    for _id, rule, sev, count, created, status, acked_at, _by, _res in rows:
        by_sev[sev] = by_sev.get(sev, 0) + 1
        agg = by_rule.setdefault((rule, sev), [0, 0, 0, 0, 0])
        agg[0] += 1
        agg[1] += count
        agg[_DISPOSITION.get(status, 2)] += 1
        per_day.setdefault(sev, [0] * len(days))[_day_index(created, since)] += 1
        if acked_at is not None:
            ack_times.setdefault(sev, []).append(acked_at - created)
        else:
            unacked[sev] = unacked.get(sev, 0) + 1
    tta = {}
    for sev in sorted(set(ack_times) | set(unacked)):
        times = sorted(ack_times.get(sev, []))
        tta[sev] = {"acknowledged": len(times), "unacknowledged": unacked.get(sev, 0),
                    "median_seconds": statistics.median(times) if times else None,
                    "p90_seconds": times[min(len(times) - 1, int(0.9 * len(times)))] if times else None,
                    "max_seconds": times[-1] if times else None}
    incidents = []
    if _has_table(conn, "incidents"):
        for r in conn.execute(
                "SELECT a.id, a.rule_id, a.severity, i.detected_at, i.ba_deadline, i.breach_deadline, a.acked_at, "
                "a.status FROM incidents i JOIN alerts a ON a.id = i.alert_id WHERE i.detected_at >= ? "
                "AND i.detected_at < ? ORDER BY i.detected_at", (since, until)):
            acked = r[6]
            incidents.append({"alert_id": r[0], "rule": r[1], "severity": r[2], "detected_at": r[3],
                              "ba_deadline": r[4], "breach_deadline": r[5], "acked_at": acked, "status": r[7],
                              "within_ba_window": acked is not None and acked <= r[4],
                              "ba_window_missed": (acked or now) > r[4]})
    silences = []
    if _has_table(conn, "silences"):
        silences = [s.as_dict() for s in list_silences(conn, now, include_expired=True, since=since, until=until)]
    delivery = []
    if _has_table(conn, "notifications"):
        delivery = [{"receiver": r[0], "status": r[1], "notifications": r[2], "attempts": r[3]} for r in conn.execute(
            "SELECT receiver, status, COUNT(*), SUM(attempts) FROM notifications WHERE created >= ? AND created < ? "
            "GROUP BY receiver, status ORDER BY receiver, status", (since, until))]
    return {
        "period": {"from": since, "to": until, "generated": now},
        "alerts": {"total": len(rows), "by_severity": by_sev,
                   "by_rule": [{"rule": k[0], "severity": k[1], "alerts": v[0], "events": v[1], "open": v[2],
                                "acknowledged": v[3], "resolved": v[4]}
                               for k, v in sorted(by_rule.items(), key=lambda kv: (-kv[1][0], kv[0]))],
                   "per_day": {"days": days, "by_severity": {s: per_day[s] for s in SEVERITY_ORDER if s in per_day}}},
        "time_to_acknowledge": tta,
        "tuning": rule_tuning(conn, since, until),
        "incidents": incidents,
        "silences": silences,
        "delivery": delivery,
        "dormant_accounts": dormant_accounts(conn, until, dormant_days),
        "ingestion_gaps": ingestion_gaps(conn, since, until, gap_seconds),
        "continuity": continuity(conn, since, until),
        "coverage": coverage(conn, since, until, rules, known_controls),
        "audit": audit.as_dict() if audit is not None else None,
    }


DISPOSITIONS = ("true_positive", "false_positive", "benign", "duplicate")


def rule_tuning(conn: sqlite3.Connection, since: float, until: float) -> list[dict[str, Any]]:
    """Per rule, what a team tunes it by: alerts raised in the period, how they ended (disposition, resolved by
    hand or by the rule's quiet period), the false-positive rate among the alerts given a disposition, and the
    median time to acknowledge (alerts nobody acknowledged, such as auto-resolved ones, are not in it)."""
    resolutions = _has_table(conn, "alert_resolutions")
    sql = ("SELECT a.rule_id, a.created, a.acked_at, a.status, " +
           ("r.how, r.disposition FROM alerts a LEFT JOIN alert_resolutions r ON r.alert_id = a.id "
            if resolutions else "NULL, NULL FROM alerts a ") +
           "WHERE a.created >= ? AND a.created < ? AND json_extract(a.labels, '$.digest') IS NOT 'true'")
    rules: dict[str, dict[str, Any]] = {}
    acks: dict[str, list[float]] = {}
    for rule, created, acked_at, status, how, disposition in conn.execute(sql, (since, until)):
        r = rules.setdefault(rule, {"rule": rule, "alerts": 0, "open": 0, "acknowledged": 0, "resolved": 0,
                                    "auto_resolved": 0, "dispositions": dict.fromkeys(DISPOSITIONS, 0),
                                    "without_disposition": 0})
        r["alerts"] += 1
        r[status if status in ("open", "acknowledged", "resolved") else "open"] += 1
        if how == "auto":
            r["auto_resolved"] += 1
        if disposition in r["dispositions"]:
            r["dispositions"][disposition] += 1
        else:
            r["without_disposition"] += 1
        if acked_at is not None:
            acks.setdefault(rule, []).append(acked_at - created)
    out = []
    for rule in sorted(rules, key=lambda k: (-rules[k]["alerts"], k)):
        r = rules[rule]
        judged = sum(r["dispositions"].values())
        times = acks.get(rule, [])
        out.append({**r, "false_positive_rate": r["dispositions"]["false_positive"] / judged if judged else None,
                    "median_time_to_acknowledge_seconds": statistics.median(times) if times else None})
    return out


def _days(since: float, until: float) -> list[str]:
    """The UTC dates the period touches, oldest first."""
    first, last = int(since // DAY), int((until - 1e-6) // DAY)
    return [datetime.fromtimestamp(d * DAY, UTC).strftime("%Y-%m-%d") for d in range(first, last + 1)]


def _day_index(ts: float, since: float) -> int:
    return int(ts // DAY) - int(since // DAY)


def continuity(conn: sqlite3.Connection, since: float, until: float) -> dict[str, Any]:
    """Events stored per source and UTC day of the period: a day at 0 is a day the source was not monitored."""
    days = _days(since, until)
    sources: dict[str, list[int]] = {}
    if _has_table(conn, "events"):
        known = [r[0] for r in conn.execute("SELECT DISTINCT source FROM events WHERE ts < ?", (until,))]
        for source in sorted(known):
            sources[source] = [0] * len(days)
        first = int(since // DAY)
        for source, day, n in conn.execute("SELECT source, CAST(ts / 86400 AS INTEGER), COUNT(*) FROM events "
                                           "WHERE ts >= ? AND ts < ? GROUP BY 1, 2", (since, until)):
            sources.setdefault(source, [0] * len(days))[int(day) - first] += n
    return {"days": days, "sources": {s: {"per_day": v, "total": sum(v), "days_without_events": v.count(0)}
                                      for s, v in sources.items()}}


def coverage(conn: sqlite3.Connection, since: float, until: float, rules: Sequence[RuleControls],
             known_controls: Sequence[str]) -> dict[str, Any]:
    """The HIPAA control matrix: per control, its rules and the events each enabled one evaluated in the
    period (from the detection engine's per-day activity); a control is covered when one of them did."""
    evaluated: dict[str, int] = {}
    if _has_table(conn, "rule_activity"):
        evaluated = {r: int(n) for r, n in conn.execute(
            "SELECT rule, SUM(evaluations) FROM rule_activity WHERE day >= ? AND day <= ? GROUP BY rule",
            (int(since // DAY), int((until - 1e-6) // DAY)))}
    controls = list(dict.fromkeys([*known_controls, *sorted({c for r in rules for c in r.controls})]))
    out = []
    for control in controls:
        members: list[dict[str, Any]] = [{"rule": r.rule, "severity": r.severity, "enabled": r.enabled,
                    "evaluations": evaluated.get(r.rule, 0) if r.enabled else 0}
                   for r in rules if control in r.controls]
        out.append({"control": control, "rules": members,
                    "covered": any(m["enabled"] and m["evaluations"] > 0 for m in members)})
    return {"controls": out, "covered": sum(1 for c in out if c["covered"]), "total": len(out)}


def dormant_accounts(conn: sqlite3.Connection, at: float, days: float) -> dict[str, Any]:
    """The access-review list: the detection engine's latest dormant-account digest up to ``at`` when there is
    one (it knows accounts beyond the retained events), else accounts whose last stored event is older than
    ``days`` at ``at``, computed from the events table."""
    digest = conn.execute("SELECT rule_id, details FROM alerts WHERE json_extract(labels, '$.digest') = 'true' "
                          "AND created <= ? ORDER BY created DESC LIMIT 1", (at,)).fetchone()
    if digest is not None:
        d = orjson.loads(digest[1])
        accounts_from_rule = [{"user": a.get("account"), "last_event": _ts(a.get("last_activity")),
                               "idle_days": a.get("idle_days"), "events": None} for a in d.get("accounts", [])]
        return {"threshold_days": d.get("idle_threshold_days", days),
                "source": f"rule {digest[0]} digest as of {d.get('as_of', '-')} ({d.get('total', '?')} total)",
                "accounts": accounts_from_rule}
    cutoff = at - days * 86400
    accounts = []
    if _has_table(conn, "events"):
        for user, last, n in conn.execute(
                "SELECT user, MAX(ts), COUNT(*) FROM events WHERE user IS NOT NULL AND ts < ? GROUP BY user "
                "HAVING MAX(ts) < ? ORDER BY MAX(ts)", (at, cutoff)):
            accounts.append({"user": user, "last_event": last, "idle_days": round((at - last) / 86400, 1),
                             "events": n})
    return {"threshold_days": days, "source": "events table", "accounts": accounts}


def _ts(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def ingestion_gaps(conn: sqlite3.Connection, since: float, until: float, gap_seconds: float) -> list[dict[str, Any]]:
    """Per source, every stretch of at least ``gap_seconds`` inside the period with no stored event."""
    if not _has_table(conn, "events"):
        return []
    gaps: list[dict[str, Any]] = []
    rows = conn.execute(
        "SELECT source, prev, ts FROM (SELECT source, ts, LAG(ts) OVER (PARTITION BY source ORDER BY ts) AS prev "
        "FROM events WHERE ts >= ? AND ts < ?) WHERE prev IS NOT NULL AND ts - prev >= ?",
        (since, until, gap_seconds)).fetchall()
    for source, start, end in rows:
        gaps.append({"source": source, "from": start, "to": end, "seconds": end - start})
    # Silence at the edges of the period counts too (a source that stopped and never came back).
    for source, first, last in conn.execute("SELECT source, MIN(ts), MAX(ts) FROM events WHERE ts >= ? AND ts < ? "
                                            "GROUP BY source", (since, until)):
        if first - since >= gap_seconds:
            gaps.append({"source": source, "from": since, "to": first, "seconds": first - since})
        if until - last >= gap_seconds:
            gaps.append({"source": source, "from": last, "to": until, "seconds": until - last})
    known = {r[0] for r in conn.execute("SELECT DISTINCT source FROM events WHERE ts < ?", (since,))}
    active = {g["source"] for g in gaps} | {r[0] for r in conn.execute(
        "SELECT DISTINCT source FROM events WHERE ts >= ? AND ts < ?", (since, until))}
    for source in sorted(known - active):
        gaps.append({"source": source, "from": since, "to": until, "seconds": until - since})
    gaps.sort(key=lambda g: (g["source"], g["from"]))
    return gaps


def to_markdown(rep: dict[str, Any]) -> str:
    """The report as Markdown for the compliance binder."""
    p = rep["period"]
    out = [f"# sentinel evidence report: {_iso(p['from'])} to {_iso(p['to'])}", "",
           f"Generated {_iso(p['generated'])}.", "", "## Alerts by severity", "",
           "| severity | alerts |", "| --- | --- |"]
    for sev in ("critical", "high", "medium", "low", "info"):
        if sev in rep["alerts"]["by_severity"]:
            out.append(f"| {sev} | {rep['alerts']['by_severity'][sev]} |")
    out += [f"| **total** | {rep['alerts']['total']} |", "", "## Alerts by rule", "",
            "| rule | severity | alerts | events |", "| --- | --- | --- | --- |"]
    out += [f"| {r['rule']} | {r['severity']} | {r['alerts']} | {r['events']} |" for r in rep["alerts"]["by_rule"]]
    out += ["", "## Time to acknowledge", "", "| severity | acknowledged | unacknowledged | median | p90 | max |",
            "| --- | --- | --- | --- | --- | --- |"]
    for sev, t in rep["time_to_acknowledge"].items():
        cells = [format_duration(t[k]) if t[k] is not None else "-" for k in ("median_seconds", "p90_seconds",
                                                                               "max_seconds")]
        out.append(f"| {sev} | {t['acknowledged']} | {t['unacknowledged']} | {' | '.join(cells)} |")
    out += ["", "## Rule tuning: dispositions and false positives", "",
            "| rule | alerts | true positive | false positive | benign | duplicate | no disposition | auto-resolved "
            "| false-positive rate | median time to acknowledge |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in rep.get("tuning", []):
        d = t["dispositions"]
        rate = "-" if t["false_positive_rate"] is None else f"{100 * t['false_positive_rate']:.0f}%"
        tta = t["median_time_to_acknowledge_seconds"]
        out.append(f"| {t['rule']} | {t['alerts']} | {d['true_positive']} | {d['false_positive']} | {d['benign']} | "
                   f"{d['duplicate']} | {t['without_disposition']} | {t['auto_resolved']} | {rate} | "
                   f"{'-' if tta is None else format_duration(round(tta))} |")
    out += ["", "## Incident clock (high and critical)", "",
            "| alert | rule | detected | BA deadline | breach deadline | acknowledged | within BA window |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    out += [f"| {i['alert_id'][:12]} | {i['rule']} | {_iso(i['detected_at'])} | {_iso(i['ba_deadline'])} | "
            f"{_iso(i['breach_deadline'])} | {_iso(i['acked_at'])} | {'yes' if i['within_ba_window'] else 'NO'} |"
            for i in rep["incidents"]]
    out += ["", "## Silences", "", "| id | matchers | from | until | author | reason | suppressed |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in rep["silences"]:
        end = s["ends_at"] if s["expired_at"] is None else min(s["ends_at"], s["expired_at"])
        out.append(f"| {s['id']} | {' '.join(s['matchers'])} | {_iso(s['starts_at'])} | {_iso(end)} | "
                   f"{s['author']} | {s['reason']} | {s['suppressed']} |")
    out += ["", "## Notification delivery", "", "| receiver | status | notifications | attempts |",
            "| --- | --- | --- | --- |"]
    out += [f"| {d['receiver']} | {d['status']} | {d['notifications']} | {d['attempts']} |" for d in rep["delivery"]]
    dormant = rep["dormant_accounts"]
    out += ["", f"## Dormant-account review (no activity for {dormant['threshold_days']:g} days)", "",
            f"Source: {dormant['source']}.", "",
            "| account | last event | idle days | events retained |", "| --- | --- | --- | --- |"]
    out += [f"| {a['user']} | {_iso(a['last_event'])} | {a['idle_days']} | {a['events'] or '-'} |"
            for a in dormant["accounts"]]
    out += ["", "## Gaps in ingestion", "", "| source | from | to | length |", "| --- | --- | --- | --- |"]
    out += [f"| {g['source']} | {_iso(g['from'])} | {_iso(g['to'])} | {format_duration(g['seconds'])} |"
            for g in rep["ingestion_gaps"]]
    if not rep["ingestion_gaps"]:
        out.append("| (none) | | | |")
    cont = rep.get("continuity") or {"sources": {}}
    out += ["", "## Monitoring continuity", "", "| source | events | days without events |", "| --- | --- | --- |"]
    out += [f"| {src} | {c['total']} | {c['days_without_events']} |" for src, c in cont["sources"].items()]
    cov = rep.get("coverage") or {"controls": [], "covered": 0, "total": 0}
    out += ["", f"## HIPAA control coverage ({cov['covered']} of {cov['total']} covered)", "",
            "| control | covered | rules (events evaluated) |", "| --- | --- | --- |"]
    for c in cov["controls"]:
        rules = ", ".join(f"{m['rule']} ({m['evaluations'] if m['enabled'] else 'disabled'})" for m in c["rules"])
        out.append(f"| {c['control']} | {'yes' if c['covered'] else 'NO'} | {rules or '-'} |")
    audit = rep.get("audit")
    out += ["", "## Audit trail", ""]
    if audit is None or not audit["found"]:
        out.append("No audit trail found.")
    else:
        out.append(f"{'Chain intact' if audit['ok'] else 'TAMPERED'}: {audit['records']} records, head seq "
                   f"{audit['head_seq']}, head hash `{audit['head_hash']}`.")
        out += [f"- {problem}" for problem in audit["problems"]]
    return "\n".join(out) + "\n"
