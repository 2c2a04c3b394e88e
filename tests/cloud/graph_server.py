"""Microsoft Graph's audit-log contract (learn.microsoft.com, "List signIns", "List directoryAudits", "Microsoft
identity platform and the OAuth 2.0 client credentials flow"): ``POST /{tenant}/oauth2/v2.0/token`` with
client_credentials, ``GET /v1.0/auditLogs/{signIns|directoryAudits}`` with ``$filter=<time> ge <iso>`` and
``$top``, newest first, paged by ``@odata.nextLink`` with a ``$skiptoken``; a bearer token the server has
expired answers 401 ``InvalidAuthenticationToken``; throttling answers 429 with Retry-After."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.cloud.https import ContractServer, Reply
from tests.cloud.okta_server import iso_ms

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TIME_FIELD = {"signIns": "createdDateTime", "directoryAudits": "activityDateTime"}


def sign_in(i: int, at: float, user: str | None = None, error: int = 0, country: str = "US",
            method: str = "Password", detail: str = "") -> dict[str, Any]:
    """A signIn resource as the v1.0 reference's example response shows it."""
    who = user or f"user{i % 30}@contoso.com"
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph-signin-{i}")),
        "createdDateTime": iso_ms(at).rstrip("Z") + "0000Z",
        "userDisplayName": who.split("@")[0].title(), "userPrincipalName": who,
        "userId": str(uuid.uuid5(uuid.NAMESPACE_URL, who)),
        "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064", "appDisplayName": "Graph Explorer",
        "ipAddress": f"203.0.113.{i % 250 + 1}", "clientAppUsed": "Browser",
        "correlationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"corr-{i}")), "conditionalAccessStatus": "notApplied",
        "isInteractive": True, "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none",
        "riskState": "none", "riskEventTypes": [], "resourceDisplayName": "Microsoft Graph",
        "resourceId": "00000003-0000-0000-c000-000000000000",
        "status": {"errorCode": error, "failureReason": "Other." if error else None, "additionalDetails": None},
        "deviceDetail": {"deviceId": "", "displayName": None, "operatingSystem": "Windows 10", "browser": "Edge 80.0",
                         "isCompliant": None, "isManaged": None, "trustType": None},
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": country,
                     "geoCoordinates": {"altitude": None, "latitude": 47.68, "longitude": -122.12}},
        "appliedConditionalAccessPolicies": [],
        "authenticationDetails": [{"authenticationMethod": method, "succeeded": error == 0,
                                   "authenticationStepResultDetail": detail}],
    }


def directory_audit(i: int, at: float, activity: str = "Add member to role", target: str = "user3@contoso.com",
                    role: str = "Global Administrator", actor: str = "admin@contoso.com") -> dict[str, Any]:
    """A directoryAudit resource as the v1.0 reference's example response shows it."""
    return {
        "id": f"Directory_{uuid.uuid5(uuid.NAMESPACE_URL, f'graph-audit-{i}')}",
        "category": "RoleManagement", "correlationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"acorr-{i}")),
        "result": "success", "resultReason": "", "activityDisplayName": activity,
        "activityDateTime": iso_ms(at), "loggedByService": "Core Directory", "operationType": "Assign",
        "initiatedBy": {"app": None, "user": {"id": "728309ae-9b2b-4c2b-9b1f-e2e3c3a1b1a1", "displayName": "Admin",
                                              "userPrincipalName": actor, "ipAddress": "203.0.113.9"}},
        "targetResources": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, target)), "displayName": target.split("@")[0],
                             "type": "User", "userPrincipalName": target, "groupType": None,
                             "modifiedProperties": [{"displayName": "Role.DisplayName", "oldValue": None,
                                                     "newValue": json.dumps(role)}]}],
        "additionalDetails": [],
    }


class GraphServer:
    def __init__(self, folder: Path, client_id: str = "app-1", secret: str = "s3cret-value",
                 token_lifetime: float = 3600.0) -> None:
        self.client_id, self.secret, self.token_lifetime = client_id, secret, token_lifetime
        self.logs: dict[str, list[tuple[int, dict[str, Any]]]] = {"signIns": [], "directoryAudits": []}
        self.seq = 0
        self.link_generation = 0  # skiptokens of an earlier generation are refused ("Invalid Skip Token")
        self.refused_links = 0
        self.refuse_every_link = False
        self.tokens: dict[str, float] = {}  # token -> when the server stops taking it
        self.issued = 0
        self.expired_refusals = 0
        self.server = ContractServer(folder, self._route)
        self.url, self.cert, self.faults = self.server.url, self.server.cert, self.server.faults
        self.token_url = f"{self.url}/{TENANT}/oauth2/v2.0/token"

    def add(self, stream: str, events: list[dict[str, Any]]) -> None:
        with self.server.lock:
            for e in events:
                self.seq += 1
                self.logs[stream].append((self.seq, e))

    def expire_links(self) -> None:
        """Refuse every nextLink handed out so far, as Graph answers a skiptoken it no longer takes."""
        with self.server.lock:
            self.link_generation += 1

    def expire_tokens(self) -> None:
        with self.server.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def close(self) -> None:
        self.server.close()

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               form: dict[str, list[str]]) -> Reply:
        if method == "POST" and path == f"/{TENANT}/oauth2/v2.0/token":
            if (form.get("grant_type") != ["client_credentials"] or form.get("client_id") != [self.client_id]
                    or form.get("client_secret") != [self.secret]
                    or form.get("scope") != ["https://graph.microsoft.com/.default"]):
                return Reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                                   "secret provided."})
            self.issued += 1
            token = f"eyJ0eXAi.{self.issued}.{uuid.uuid4().hex}"
            self.tokens[token] = time.time() + self.token_lifetime
            return Reply(200, {"token_type": "Bearer", "expires_in": int(self.token_lifetime),
                               "ext_expires_in": int(self.token_lifetime), "access_token": token})
        stream = path.removeprefix("/v1.0/auditLogs/")
        if method != "GET" or stream not in self.logs:
            return Reply(404, {"error": {"code": "ResourceNotFound", "message": "not found"}})
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.tokens or time.time() >= self.tokens[token]:
            self.expired_refusals += token in self.tokens
            return Reply(401, {"error": {"code": "InvalidAuthenticationToken",
                                         "message": "Lifetime validation failed, the token is expired."}})
        field = TIME_FIELD[stream]
        top = min(1000, int(query.get("$top", ["100"])[0]))
        if "$skiptoken" in query:
            since, snapshot, offset, generation = json.loads(base64.urlsafe_b64decode(query["$skiptoken"][0]))
            if generation < self.link_generation or self.refuse_every_link:
                self.refused_links += 1
                return Reply(400, {"error": {"code": "", "message": "Invalid Skip Token"}})
        else:
            flt = query.get("$filter", [""])[0]
            since = flt.split(" ge ", 1)[1] if " ge " in flt else ""
            snapshot, offset = self.seq, 0
        matching = sorted((e for s, e in self.logs[stream] if s <= snapshot and e[field] >= since),
                          key=lambda e: e[field], reverse=True)
        page = matching[offset:offset + top]
        body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#auditLogs/{stream}",
                                "value": page}
        if offset + top < len(matching):
            state = [since, snapshot, offset + top, self.link_generation]
            skip = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            body["@odata.nextLink"] = (f"{self.url}/v1.0/auditLogs/{stream}?$top={top}"
                                       f"&$filter={quote(field + ' ge ' + since)}&$skiptoken={skip}")
        return Reply(200, body, cut=bool(page) and self.server.cut_now())
