"""Okta's System Log API as documented (developer.okta.com, System Log API): ``GET /api/v1/logs`` with
``since`` / ``limit`` / ``sortOrder`` / the opaque ``after`` cursor, ``Link: <...>; rel="next"`` on every page
of a polling query (an empty last page too), ``Authorization: SSWS <token>``, and the rate-limit headers
``X-Rate-Limit-Limit / -Remaining / -Reset`` with a 429 once a window's budget is spent.

With ``oauth=True`` it is an org with an OAuth 2.0 service app instead (developer.okta.com, "Implement OAuth for
Okta with a service app"): ``POST /oauth2/v1/token`` takes ``grant_type=client_credentials``, the scope and a
``private_key_jwt`` client assertion, which it verifies against the app's public key (RS256, iss = sub = the
client id, aud = the token URL, exp, a jti not seen before); calls then send ``Authorization: Bearer``, and a
token past its lifetime (``token_lifetime``, or ``expire_tokens``) answers 401 as Okta does."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cloud.https import ContractServer, Reply

COUNTRIES = ("United States", "United States", "United States", "Canada", "The Netherlands", "Russia")


def iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def log_event(i: int, published: float, event_type: str = "user.session.start", user: str | None = None,
              result: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    """A LogEvent shaped like the System Log API reference's example response."""
    who = user or f"user{i % 40}@example.com"
    event: dict[str, Any] = {
        "actor": {"id": f"00u{i % 40:04d}abcdEFGH0h7", "type": "User", "alternateId": who,
                  "displayName": who.split("@")[0].title(), "detailEntry": None},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
                                 "os": "Windows 10", "browser": "CHROME"},
                   "zone": "null", "device": "Computer", "id": None,
                   "ipAddress": f"198.51.100.{i % 250 + 1}",
                   "geographicalContext": {"city": "Boise", "state": "Idaho", "country": COUNTRIES[i % 6],
                                           "postalCode": "83702",
                                           "geolocation": {"lat": 43.6135, "lon": -116.2034}}},
        "authenticationContext": {"authenticationProvider": None, "credentialProvider": None,
                                  "credentialType": None, "issuer": None, "interface": None,
                                  "authenticationStep": 0, "externalSessionId": f"102{i:08d}"},
        "displayMessage": "User login to Okta",
        "eventType": event_type,
        "outcome": {"result": result, "reason": None},
        "published": iso_ms(published),
        "securityContext": {"asNumber": 64496, "asOrg": "example isp", "isp": "example isp",
                            "domain": "example.net", "isProxy": False},
        "severity": "INFO",
        "debugContext": {"debugData": {"requestId": f"req{i}", "requestUri": "/api/v1/authn",
                                       "url": "/api/v1/authn?"}},
        "legacyEventType": "core.user_auth.login_success",
        "transaction": {"type": "WEB", "id": f"tx{i}", "detail": {}},
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"okta-event-{i}")),
        "version": "0",
        "request": {"ipChain": [{"ip": f"198.51.100.{i % 250 + 1}", "version": "V4", "source": None}]},
        "target": [],
    }
    event.update(extra)
    return event


CLIENT_ID = "0oa8sentinelsvc0h7"
SCOPE = "okta.logs.read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class OktaServer:
    def __init__(self, folder: Path, token: str = "00abcSSWStoken", per_window: int = 600,
                 window_seconds: float = 1.0, oauth: bool = False, token_lifetime: float = 3600.0) -> None:
        self.token = token
        self.oauth, self.token_lifetime = oauth, token_lifetime
        self.access_tokens: dict[str, float] = {}
        self.jtis: set[str] = set()
        self.issued = self.rejected_assertions = self.expired_refused = 0
        self.events: list[dict[str, Any]] = []
        self.per_window, self.window_seconds = per_window, window_seconds
        self.window_start, self.window_used = time.time(), 0
        self.throttled = 0
        self.server = ContractServer(folder, self._route)
        self.url, self.cert, self.faults = self.server.url, self.server.cert, self.server.faults
        self.token_url = f"{self.url}/oauth2/v1/token"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_file = folder / "okta-app.pem"
        self.private_key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        self.private_key_file.chmod(0o600)
        self.public_key = key.public_key()

    def expire_tokens(self) -> None:
        with self.server.lock:
            for t in self.access_tokens:
                self.access_tokens[t] = 0.0

    def add(self, events: list[dict[str, Any]]) -> None:
        with self.server.lock:
            self.events.extend(events)
            self.events.sort(key=lambda e: e["published"])

    def close(self) -> None:
        self.server.close()

    def _rate(self) -> tuple[bool, dict[str, str]]:
        now = time.time()
        if now - self.window_start >= self.window_seconds:
            self.window_start, self.window_used = now, 0
        self.window_used += 1
        remaining = max(0, self.per_window - self.window_used)
        reset = self.window_start + self.window_seconds
        headers = {"X-Rate-Limit-Limit": str(self.per_window), "X-Rate-Limit-Remaining": str(remaining),
                   "X-Rate-Limit-Reset": f"{reset:.3f}"}
        return self.window_used <= self.per_window, headers

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               form: dict[str, list[str]]) -> Reply:
        if self.oauth and method == "POST" and path == "/oauth2/v1/token":
            return self._token(form)
        if path != "/api/v1/logs" or method != "GET":
            return Reply(404, {"errorCode": "E0000022", "errorSummary": "The endpoint does not support the method"})
        refused = self._bearer_refused(headers) if self.oauth else (
            headers.get("authorization") != f"SSWS {self.token}")
        if refused:
            return Reply(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided",
                               "errorLink": "E0000011", "errorId": "oae1", "errorCauses": []},
                         {"WWW-Authenticate": 'Bearer realm="IdpMgmt", error="invalid_token", '
                                              'error_description="The token has expired."'} if self.oauth else {})
        ok, rate = self._rate()
        if not ok:
            self.throttled += 1
            return Reply(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too "
                               "many requests."}, rate)
        limit = min(1000, int(query.get("limit", ["100"])[0]))
        if "after" in query:
            start = int(base64.urlsafe_b64decode(query["after"][0].encode()).decode())
        else:
            since = query.get("since", [""])[0]
            start = next((k for k, e in enumerate(self.events) if e["published"] >= since), len(self.events))
        page = self.events[start:start + limit]
        after = base64.urlsafe_b64encode(str(start + len(page)).encode()).decode()
        base = f"{self.server.url}/api/v1/logs"
        rate["Link"] = (f'<{base}?limit={limit}&sortOrder=ASCENDING&after={after}>; rel="next", '
                        f'<{base}?limit={limit}&sortOrder=ASCENDING>; rel="self"')
        return Reply(200, page, rate, cut=bool(page) and self.server.cut_now())

    def _token(self, form: dict[str, list[str]]) -> Reply:
        def refuse(error: str, why: str) -> Reply:
            self.rejected_assertions += 1
            return Reply(401 if error == "invalid_client" else 400, {"error": error, "error_description": why})

        if form.get("grant_type") != ["client_credentials"]:
            return refuse("unsupported_grant_type", "The authorization grant type is not supported")
        if form.get("client_assertion_type") != [ASSERTION_TYPE]:
            return refuse("invalid_client", "client_assertion_type is invalid")
        try:
            claims = jwt.decode(form.get("client_assertion", [""])[0], self.public_key, algorithms=["RS256"],
                                audience=self.token_url, options={"require": ["iss", "sub", "aud", "exp", "jti"]})
        except jwt.PyJWTError as exc:
            return refuse("invalid_client", f"The client_assertion signature or claims are invalid: {exc}")
        if claims["iss"] != CLIENT_ID or claims["sub"] != CLIENT_ID:
            return refuse("invalid_client", "The client_assertion iss and sub must be the client_id")
        if claims["exp"] - claims.get("iat", time.time()) > 3600:
            return refuse("invalid_client", "The client_assertion token has an expiration too far in the future")
        if claims["jti"] in self.jtis:
            return refuse("invalid_client", "The client_assertion token has already been used")
        self.jtis.add(claims["jti"])
        if form.get("scope", [""])[0].split() != [SCOPE]:
            return refuse("invalid_scope", "The authorization server does not allow the requested scope")
        self.issued += 1
        token = f"eyJraWQ.{self.issued}.{secrets.token_urlsafe(16)}"
        self.access_tokens[token] = time.time() + self.token_lifetime
        return Reply(200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": SCOPE})

    def _bearer_refused(self, headers: dict[str, str]) -> bool:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return True
        if time.time() >= self.access_tokens[token]:
            self.expired_refused += 1
            return True
        return False
