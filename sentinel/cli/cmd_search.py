"""``sentinel search``: simple field queries over stored events."""

from __future__ import annotations

import argparse
import sys

import orjson

from sentinel.cli.args import SubParsers, add_config_arg
from sentinel.cli.common import config_from, positive_int, time_arg
from sentinel.conf.models import LoadedConfig
from sentinel.store.query import Query, parse_terms, parse_time

TABLE_FIELDS = ("@timestamp", "host.name", "sentinel.source", "event.action", "event.outcome", "user.name",
                "source.ip")


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    terms = parse_terms(args.terms)
    _warn_unknown_fields(cfg, [name for name, _, _ in terms] + (args.fields.split(",") if args.fields else []))
    # One more than asked, to tell a complete answer from a cut one.
    query = Query(terms, parse_time(args.since), parse_time(args.until), args.text, args.limit + 1)
    total: int | None = None
    if cfg.config.storage.backend == "elasticsearch" and not args.local:
        from sentinel.store.elasticsearch.search import search_elasticsearch

        docs = search_elasticsearch(cfg.config.storage.elasticsearch, cfg.origin, query)
    else:
        from sentinel.cli.common import open_db
        from sentinel.store.sqlite_events import count, search

        conn = open_db(cfg)
        docs = search(conn, query)
        if len(docs) > args.limit:
            total = count(conn, query)
    cut = len(docs) > args.limit
    docs = docs[:args.limit]
    shown = f"({len(docs)} events)"
    if cut:
        shown = f"showing {len(docs)} of {total if total is not None else 'more'} events (use --limit)"
    if args.format == "json":
        for doc in docs:
            sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        print(shown, file=sys.stderr)
    else:
        fields = args.fields.split(",") if args.fields else list(TABLE_FIELDS)
        print("\t".join(fields))
        for doc in docs:
            print("\t".join(_cell(doc.get(f)) for f in fields))
        print(shown, file=sys.stderr)
    return 0


def _warn_unknown_fields(cfg: LoadedConfig, names: list[str]) -> None:
    """A misspelt field matches nothing: say so rather than print an empty answer that looks like one."""
    from sentinel.daemon.collectors import load_collector_layers
    from sentinel.decode.vocabulary import vocabulary_of

    collectors, _ = load_collector_layers(cfg.collector_dirs)
    vocabulary = vocabulary_of(c.spec for c in collectors.values())
    for name in names:
        if not vocabulary.known(name):
            print(f"warning: unknown field `{name}`{vocabulary.suggest(name)}: no collector emits it, so it "
                  "matches nothing", file=sys.stderr)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def register(sub: SubParsers) -> None:
    p = sub.add_parser("search", help="search stored events: FIELD=VALUE terms (also != > >= < <=, VALUE* globs)")
    add_config_arg(p)
    p.add_argument("terms", nargs="*", help="e.g. user.name=alice event.outcome=failure")
    p.add_argument("--since", type=time_arg, help="15m, 2h, 7d or an ISO time")
    p.add_argument("--until", type=time_arg, help="15m, 2h, 7d or an ISO time")
    p.add_argument("--text", help="substring anywhere in the event")
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--fields", help="comma-separated columns for the table")
    p.add_argument("--local", action="store_true", help="search the local database even with Elasticsearch")
    p.set_defaults(func=run)
