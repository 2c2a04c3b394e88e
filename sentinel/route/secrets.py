"""Secret references in receiver URLs: ``${ENV_VAR}`` and ``file:/path``, resolved at load, registered for masking."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from sentinel.cli.logsetup import register_secret

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Channels whose URL always embeds a credential: such a URL with no reference holds the secret inline.
_SECRET_SCHEMES = {"pagerduty", "opsgenie", "slack", "msteams", "discord", "pushover", "ntfys", "tgram", "workflow",
                   "workflows", "spike", "squadcast", "signl4"}


class SecretError(ValueError):
    """A reference could not be resolved (the message never contains a secret value)."""


def has_reference(value: str) -> bool:
    return bool(_REF.search(value)) or value.startswith("file:")


def inline_secret_suspected(url: str) -> bool:
    """True when a credential-bearing URL carries no ${ENV}/file: reference, i.e. its secret sits in the YAML."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if has_reference(url):
        return False
    if scheme in _SECRET_SCHEMES:
        return True
    # user:password@ in any other URL is also an inline secret.
    rest = url.split("://", 1)[1] if "://" in url else ""
    userinfo = rest.split("@", 1)[0] if "@" in rest.split("/", 1)[0] else ""
    return ":" in userinfo


def resolve(value: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``${VAR}`` from the environment, or read the whole value from ``file:/path``."""
    env = os.environ if env is None else env
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        if not secret:
            raise SecretError(f"secret file {path} is empty")
        register_secret(secret)
        return secret

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env or not env[name]:
            raise SecretError(f"environment variable {name} is not set")
        register_secret(env[name])
        return env[name]

    resolved = _REF.sub(sub, value)
    if resolved != value:
        register_secret(resolved)
    return resolved
