"""One identity map: the login names, e-mail addresses and display names of one person, as one account.

Sources name people differently: sshd and the billing app log ``jdoe``, the identity providers log
``jdoe@company.com`` and carry the display name ``Jane Doe`` beside it. An account is keyed by its login, lower-case,
an e-mail address reduced to its local part; a display name resolves to the login it was last seen with, learnt
from events that carry both (Okta's actor and target, Entra's userDisplayName). The learnt names live in the rule
state the map is given, so they persist with the batch like everything else.
"""

from __future__ import annotations

from sentinel.detect.state import KeyStore

ALIAS = "#alias:"


def login_of(name: str) -> str:
    """``JDoe@Company.com`` → ``jdoe``; other names lower-cased and stripped."""
    text = name.strip().lower()
    return text.split("@", 1)[0] if "@" in text else text


class IdentityMap:
    """Resolves any name of an account to its canonical login, learning display names as events show them."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def learn(self, login: object, display: object) -> None:
        """Remember that ``display`` (a full name) belongs to ``login``."""
        if not isinstance(login, str) or not isinstance(display, str) or not login or not display.strip():
            return
        key = ALIAS + " ".join(display.lower().split())
        canonical = login_of(login)
        if key == ALIAS + canonical:
            return
        known = self.store.get(key)
        if known is None or known.get("l") != canonical:
            self.store.put(key, {"l": canonical})

    def canonical(self, name: object) -> str | None:
        """The account ``name`` refers to: a known display name's login, else the name as a login."""
        if not isinstance(name, str) or not name.strip():
            return None
        if " " in name.strip():
            known = self.store.get(ALIAS + " ".join(name.lower().split()))
            if known is not None:
                return str(known["l"])
        return login_of(name)
