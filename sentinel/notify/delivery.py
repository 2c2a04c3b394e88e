"""Sending one rendered message to one receiver through apprise, and the retry schedule."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apprise

from sentinel.credentials import mask
from sentinel.route.loader import Receiver

# Channels with a native incident key: PagerDuty's dedup_key, Opsgenie's alias.
_NATIVE_KEY = {"pagerduty": "dedup", "opsgenie": "alias"}
# How those channels close the incident that key names (apprise's own action names).
_NATIVE_RESOLVE = {"pagerduty": "resolve", "opsgenie": "close"}
# Generic HTTP channels: the keys travel in the JSON/form body and in a header.
_HTTP_BODY = {"json", "jsons", "form", "forms"}
_HTTP = _HTTP_BODY | {"xml", "xmls"}


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None
    seconds: float


class Sender(Protocol):
    """Delivers one message; must not raise for delivery failures (returns ok=False with a masked error)."""

    def send(self, receiver: Receiver, title: str, body: str, dedup_key: str, notification_key: str,
             severity: str, resolve: bool = False) -> SendResult: ...


class _ThreadCapture(logging.Handler):
    """Collects apprise's warnings per thread, so parallel sends each get their own error text."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        buf = getattr(self.local, "buf", None)
        if buf is not None:
            buf.append(record.getMessage())

    def begin(self) -> None:
        self.local.buf = []

    def end(self) -> list[str]:
        buf: list[str] = getattr(self.local, "buf", None) or []
        self.local.buf = None
        return buf


_capture = _ThreadCapture()
logging.getLogger("apprise").addHandler(_capture)


def with_keys(url: str, dedup_key: str, notification_key: str, timeout: float, resolve: bool = False) -> str:
    """The receiver URL plus the stable dedup key where the channel has a place for it, and our timeouts.
    ``resolve``: this message ends the incident, so channels with incidents get their resolve/close action
    (and generic JSON/form bodies an ``event: resolve`` field) for the same key."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    if scheme in _NATIVE_KEY and _NATIVE_KEY[scheme] not in names:
        query.append((_NATIVE_KEY[scheme], dedup_key))
    if resolve and scheme in _NATIVE_RESOLVE:
        # The operator's action (say action=map) raises incidents; ending one is always the channel's resolve.
        query = [(k, v) for k, v in query if k != "action"] + [("action", _NATIVE_RESOLVE[scheme])]
    if scheme in _HTTP_BODY:
        query += [(":dedup_key", dedup_key), (":notification_key", notification_key)]
        if resolve:
            query.append((":event", "resolve"))
    if scheme in _HTTP:
        query += [("+X-Sentinel-Dedup-Key", dedup_key), ("+X-Sentinel-Notification-Key", notification_key)]
    if "cto" not in names:
        query.append(("cto", f"{min(timeout, 10.0):g}"))
    if "rto" not in names:
        query.append(("rto", f"{timeout:g}"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote, safe=":+"),
                       parts.fragment))


_NOTIFY_TYPE = {"critical": apprise.NotifyType.FAILURE, "high": apprise.NotifyType.FAILURE,
                "medium": apprise.NotifyType.WARNING}


class AppriseSender:
    """The real channel: one ``apprise.Apprise`` per message, every URL of the receiver."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def send(self, receiver: Receiver, title: str, body: str, dedup_key: str, notification_key: str,
             severity: str, resolve: bool = False) -> SendResult:
        start = time.monotonic()
        if receiver.problem:
            return SendResult(False, mask(receiver.problem), 0.0)
        ap = apprise.Apprise()
        for url in receiver.urls:
            if not ap.add(with_keys(url, dedup_key, notification_key, self.timeout, resolve)):
                return SendResult(False, f"receiver {receiver.name}: apprise does not accept one of its URLs",
                                  time.monotonic() - start)
        if len(ap) == 0:
            return SendResult(False, f"receiver {receiver.name} has no URLs", time.monotonic() - start)
        notify_type = apprise.NotifyType.SUCCESS if resolve else _NOTIFY_TYPE.get(severity, apprise.NotifyType.INFO)
        messages: list[str] = []
        _capture.begin()
        try:
            try:
                # apprise >= 2 hands each call its own log lines (its sends may run on its own threads).
                ok = bool(ap.notify(body=body, title=title, notify_type=notify_type,
                                    log_callback=lambda entry, _svc: messages.append(str(entry.message)),
                                    log_level=logging.WARNING))
            except TypeError:
                ok = bool(ap.notify(body=body, title=title, notify_type=notify_type))
        except Exception as exc:  # a plugin bug must not kill the worker; the attempt is recorded as failed
            _capture.end()
            return SendResult(False, mask(f"{type(exc).__name__}: {exc}"), time.monotonic() - start)
        messages += _capture.end()
        error = None if ok else mask("; ".join(messages[-3:]) or "apprise reported a failure")[:1000]
        return SendResult(ok, error, time.monotonic() - start)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base·2^(n-1), capped, times a random factor in [1-jitter, 1+jitter]."""

    base: float = 2.0
    cap: float = 300.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * float(2 ** max(0, attempt - 1)))
        return max(0.0, raw * (1 + rng.uniform(-self.jitter, self.jitter)))
