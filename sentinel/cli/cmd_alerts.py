"""``sentinel alerts list|show|ack|resolve``, ``sentinel silence add|list|expire`` and ``sentinel report``."""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from, duration_arg, open_db, positive_int, time_arg
from sentinel.errors import SentinelError
from sentinel.metrics.registry import HIPAA_CONTROLS
from sentinel.route.durations import format_duration, parse_duration
from sentinel.route.lifecycle import (
    DISPOSITIONS,
    STATUSES,
    LifecycleError,
    count_alerts,
    get_alert,
    list_alerts,
    transition,
)
from sentinel.route.report import AuditStatus, RuleControls, build_report, to_markdown
from sentinel.route.silences import (
    BOUND_SILENCE_LIMIT,
    add_silence,
    expire_silence,
    list_silences,
    parse_matcher,
    silence_alert,
)
from sentinel.route.state import ensure_schema
from sentinel.store.database import immediate
from sentinel.store.query import parse_time


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(deadline: float | None, now: float, done: bool) -> str:
    """``in 3h`` / ``OVERDUE 2h`` for a deadline; ``-`` when there is none or the alert is handled."""
    if deadline is None:
        return "-"
    if done:
        return _iso(deadline)
    left = round((deadline - now) / 60) * 60  # minutes are precise enough for a deadline
    return f"in {format_duration(left)}" if left > 0 else f"OVERDUE {format_duration(-left)}"


def _conn(args: argparse.Namespace, write: bool = False) -> sqlite3.Connection:
    cfg = config_from(args)
    conn = open_db(cfg, write=write)
    if write:
        ensure_schema(conn)
    return conn


def _who(args: argparse.Namespace) -> str:
    return args.by or getpass.getuser()


def _audit(args: argparse.Namespace, action: str, actor: str, **details: Any) -> None:
    """Record a responder's decision in the daemon's hash-chained audit trail (evidence for auditors)."""
    from sentinel.audit.chain import AuditLog
    from sentinel.daemon.lifecycle import audit_path

    AuditLog(audit_path(config_from(args))).append(action, actor=actor, **details)


def _json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


# --- alerts ---------------------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    conn = _conn(args)
    now = time.time()
    status = None if args.status == "all" else args.status
    try:
        views = list_alerts(conn, status, args.severity, parse_time(args.since, now), None, args.limit)
    except sqlite3.OperationalError as exc:
        raise SentinelError(f"cannot read alerts: {exc}") from None
    shown = f"({len(views)} alerts)"
    if len(views) == args.limit:
        total = count_alerts(conn, status, args.severity, parse_time(args.since, now))
        if total > len(views):
            shown = f"showing {len(views)} of {total} alerts (use --limit)"
    if args.format == "json":
        _json([v.as_dict() for v in views])
        print(shown, file=sys.stderr)
        return 0
    print("\t".join(("id", "created", "severity", "rule", "user", "host", "status", "count", "BA deadline",
                     "breach deadline")))
    for v in views:
        a = v.alert
        handled = v.status != "open"
        print("\t".join((a.id[:12], _iso(a.created), a.severity, a.rule_id, str(a.labels.get("user.name", "-")),
                         str(a.labels.get("host.name", "-")), v.status, str(a.count),
                         _clock(v.ba_deadline, now, handled), _clock(v.breach_deadline, now, handled))))
    print(shown, file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    conn = _conn(args)
    view = get_alert(conn, args.id)
    doc = view.as_dict()
    try:
        doc["notifications"] = [
            {"id": r[0], "receiver": r[1], "kind": r[2], "status": r[3], "attempts": r[4], "created": r[5],
             "delivered_at": r[6], "last_error": r[7]}
            for r in conn.execute(
                "SELECT DISTINCT n.id, n.receiver, n.kind, n.status, n.attempts, n.created, n.delivered_at, "
                "n.last_error FROM notifications n LEFT JOIN route_members m ON m.notification_id = n.id "
                "WHERE m.alert_id = ? OR n.key LIKE ? ORDER BY n.id", (view.alert.id, f"%:{view.alert.id}:%"))]
    except sqlite3.OperationalError:
        doc["notifications"] = []
    if args.format == "json":
        _json(doc)
        return 0
    for key in ("id", "rule", "title", "severity", "status", "count", "summary", "runbook"):
        print(f"{key:16} {doc[key]}")
    for key in ("first_seen", "last_seen", "created", "acked_at", "resolved_at", "detected_at", "ba_deadline",
                "breach_deadline"):
        print(f"{key:16} {_iso(doc[key])}")
    print(f"{'acked_by':16} {doc['acked_by'] or '-'}")
    print(f"{'labels':16} {' '.join(f'{k}={v}' for k, v in doc['labels'].items())}")
    print(f"{'events':16} {len(doc['event_ids'])} listed; see them with: sentinel search --text <id> "
          f"or the event ids in --format json")
    for n in doc["notifications"]:
        print(f"notification {n['id']}: {n['kind']} → {n['receiver']} {n['status']} after {n['attempts']} "
              f"attempt(s){' (' + n['last_error'] + ')' if n['last_error'] else ''}")
    return 0


def run_transition(args: argparse.Namespace) -> int:
    conn = _conn(args, write=True)
    try:
        with immediate(conn):
            view, why = transition(conn, "ack" if args.action == "ack" else "resolve", args.id, _who(args),
                                   time.time(), getattr(args, "disposition", None), getattr(args, "note", None))
    except LifecycleError as exc:
        raise SentinelError(str(exc)) from None
    _audit(args, "ack" if args.action == "ack" else "resolve", _who(args), alert_id=view.alert.id,
           rule=view.alert.rule_id, severity=view.alert.severity, **why)
    shown = f" ({view.disposition})" if view.disposition else ""
    print(f"{view.alert.id} {view.status} by {_who(args)}{shown}")
    return 0


# --- silences -------------------------------------------------------------------------------------------------


def run_silence_add(args: argparse.Namespace) -> int:
    if not args.matchers and not args.alert:
        raise SentinelError("give at least one MATCHER, or --alert ID to silence that alert's key until it resolves")
    if args.duration is None and not args.alert:
        raise SentinelError("give --duration (a silence bound with --alert may omit it: it ends with the alert)")
    try:
        matchers = [parse_matcher(m) for m in args.matchers]
        duration = parse_duration(args.duration or BOUND_SILENCE_LIMIT)
    except ValueError as exc:
        raise SentinelError(str(exc)) from None
    conn = _conn(args, write=True)
    try:
        with immediate(conn):
            if args.alert:
                s = silence_alert(conn, args.alert, matchers, duration, args.author or getpass.getuser(),
                                  args.reason, time.time())
            else:
                s = add_silence(conn, matchers, duration, args.author or getpass.getuser(), args.reason,
                                time.time())
    except (ValueError, LifecycleError) as exc:
        raise SentinelError(str(exc)) from None
    _audit(args, "silence_add", s.author, silence_id=s.id, matchers=[str(m) for m in s.matchers],
           ends_at=s.ends_at, reason=s.reason, **({"alert_id": s.alert_id} if s.alert_id else {}))
    bound = f" or until alert {s.alert_id} resolves" if s.alert_id else ""
    print(f"silence {s.id} until {_iso(s.ends_at)}{bound}: {' '.join(str(m) for m in s.matchers)}")
    return 0


def run_silence_list(args: argparse.Namespace) -> int:
    conn = _conn(args, write=True)
    now = time.time()
    silences = list_silences(conn, now, include_expired=args.all)
    if args.format == "json":
        _json([s.as_dict() for s in silences])
        return 0
    print("\t".join(("id", "matchers", "starts", "ends", "author", "reason", "suppressed", "state")))
    for s in silences:
        state = "active" if s.active(now) else ("expired" if s.expired_at or s.ends_at <= now else "pending")
        print("\t".join((s.id, " ".join(str(m) for m in s.matchers), _iso(s.starts_at), _iso(s.ends_at), s.author,
                         s.reason, str(s.suppressed), state)))
    return 0


def run_silence_expire(args: argparse.Namespace) -> int:
    conn = _conn(args, write=True)
    with immediate(conn):
        ok = expire_silence(conn, args.id, time.time())
    if not ok:
        raise SentinelError(f"no active silence {args.id!r}")
    _audit(args, "silence_expire", getpass.getuser(), silence_id=args.id)
    print(f"silence {args.id} expired")
    return 0


# --- report ---------------------------------------------------------------------------------------------------


def run_report(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_time(args.since, now)
    until = parse_time(args.until, now) if args.until else now
    if since is None or until is None or until <= since:
        raise SentinelError("give --from before --to (e.g. --from 30d, or ISO times)")
    conn = _conn(args)
    cfg = config_from(args)
    rep = build_report(conn, since, until, now, parse_duration(args.dormant) / 86400, parse_duration(args.gap),
                       _rule_controls(cfg), HIPAA_CONTROLS, _audit_status(cfg))
    if args.format == "json":
        text = orjson.dumps(rep, option=orjson.OPT_INDENT_2).decode() + "\n"
    elif args.format == "html":
        from sentinel.route.report_html import to_html

        text = to_html(rep)
    else:
        text = to_markdown(rep)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}", file=sys.stderr)
    return 0


def _rule_controls(cfg: Any) -> list[RuleControls]:
    """Every rule of the pack with its HIPAA controls; rules that do not load are left out (``check`` names them)."""
    from sentinel.detect.engine import hipaa_controls
    from sentinel.detect.loader import rule_pack

    rules = rule_pack(cfg.rule_sources)[0].rules  # every layer: shipped rules and the operator's
    disabled = set(cfg.config.detection.disabled_rules)
    on = cfg.config.detection.enabled
    return [RuleControls(r.id, r.spec.severity, on and r.spec.enabled and r.id not in disabled,
                         tuple(hipaa_controls(r.spec.tags))) for r in rules]


def _audit_status(cfg: Any) -> AuditStatus:
    """The audit trail checked as ``sentinel audit verify --allow-pruned`` does (retention may drop old segments)."""
    from sentinel.audit.chain import verify
    from sentinel.daemon.lifecycle import audit_path

    path = audit_path(cfg)
    if not path.exists():
        return AuditStatus(str(path), False)
    result = verify(path, allow_pruned=True)
    head = result.head
    return AuditStatus(str(path), True, result.records, head[0] if head else None, head[1] if head else None,
                       tuple(result.problems))


def register(sub: SubParsers) -> None:
    p = sub.add_parser("alerts", help="list, show, acknowledge and resolve alerts")
    asub = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    q = asub.add_parser("list", help="alerts with their incident-clock deadlines, newest first")
    add_config_arg(q)
    q.add_argument("--status", choices=[*STATUSES, "all"], default="all")
    q.add_argument("--severity", choices=["info", "low", "medium", "high", "critical"],
                   help="this severity and above")
    q.add_argument("--since", type=time_arg, help="15m, 2h, 7d or an ISO time")
    q.add_argument("--limit", type=positive_int, default=100)
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(func=run_list)
    q = asub.add_parser("show", help="one alert, its notifications and their delivery")
    add_config_arg(q)
    q.add_argument("id", help="alert id or a unique prefix (6+ characters)")
    q.add_argument("--format", choices=["text", "json"], default="text")
    q.set_defaults(func=run_show)
    for action, text in (("ack", "acknowledge (stops repeats, escalation and reminders)"), ("resolve", "resolve")):
        q = asub.add_parser(action, help=text)
        add_config_arg(q)
        q.add_argument("id", help="alert id or a unique prefix (6+ characters)")
        q.add_argument("--by", help="who (default: your login name)")
        if action == "resolve":
            q.add_argument("--disposition", choices=DISPOSITIONS,
                           help="what the alert turned out to be (recorded in the audit trail and the report)")
            q.add_argument("--note", help="why, in a sentence (kept in the audit trail; never sent unless a "
                                          "template names {{ note }})")
        q.set_defaults(func=run_transition, action=action)

    p = sub.add_parser("silence", help="add, list and expire silences")
    ssub = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    q = ssub.add_parser("add", help="silence alerts matching every MATCHER (label=value, label!=value, label=~re)")
    add_config_arg(q)
    q.add_argument("matchers", nargs="*", metavar="MATCHER")
    q.add_argument("--duration", type=duration_arg, help="e.g. 30m, 2h, 1d")
    q.add_argument("--alert", metavar="ID", help="bind to this alert: silence its rule and key, and end when it "
                                                 "resolves (default duration then 7d)")
    q.add_argument("--author", help="who (default: your login name)")
    q.add_argument("--reason", required=True, help="why; it goes into the evidence report")
    q.set_defaults(func=run_silence_add)
    q = ssub.add_parser("list", help="active and pending silences")
    add_config_arg(q)
    q.add_argument("--all", action="store_true", help="include expired silences")
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(func=run_silence_list)
    q = ssub.add_parser("expire", help="end a silence now")
    add_config_arg(q)
    q.add_argument("id")
    q.set_defaults(func=run_silence_expire)

    p = sub.add_parser("report", help="evidence report: alerts, time to acknowledge, silences, dormant accounts, "
                                      "ingestion gaps")
    add_config_arg(p)
    p.add_argument("--from", dest="since", type=time_arg, required=True, help="start: 30d (ago) or an ISO time")
    p.add_argument("--to", dest="until", type=time_arg, help="end: ISO time or 1d (ago); default now")
    p.add_argument("--format", choices=["markdown", "json", "html"], default="markdown",
                   help="html: one self-contained page (inline CSS and SVG, printable)")
    p.add_argument("-o", "--output", type=Path, default=None, help="write the report to this file (default: stdout)")
    p.add_argument("--dormant", type=duration_arg, default="90d",
                   help="idle time that makes an account dormant (default 90d)")
    p.add_argument("--gap", type=duration_arg, default="1h",
                   help="shortest stretch without events reported as a gap (default 1h)")
    p.set_defaults(func=run_report)
