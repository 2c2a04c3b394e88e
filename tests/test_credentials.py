"""One secrets module for every part: references resolve the same way everywhere, inline secrets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.credentials import SecretError, inline_secret, mask, resolve_embedded, resolve_reference
from sentinel.daemon.validate import validate_all
from sentinel.errors import ConfigError, ConfigErrors
from sentinel.route.loader import load_routing
from sentinel.store.elasticsearch.client import build_client
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import write_alerts_dir

GOOD_ROUTES = "route:\n  receivers: [hook]\n"

# What people actually paste into receivers.yaml: each must be refused.
INLINE = {
    "slack webhook": "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx",
    "slack apprise": "slack://T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx",
    "teams webhook": "https://contoso.webhook.office.com/webhookb2/1234-abcd@5678-efgh/IncomingWebhook/9abc/def0",
    "teams legacy": "https://outlook.office.com/webhook/1234-abcd@5678/IncomingWebhook/9abc/def0",
    "power automate": "https://prod-12.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
                      "?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=Zm9vYmFyYmF6cXV4",
    "discord webhook": "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz",
    "discordapp webhook": "https://discordapp.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOp",
    "google chat": "https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=AIzaSyDdI0hCZtE6&token=Xk9-abc",
    "query token": "jsons://hooks.example.com/hook?token=s3cr3t-t0ken",
    "query apikey": "json://127.0.0.1:9/x?apikey=0123456789",
    "query api_key": "json://127.0.0.1:9/x?api_key=0123456789",
    "query secret": "form://127.0.0.1/x?client_secret=abc123",
    "query password": "json://127.0.0.1/x?password=hunter2",
    "query sig": "json://127.0.0.1/x?sig=abcdef",
    "userinfo json": "jsons://alice:hunter2@hooks.example.com/notify",
    "userinfo mailto": "mailtos://alerts:app-password-123@smtp.example.com?to=soc@example.com",
    "userinfo https": "https://bot:pw@example.com/hook",
    "pagerduty": "pagerduty://abcdef123456@secretkey999",
    "reference beside an inline secret": "https://hooks.slack.com/services/T0/B0/abcdefgh?x=${SENTINEL_X}",
}
# Fine: no credential, or every credential given as a reference.
CLEAN = {
    "plain local webhook": "json://127.0.0.1:9/x",
    "whole url from env": "${SENTINEL_SLACK_URL}",
    "file": "file:/etc/sentinel/secrets/slack.url",
    "slack path by reference": "https://hooks.slack.com/services/${SENTINEL_SLACK_PATH}",
    "token by reference": "jsons://hooks.example.com/hook?token=${SENTINEL_HOOK_TOKEN}",
    "password by reference": "mailtos://alerts:${SENTINEL_SMTP_PW}@smtp.example.com",
    "user without password": "mailto://alerts@example.com",
    "google chat by reference": "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=${K}&token=${T}",
    "harmless query": "json://127.0.0.1:9/x?format=markdown&priority=high",
    "pagerduty by reference": "pagerduty://${SENTINEL_PD_KEY}@${SENTINEL_PD_API}",
}


@pytest.mark.parametrize("url", INLINE.values(), ids=list(INLINE))
def test_inline_secrets_are_detected(url: str) -> None:
    reason = inline_secret(url)
    assert reason, url


@pytest.mark.parametrize("url", CLEAN.values(), ids=list(CLEAN))
def test_references_and_plain_urls_pass(url: str) -> None:
    assert inline_secret(url) is None


def test_inline_secret_in_receivers_is_an_error_that_does_not_print_it(tmp_path: Path) -> None:
    url = INLINE["slack webhook"]
    d = write_alerts_dir(tmp_path / "alerts", GOOD_ROUTES, f'receivers:\n  - name: hook\n    urls: ["{url}"]\n')
    with pytest.raises(ConfigErrors) as info:
        load_routing(d)
    text = str(info.value)
    assert "receivers.yaml:3" in text and "Slack webhook" in text
    assert "abcdefghijklmnopqrstuvwx" not in text


def test_references_resolve_and_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_T_TOKEN", "tok-9876543210")
    assert resolve_embedded("json://h/x?token=${SENTINEL_T_TOKEN}") == "json://h/x?token=tok-9876543210"
    assert "tok-9876543210" not in mask("sending to json://h/x?token=tok-9876543210")
    (tmp_path / "k").write_text("  from-file-123 \n")
    assert resolve_reference("file:k", base=tmp_path) == "from-file-123"


@pytest.mark.parametrize("make", ["empty file", "blank file", "empty env", "unset env", "missing file", "inline"])
def test_every_bad_reference_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str) -> None:
    monkeypatch.setenv("SENTINEL_T_EMPTY", "")
    monkeypatch.delenv("SENTINEL_T_UNSET", raising=False)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "blank").write_text(" \n\n")
    ref = {"empty file": f"file:{tmp_path / 'empty'}", "blank file": f"file:{tmp_path / 'blank'}",
           "empty env": "${SENTINEL_T_EMPTY}", "unset env": "${SENTINEL_T_UNSET}",
           "missing file": f"file:{tmp_path / 'nope'}", "inline": "hunter2"}[make]
    with pytest.raises(SecretError):
        resolve_reference(ref)


def test_an_empty_secret_file_is_the_same_error_for_every_part(tmp_path: Path, make_config: MakeConfig) -> None:
    empty = tmp_path / "empty.secret"
    empty.write_text("")
    # Receivers: the receiver cannot send and check says so.
    d = write_alerts_dir(tmp_path / "alerts", GOOD_ROUTES, f'receivers:\n  - name: hook\n    urls: ["file:{empty}"]\n')
    routing = load_routing(d)
    assert routing.receivers["hook"].problem is not None and "is empty" in routing.receivers["hook"].problem
    # Metrics basic auth: check refuses (and so does run: it validates the same way first).
    cfg = make_config(metrics={"enabled": True, "username": "prometheus", "password": f"file:{empty}"})
    report = validate_all(cfg)
    assert [str(e) for e in report.errors if "metrics.password" in str(e)] == [
        f"{cfg.path}: metrics.password: secret file {empty} is empty"]
    # Elasticsearch credentials.
    cfg = make_config(storage={"backend": "elasticsearch", "elasticsearch": {
        "hosts": ["https://127.0.0.1:9"], "api_key": f"file:{empty}"}})
    with pytest.raises(ConfigError, match="is empty"):
        build_client(cfg.config.storage.elasticsearch, cfg.origin)
    assert any("storage.elasticsearch.api_key" in str(e) and "is empty" in str(e)
               for e in validate_all(cfg).errors)
