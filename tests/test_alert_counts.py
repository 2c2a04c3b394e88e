"""Alert figures that tell the truth: events arriving while an alert is suppressed join it, so a brute force
of 40 attempts says 40, and the alert names the entity it is about."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.fixtures.common import MakeConfig


def _cli(cfg_path: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sentinel.cli.main", *args, "--config", str(cfg_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _okta_deny(i: int) -> str:
    return orjson.dumps({
        "uuid": f"deny{i}", "published": f"2026-11-27T09:{i:02d}:00.000Z",
        "eventType": "user.mfa.okta_verify.deny_push",
        "actor": {"id": "00u1", "type": "User", "alternateId": "jdoe@example.com"},
        "client": {"ipAddress": "198.51.100.7"}, "outcome": {"result": "DENY"}, "target": []}).decode()


def _alerts(cfg_path: Path, rule: str) -> list[dict[str, Any]]:
    listed = json.loads(_cli(cfg_path, "alerts", "list", "--status", "all", "--format", "json"))
    return [a for a in listed if a["rule"] == rule]


def test_counts_keep_running_while_an_alert_is_suppressed(tmp_path: Path, make_config: MakeConfig) -> None:
    auth, okta = tmp_path / "auth.log", tmp_path / "okta.jsonl"
    # 40 failed sign-ins for alice over 20 minutes from two addresses (threshold: 10 within 10 minutes).
    auth.write_text("".join(
        f"2026-11-27T08:{i // 2:02d}:{30 * (i % 2):02d}Z web01 sshd[{100 + i}]: Failed password for alice from "
        f"203.0.113.{5 + i % 2} port {40000 + i} ssh2\n" for i in range(40)))
    # 9 denied pushes for jdoe, one a minute (threshold: 3 within 10 minutes).
    okta.write_text("".join(_okta_deny(i) + "\n" for i in range(9)))
    cfg = make_config(sources=[{"collector": "linux-auth", "paths": [str(auth)]},
                               {"collector": "okta", "paths": [str(okta)]}],
                      notify={"enabled": False})
    _cli(cfg.path, "replay", "--collector", "linux-auth", "--quiet", str(auth))
    _cli(cfg.path, "replay", "--collector", "okta", "--quiet", str(okta))

    brute = _alerts(cfg.path, "auth-brute-force-user")
    assert len(brute) == 1  # one attack, one alert: the other 30 attempts were inside its suppression
    shown = json.loads(_cli(cfg.path, "alerts", "show", brute[0]["id"], "--format", "json"))
    assert shown["count"] == 40 and len(shown["event_ids"]) == 40
    assert shown["summary"].startswith("40 failed sign-ins for alice")
    assert shown["last_seen"] - shown["first_seen"] == 19 * 60 + 30
    assert shown["entity"]["user.name"] == "alice" and shown["entity"]["host.name"] == "web01"
    assert shown["entity"]["source.ip"] in ("203.0.113.5", "203.0.113.6")  # a threshold alert names one too
    assert shown["details"]["events_after_alert"] == 30

    push = _alerts(cfg.path, "mfa-push-bombing")
    assert len(push) == 1
    shown = json.loads(_cli(cfg.path, "alerts", "show", push[0]["id"], "--format", "json"))
    assert shown["count"] == 9 and "denied 9 MFA pushes" in shown["summary"]
    assert shown["entity"] == {"user.name": "jdoe@example.com", "source.ip": "198.51.100.7",
                               "host.name": shown["entity"]["host.name"]}
    text = _cli(cfg.path, "alerts", "show", push[0]["id"])
    assert "count            9" in text


def test_replaying_again_does_not_count_twice(tmp_path: Path, make_config: MakeConfig) -> None:
    okta = tmp_path / "okta.jsonl"
    okta.write_text("".join(_okta_deny(i) + "\n" for i in range(9)))
    cfg = make_config(sources=[{"collector": "okta", "paths": [str(okta)]}], notify={"enabled": False})
    for _ in range(2):
        _cli(cfg.path, "replay", "--collector", "okta", "--quiet", str(okta))
    push = _alerts(cfg.path, "mfa-push-bombing")
    assert [a["count"] for a in push] == [9]
