"""Microsoft Graph audit logs: ``/auditLogs/signIns`` and ``/auditLogs/directoryAudits``.

Graph pages with ``@odata.nextLink`` inside one query; between queries the cursor is a time: the next
query asks ``$filter=createdDateTime ge <newest seen - overlap>`` (activityDateTime for directory audits),
because sign-ins reach the API minutes after they happen and out of order. What the overlap fetches again
is recognised by the event's ``id``. The cursor is JSON: ``{"next": link or null, "since": ..., "newest": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from sentinel.collect.api.http import Http, Retry, json_body, same_origin
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso, to_iso

TIME_FIELD = {"signIns": "createdDateTime", "directoryAudits": "activityDateTime"}


@dataclass(frozen=True)
class GraphAuditLogs:
    base_url: str = "https://graph.microsoft.com"
    streams: tuple[str, ...] = ("signIns", "directoryAudits")
    page_size: int = 1000  # Graph's maximum $top for sign-ins
    backfill_seconds: float = 86400.0
    overlap_seconds: float = 300.0

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        field = TIME_FIELD[stream]
        state = orjson.loads(cursor) if cursor else {}
        link_in = state.get("next")
        since = str(state.get("since") or to_iso(now - self.backfill_seconds))
        if isinstance(link_in, str) and link_in:
            if not same_origin(link_in, self.base_url):
                raise Retry("bad_payload", "graph's nextLink points at another host")
            resp = http.get(link_in)
        else:
            resp = http.get(f"{self.base_url.rstrip('/')}/v1.0/auditLogs/{stream}",
                            params={"$filter": f"{field} ge {since}", "$top": self.page_size})
        body = json_body(resp, f"graph auditLogs/{stream}")
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise Retry("bad_payload", f"graph auditLogs/{stream}: expected an object with a value array")
        items = []
        newest = from_iso(state.get("newest"))
        for event in values:
            if not isinstance(event, dict) or not isinstance(event.get("id"), str):
                raise Retry("bad_payload", f"graph auditLogs/{stream}: an entry without an id")
            ts = from_iso(event.get(field))
            if ts is not None and (newest is None or ts > newest):
                newest = ts
            items.append(Item(event["id"], orjson.dumps(event), ts))
        link = body.get("@odata.nextLink")
        newest_iso = to_iso(newest) if newest is not None else None
        if isinstance(link, str) and link:
            nxt = {"next": link, "since": since, "newest": newest_iso}
            return Page(items, orjson.dumps(nxt).decode(), more=True)
        if newest is not None:
            since = max(since, to_iso(newest - self.overlap_seconds))
        nxt = {"next": None, "since": since, "newest": newest_iso}
        return Page(items, orjson.dumps(nxt).decode(), more=False)
