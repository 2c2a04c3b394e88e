"""Cloud events are about the organisation or tenant, not the machine that collects them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import orjson

from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import FakeClock
from tests.ingest_helpers import drain, open_daemon, stored

OKTA = orjson.dumps({"uuid": "c1", "published": "2026-11-27T09:00:00.000Z", "eventType": "user.session.start",
                     "actor": {"id": "00u1", "type": "User", "alternateId": "jdoe@example.com"},
                     "client": {"ipAddress": "198.51.100.7"}, "outcome": {"result": "SUCCESS"}}).decode()
ENTRA = orjson.dumps({"time": "2026-11-27T09:00:00.000Z", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                      "category": "SignInLogs", "properties": {"userPrincipalName": "jdoe@example.com",
                                                               "ipAddress": "198.51.100.20",
                                                               "status": {"errorCode": 0}}}).decode()


def test_cloud_events_name_the_organisation_not_this_machine(tmp_path: Path, make_config: MakeConfig) -> None:
    okta, entra = tmp_path / "okta.jsonl", tmp_path / "entra.jsonl"
    okta.write_text(OKTA + "\n")
    entra.write_text(ENTRA + "\n")
    cfg = make_config(host_name="collector-7",
                      sources=[{"collector": "okta", "paths": [str(okta)], "host_name": "acme.okta.com"},
                               {"collector": "entra", "paths": [str(entra)]}],
                      detection={"enabled": False})
    d = open_daemon(cfg, FakeClock(1_796_000_000.0))
    try:
        drain(d)
    finally:
        d.close()
    hosts = {doc["sentinel.source"]: doc["host.name"] for doc in stored(cfg)}
    assert hosts == {"okta": "acme.okta.com", "entra": "72f988bf-86f1-41af-91ab-2d7cd011db47"}


def test_an_unnamed_okta_organisation_is_not_labelled_with_the_collector(tmp_path: Path,
                                                                         make_config: MakeConfig) -> None:
    okta = tmp_path / "okta.jsonl"
    okta.write_text(OKTA + "\n")
    cfg = make_config(sources=[{"collector": "okta", "paths": [str(okta)]}], detection={"enabled": False})
    out = subprocess.run([sys.executable, "-m", "sentinel.cli.main", "replay", "--config", str(cfg.path),
                          "--collector", "okta", "--quiet", str(okta)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (doc,) = stored(cfg)
    assert doc["host.name"] == "okta" != socket.gethostname()
