"""Build a ``type: api`` source from its settings: the provider's poller, its credential and its metrics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sentinel.collect.api.auth import ClientCredentials, OktaPrivateKeyJwt, ServiceAccountJwt, SswsToken
from sentinel.collect.api.graph import GraphAuditLogs
from sentinel.collect.api.http import Auth, Http, HttpSettings
from sentinel.collect.api.o365 import CONTENT_TYPES, ManagementActivity
from sentinel.collect.api.okta import SCOPE as OKTA_SCOPE
from sentinel.collect.api.okta import OktaLogs
from sentinel.collect.api.source import ApiSource, PollEvents, PollSettings, Provider
from sentinel.collect.api.window import LatePass
from sentinel.collect.api.workspace import APPLICATIONS, SCOPE, WorkspaceActivities
from sentinel.conf.models import ApiSourceSettings
from sentinel.credentials import SecretError, remember, resolve_reference
from sentinel.metrics.registry import Metrics


def _okta(own: ApiSourceSettings, base: Path, clock: Callable[[], float]) -> tuple[Provider, Auth, str]:
    assert own.url is not None  # the settings model requires it, and a token or client_id with private_key
    provider = OktaLogs(own.url, own.page_size or 1000, own.backfill_hours * 3600)
    if own.token is not None:
        return provider, SswsToken(resolve_reference(own.token, base)), own.url
    assert own.client_id is not None and own.private_key is not None
    private_key = resolve_reference(own.private_key, base)
    remember(private_key)
    token_url = own.token_url or f"{own.url.rstrip('/')}/oauth2/v1/token"
    auth = OktaPrivateKeyJwt(token_url, own.client_id, private_key, (OKTA_SCOPE,), own.key_id, clock)
    return provider, auth, own.url


def _graph(own: ApiSourceSettings, base: Path, clock: Callable[[], float]) -> tuple[Provider, Auth, str]:
    assert own.tenant_id and own.client_id and own.client_secret  # the settings model requires them
    url = own.url or "https://graph.microsoft.com"
    streams = tuple(own.streams or ("signIns", "directoryAudits"))
    provider = GraphAuditLogs(url, streams, own.page_size or 1000, own.backfill_hours * 3600, own.overlap_seconds,
                              _late_pass(own))
    return provider, _entra_app(own, base, "https://graph.microsoft.com/.default", clock), url


def _late_pass(own: ApiSourceSettings) -> LatePass:
    return LatePass(own.late_window_hours * 3600, own.late_every_minutes * 60)


def _o365(own: ApiSourceSettings, base: Path, clock: Callable[[], float]) -> tuple[Provider, Auth, str]:
    assert own.tenant_id  # the settings model requires it
    url = own.url or "https://manage.office.com"
    provider = ManagementActivity(own.tenant_id, url, tuple(own.streams or CONTENT_TYPES), own.backfill_hours * 3600,
                                  own.overlap_seconds)
    return provider, _entra_app(own, base, "https://manage.office.com/.default", clock), url


def _entra_app(own: ApiSourceSettings, base: Path, scope: str, clock: Callable[[], float]) -> ClientCredentials:
    assert own.tenant_id and own.client_id and own.client_secret
    token_url = own.token_url or f"https://login.microsoftonline.com/{own.tenant_id}/oauth2/v2.0/token"
    return ClientCredentials(token_url, own.client_id, resolve_reference(own.client_secret, base), scope, clock)


def _workspace(own: ApiSourceSettings, base: Path, clock: Callable[[], float]) -> tuple[Provider, Auth, str]:
    assert own.credentials and own.subject  # the settings model requires them
    try:
        key = json.loads(resolve_reference(own.credentials, base))
        email, private_key = key["client_email"], key["private_key"]
    except (ValueError, KeyError, TypeError):
        raise SecretError("the Workspace credentials are not a service-account key (JSON with client_email and "
                          "private_key, as the Google Cloud console downloads it)") from None
    remember(private_key)
    url = own.url or "https://admin.googleapis.com"
    token_url = own.token_url or key.get("token_uri") or "https://oauth2.googleapis.com/token"
    provider = WorkspaceActivities(url, tuple(own.streams or APPLICATIONS), own.page_size or 1000,
                                   own.backfill_hours * 3600, own.overlap_seconds, _late_pass(own))
    auth = ServiceAccountJwt(token_url, email, private_key, own.subject, (SCOPE,), key.get("private_key_id"), clock)
    return provider, auth, url


# provider name -> (settings, config folder, clock) -> (the poller, its credential, what to call it)
PROVIDERS: dict[str, Callable[[ApiSourceSettings, Path, Callable[[], float]], tuple[Provider, Auth, str]]] = {
    "okta": _okta,
    "graph": _graph,
    "workspace": _workspace,
    "o365": _o365,
}


def poll_events(metrics: Metrics) -> PollEvents:
    def on_page(source: str, stream: str, events: int) -> None:
        metrics.api_pages.labels(source, stream).inc()
        metrics.api_events.labels(source, stream).inc(events)

    return PollEvents(
        on_page=on_page,
        on_late_page=lambda s, st, events: metrics.api_late_events.labels(s, st).inc(events),
        on_error=lambda s, st, kind: metrics.api_errors.labels(s, st, kind).inc(),
        on_success=lambda s, st, when: metrics.api_last_success.labels(s, st).set(when),
        on_backlog=lambda s, st, seconds: metrics.api_backlog_seconds.labels(s, st).set(seconds),
        on_lag=lambda s, st, seconds: metrics.api_lag_seconds.labels(s, st).set(seconds),
        on_token=lambda s: metrics.api_tokens.labels(s).inc(),
    )


def build_api_source(name: str, own: ApiSourceSettings, base: Path, metrics: Metrics,
                     clock: Callable[[], float] = time.time, wake: threading.Event | None = None) -> ApiSource:
    """``base``: the folder relative file: references and ca_file are read from (the config's)."""
    assert own.provider is not None  # plan_sources refuses an api source without one
    provider, auth, where = PROVIDERS[own.provider](own, base, clock)
    ca = str((base / own.ca_file).resolve()) if own.ca_file else None
    http = Http(HttpSettings(timeout_seconds=own.timeout_seconds, ca_file=ca), auth, clock)
    settings = PollSettings(poll_interval_seconds=own.poll_interval_seconds,
                            backoff_min_seconds=own.backoff_min_seconds, backoff_max_seconds=own.backoff_max_seconds)
    return ApiSource(name, provider, http, settings, poll_events(metrics), clock, wake,
                     label=f"{own.provider}:{where}")
