"""The security picture in metrics: sign-ins, MFA, PHI records accessed and exported, counted from events.

It takes part in the batch like the rule engine (it sees the events inside the transaction) but counts
only when the batch has committed: a batch that rolls back and is read again is counted once. Label
values come from closed vocabularies (see ``sentinel.metrics.registry``); a value outside them counts as
``other``, so no user, address, patient, file or destination name ever becomes a series.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sentinel.events.model import Event
from sentinel.metrics.registry import (
    DESTINATION_TYPES,
    OUTCOMES,
    PHI_ACCESS_ACTIONS,
    PHI_EXPORT_ACTIONS,
    Metrics,
)

SIGN_IN_ACTIONS = ("user_login", "ssh_login")
# event.action → what it counts as; every other action is skipped with one lookup.
_KIND_OF: dict[str, str] = {
    **dict.fromkeys(SIGN_IN_ACTIONS, "sign_in"), "mfa_challenge": "challenge", "mfa_push_denied": "denial",
    "mfa_verify": "mfa_verify", **dict.fromkeys(PHI_ACCESS_ACTIONS, "access"),
    **dict.fromkeys(PHI_EXPORT_ACTIONS, "export"),
}

# What sshd, PAM, Okta (credentialType) and Entra call a first factor, folded onto the metric's methods.
_METHOD_WORDS: tuple[tuple[str, str], ...] = (
    ("keyboard-interactive", "keyboard_interactive"), ("keyboard_interactive", "keyboard_interactive"),
    ("publickey", "publickey"), ("public_key", "publickey"), ("ssh-key", "publickey"), ("hostbased", "publickey"),
    ("password", "password"), ("assertion", "sso"), ("saml", "sso"), ("oidc", "sso"), ("federat", "sso"),
    ("sso", "sso"), ("certificate", "certificate"), ("x509", "certificate"), ("smartcard", "certificate"),
    ("otp", "mfa"), ("sms", "mfa"), ("push", "mfa"), ("webauthn", "mfa"), ("fido", "mfa"),
)
_DESTINATION_WORDS = {"usb": "removable_media", "removable": "removable_media", "share": "file",
                      "s3": "cloud_storage", "cloud": "cloud_storage"}

Key = tuple[str, ...]


def sign_in_method(value: Any) -> str:
    """``sentinel.authentication.method`` as one of the metric's methods (``unknown`` when the log does not say)."""
    if not isinstance(value, str) or not value or value.lower() == "none":
        return "unknown"
    low = value.lower()
    for word, method in _METHOD_WORDS:
        if word in low:
            return method
    return "other"


def destination_type(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return "unknown"
    low = value.lower()
    if low in DESTINATION_TYPES:
        return low
    return next((kind for word, kind in _DESTINATION_WORDS.items() if word in low), "other")


def _outcome(value: Any) -> str:
    return value if isinstance(value, str) and value in OUTCOMES else "unknown"


def _records(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float) and value > 0:
        return int(value)
    return 0


class BatchCounts:
    """What one batch adds to each security counter."""

    def __init__(self) -> None:
        self.sign_ins: Counter[Key] = Counter()
        self.mfa: Counter[Key] = Counter()
        self.accessed: Counter[Key] = Counter()
        self.exported: Counter[Key] = Counter()

    def add(self, ev: Event) -> None:
        f = ev.fields
        action = f.get("event.action")
        kind = _KIND_OF.get(action) if isinstance(action, str) else None
        if kind is None:
            return  # most events: one dict lookup and out
        outcome = f.get("event.outcome")
        if kind == "sign_in":
            method = sign_in_method(f.get("sentinel.authentication.method"))
            self.sign_ins[(ev.source, _outcome(outcome), method)] += 1
        elif kind == "mfa_verify":
            if outcome in ("success", "failure"):
                self.mfa[(ev.source, outcome)] += 1
        elif kind in ("challenge", "denial"):
            self.mfa[(ev.source, kind)] += 1
        elif outcome == "failure":
            return  # a refused view or export moved no records
        elif kind == "access":
            self.accessed[(str(action),)] += _records(f.get("phi.record_count"))
        else:
            dest = destination_type(f.get("phi.export.destination_type"))
            self.exported[(str(action), dest)] += _records(f.get("phi.record_count"))


class SecurityCounter:
    """A batch processor that counts the batch's security facts once its transaction has committed."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._pending: BatchCounts | None = None
        # Every series exists from the start, so rate() is 0 rather than absent until the first sign-in.
        for action in PHI_ACCESS_ACTIONS:
            metrics.phi_accessed.labels(action)

    def process(self, tx: sqlite3.Connection, events: Sequence[Event], now: float) -> None:
        # Replaces (never adds to) what an earlier batch left: that batch rolled back if it is still here.
        counts = BatchCounts()
        for ev in events:
            if ev.parsed:
                counts.add(ev)
        self._pending = counts

    def committed(self, _result: object = None) -> None:
        """The pipeline's after-commit hook: the pending batch is now durable, so it is counted."""
        counts, self._pending = self._pending, None
        if counts is None:
            return
        m = self.metrics
        for key, n in counts.sign_ins.items():
            m.sign_ins.labels(*key).inc(n)
        for key, n in counts.mfa.items():
            m.mfa.labels(*key).inc(n)
        for key, n in counts.accessed.items():
            m.phi_accessed.labels(*key).inc(n)
        for key, n in counts.exported.items():
            m.phi_exported.labels(*key).inc(n)
