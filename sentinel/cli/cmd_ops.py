"""``sentinel reload`` (signal the running daemon and report the result) and ``sentinel audit verify|log``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from sentinel.audit.chain import AuditLog, read_head, verify
from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from, count_or_zero, positive_float
from sentinel.daemon.lifecycle import audit_path, pid_path
from sentinel.errors import SentinelError


def _daemon_pid(path: Path) -> int:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        raise SentinelError(f"no pid file at {path}: is sentinel running with this config?") from None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raise SentinelError(f"pid {pid} from {path} is not running (stale pid file)") from None
    if b"sentinel" not in cmdline:
        raise SentinelError(f"pid {pid} from {path} is not a sentinel process (stale pid file)")
    return pid


def reload(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    pid = _daemon_pid(pid_path(cfg))
    log = AuditLog(audit_path(cfg))
    head = read_head(log.head_path)
    before = head[0] if head else 0
    os.kill(pid, signal.SIGHUP)
    if args.no_wait:
        print(f"sent SIGHUP to sentinel (pid {pid})")
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        for rec in log.records():
            if rec.seq > before and rec.action == "config_reload":
                if rec.details.get("result") == "success":
                    changed = sum(len(rec.details.get(k, {})) for k in ("added", "removed", "changed"))
                    print(f"reloaded (pid {pid}): {changed} file(s) changed")
                    return 0
                for err in rec.details.get("errors", []):
                    print(f"error: {err}", file=sys.stderr)
                print("reload rejected; the previous configuration keeps running", file=sys.stderr)
                return 1
        time.sleep(0.1)
    print(f"sent SIGHUP to pid {pid}; no reload result in the audit log within {args.timeout:.0f}s "
          "(see the daemon log)", file=sys.stderr)
    return 2


def audit_verify(args: argparse.Namespace) -> int:
    path = args.file or audit_path(config_from(args))
    if not path.exists():
        raise SentinelError(f"no audit log at {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise SentinelError(f"audit log {path} is empty: no records to verify")
    result = verify(path, allow_pruned=args.allow_pruned)
    for problem in result.problems:
        print(f"TAMPERED: {problem}", file=sys.stderr)
    if not result.ok:
        print(f"audit log {path}: {len(result.problems)} problem(s) in {result.records} records", file=sys.stderr)
        return 1
    head = result.head[1] if result.head else "-"
    print(f"audit log {path}: OK, {result.records} records, chain head {head}")
    return 0


def audit_log(args: argparse.Namespace) -> int:
    path = args.file or audit_path(config_from(args))
    if not path.exists():
        raise SentinelError(f"no audit log at {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise SentinelError(f"audit log {path} is empty: no records to show")
    records = list(AuditLog(path).records())
    if not records and path.is_file():
        raise SentinelError(f"no audit records in {path}: is it an audit log? ('sentinel audit verify' checks it)")
    if args.action:
        records = [r for r in records if r.action == args.action]
    for rec in records[-args.limit:] if args.limit else records:
        if args.format == "json":
            print(json.dumps(rec.__dict__, sort_keys=True))
            continue
        summary = ", ".join(f"{k}={v}" for k, v in rec.details.items() if not isinstance(v, (dict, list)))
        nested = ", ".join(f"{k}: {len(v)}" for k, v in rec.details.items() if isinstance(v, (dict, list)) and v)
        print(f"{rec.seq:6d} {rec.ts} {rec.action:<14} {rec.actor:<10} {'; '.join(x for x in (summary, nested) if x)}")
    return 0


def register(sub: SubParsers) -> None:
    r = sub.add_parser("reload", help="make the running daemon reload config, collectors, rules and routes")
    add_config_arg(r)
    r.add_argument("--timeout", type=positive_float, default=30.0, help="seconds to wait for the result (default 30)")
    r.add_argument("--no-wait", action="store_true", help="send the signal and return")
    r.set_defaults(func=reload)

    a = sub.add_parser("audit", help="the daemon's hash-chained audit trail")
    asub = a.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = asub.add_parser("verify", help="check every record and the chain; exit 1 on any edit or deletion")
    add_config_arg(v)
    v.add_argument("--file", type=Path, default=None, help="audit log to check (default: from the config)")
    v.add_argument("--allow-pruned", action="store_true",
                   help="accept a chain whose oldest rotated segments were deleted by retention")
    v.set_defaults(func=audit_verify)
    lg = asub.add_parser("log", help="show audit records, oldest first")
    add_config_arg(lg)
    lg.add_argument("--file", type=Path, default=None, help="audit log to show (default: from the config)")
    lg.add_argument("--limit", "-n", type=count_or_zero, default=0, help="only the last N records")
    lg.add_argument("--action", default=None, help="only records of this action (start, stop, config_reload, …)")
    lg.add_argument("--format", choices=["table", "json"], default="table", help="json: one record per line")
    lg.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    lg.set_defaults(func=audit_log)
