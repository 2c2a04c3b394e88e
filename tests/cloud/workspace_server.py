"""Google Workspace's Reports API contract (developers.google.com, "Activities: list", "Using OAuth 2.0 for
Server to Server Applications"): ``POST /token`` takes a JWT-bearer assertion signed RS256 by the service
account's key (iss, sub, scope, aud, iat, exp); ``GET /admin/reports/v1/activity/users/all/applications/{app}``
with ``startTime``, ``maxResults`` and ``pageToken``, newest first; tokens the server expired answer 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cloud.https import ContractServer, Reply
from tests.cloud.okta_server import iso_ms

SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
PATH = "/admin/reports/v1/activity/users/all/applications/"


def activity(i: int, at: float, app: str, name: str, params: dict[str, Any], user: str | None = None,
             kind: str | None = None, region: str = "US") -> dict[str, Any]:
    """An activity as the Activities: list reference's response shows it."""
    parameters = []
    for key, value in params.items():
        field = ("boolValue" if isinstance(value, bool) else "multiValue" if isinstance(value, list)
                 else "intValue" if isinstance(value, int) else "value")
        parameters.append({"name": key, field: value})
    return {"kind": "admin#reports#activity",
            "id": {"time": iso_ms(at), "uniqueQualifier": str(-(10**18) + i), "applicationName": app,
                   "customerId": "C03az79cb"},
            "etag": f'"{uuid.uuid5(uuid.NAMESPACE_URL, f"etag-{i}")}"',
            "actor": {"callerType": "USER", "email": user or f"user{i % 25}@meridianbilling.example",
                      "profileId": str(100000000000000000000 + i % 25)},
            "ipAddress": f"203.0.113.{i % 250 + 1}", "networkInfo": {"regionCode": region},
            "events": [{"type": kind or {"login": "login", "drive": "access", "admin": "USER_SETTINGS",
                                         "token": "auth"}[app], "name": name, "parameters": parameters}]}


def login(i: int, at: float, **kw: Any) -> dict[str, Any]:
    return activity(i, at, "login", "login_success", {"login_type": "google_password", "is_suspicious": False,
                                                      "login_challenge_method": ["password"]}, **kw)


def service_account(folder: Path, token_uri: str) -> tuple[Path, Any]:
    """A key file shaped as the Google Cloud console downloads it; returns it and the public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    doc = {"type": "service_account", "project_id": "sentinel-test", "private_key_id": "k1", "private_key": pem,
           "client_email": "sentinel@sentinel-test.iam.gserviceaccount.com", "client_id": "1234567890",
           "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}
    path = folder / "service-account.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path, key.public_key()


class WorkspaceServer:
    def __init__(self, folder: Path, subject: str = "admin@meridianbilling.example") -> None:
        self.subject = subject
        self.logs: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.seq = 0
        self.tokens: dict[str, float] = {}
        self.issued = 0
        self.rejected_assertions = 0
        self.server = ContractServer(folder, self._route)
        self.url, self.cert, self.faults = self.server.url, self.server.cert, self.server.faults
        self.token_url = f"{self.url}/token"
        self.key_file, self.public_key = service_account(folder, self.token_url)

    def add(self, events: list[dict[str, Any]]) -> None:
        with self.server.lock:
            for e in events:
                self.seq += 1
                self.logs.setdefault(e["id"]["applicationName"], []).append((self.seq, e))

    def expire_tokens(self) -> None:
        with self.server.lock:
            for t in self.tokens:
                self.tokens[t] = 0.0

    def close(self) -> None:
        self.server.close()

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               form: dict[str, list[str]]) -> Reply:
        if method == "POST" and path == "/token":
            try:
                claims = jwt.decode(form.get("assertion", [""])[0], self.public_key, algorithms=["RS256"],
                                    audience=self.token_url)
            except jwt.PyJWTError as exc:
                self.rejected_assertions += 1
                return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
            if (form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                    or claims.get("sub") != self.subject or SCOPE not in claims.get("scope", "").split()):
                self.rejected_assertions += 1
                return Reply(400, {"error": "unauthorized_client"})
            self.issued += 1
            token = f"ya29.{self.issued}.{uuid.uuid4().hex}"
            self.tokens[token] = time.time() + 3600
            return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
        if method != "GET" or not path.startswith(PATH):
            return Reply(404, {"error": {"code": 404, "message": "Not Found"}})
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens or time.time() >= self.tokens[token]:
            return Reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                         "status": "UNAUTHENTICATED"}})
        app = path[len(PATH):]
        top = min(1000, int(query.get("maxResults", ["1000"])[0]))
        if "pageToken" in query:
            start_time, snapshot, offset = json.loads(base64.urlsafe_b64decode(query["pageToken"][0]))
        else:
            start_time, snapshot, offset = query.get("startTime", [""])[0], self.seq, 0
        matching = sorted((e for s, e in self.logs.get(app, []) if s <= snapshot and e["id"]["time"] >= start_time),
                          key=lambda e: e["id"]["time"], reverse=True)
        page = matching[offset:offset + top]
        body: dict[str, Any] = {"kind": "admin#reports#activities", "etag": '"e1"', "items": page}
        if offset + top < len(matching):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps([start_time, snapshot, offset + top]).encode()).decode()
        return Reply(200, body, cut=bool(page) and self.server.cut_now())
