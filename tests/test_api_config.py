"""``type: api`` sources in sentinel.yaml: what `sentinel check` says about them, from the user's side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sentinel.events.conditions import compile_condition
from sentinel.shipped import shipped_path
from tests.cloud.daemon import ROOT


def _check(tmp: Path, api: dict[str, Any], collector: str = "okta", env: dict[str, str] | None = None) -> str:
    cfg = {"state_dir": str(tmp / "state"), "collectors_dir": str(shipped_path("collectors")),
           "rules_dir": str(tmp / "no-rules"), "alerts_dir": str(tmp / "no-alerts"),
           "sources": [{"collector": collector, "type": "api", "api": api}]}
    path = tmp / "sentinel.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "sentinel", "check", "-c", str(path)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})})
    return done.stdout + done.stderr


def test_an_inline_token_is_refused_and_never_echoed(tmp_path: Path) -> None:
    out = _check(tmp_path, {"provider": "okta", "url": "https://acme.okta.com", "token": "00aBcDeFgHiJkLmNoP"})
    assert "sources.0.api.token" in out or "sources[0].api.token" in out
    assert "00aBcDeFgHiJkLmNoP" not in out


def test_a_reference_that_does_not_resolve_is_named_with_its_field(tmp_path: Path) -> None:
    out = _check(tmp_path, {"provider": "graph", "tenant_id": "t", "client_id": "c",
                            "client_secret": "${GRAPH_SECRET}"}, "entra")
    assert "sources[0].api.client_secret" in out and "GRAPH_SECRET is not set" in out
    ok = _check(tmp_path, {"provider": "graph", "tenant_id": "t", "client_id": "c",
                           "client_secret": "${GRAPH_SECRET}"}, "entra", {"GRAPH_SECRET": "x" * 20})
    assert "GRAPH_SECRET" not in ok and "source entra: reads the graph API, every 60 s" in ok, ok
    assert "/var/log/entra" not in ok, "an API source has no folder to wait for"


def test_missing_settings_and_unknown_streams_say_what_is_expected(tmp_path: Path) -> None:
    out = _check(tmp_path, {"provider": "workspace", "credentials": "file:/nonexistent.json"}, "google-workspace")
    assert "needs subject" in out
    out = _check(tmp_path, {"provider": "graph", "tenant_id": "t", "client_id": "c", "client_secret": "${X}",
                            "streams": ["signins"]}, "entra")
    assert "no stream signins" in out and "signIns" in out
    out = _check(tmp_path, {"url": "https://acme.okta.com"})
    assert "needs a provider" in out


def test_okta_oauth_private_key_is_by_reference_only_and_check_reads_it(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    okta = {"provider": "okta", "url": "https://acme.okta.com", "client_id": "0oa1"}
    inline = _check(tmp_path, {**okta, "private_key": pem})
    assert "sources[0].api.private_key" in inline and pem.splitlines()[1] not in inline
    good = tmp_path / "okta.pem"
    good.write_text(pem)
    ok = _check(tmp_path, {**okta, "private_key": f"file:{good}"})
    assert "source okta: reads the okta API at https://acme.okta.com" in ok and "BEGIN PRIVATE KEY" not in ok, ok
    assert "api.private_key" not in ok, ok
    via_env = _check(tmp_path, {**okta, "private_key": "${OKTA_KEY}"}, env={"OKTA_KEY": pem})
    assert "api.private_key" not in via_env and "OKTA_KEY" not in via_env, via_env
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    out = _check(tmp_path, {**okta, "private_key": f"file:{bad}"})
    assert "sources[0].api.private_key" in out and "is not a PEM private key" in out, out
    both = _check(tmp_path, {**okta, "private_key": f"file:{good}", "token": "${OKTA_TOKEN}"})
    assert "either token (SSWS) or client_id with private_key" in both, both
    half = _check(tmp_path, {**okta})
    assert "needs token (an SSWS API token) or client_id and private_key" in half, half


def test_a_list_of_domains_matches_an_address_by_its_domain() -> None:
    pred = compile_condition({"email.to.address": {"in_list": "personal_domains"}},
                             lists={"personal_domains": frozenset({"gmail.com", "proton.me"})})
    assert pred({"email.to.address": "Alice.Home@GMail.com"})
    assert pred({"email.to.address": "Big Mike <bigmike@proton.me>"})
    assert not pred({"email.to.address": "ops@gmail.com.example"})
    assert not pred({"email.to.address": "gmail.com@meridianbilling.example"})
