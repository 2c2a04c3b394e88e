"""Okta System Log API (``GET /api/v1/logs``): a polling query followed by its ``Link: rel="next"``.

A query with ``since`` and no ``until`` is Okta's polling mode: every page, even an empty one at the live
end, carries a next link whose opaque ``after`` token resumes right after the last event returned. That
link is the cursor. Events come oldest first (sortOrder=ASCENDING); the id is the event's ``uuid``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from sentinel.collect.api.http import Http, Retry, json_body, same_origin
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso, to_iso

SCOPE = "okta.logs.read"  # what an OAuth service app must be granted to read the System Log


@dataclass(frozen=True)
class OktaLogs:
    base_url: str  # https://acme.okta.com
    page_size: int = 1000  # Okta's maximum
    backfill_seconds: float = 86400.0  # where a first start begins (Okta keeps 90 days)

    @property
    def streams(self) -> tuple[str, ...]:
        return ("logs",)

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        url = f"{self.base_url.rstrip('/')}/api/v1/logs"
        if cursor:
            if not same_origin(cursor, self.base_url):
                raise Retry("bad_payload", "the stored cursor points at another host than the configured url")
            resp = http.get(cursor)
        else:
            resp = http.get(url, params={"since": to_iso(now - self.backfill_seconds), "limit": self.page_size,
                                         "sortOrder": "ASCENDING"})
        body = json_body(resp, "okta /api/v1/logs")
        if not isinstance(body, list):
            raise Retry("bad_payload", "okta /api/v1/logs: expected a JSON array of LogEvents")
        items = []
        for event in body:
            if not isinstance(event, dict) or not isinstance(event.get("uuid"), str):
                raise Retry("bad_payload", "okta /api/v1/logs: a LogEvent without a uuid")
            items.append(Item(event["uuid"], orjson.dumps(event), from_iso(event.get("published"))))
        link = resp.links.get("next", {}).get("url")
        if link:
            if not same_origin(link, self.base_url):
                raise Retry("bad_payload", "okta's next link points at another host")
            nxt = str(resp.url.join(link))
        elif items:
            # No next link (not a polling query after all): go on from the newest event; ids drop the repeat.
            nxt = str(resp.url.copy_with(params={"since": body[-1].get("published"), "limit": self.page_size,
                                                 "sortOrder": "ASCENDING"}))
        else:
            nxt = cursor
        return Page(items, nxt, more=len(items) >= self.page_size)
