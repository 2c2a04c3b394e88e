"""``sentinel init``: lay out /etc/sentinel/ and the state directory for this site, then say what is next."""

from __future__ import annotations

import argparse
from pathlib import Path

from sentinel.cli.args import SubParsers
from sentinel.daemon.collectors import load_collectors
from sentinel.errors import SentinelError
from sentinel.install.layout import Layout, SiteChoices, Source, group_name, lay_out, owners_for
from sentinel.shipped import shipped_path


def run(args: argparse.Namespace) -> int:
    if args.prefix and args.destdir:
        raise SentinelError("give --prefix (a scratch trial) or --destdir (a package's staging tree), not both")
    target = args.prefix or args.destdir
    layout = Layout.under(target.resolve() if target else Path("/"))
    sources = tuple(Source.parse(s) for s in args.source) if args.source else SiteChoices.sources
    known, _ = load_collectors(shipped_path("collectors"))
    unknown = [s.collector for s in sources if s.collector not in known]
    if unknown:
        raise SentinelError(f"--source: no shipped collector {', '.join(map(repr, unknown))}; "
                            f"shipped: {', '.join(sorted(known))}")
    site = SiteChoices(timezone=args.timezone, host_name=args.host_name, sources=sources,
                       metrics_listen=args.metrics, api_listen=args.api)
    owners = owners_for(args.user, scratch=target is not None)
    result = lay_out(layout, site, owners, Layout.under(Path("/")) if args.destdir else None)
    for path in result.created:
        print(f"created {path}")
    for path in result.kept:
        print(f"kept    {path} (exists; not changed)")
    if not owners.chown:
        print(f"note: everything is owned by {owners.service_user} (no user {args.user!r} here, or not root)")
    else:
        print(f"state directory owned by {owners.service_user}:{group_name(owners.service_gid)}, mode 0700")
    print(f"""
next:
  1. put the receivers' apprise URLs into {layout.env_file} (mode 0600; systemd reads it)
  2. check:  sentinel check -c {layout.config}
  3. start:  systemctl enable --now sentinel   (or, in the foreground: sentinel run -c {layout.config})
  shipped collectors, rules and routes: {shipped_path()}
  your overrides: {layout.config_dir}/rules/ (same id replaces a shipped rule; `id: X` + `enabled: false`
  turns one off), collectors/, alerts/; `sentinel rules -c {layout.config}` shows where each rule comes from""")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("init", help="lay out /etc/sentinel/ and the state directory for this site")
    p.add_argument("--prefix", type=Path, default=None,
                   help="lay out PREFIX/etc/sentinel and PREFIX/var/lib/sentinel instead (a scratch trial)")
    p.add_argument("--destdir", type=Path, default=None,
                   help="write under DESTDIR, the files naming /etc/sentinel and /var/lib/sentinel (for packaging)")
    p.add_argument("--timezone", default="UTC", help="zone of syslog timestamps that carry none (default UTC)")
    p.add_argument("--host-name", default=None, help="host.name of the events (default: the machine's)")
    p.add_argument("--source", action="append", metavar="COLLECTOR[=PATH,...]",
                   help="a shipped collector to read, optionally on these paths/globs; repeat for more "
                        "(default: linux-auth and auditd on their usual paths)")
    p.add_argument("--metrics", default="127.0.0.1:9464", metavar="HOST:PORT", help="/metrics and /healthz")
    p.add_argument("--api", default="127.0.0.1:9465", metavar="HOST:PORT", help="the alert API")
    p.add_argument("--user", default="sentinel", help="the service user that owns the state (default sentinel)")
    p.set_defaults(func=run)
