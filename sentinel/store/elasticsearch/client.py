"""Build the Elasticsearch client from settings: TLS verified by default, credentials from references."""

from __future__ import annotations

import logging
from pathlib import Path

from elasticsearch import Elasticsearch

from sentinel.conf.models import ConfigFile, ElasticsearchSettings
from sentinel.credentials import SecretError, resolve_reference
from sentinel.errors import ConfigError, Location

log = logging.getLogger(__name__)


def resolve_secret(reference: str | None, where: Location, base: Path | None = None) -> str | None:
    """Read ``${ENV}`` or ``file:/path`` (see :mod:`sentinel.credentials`); errors name the setting."""
    if reference is None:
        return None
    try:
        return resolve_reference(reference, base)
    except SecretError as exc:
        raise ConfigError(str(exc), where) from None


def build_client(s: ElasticsearchSettings, origin: ConfigFile, request_timeout: float | None = None) -> Elasticsearch:
    """An ``Elasticsearch`` client for the configured cluster (no request is made here); relative paths and
    ``file:`` secrets resolve against the ``origin`` config file, which errors name."""

    def where(name: str) -> Location:
        return Location(str(origin.path), None, f"storage.elasticsearch.{name}")

    kwargs: dict[str, object] = {
        "request_timeout": request_timeout or s.request_timeout,
        "verify_certs": s.verify_certs,
        # retries are ours (spool + backoff); the client must not hide an outage behind its own loop
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    if s.ca_certs:
        ca = origin.resolve(s.ca_certs)
        if not ca.is_file():
            raise ConfigError(f"CA bundle {ca} does not exist", where("ca_certs"))
        kwargs["ca_certs"] = str(ca)
    if not s.verify_certs:
        log.warning("storage.elasticsearch.verify_certs is false: the cluster's certificate is NOT checked")
    api_key = resolve_secret(s.api_key, where("api_key"), origin.base)
    password = resolve_secret(s.password, where("password"), origin.base)
    if api_key:
        kwargs["api_key"] = api_key
    elif s.username:
        if password is None:
            raise ConfigError("username is set but password is not (expected ${ENV} or file:/path)", where("password"))
        kwargs["basic_auth"] = (s.username, password)
    if (api_key or s.username) and any(h.startswith("http://") for h in s.hosts):
        log.warning("credentials are sent to Elasticsearch over plain http; use https hosts")
    return Elasticsearch(s.hosts, **kwargs)  # type: ignore[arg-type]
