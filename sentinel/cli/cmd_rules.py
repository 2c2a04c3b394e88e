"""``sentinel rules`` (the pack, HIPAA coverage), ``sentinel test-rule`` and ``sentinel accounts dormant``."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from, count_or_zero, input_file, open_db, positive_float
from sentinel.conf.models import LoadedConfig
from sentinel.detect.compiled import CompiledRule
from sentinel.detect.loader import load_for_config, rule_pack
from sentinel.errors import ConfigError, ConfigErrors, Location, SentinelError
from sentinel.events.model import Event, iso, parse_iso


def _rules(cfg: LoadedConfig) -> list[CompiledRule]:
    rules, _, errors = load_for_config(cfg.rule_sources)
    if errors:
        raise ConfigErrors(errors)
    return rules


def list_rules(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    pack, _, errors = rule_pack(cfg.rule_sources)
    if errors:
        raise ConfigErrors(errors)
    disabled = set(cfg.config.detection.disabled_rules)
    rules = [r for r in pack.rules if r.spec.enabled and r.id not in disabled]
    if args.source != "all":
        rules = [r for r in rules if ("sigma" in r.extra) == (args.source == "sigma")]
    if args.hipaa:
        matrix: dict[str, list[str]] = {control: [] for control in HIPAA_ANCHORS}
        for r in rules:
            for control in r.spec.hipaa():
                matrix.setdefault(control, []).append(r.id)
        width = max((len(c) for c in matrix), default=10)
        print(f"{'HIPAA control':<{width}}  rules")
        for control in sorted(matrix, key=_control_order):
            covered = ", ".join(sorted(matrix[control]))
            print(f"{control:<{width}}  {covered or '(no rule: not observable in logs, check configuration)'}")
        uncovered = [r.id for r in rules if not r.spec.hipaa()]
        if uncovered:
            print(f"(no HIPAA tag: {', '.join(uncovered)})")
        return 0
    shipped = cfg.config.shipped_defaults
    for r in rules:
        kind = r.extra["sigma"]["kind"] if "sigma" in r.extra else r.spec.type
        print(f"{r.id:<42} {r.spec.severity:<8} {r.spec.type:<9} {r.spec.title}  [{pack.origin(r, shipped)}]"
              + (f"  (sigma {kind})" if "sigma" in r.extra else ""))
    for rid, path in sorted(pack.turned_off.items()):
        print(f"{rid:<42} off      (turned off by {path})")
    print(f"{len(rules)} rule(s) enabled")
    if args.source != "native":
        for problem in pack.skipped:
            print(problem)
        if pack.skipped:
            print(f"{len(pack.skipped)} Sigma rule(s) not loaded (see why above; `sentinel check` lists them too)")
    return 0


# The HIPAA Security Rule anchors the pack is mapped to (docs: DESIGN.md); listed even when no rule covers one.
HIPAA_ANCHORS = ("164.312(b)", "164.312(a)(1)", "164.312(a)(2)(i)", "164.312(a)(2)(iii)", "164.312(c)(1)",
                 "164.312(d)", "164.312(e)(1)", "164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)", "164.308(a)(6)")


def _control_order(control: str) -> tuple[int, str]:
    return (int(control.split(".")[1][:3]) if "." in control else 0, control)


def _jsonl_events(path: Path) -> Iterator[Event]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                fields = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"not a JSON object: {exc}", Location(str(path), n)) from None
            if not isinstance(fields, dict) or "@timestamp" not in fields:
                raise ConfigError("expected a flat ECS event with @timestamp", Location(str(path), n))
            fields.setdefault("event.id", f"line-{n}")
            fields.setdefault("event.kind", "event")
            ev = Event.from_fields(fields)
            ev.source = str(fields.get("sentinel.source") or ev.source)
            yield ev


def _log_events(cfg: LoadedConfig, path: Path, collector: str) -> Iterator[Event]:
    from sentinel.daemon.build import source_host
    from sentinel.daemon.collectors import load_collector_layers
    from sentinel.decode.engine import Decoder
    from sentinel.events.records import RawRecord

    collectors, errors = load_collector_layers(cfg.collector_dirs)
    if collector not in collectors:
        known = ", ".join(sorted(collectors))
        raise ConfigErrors([*errors, ConfigError(f"unknown collector {collector!r}; known: {known}",
                                                 Location("--collector"))])
    decoder = Decoder(collectors[collector].spec, cfg.config.timezone, source_host(cfg, collectors[collector].spec))
    reference = path.stat().st_mtime
    offset = 0
    now = time.time()
    with path.open("rb") as fh:
        for line in fh:
            data = line.rstrip(b"\n")
            rec = RawRecord(collector, "test-rule", str(path), offset, offset + len(line), data,
                            reference_time=reference)
            offset += len(line)
            if data:
                yield decoder.decode(rec, now)[0]


def test_rule(args: argparse.Namespace) -> int:
    """Replay events against one rule in memory and print the alerts with why."""
    from sentinel.detect.engine import RuleEngine
    from sentinel.store.alerts import ALERT_COLUMNS, row_to_alert
    from sentinel.store.schema import DDL

    cfg = config_from(args)
    rules, lists, errors = load_for_config(cfg.rule_sources)
    chosen = [r for r in rules if r.id == args.rule]
    if not chosen:
        raise ConfigErrors([*errors, ConfigError(f"unknown or disabled rule {args.rule!r}",
                                                 Location(str(cfg.rules_dir)))])
    if args.events:
        events = list(_jsonl_events(args.events))
    else:
        if not args.collector:
            raise SentinelError("--log needs --collector NAME")
        events = list(_log_events(cfg, args.log, args.collector))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(DDL)
    engine = RuleEngine(chosen, cfg.config.detection, conn, lists=lists, zone=cfg.config.timezone)
    by_id = {e.id: e for e in events}
    now = time.time()
    for i in range(0, len(events), 1000):
        conn.execute("BEGIN")
        engine.process(conn, events[i:i + 1000], now)
        conn.execute("COMMIT")
    alerts = [row_to_alert(r) for r in conn.execute(f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY rowid")]
    rt = engine.runtime(args.rule)
    print(f"rule {args.rule} ({rt.rule.spec.type}, {rt.rule.spec.severity}): {len(events)} events, "
          f"{sum(1 for e in events if rt.rule.predicate(e.fields))} matched the filter, {len(alerts)} alert(s)")
    for a in alerts:
        print(f"\n[{a.severity}] {a.title}\n  summary:  {a.summary}\n  key:      {a.group_key}\n"
              f"  seen:     {iso(a.first_seen)} .. {iso(a.last_seen)}  count {a.count}")
        why = a.details.get("why")
        if why:
            print(f"  why:      {why}")
        extra = {k: v for k, v in a.details.items() if k not in ("why", "accounts")}
        print(f"  details:  {orjson.dumps(extra, default=str).decode()}")
        shown = a.event_ids[: args.show]
        for eid in shown:
            e = by_id.get(eid)
            if e is not None:
                print(f"    {e.fields.get('@timestamp')}  {e.fields.get('event.action')}  "
                      f"{e.fields.get('event.outcome', '')}  user={e.fields.get('user.name', '')}  "
                      f"src={e.fields.get('source.ip', '')}  id={eid}")
        if len(a.event_ids) > len(shown):
            print(f"    ... {len(a.event_ids) - len(shown)} more event(s)")
    return 0


def dormant_accounts(conn: sqlite3.Connection, rules: list[CompiledRule], days: float,
                     at: float) -> list[dict[str, Any]]:
    """Accounts whose last activity at or before ``at`` (as the dormant rules remember it: first, last and
    the long gaps between) is at least ``days`` before ``at``; accounts not seen yet at ``at`` are left out."""
    from sentinel.detect.kinds import last_activity_at
    from sentinel.detect.state import is_bookkeeping

    ids = [r.id for r in rules if r.spec.type == "dormant"]
    rows: dict[str, dict[str, Any]] = {}
    for rid in ids:
        for key, blob in conn.execute("SELECT key, blob FROM rule_state WHERE rule = ?", (rid,)):
            if is_bookkeeping(key):
                continue
            state = orjson.loads(blob)
            account = str(state.get("n") or key.split("=", 1)[-1])
            then = last_activity_at(state, at)
            if then is None:
                continue
            last = float(then)
            known = rows.get(account)
            if known is None or last > known["last"]:
                rows[account] = {"account": account, "last": last, "first": float(state.get("f", last))}
    out = []
    for row in sorted(rows.values(), key=lambda r: r["last"]):
        idle = (at - row["last"]) / 86400
        if idle >= days:
            out.append({"account": row["account"], "last_activity": iso(row["last"]),
                        "first_seen": iso(row["first"]), "idle_days": int(idle)})
    return out


def accounts(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    rules = _rules(cfg)
    at = parse_iso(args.as_of) if args.as_of else time.time()
    conn = open_db(cfg)
    try:
        rows = dormant_accounts(conn, rules, args.days, at)
    except sqlite3.OperationalError as exc:
        raise SentinelError(f"cannot read rule state: {exc} (has the daemon run with detection enabled?)") from None
    finally:
        conn.close()
    if args.format == "json":
        print(orjson.dumps({"as_of": iso(at), "idle_days": args.days, "accounts": rows},
                           option=orjson.OPT_INDENT_2).decode())
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["account", "last_activity", "first_seen", "idle_days"])
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        print(f"{'account':<32} {'last activity':<26} idle days")
        for r in rows:
            print(f"{r['account']:<32} {r['last_activity']:<26} {r['idle_days']}")
        print(f"{len(rows)} account(s) idle for at least {args.days:g} days as of {iso(at)}")
    return 0


def _iso_arg(text: str) -> str:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-03-01T00:00:00Z, got {text!r}") from None
    return text


def register(sub: SubParsers) -> None:
    p = sub.add_parser("rules", help="list the enabled detection rules, or the HIPAA coverage matrix")
    add_config_arg(p)
    p.add_argument("--hipaa", action="store_true", help="print HIPAA control -> rules")
    p.add_argument("--source", choices=["all", "native", "sigma"], default="all",
                   help="sigma: only the Sigma rules (*.yml), and those that could not be loaded with why")
    p.set_defaults(func=list_rules)

    t = sub.add_parser("test-rule", help="replay events against one rule and print the alerts it would raise")
    add_config_arg(t)
    t.add_argument("rule", help="rule id")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", type=input_file, help="JSON lines of flat ECS events")
    src.add_argument("--log", type=input_file, help="a raw log file, decoded with --collector")
    t.add_argument("--collector", help="collector that decodes --log")
    t.add_argument("--show", type=count_or_zero, default=10, help="contributing events shown per alert")
    t.set_defaults(func=test_rule)

    a = sub.add_parser("accounts", help="account reviews")
    asub = a.add_subparsers(dest="accounts_command", required=True, metavar="SUBCOMMAND")
    d = asub.add_parser("dormant", help="accounts idle for at least --days (the periodic access review)")
    add_config_arg(d)
    d.add_argument("--days", type=positive_float, default=90)
    d.add_argument("--format", choices=["table", "csv", "json"], default="table")
    d.add_argument("--as-of", type=_iso_arg, default=None,
                   help="judge idleness as of this time (default: now); a past time is judged from the idle gaps "
                        "the rule remembers, for --days of 30 or more")
    d.set_defaults(func=accounts)
