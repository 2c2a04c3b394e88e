"""Polling by event-time window (Graph, Workspace): the live query with its overlap, and the late pass.

Graph's sign-ins and Workspace's activities are queried by event time. Between queries the cursor is the
newest event time seen less an overlap, since events reach these APIs minutes after they happen and out
of order. An event the provider publishes later than the overlap is older than every later query's start,
so no live poll ever asks for it: Google documents lags of hours for some applications, and Microsoft
sign-ins can take over an hour. Every ``every_seconds`` the poller therefore runs one query from
``newest - window_seconds`` instead of the live one, paged to its end; what it returns that is already
stored (the overlap's repeats too) is dropped by the event's id (the ledger), so only the late arrivals
are stored and judged.

The cursor is JSON: ``page`` (the live query's next page, or null), ``since`` (its start), ``newest``, ``floor``
(the first query's start: a late pass never reaches before the backfill's limit), ``late`` (a pass in
progress: its start and next page, or null) and ``late_at`` (when the last pass began). A restart resumes
a query, live or late, at the page its last committed events came from. A page link or token the provider
refuses (Graph's "Invalid Skip Token", one kept over a long stop) starts that query again from its start:
only repeats, dropped by id, where retrying the refused page would stop the stream for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sentinel.collect.api.http import Retry
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso, to_iso
from sentinel.credentials import mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatePass:
    window_seconds: float = 6 * 3600.0  # how far behind the newest event a pass starts; 0: no late passes
    every_seconds: float = 3600.0

    def due(self, state: dict[str, Any], now: float) -> dict[str, Any] | None:
        """A pass to begin now (``{"since": ..., "page": None}``, its start recorded in ``state``), else None.

        A first start's backfill has just asked for everything: the first pass is ``every_seconds`` after it."""
        at = state.get("late_at")
        if not isinstance(at, int | float) or at > now:
            state["late_at"] = now
            return None
        newest = from_iso(state.get("newest"))
        if self.window_seconds <= 0 or newest is None or now - at < self.every_seconds:
            return None
        state["late_at"] = now
        since = to_iso(min(newest, now) - self.window_seconds)
        floor = state.get("floor")
        if isinstance(floor, str) and floor > since:
            since = floor
        return {"since": since, "page": None}


# (page token or None, the query's start) -> (the page's events, the next page's token or None).
PageFetch = Callable[[str | None, str], tuple[list[Item], str | None]]


def fetch_window(cursor: str, now: float, backfill_seconds: float, overlap_seconds: float, late: LatePass,
                 fetch: PageFetch, what: str) -> Page:
    """The page ``cursor`` names: of the live query, or of a late pass when one is due or under way (``what``
    names the stream in what is logged)."""
    state: dict[str, Any] = orjson.loads(cursor) if cursor else {}
    since = str(state.get("since") or to_iso(now - backfill_seconds))
    state["since"] = since
    state.setdefault("floor", since)
    token = state.get("page") or state.pop("next", None)  # Graph's cursors named it "next" before late passes
    pending = state.get("late")
    if not isinstance(pending, dict) and not token:
        pending = late.due(state, now)
    if isinstance(pending, dict):
        # Instead of the live query: one from further back, paged to its end (it reaches now too).
        items, token = _page(fetch, _token(pending.get("page")), str(pending["since"]), state, what)
        state["late"] = {**pending, "page": token} if token else None
        in_late = True
    else:
        items, token = _page(fetch, _token(token), since, state, what)
        state["page"] = token
        in_late = False
    if not token:
        newest = from_iso(state.get("newest"))
        if newest is not None:
            # Never past this host's clock: one event dated years ahead must not move every later query past
            # the events that follow it (asking again for a little more is only repeats, dropped by id).
            state["since"] = max(since, to_iso(min(newest, now) - overlap_seconds))
    return Page(items, orjson.dumps(state).decode(), more=bool(token), late=in_late)


def _page(fetch: PageFetch, token: str | None, since: str, state: dict[str, Any],
          what: str) -> tuple[list[Item], str | None]:
    try:
        items, nxt = fetch(token, since)
    except Retry as exc:
        # Once per query: a provider refusing every page link of a query would otherwise have it start over
        # and over, back to back; a second refusal is retried with backoff, as any failure.
        if token is None or exc.kind != "bad_request" or state.get("restarted") == since:
            raise
        log.warning("%s: the provider refused a page of its query (%s); asking the query again from its start",
                    what, mask(str(exc)))
        state["restarted"] = since
        items, nxt = fetch(None, since)
    if nxt is None:
        state.pop("restarted", None)
    times = [i.time for i in items if i.time is not None]
    if times:
        newest = from_iso(state.get("newest"))
        state["newest"] = to_iso(max(times) if newest is None else max(newest, *times))
    return items, nxt


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
