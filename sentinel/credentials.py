"""Secrets: references (``${ENV_VAR}``, ``file:/path``) resolved one way for every part, inline ones refused.

Every part that needs a secret (receiver URLs, the Elasticsearch key and password, the metrics endpoint's
basic-auth password, the alert API token) resolves it here, so an empty file or an empty variable is the same
error everywhere, and every resolved value is remembered so the daemon's log lines can mask it.
Like :mod:`sentinel.errors` this module uses nothing else of sentinel's, so any part may use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sentinel.errors import SentinelError

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# Apprise schemes whose URL always embeds a credential: such a URL with no reference holds it inline.
_SECRET_SCHEMES = frozenset({"pagerduty", "opsgenie", "slack", "msteams", "discord", "pushover", "ntfys", "tgram",
                             "workflow", "workflows", "spike", "squadcast", "signl4", "gchat"})
# Web hosts whose webhook path is itself the credential (whoever has the URL can post).
_PATH_CREDENTIAL_HOSTS = (
    (re.compile(r"^hooks\.slack\.com$"), "/services/", "Slack webhook"),
    (re.compile(r"(^|\.)webhook\.office\.com$"), "/webhook", "Microsoft Teams webhook"),
    (re.compile(r"^outlook\.office(365)?\.com$"), "/webhook", "Microsoft Teams webhook"),
    (re.compile(r"(^|\.)logic\.azure\.com$"), "/workflows/", "Power Automate workflow"),
    (re.compile(r"(^|\.)api\.powerplatform\.com$"), "/powerautomate/", "Power Automate workflow"),
    (re.compile(r"^(canary\.|ptb\.)?discord(app)?\.com$"), "/api/webhooks/", "Discord webhook"),
)
# Query parameters that carry a credential by their name (token=, key=, apikey=, sig=, password= ...).
_CREDENTIAL_PARAM = re.compile(
    r"^(?:.*token|.*secret|.*passw(?:or)?d|pass|pwd|.*api[-_]?key|key|.*[-_]key|sig|signature|auth|code|"
    r"access[-_]?key)$", re.IGNORECASE)
_MIN_MASKED = 4



class Secrets:
    """The secret values resolved so far, so text that reaches a log line or an error can be masked."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def remember(self, value: str | None) -> None:
        if value and len(value) >= _MIN_MASKED:
            self._known.add(value)

    def mask(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, "***")
        return text


# The process's one memory of resolved secrets: every resolver below feeds it, whichever part calls it, and the
# log formatters (cli/logsetup.py) are handed it. Like the metrics registry, the one shared mutable object.
SECRETS = Secrets()


class SecretError(SentinelError, ValueError):
    """A reference could not be resolved, or a secret sits inline (the message never contains a value)."""


def remember(value: str | None) -> None:
    """Keep a resolved secret so :func:`mask` hides it if it ever reaches a log line or an error."""
    SECRETS.remember(value)


def mask(text: str) -> str:
    return SECRETS.mask(text)


def is_reference(value: str) -> bool:
    """The whole value is one reference: ``${NAME}`` or ``file:/path``."""
    return bool(_WHOLE_ENV.match(value)) or (value.startswith("file:") and len(value) > 5)


def has_reference(value: str) -> bool:
    return bool(_REF.search(value)) or value.startswith("file:")


def _read_file(reference: str, base: Path | None) -> str:
    path = Path(reference[5:]).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"secret file {path} is not UTF-8 text") from None
    if not value:
        raise SecretError(f"secret file {path} is empty")
    return value


def _env(name: str, env: Mapping[str, str]) -> str:
    if name not in env:
        raise SecretError(f"environment variable {name} is not set")
    if not env[name].strip():
        raise SecretError(f"environment variable {name} is empty")
    return env[name]


def resolve_reference(reference: str, base: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """A secret given wholly by reference (a password, an API key); never empty."""
    env = os.environ if env is None else env
    m = _WHOLE_ENV.match(reference)
    if m:
        value = _env(m.group(1), env)
    elif reference.startswith("file:"):
        value = _read_file(reference, base)
    else:
        raise SecretError("expected ${ENV_VAR} or file:/path, never the secret itself")
    remember(value)
    return value


def resolve_embedded(value: str, base: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """A URL with ``${VAR}`` anywhere in it, or read whole from ``file:/path``."""
    env = os.environ if env is None else env
    if value.startswith("file:"):
        return resolve_reference(value, base, env)

    def sub(m: re.Match[str]) -> str:
        secret = _env(m.group(1), env)
        remember(secret)
        return secret

    resolved = _REF.sub(sub, value)
    if resolved != value:
        remember(resolved)
    return resolved


def inline_secret(url: str) -> str | None:
    """What credential a URL carries inline (not as a reference), or None: the reason is safe to print."""
    if url.startswith("file:"):
        return None
    # A part that is wholly a reference is fine; a credential beside a reference is still inline.
    text = _REF.sub("REF", url)
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced [ in the host: judge what follows the userinfo
        parts = urlsplit(text.replace("[", "").replace("]", ""))
    scheme = parts.scheme.lower()
    if scheme in _SECRET_SCHEMES and not has_reference(url):
        return f"a {scheme}:// URL always embeds its credential"
    if parts.password and parts.password != "REF":
        return "a password in the URL (user:password@)"
    if scheme in _SECRET_SCHEMES and parts.username and parts.username != "REF" and not has_reference(url):
        return f"a {scheme}:// URL always embeds its credential"
    host = (parts.hostname or "").lower()
    for pattern, prefix, what in _PATH_CREDENTIAL_HOSTS:
        if pattern.search(host) and parts.path.startswith(prefix):
            secret_part = parts.path[len(prefix):].strip("/")
            if secret_part and "REF" not in secret_part and not _only_query_credentials(parts.query):
                return f"a {what} URL, whose path is the credential"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _CREDENTIAL_PARAM.match(name) and value and value != "REF":
            return f"a credential in the query parameter {name!r}"
    return None


def _only_query_credentials(query: str) -> bool:
    """Power Automate signs its URL with sig=: the query check below judges that one."""
    names = [n for n, _ in parse_qsl(query)]
    return bool(names) and any(_CREDENTIAL_PARAM.match(n) for n in names)
