"""The Office 365 Management Activity API: Exchange, SharePoint/OneDrive and Azure AD audit records.

The API does not page through events but through *content blobs*: after a subscription is started for a
content type, ``subscriptions/content`` lists the blobs made available in a time window (at most 24 hours,
at most 7 days back; more pages in the ``NextPageUri`` header), and each blob's ``contentUri`` returns a JSON
array of audit records. The cursor is JSON per content type: the window, the blobs of it still to fetch,
the listing's next page, and the blob ids already listed (the next window overlaps this one by
``overlap_seconds``, for blobs that are listed late, and those ids keep a blob from being fetched twice).
A blob's records carry their ``Id``: a blob fetched again after a crash stores nothing twice. An Exchange
record's cmdlet ``Parameters`` (a list of Name/Value pairs) are also given as ``ParametersByName``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sentinel.collect.api.http import Http, Retry, json_body, same_origin
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso, to_iso

CONTENT_TYPES = ("Audit.Exchange", "Audit.SharePoint", "Audit.AzureActiveDirectory")
WINDOW_MAX_SECONDS = 86400.0
HISTORY_MAX_SECONDS = 7 * 86400.0 - 600.0


@dataclass(frozen=True)
class ManagementActivity:
    tenant_id: str
    base_url: str = "https://manage.office.com"
    streams: tuple[str, ...] = CONTENT_TYPES
    backfill_seconds: float = 86400.0
    overlap_seconds: float = 600.0

    def _feed(self) -> str:
        return f"{self.base_url.rstrip('/')}/api/v1.0/{self.tenant_id}/activity/feed"

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        state: dict[str, Any] = orjson.loads(cursor) if cursor else {"started": False}
        if not state.get("started"):
            self._subscribe(http, stream)
            return Page([], _dump({**state, "started": True}), more=True)
        blobs: list[str] = list(state.get("blobs") or [])
        if blobs:
            return self._blob(http, stream, state, blobs)
        if state.get("page"):
            resp = http.get(self._checked(state["page"]))
        else:
            start = from_iso(state.get("end")) or (now - min(self.backfill_seconds, HISTORY_MAX_SECONDS))
            start = max(start - (self.overlap_seconds if state.get("end") else 0.0), now - HISTORY_MAX_SECONDS)
            end = min(start + WINDOW_MAX_SECONDS, now)
            if end - start < 1.0:
                return Page([], _dump(state), more=False)
            state = {**state, "start": to_iso(start), "end": to_iso(end), "prev": state.get("seen") or [],
                     "seen": []}
            resp = http.get(f"{self._feed()}/subscriptions/content",
                            params={"contentType": stream, "startTime": state["start"], "endTime": state["end"]})
        listing = json_body(resp, f"o365 content listing {stream}")
        if not isinstance(listing, list):
            raise Retry("bad_payload", f"o365 content listing {stream}: expected an array of content blobs")
        known = set(state.get("prev") or []) | set(state.get("seen") or [])
        fresh = [c for c in listing if isinstance(c, dict) and c.get("contentId") not in known]
        state["seen"] = [*(state.get("seen") or []), *(str(c.get("contentId")) for c in fresh)]
        state["blobs"] = [str(c["contentUri"]) for c in fresh if c.get("contentUri")]
        state["page"] = resp.headers.get("NextPageUri") or None
        live_end = (from_iso(state.get("end")) or now) >= now - 60.0
        more = bool(state["blobs"] or state["page"]) or not live_end
        return Page([], _dump(state), more=more)

    def _subscribe(self, http: Http, stream: str) -> None:
        try:
            http.post(f"{self._feed()}/subscriptions/start", params={"contentType": stream})
        except Retry as exc:
            if exc.kind == "bad_request" and "AF20024" in str(exc):
                return  # "The subscription is already enabled": what every restart after the first hears
            raise

    def _blob(self, http: Http, stream: str, state: dict[str, Any], blobs: list[str]) -> Page:
        body = json_body(http.get(self._checked(blobs[0])), f"o365 content blob {stream}")
        if not isinstance(body, list):
            raise Retry("bad_payload", f"o365 content blob {stream}: expected an array of audit records")
        items = []
        for record in body:
            if not isinstance(record, dict) or not isinstance(record.get("Id"), str):
                raise Retry("bad_payload", f"o365 content blob {stream}: an audit record without an Id")
            params = record.get("Parameters")
            if isinstance(params, list):
                # Exchange cmdlet parameters as a list of {Name, Value}: also by name, for collector conditions.
                record["ParametersByName"] = {p["Name"]: p.get("Value") for p in params
                                              if isinstance(p, dict) and isinstance(p.get("Name"), str)}
            items.append(Item(record["Id"], orjson.dumps(record), from_iso(record.get("CreationTime"))))
        return Page(items, _dump({**state, "blobs": blobs[1:]}), more=True)

    def _checked(self, url: str) -> str:
        if not same_origin(url, self.base_url):
            raise Retry("bad_payload", "a content URI points at another host than the configured url")
        return url


def _dump(state: dict[str, Any]) -> str:
    return orjson.dumps(state).decode()
