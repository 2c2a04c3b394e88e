"""Rule fields against the vocabulary (ECS facts + what the loaded collectors emit), in check, run and reload;
source directories that do not exist; a refused run leaves no files."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.audit.chain import AuditLog
from sentinel.daemon.collectors import load_collectors
from sentinel.daemon.validate import validate_all
from sentinel.decode.vocabulary import vocabulary_of
from tests.fixtures.common import MakeConfig
from tests.ops_helpers import DaemonProcess, NotifyListener, OpsEnv, wait_until

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
BAD_RULE = """id: typo-rule
title: A typo
severity: low
filter:
  event.acton: sudo_failure
type: match
summary: "typo on {host.name}"
runbook: Fix the typo.
"""


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_every_shipped_rule_names_only_known_fields_and_emitted_values(make_config: MakeConfig) -> None:
    report = validate_all(make_config())
    assert report.errors == []
    assert [w for w in report.warnings if "rules/" in str(w)] == []


def test_vocabulary_comes_from_the_collectors_not_a_list() -> None:
    collectors, errors = load_collectors(SHIPPED / "collectors")
    assert errors == []
    full = vocabulary_of(c.spec for c in collectors.values())
    without_auth = vocabulary_of(c.spec for n, c in collectors.items() if n != "linux-auth")
    assert full.emits("event.action", "sudo_failure")
    assert not without_auth.emits("event.action", "sudo_failure"), "only linux-auth emits sudo_failure"
    assert full.emits("event.action", "phi_export"), "a lookup table's values count (billing-audit)"
    assert full.known("phi.export.destination_type") and full.known("labels.anything")
    assert not full.known("event.acton") and "`event.action`" in full.suggest("event.acton")


def test_check_without_the_collector_that_emits_a_value_warns(tmp_path: Path) -> None:
    collectors = tmp_path / "collectors"
    collectors.mkdir()
    for name in ("okta", "entra"):
        shutil.copy(SHIPPED / "collectors" / f"{name}.yaml", collectors)
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED / "rules" / "auth", rules)
    config = tmp_path / "sentinel.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\ncollectors_dir: {collectors}\nrules_dir: {rules}\n"
                      f"alerts_dir: {SHIPPED / 'alerts'}\nmetrics: {{enabled: false}}\n")
    done = _cli("check", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert f"warning: {rules / 'sudo-failure.yaml'}:7: filter.event.action: no loaded collector emits event.action " \
           "`sudo_failure`" in done.stderr


def test_a_vendor_field_waits_for_its_collector_but_a_typo_in_it_is_refused(tmp_path: Path) -> None:
    """The shipped cloud rules name azure.* fields: without the Entra collectors that is a warning (an
    installation that reads only auth.log still starts); with them, a field they do not write is an error."""
    collectors = tmp_path / "collectors"
    collectors.mkdir()
    shutil.copy(SHIPPED / "collectors" / "linux-auth.yaml", collectors)
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(SHIPPED / "rules" / "accounts" / "account-oauth-broad-grant.yaml", rules)
    config = tmp_path / "sentinel.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\ncollectors_dir: {collectors}\nrules_dir: {rules}\n"
                      f"alerts_dir: {SHIPPED / 'alerts'}\nmetrics: {{enabled: false}}\n")
    done = _cli("check", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "no loaded collector emits `azure.auditlogs.*` fields" in done.stderr
    for name in ("entra", "entra-audit"):
        shutil.copy(SHIPPED / "collectors" / f"{name}.yaml", collectors)
    (rules / "typo.yaml").write_text(BAD_RULE.replace("id: typo-rule", "id: azure-typo")
                                     .replace("event.acton: sudo_failure", "azure.auditlogs.operation_nam: x"))
    done = _cli("check", "-c", str(config))
    assert done.returncode == 1
    assert "unknown field `azure.auditlogs.operation_nam`" in done.stderr


def test_a_refused_run_names_the_field_and_creates_no_files(tmp_path: Path) -> None:
    env = OpsEnv(tmp_path)
    (env.base / "rules" / "typo.yaml").write_text(BAD_RULE)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = _cli("run", "-c", str(env.config), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{env.base / 'rules' / 'typo.yaml'}:5: filter.event.acton: unknown field `event.acton` (did you mean " \
           "`event.action`?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not env.state.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_run_logs_a_source_directory_that_does_not_exist(tmp_path: Path) -> None:
    env = OpsEnv(tmp_path)
    missing = tmp_path / "not-yet" / "app-*.log"
    listener = NotifyListener(path=tmp_path / "notify.sock")
    env.write_config(sources=[{"collector": "linux-auth", "paths": [str(env.log)]},
                              {"collector": "okta", "paths": [str(missing)]}])
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        assert f"source okta: directory {tmp_path / 'not-yet'} does not exist (yet)" in daemon.stderr()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.stop()
        listener.close()


def test_reload_refuses_an_unknown_field(tmp_path: Path) -> None:
    env = OpsEnv(tmp_path)
    listener = NotifyListener(path=tmp_path / "notify.sock")
    daemon = DaemonProcess(env.config, {"NOTIFY_SOCKET": listener.address})
    try:
        listener.wait_for(lambda m: m.get("READY") == "1")
        typo = env.base / "rules" / "typo.yaml"
        typo.write_text(BAD_RULE)
        daemon.signal(signal.SIGHUP)

        def reloads() -> list[dict]:
            return [r.details for r in AuditLog(env.state / "audit.jsonl").records() if r.action == "config_reload"]

        wait_until(lambda: len(reloads()) == 1, what="the reload's audit record")
        assert reloads()[0]["result"] == "failure"
        assert any(f"{typo}:5" in e and "did you mean `event.action`" in e for e in reloads()[0]["errors"])
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
        listener.close()


@pytest.mark.parametrize("glob_path, warned", [("logs/*.log", True), ("/var/log/*.log", False),
                                               ("exists/*/x.log", False)])
def test_missing_directory_warning_looks_at_the_fixed_part_of_the_glob(make_config: MakeConfig, tmp_path: Path,
                                                                       glob_path: str, warned: bool) -> None:
    (tmp_path / "exists").mkdir()
    path = glob_path if glob_path.startswith("/") else str(tmp_path / glob_path)
    report = validate_all(make_config(sources=[{"collector": "linux-auth", "paths": [path]}]))
    assert any("does not exist" in str(w) for w in report.warnings) is warned
