"""The Office 365 Management Activity API's contract (learn.microsoft.com, "Office 365 Management Activity API
reference" and "... schema"): a subscription per content type (``subscriptions/start``; AF20024 when already
enabled, AF20022 when asked for content without one), ``subscriptions/content`` listing the blobs created in a
window of at most 24 hours with more in the ``NextPageUri`` header, and each blob's ``contentUri`` returning an
array of audit records; OAuth2 client credentials for https://manage.office.com/.default."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.cloud.graph_server import TENANT
from tests.cloud.https import ContractServer, Reply
from tests.cloud.okta_server import iso_ms

FEED = f"/api/v1.0/{TENANT}/activity/feed"


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def record(i: int, at: float, operation: str = "FileAccessed", workload: str = "SharePoint",
           user: str | None = None, **extra: Any) -> dict[str, Any]:
    """An audit record with the common schema's fields, as the schema reference's examples show them."""
    who = user or f"user{i % 20}@contoso.com"
    rec: dict[str, Any] = {
        "CreationTime": _t(at), "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"o365-{i}")), "Operation": operation,
        "OrganizationId": TENANT, "RecordType": {"Exchange": 1, "SharePoint": 6, "OneDrive": 6,
                                                 "AzureActiveDirectory": 15}[workload],
        "UserKey": f"i:0h.f|membership|1003{i % 20:04d}@live.com", "UserType": 0, "Version": 1,
        "Workload": workload, "ClientIP": f"203.0.113.{i % 250 + 1}", "UserId": who,
    }
    if workload in ("SharePoint", "OneDrive"):
        name = extra.pop("file", f"notes-{i}.docx")
        rec.update({"ObjectId": f"https://contoso-my.sharepoint.com/personal/{who.split('@')[0]}/Documents/{name}",
                    "SiteUrl": f"https://contoso-my.sharepoint.com/personal/{who.split('@')[0]}/",
                    "SourceFileName": name, "SourceRelativeUrl": "Documents", "ItemType": "File",
                    "EventSource": "SharePoint", "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"})
    if workload == "AzureActiveDirectory":
        rec.update({"ResultStatus": "Success" if operation == "UserLoggedIn" else "Failed",
                    "AzureActiveDirectoryEventType": 1, "ObjectId": "00000003-0000-0000-c000-000000000000"})
    rec.update(extra)
    return rec


def inbox_rule(i: int, at: float, user: str, forward_to: str) -> dict[str, Any]:
    return record(i, at, "New-InboxRule", "Exchange", user, ResultStatus="True", ObjectId=f"{user}\\fwd",
                  Parameters=[{"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
                              {"Name": "Force", "Value": "False"}, {"Name": "Name", "Value": "fwd"},
                              {"Name": "ForwardTo", "Value": forward_to},
                              {"Name": "StopProcessingRules", "Value": "True"}])


class O365Server:
    def __init__(self, folder: Path, client_id: str = "app-1", secret: str = "s3cret-value",
                 page_blobs: int = 3) -> None:
        self.client_id, self.secret, self.page_blobs = client_id, secret, page_blobs
        self.blobs: dict[str, list[dict[str, Any]]] = {}  # content type -> listing entries (with records)
        self.subscribed: set[str] = set()
        self.tokens: dict[str, float] = {}
        self.issued = 0
        self.server = ContractServer(folder, self._route)
        self.url, self.cert, self.faults = self.server.url, self.server.cert, self.server.faults
        self.token_url = f"{self.url}/{TENANT}/oauth2/v2.0/token"

    def add(self, content_type: str, records: list[dict[str, Any]], created: float | None = None) -> None:
        when = time.time() if created is None else created
        with self.server.lock:
            cid = f"{uuid.uuid4().hex}${uuid.uuid4().hex}"
            self.blobs.setdefault(content_type, []).append({
                "contentType": content_type, "contentId": cid,
                "contentUri": f"{self.url}{FEED}/audit/{quote(cid)}", "contentCreated": iso_ms(when),
                "contentExpiration": iso_ms(when + 7 * 86400), "_records": records, "_created": when})

    def all_records(self) -> list[dict[str, Any]]:
        return [r for blobs in self.blobs.values() for b in blobs for r in b["_records"]]

    def expire_tokens(self) -> None:
        with self.server.lock:
            for t in self.tokens:
                self.tokens[t] = 0.0

    def close(self) -> None:
        self.server.close()

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               form: dict[str, list[str]]) -> Reply:
        if method == "POST" and path == f"/{TENANT}/oauth2/v2.0/token":
            if (form.get("client_secret") != [self.secret] or form.get("client_id") != [self.client_id]
                    or form.get("scope") != ["https://manage.office.com/.default"]):
                return Reply(401, {"error": "invalid_client"})
            self.issued += 1
            token = f"eyJ0eXAi.o365.{self.issued}"
            self.tokens[token] = time.time() + 3600
            return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens or time.time() >= self.tokens[token]:
            return Reply(401, {"error": {"code": "AF10001", "message": "The permission set () sent in the request "
                                         "does not include the expected permission."}})
        ctype = query.get("contentType", [""])[0]
        if method == "POST" and path == f"{FEED}/subscriptions/start":
            if ctype in self.subscribed:
                return Reply(400, {"error": {"code": "AF20024", "message": "The subscription is already enabled. "
                                             "No property change."}})
            self.subscribed.add(ctype)
            return Reply(200, {"contentType": ctype, "status": "enabled", "webhook": None})
        if method == "GET" and path == f"{FEED}/subscriptions/content":
            if ctype not in self.subscribed:
                return Reply(400, {"error": {"code": "AF20022", "message": "No subscription found for the specified "
                                             "content type"}})
            start = datetime.fromisoformat(query["startTime"][0].replace("Z", "+00:00")).timestamp()
            end = datetime.fromisoformat(query["endTime"][0].replace("Z", "+00:00")).timestamp()
            if end - start > 86400 + 1:
                return Reply(400, {"error": {"code": "AF20055", "message": "Start time and end time must both be "
                                             "specified (or both omitted) and must be less than or equal to 24 "
                                             "hours apart."}})
            offset = int(query.get("nextPage", ["0"])[0])
            listed = [b for b in self.blobs.get(ctype, []) if start <= b["_created"] < end]
            page = listed[offset:offset + self.page_blobs]
            hdrs = {}
            if offset + self.page_blobs < len(listed):
                hdrs["NextPageUri"] = (f"{self.url}{FEED}/subscriptions/content?contentType={ctype}"
                                       f"&startTime={query['startTime'][0]}&endTime={query['endTime'][0]}"
                                       f"&nextPage={offset + self.page_blobs}")
            return Reply(200, [{k: v for k, v in b.items() if not k.startswith("_")} for b in page], hdrs)
        if method == "GET" and path.startswith(f"{FEED}/audit/"):
            cid = path.rsplit("/", 1)[1].replace("%24", "$")
            blob = next((b for bl in self.blobs.values() for b in bl if b["contentId"] == cid), None)
            if blob is None:
                return Reply(404, {"error": {"code": "AF20051", "message": "Content requested with the key does "
                                             "not exist."}})
            return Reply(200, blob["_records"], cut=self.server.cut_now())
        return Reply(404, {"error": {"code": "NotFound"}})
