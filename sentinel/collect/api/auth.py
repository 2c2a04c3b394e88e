"""How each provider authenticates: Okta's SSWS API token or its OAuth 2.0 service-app grant (client credentials
with a private_key_jwt assertion), OAuth2 client credentials (Microsoft Graph and the Office 365 Management
Activity API), and a Google service account's signed JWT assertion.

Tokens are held until a minute before they expire, or until the provider refuses one (``invalidate``).
PyJWT (with cryptography) signs the Google and Okta assertions: RS256 over a PEM key is what it is built for, and
hand-rolled signing is a place to get subtle things wrong.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import jwt

from sentinel.collect.api.http import Retry, json_body
from sentinel.credentials import remember

if TYPE_CHECKING:
    from sentinel.collect.api.http import Http

EARLY_REFRESH_SECONDS = 60.0


class SswsToken:
    """Okta's API token: sent as ``Authorization: SSWS <token>``; it does not expire while in use."""

    def __init__(self, token: str) -> None:
        self.token = token

    def headers(self, http: Http) -> Mapping[str, str]:
        return {"Authorization": f"SSWS {self.token}"}

    def invalidate(self) -> None:
        """Nothing to refresh: a refused SSWS token stays refused (counted as unauthorized)."""


class _BearerToken(ABC):
    """A bearer token fetched from a token endpoint, cached until shortly before ``expires_in``."""

    def __init__(self, token_url: str, clock: Callable[[], float] = time.time) -> None:
        self.token_url = token_url
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0

    def headers(self, http: Http) -> Mapping[str, str]:
        if self._token is None or self.clock() >= self._expires - EARLY_REFRESH_SECONDS:
            self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        self._token = None

    @abstractmethod
    def _form(self) -> dict[str, str]:
        """The token request's form fields."""

    def _fetch(self, http: Http) -> None:
        try:
            resp = http.post(self.token_url, data=self._form(), authenticated=False)
        except Retry as exc:
            if exc.kind in ("bad_request", "unauthorized", "forbidden"):
                raise Retry("token", f"the token endpoint refused the credentials: {exc}") from None
            raise
        body = json_body(resp, "token endpoint")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Retry("token", "the token endpoint answered without an access_token")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        remember(token)
        self._token = token
        self._expires = self.clock() + lifetime
        self.fetched += 1
        http.on_token()


class ClientCredentials(_BearerToken):
    """OAuth2 client credentials grant (RFC 6749 4.4), as Entra ID's v2.0 token endpoint takes it."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(token_url, clock)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope

    def _form(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": self.scope}


class ServiceAccountJwt(_BearerToken):
    """Google's two-legged OAuth for a service account with domain-wide delegation: an RS256-signed JWT
    (iss: the account, sub: the administrator it acts for, scope, aud: the token URI) exchanged for a token."""

    GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def __init__(self, token_url: str, client_email: str, private_key: str, subject: str, scopes: tuple[str, ...],
                 key_id: str | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(token_url, clock)
        self.client_email = client_email
        self.private_key = private_key
        self.subject = subject
        self.scopes = scopes
        self.key_id = key_id

    def _form(self) -> dict[str, str]:
        now = int(self.clock())
        claims = {"iss": self.client_email, "sub": self.subject, "scope": " ".join(self.scopes),
                  "aud": self.token_url, "iat": now, "exp": now + 3600}
        return {"grant_type": self.GRANT, "assertion": sign_assertion(claims, self.private_key, self.key_id)}


class OktaPrivateKeyJwt(_BearerToken):
    """Okta's OAuth 2.0 for a service app: client credentials with a ``private_key_jwt`` client assertion
    (iss = sub = the client id, aud = the token URL, a fresh jti so Okta's replay check accepts it)."""

    ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    def __init__(self, token_url: str, client_id: str, private_key: str, scopes: tuple[str, ...],
                 key_id: str | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(token_url, clock)
        self.client_id = client_id
        self.private_key = private_key
        self.scopes = scopes
        self.key_id = key_id

    def _form(self) -> dict[str, str]:
        now = int(self.clock())
        # Okta refuses an assertion whose exp is more than an hour after iat; five minutes is what it needs.
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now,
                  "exp": now + 300, "jti": uuid.uuid4().hex}
        return {"grant_type": "client_credentials", "scope": " ".join(self.scopes),
                "client_assertion_type": self.ASSERTION_TYPE,
                "client_assertion": sign_assertion(claims, self.private_key, self.key_id)}


def sign_assertion(claims: Mapping[str, object], private_key: str, key_id: str | None) -> str:
    """An RS256 JWT over ``claims``; a key that cannot sign is a token error, named without the key."""
    headers = {"kid": key_id} if key_id else None
    try:
        return jwt.encode(dict(claims), private_key, algorithm="RS256", headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise Retry("token", f"cannot sign the client assertion: {type(exc).__name__}") from None
