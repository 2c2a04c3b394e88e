"""Microsoft Graph audit logs: ``/auditLogs/signIns`` and ``/auditLogs/directoryAudits``.

Graph pages with ``@odata.nextLink`` inside one query; between queries the cursor is a time (``window.py``):
the next query asks ``$filter=createdDateTime ge <newest seen - overlap>`` (activityDateTime for directory
audits), because sign-ins reach the API minutes after they happen and out of order, and now and then a late
pass asks from further back. What is fetched again is recognised by the event's ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from sentinel.collect.api.http import Http, Retry, json_body, same_origin
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso
from sentinel.collect.api.window import LatePass, fetch_window

TIME_FIELD = {"signIns": "createdDateTime", "directoryAudits": "activityDateTime"}


@dataclass(frozen=True)
class GraphAuditLogs:
    base_url: str = "https://graph.microsoft.com"
    streams: tuple[str, ...] = ("signIns", "directoryAudits")
    page_size: int = 1000  # Graph's maximum $top for sign-ins
    backfill_seconds: float = 86400.0
    overlap_seconds: float = 300.0
    late: LatePass = field(default_factory=LatePass)

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        return fetch_window(cursor, now, self.backfill_seconds, self.overlap_seconds, self.late,
                            lambda link, since: self._page(http, stream, link, since),
                            f"graph auditLogs/{stream}")

    def _page(self, http: Http, stream: str, link_in: str | None, since: str) -> tuple[list[Item], str | None]:
        time_field = TIME_FIELD[stream]
        if link_in is not None:
            if not same_origin(link_in, self.base_url):
                raise Retry("bad_payload", "graph's nextLink points at another host")
            resp = http.get(link_in)
        else:
            resp = http.get(f"{self.base_url.rstrip('/')}/v1.0/auditLogs/{stream}",
                            params={"$filter": f"{time_field} ge {since}", "$top": self.page_size})
        body = json_body(resp, f"graph auditLogs/{stream}")
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise Retry("bad_payload", f"graph auditLogs/{stream}: expected an object with a value array")
        items = []
        for event in values:
            if not isinstance(event, dict) or not isinstance(event.get("id"), str):
                raise Retry("bad_payload", f"graph auditLogs/{stream}: an entry without an id")
            items.append(Item(event["id"], orjson.dumps(event), from_iso(event.get(time_field))))
        link = body.get("@odata.nextLink")
        return items, link if isinstance(link, str) and link else None
