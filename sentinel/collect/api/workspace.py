"""Google Workspace Reports API: ``activities.list`` for the ``login``, ``admin``, ``drive`` and ``token``
applications (``/admin/reports/v1/activity/users/all/applications/{app}``).

Pages come newest first and are followed with ``pageToken`` (with the query's own ``startTime``, as the API
wants); between queries the cursor is the newest activity time less an overlap, since activities reach
the API minutes to hours late, and now and then a late pass asks from further back (``window.py``). An
activity holds one or more events: each becomes a record, its id ``time/uniqueQualifier/index`` (the
qualifier is only unique among activities of the same time). The record is the activity with ``events``
replaced by that one ``event``, whose ``parameters`` list is also given as an object ``params`` (name ->
value, multiValue, boolValue, intValue), so the collector can reach a parameter by its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from sentinel.collect.api.http import Http, Retry, json_body
from sentinel.collect.api.source import Item, Page
from sentinel.collect.api.times import from_iso
from sentinel.collect.api.window import LatePass, fetch_window

APPLICATIONS = ("login", "admin", "drive", "token")
SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"


@dataclass(frozen=True)
class WorkspaceActivities:
    base_url: str = "https://admin.googleapis.com"
    streams: tuple[str, ...] = APPLICATIONS
    page_size: int = 1000  # the API's maximum maxResults
    backfill_seconds: float = 86400.0
    overlap_seconds: float = 600.0
    late: LatePass = field(default_factory=LatePass)

    def fetch(self, http: Http, stream: str, cursor: str, now: float) -> Page:
        return fetch_window(cursor, now, self.backfill_seconds, self.overlap_seconds, self.late,
                            lambda token, since: self._page(http, stream, token, since),
                            f"workspace activities/{stream}")

    def _page(self, http: Http, stream: str, token_in: str | None, since: str) -> tuple[list[Item], str | None]:
        params: dict[str, Any] = {"startTime": since, "maxResults": self.page_size}
        if token_in is not None:
            params["pageToken"] = token_in
        url = f"{self.base_url.rstrip('/')}/admin/reports/v1/activity/users/all/applications/{stream}"
        body = json_body(http.get(url, params=params), f"workspace activities/{stream}")
        if not isinstance(body, dict):
            raise Retry("bad_payload", f"workspace activities/{stream}: expected an object")
        activities = body.get("items") or []
        if not isinstance(activities, list):
            raise Retry("bad_payload", f"workspace activities/{stream}: items is not an array")
        items: list[Item] = []
        for activity in activities:
            ident = activity.get("id") if isinstance(activity, dict) else None
            if not isinstance(ident, dict) or "uniqueQualifier" not in ident or "time" not in ident:
                raise Retry("bad_payload", f"workspace activities/{stream}: an activity without id.uniqueQualifier")
            ts = from_iso(ident.get("time"))
            events = activity.get("events") or [{}]
            for index, event in enumerate(events):
                record = {k: v for k, v in activity.items() if k != "events"}
                record["event"] = {**event, "params": _params(event.get("parameters") or [])}
                items.append(Item(f"{ident['time']}/{ident['uniqueQualifier']}/{index}", orjson.dumps(record), ts))
        token = body.get("nextPageToken")
        return items, token if isinstance(token, str) and token else None


def _params(parameters: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parameters:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            continue
        for key in ("value", "multiValue", "boolValue", "intValue", "multiIntValue"):
            if key in p:
                out[p["name"]] = p[key]
                break
    return out
