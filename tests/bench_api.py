"""Events per second one API poller sustains against the local contract servers (no store: the poll alone).

    .venv/bin/python -m tests.bench_api [events]

Each provider's server holds ``events`` events; the real ApiSource (the daemon's poller, HTTPS, JSON, the
provider's paging and cursor) is drained until it has handed out all of them. Prints the median of 3 runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sentinel.collect.api.auth import ClientCredentials, ServiceAccountJwt, SswsToken
from sentinel.collect.api.graph import GraphAuditLogs
from sentinel.collect.api.http import Auth, Http, HttpSettings
from sentinel.collect.api.o365 import ManagementActivity
from sentinel.collect.api.okta import OktaLogs
from sentinel.collect.api.source import ApiSource, PollSettings, Provider
from sentinel.collect.api.workspace import SCOPE, WorkspaceActivities
from tests.cloud.graph_server import TENANT, GraphServer, sign_in
from tests.cloud.o365_server import O365Server, record
from tests.cloud.okta_server import OktaServer, log_event
from tests.cloud.workspace_server import WorkspaceServer, login


def _drain(provider: Provider, auth: Auth, ca: Path, want: int) -> float:
    http = Http(HttpSettings(ca_file=str(ca)), auth)
    source = ApiSource("bench", provider, http, PollSettings(poll_interval_seconds=0.05, queue_max=20_000))
    source.restore([])
    start = time.perf_counter()
    source.discover()
    got = 0
    while got < want:
        batch = source.read(5000)
        got += len(batch)
        if not batch:
            time.sleep(0.002)
    elapsed = time.perf_counter() - start
    source.close()
    return want / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    now = time.time()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        okta = OktaServer(folder / "okta", per_window=100_000)
        okta.add([log_event(i, now - 3600 + i / 10) for i in range(n)])
        graph = GraphServer(folder / "graph")
        graph.add("signIns", [sign_in(i, now - 3600 + i / 10) for i in range(n)])
        ws = WorkspaceServer(folder / "ws")
        ws.add([login(i, now - 3600 + i / 10) for i in range(n)])
        o365 = O365Server(folder / "o365", page_blobs=50)
        per_blob = 500
        for b in range(n // per_blob):
            o365.add("Audit.SharePoint", [record(b * per_blob + k, now - 3000 + b) for k in range(per_blob)],
                     created=now - 3000 + b)
        import json
        key = json.loads(ws.key_file.read_text())
        for _ in range(3):
            results.setdefault("okta", []).append(_drain(OktaLogs(okta.url, 1000), SswsToken(okta.token), okta.cert, n))
            results.setdefault("graph", []).append(_drain(
                GraphAuditLogs(graph.url, ("signIns",), 1000),
                ClientCredentials(graph.token_url, "app-1", "s3cret-value", "https://graph.microsoft.com/.default"),
                graph.cert, n))
            results.setdefault("workspace", []).append(_drain(
                WorkspaceActivities(ws.url, ("login",), 1000),
                ServiceAccountJwt(ws.token_url, key["client_email"], key["private_key"], ws.subject, (SCOPE,)),
                ws.cert, n))
            results.setdefault("o365", []).append(_drain(
                ManagementActivity(TENANT, o365.url, ("Audit.SharePoint",)),
                ClientCredentials(o365.token_url, "app-1", "s3cret-value", "https://manage.office.com/.default"),
                o365.cert, (n // per_blob) * per_blob))
        for server in (okta, graph, ws, o365):
            server.close()
    for name, values in results.items():
        print(f"{name:10s} {statistics.median(values):9.0f} events/s  (runs: {', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
