"""``type: api`` sources in sentinel.yaml: what `sentinel check` says about them, from the user's side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

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


def test_a_list_of_domains_matches_an_address_by_its_domain() -> None:
    pred = compile_condition({"email.to.address": {"in_list": "personal_domains"}},
                             lists={"personal_domains": frozenset({"gmail.com", "proton.me"})})
    assert pred({"email.to.address": "Alice.Home@GMail.com"})
    assert pred({"email.to.address": "Big Mike <bigmike@proton.me>"})
    assert not pred({"email.to.address": "ops@gmail.com.example"})
    assert not pred({"email.to.address": "gmail.com@meridianbilling.example"})
