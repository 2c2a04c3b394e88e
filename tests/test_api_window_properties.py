"""Properties of the time-window poller (Graph here; Workspace shares its cursor logic), over random sequences
of events published late and polls at random times, against the local Graph server, with a clock of our own.

Whatever the sequence: an event the provider published no later than ``overlap_seconds`` after its time is
fetched by the next live poll; one published later, but within the late pass's reach, by the next pass; and
the cursor survives a restart (it is JSON, and each fetch starts from it). The store drops repeats by id, so
a repeat is not an error; a miss is."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.collect.api.auth import ClientCredentials
from sentinel.collect.api.graph import GraphAuditLogs
from sentinel.collect.api.http import Http, HttpSettings
from sentinel.collect.api.window import LatePass
from tests.cloud.graph_server import GraphServer, sign_in

WINDOW, EVERY, OVERLAP, STEP = 3600.0, 600.0, 300.0, 240.0
# The latest an event may reach the API and still be fetched: a pass starts at most EVERY (and one poll step)
# after the event is published, from the newest time then (at most that poll's time) less WINDOW.
REACH = WINDOW - EVERY - STEP

# ("publish", how late in seconds, how many) | ("poll", seconds the clock moves first)
OPS = st.one_of(
    st.tuples(st.just("publish"), st.floats(0, REACH), st.integers(1, 120)),
    st.tuples(st.just("poll"), st.floats(1, STEP)),
)

_server: dict[str, Any] = {}
_ids = itertools.count()


def _graph() -> tuple[GraphServer, Http]:
    if not _server:
        server = GraphServer(Path(tempfile.mkdtemp(prefix="graph-window-")))
        auth = ClientCredentials(server.token_url, "app-1", "s3cret-value", "https://graph.microsoft.com/.default")
        _server["server"], _server["http"] = server, Http(HttpSettings(ca_file=str(server.cert)), auth)
    return _server["server"], _server["http"]


def _drain(provider: GraphAuditLogs, http: Http, cursor: str, now: float, got: set[str]) -> str:
    while True:
        page = provider.fetch(http, "signIns", cursor, now)
        got.update(item.id for item in page.items)
        cursor = page.next
        if not page.more:
            return cursor


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=30))
def test_every_event_published_within_the_reach_is_fetched(ops: list[tuple[Any, ...]]) -> None:
    server, http = _graph()
    # Each example in a stretch of time of its own, far from the others' (the server keeps every event).
    now = time.time() + next(_ids) * 10_000_000.0
    provider = GraphAuditLogs(server.url, ("signIns",), 50, backfill_seconds=2 * WINDOW, overlap_seconds=OVERLAP,
                              late=LatePass(WINDOW, EVERY))
    got: set[str] = set()
    # What the first start finds (its backfill), so the stream has a newest time.
    first = [sign_in(next(_ids), now - 60)]
    server.add("signIns", first)
    cursor = _drain(provider, http, "", now, got)
    published: dict[str, float] = {first[0]["id"]: 0.0}  # id -> how late
    for op in ops:
        if op[0] == "publish":
            _, late, n = op
            batch = [sign_in(next(_ids), now - late - j / 1000) for j in range(n)]
            server.add("signIns", batch)
            published.update((e["id"], late) for e in batch)
        else:
            now += op[1]
            cursor = _drain(provider, http, cursor, now, got)
    # One poll later, then one after the next pass is due: everything published must have been fetched.
    now += 1
    cursor = _drain(provider, http, cursor, now, got)
    prompt = {i for i, late in published.items() if late <= OVERLAP - 1}
    assert not prompt - got, f"live polls missed {len(prompt - got)} events published within the overlap"
    now += EVERY
    _drain(provider, http, cursor, now, got)
    missed = set(published) - got
    assert not missed, f"{len(missed)} events missed, as late as {max(published[i] for i in missed):.0f} s"
