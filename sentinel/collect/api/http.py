"""HTTP for the API pollers: credentials attached, rate limits honoured, failures classified.

httpx rather than urllib by hand: connection reuse (a backfill is thousands of pages to one host), timeouts
that cover connect, read and pool waits, ``Link`` header parsing, and a client that takes a CA file for
the tests' self-signed servers. Every response is judged here, so each provider only reads its payloads.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from sentinel.credentials import mask
from sentinel.errors import SentinelError


class Retry(SentinelError):
    """A request that may succeed later: network trouble, throttling, a server error, a refused token.

    ``kind`` is a closed vocabulary (it becomes a metric label); ``wait`` is what the provider asked for
    (Retry-After, X-Rate-Limit-Reset), None when only our own backoff applies."""

    def __init__(self, kind: str, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.wait = wait


ERROR_KINDS = ("network", "throttled", "unavailable", "server_error", "unauthorized", "forbidden",
               "bad_request", "bad_payload", "token")


class Auth(Protocol):
    def headers(self, http: Http) -> Mapping[str, str]:
        """The headers that authenticate a request (fetching a token first if none is held)."""
        ...

    def invalidate(self) -> None:
        """The provider refused the credential: the next ``headers`` fetches a new token."""
        ...


@dataclass(frozen=True)
class HttpSettings:
    timeout_seconds: float = 30.0
    ca_file: str | None = None  # trust this CA (a private proxy, the tests' local servers) besides the system's
    max_wait_seconds: float = 900.0  # the longest Retry-After / rate-limit reset honoured before asking again
    user_agent: str = "sentinel-api-poller"


class Http:
    """One provider's connection pool; ``get``/``post`` return a 2xx response or raise :class:`Retry`."""

    def __init__(self, settings: HttpSettings, auth: Auth | None, clock: Callable[[], float] = time.time,
                 on_token: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.auth = auth
        self.clock = clock
        self.on_token = on_token  # a token was fetched (first or refreshed)
        verify: ssl.SSLContext | bool = True
        if settings.ca_file:
            verify = ssl.create_default_context(cafile=settings.ca_file)
        self.client = httpx.Client(timeout=settings.timeout_seconds, verify=verify, follow_redirects=False,
                                   headers={"User-Agent": settings.user_agent, "Accept": "application/json"})
        # Okta's X-Rate-Limit-Remaining: 0 means the next request would be refused until the reset time.
        self.not_before = 0.0

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return self.request("GET", url, params=params)

    def post(self, url: str, params: Mapping[str, Any] | None = None, data: Mapping[str, str] | None = None,
             authenticated: bool = True) -> httpx.Response:
        return self.request("POST", url, params=params, data=data, authenticated=authenticated)

    def request(self, method: str, url: str, params: Mapping[str, Any] | None = None,
                data: Mapping[str, str] | None = None, authenticated: bool = True) -> httpx.Response:
        wait = self.not_before - self.clock()
        if wait > 0:
            raise Retry("throttled", "the rate limit is used up until its reset", wait)
        for attempt in range(2):
            headers = dict(self.auth.headers(self)) if (authenticated and self.auth is not None) else {}
            try:
                resp = self.client.request(method, url, params=params, data=data, headers=headers)
            except httpx.TimeoutException as exc:
                raise Retry("network", f"{method} {_where(url)}: timed out ({type(exc).__name__})") from None
            except httpx.HTTPError as exc:
                raise Retry("network", mask(f"{method} {_where(url)}: {exc}")) from None
            self._note_rate_limit(resp)
            if resp.status_code == 401 and authenticated and self.auth is not None and attempt == 0:
                self.auth.invalidate()  # an expired or revoked token: one more try with a fresh one
                continue
            return self._judge(method, url, resp)
        raise AssertionError("unreachable")

    def _note_rate_limit(self, resp: httpx.Response) -> None:
        remaining = resp.headers.get("X-Rate-Limit-Remaining")
        reset = _number(resp.headers.get("X-Rate-Limit-Reset"))
        if remaining is not None and remaining.strip() == "0" and reset is not None:
            self.not_before = max(self.not_before, min(reset, self.clock() + self.settings.max_wait_seconds))

    def _judge(self, method: str, url: str, resp: httpx.Response) -> httpx.Response:
        code = resp.status_code
        if 200 <= code < 300:
            return resp
        where = f"{method} {_where(url)}: HTTP {code}"
        detail = _detail(resp)
        if code == 429:
            raise Retry("throttled", f"{where} (throttled){detail}", self._asked_wait(resp))
        if code in (502, 503, 504):
            raise Retry("unavailable", f"{where} (unavailable){detail}", self._asked_wait(resp))
        if code >= 500:
            raise Retry("server_error", f"{where}{detail}", self._asked_wait(resp))
        if code == 401:
            raise Retry("unauthorized", f"{where}: the credential was refused even after a new token{detail}")
        if code == 403:
            raise Retry("forbidden", f"{where}: the credential lacks the permission to read this log{detail}")
        raise Retry("bad_request", f"{where}{detail}")

    def _asked_wait(self, resp: httpx.Response) -> float | None:
        """Retry-After (seconds or an HTTP date), else Okta's X-Rate-Limit-Reset (epoch seconds)."""
        now = self.clock()
        value = resp.headers.get("Retry-After")
        wait: float | None = None
        if value:
            seconds = _number(value)
            if seconds is not None:
                wait = seconds
            else:
                try:
                    wait = email.utils.parsedate_to_datetime(value).timestamp() - now
                except (TypeError, ValueError):
                    wait = None
        if wait is None:
            reset = _number(resp.headers.get("X-Rate-Limit-Reset"))
            if reset is not None:
                wait = reset - now
        if wait is None:
            return None
        return max(0.0, min(wait, self.settings.max_wait_seconds))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _where(url: str) -> str:
    """The URL without its query: a page token or a filter is noise in a log line, and could be long."""
    return url.split("?", 1)[0]


def _detail(resp: httpx.Response) -> str:
    text = resp.text[:300].strip().replace("\n", " ")
    return f": {mask(text)}" if text else ""


def json_body(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise Retry("bad_payload", f"{what}: the response is not JSON ({resp.text[:80]!r})") from None


def same_origin(url: str, base: str) -> bool:
    """A next-page link is followed only to the configured host: the credential goes with the request."""
    a, b = httpx.URL(url), httpx.URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)
