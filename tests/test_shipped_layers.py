"""Shipped definitions as the base layer, the operator's folders over them; and what ``sentinel init`` writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from sentinel.cli.main import main
from sentinel.conf.loader import load_config
from sentinel.daemon.build import plan_sources
from sentinel.daemon.collectors import load_collector_layers
from sentinel.detect.loader import load_for_config, rule_pack
from sentinel.notify.templates import load_template_layers
from sentinel.route.loader import load_config_routing
from sentinel.shipped import shipped_path

SHIPPED_RULES = shipped_path("rules")


def _site(tmp_path: Path, shipped_defaults: bool = True) -> Path:
    for sub in ("collectors", "rules", "alerts"):
        (tmp_path / sub).mkdir()
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text(yaml.safe_dump({"shipped_defaults": shipped_defaults, "state_dir": str(tmp_path / "state"),
                                   "collectors_dir": "collectors", "rules_dir": "rules", "alerts_dir": "alerts",
                                   "sources": [{"collector": "linux-auth", "paths": [str(tmp_path / "a.log")]}]}))
    return cfg


def _shipped_rule(rule_id: str) -> Path:
    return next(p for p in SHIPPED_RULES.rglob("*.yaml") if yaml.safe_load(p.read_text())["id"] == rule_id)


def test_operator_rule_replaces_shipped_one_and_a_short_document_turns_one_off(tmp_path: Path) -> None:
    cfg = load_config(_site(tmp_path))
    shipped_ids = {yaml.safe_load(p.read_text())["id"] for p in SHIPPED_RULES.rglob("*.yaml")}
    mine = tmp_path / "rules" / "root.yaml"
    mine.write_text(_shipped_rule("auth-root-login").read_text().replace("severity: high", "severity: critical"))
    (tmp_path / "rules" / "off.yaml").write_text("id: sudo-failure\nenabled: false\n")
    new = yaml.safe_load(_shipped_rule("auth-root-login").read_text())
    new.update(id="site-only-rule", title="Site rule")
    (tmp_path / "rules" / "new.yaml").write_text(yaml.safe_dump(new))

    pack, _, errors = rule_pack(cfg.rule_sources)
    assert errors == []
    by_id = {r.id: r for r in pack.rules}
    assert set(by_id) == (shipped_ids - {"sudo-failure"}) | {"site-only-rule"}
    assert by_id["auth-root-login"].spec.severity == "critical" and by_id["auth-root-login"].path == mine
    replaced = _shipped_rule("auth-root-login")
    assert pack.origin(by_id["auth-root-login"], True) == f"{mine} (replaces shipped {replaced})"
    assert pack.origin(by_id["auth-brute-force-user"], True) == "shipped"
    assert pack.origin(by_id["site-only-rule"], True) == str(tmp_path / "rules" / "new.yaml")
    assert pack.turned_off == {"sudo-failure": tmp_path / "rules" / "off.yaml"}
    enabled, _, _ = load_for_config(cfg.rule_sources)
    assert "sudo-failure" not in {r.id for r in enabled}


def test_turning_off_a_rule_no_layer_below_has_is_an_error_naming_the_file(tmp_path: Path) -> None:
    cfg = load_config(_site(tmp_path))
    (tmp_path / "rules" / "off.yaml").write_text("id: no-such-rule\nenabled: false\n")
    _, _, errors = rule_pack(cfg.rule_sources)
    assert len(errors) == 1 and "no rule 'no-such-rule'" in str(errors[0])
    assert str(tmp_path / "rules" / "off.yaml") in str(errors[0])


def test_without_shipped_defaults_only_the_named_folders_count(tmp_path: Path) -> None:
    cfg = load_config(_site(tmp_path, shipped_defaults=False))
    pack, _, _ = rule_pack(cfg.rule_sources)
    assert pack.rules == [] and cfg.rule_dirs == (tmp_path / "rules",)
    _, collectors, _ = plan_sources(cfg)
    assert collectors == {}


def test_a_config_naming_the_shipped_folders_reads_them_once(tmp_path: Path) -> None:
    cfg_path = tmp_path / "sentinel.yaml"
    cfg_path.write_text(yaml.safe_dump({"shipped_defaults": True, "rules_dir": str(SHIPPED_RULES)}))
    cfg = load_config(cfg_path)
    assert cfg.rule_dirs == (SHIPPED_RULES,)
    _, _, errors = rule_pack(cfg.rule_sources)
    assert errors == []


def test_operator_collector_replaces_the_shipped_one_of_that_name(tmp_path: Path) -> None:
    cfg = load_config(_site(tmp_path))
    shipped = shipped_path("collectors", "linux-auth.yaml")
    doc = yaml.safe_load(shipped.read_text())
    doc["description"] = "site copy"
    (tmp_path / "collectors" / "linux-auth.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    collectors, errors = load_collector_layers(cfg.collector_dirs)
    assert errors == []
    assert collectors["linux-auth"].path == tmp_path / "collectors" / "linux-auth.yaml"
    assert collectors["auditd"].path == shipped_path("collectors", "auditd.yaml")


def test_alert_files_come_from_the_topmost_folder_that_has_them(tmp_path: Path) -> None:
    cfg = load_config(_site(tmp_path))
    assert cfg.alerts_file("routes.yaml") == shipped_path("alerts", "routes.yaml")
    receivers = yaml.safe_load(shipped_path("alerts", "receivers.yaml").read_text())
    for r in receivers["receivers"]:
        r["urls"] = ["json://127.0.0.1:9/"]
    (tmp_path / "alerts" / "receivers.yaml").write_text(yaml.safe_dump(receivers))
    routing = load_config_routing(cfg.alert_folders)
    assert all(r.problem is None for r in routing.receivers.values())
    (tmp_path / "alerts" / "templates").mkdir()
    (tmp_path / "alerts" / "templates" / "pager.yaml").write_text(
        "alert: {title: '{title}', body: 'rule {rule}'}\n")
    templates, errors = load_template_layers([d / "templates" for d in cfg.alert_dirs])
    assert errors == [] and {"default", "pager"} <= set(templates)


def test_init_lays_out_a_site_that_checks_and_never_overwrites(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--prefix", str(tmp_path), "--source", f"linux-auth={tmp_path}/auth.log"]) == 0
    etc = tmp_path / "etc" / "sentinel"
    cfg = etc / "sentinel.yaml"
    assert stat.S_IMODE((etc / "sentinel.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var" / "lib" / "sentinel").stat().st_mode) == 0o700
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    doc = yaml.safe_load(cfg.read_text())
    assert doc["state_dir"] == str(tmp_path / "var" / "lib" / "sentinel") and doc["shipped_defaults"] is True
    env_vars = [line[1:].split("=")[0] for line in (etc / "sentinel.env").read_text().splitlines()
                if line.startswith("#SENTINEL_")]
    receivers = (etc / "alerts" / "receivers.yaml").read_text()
    assert env_vars and all(f"${{{v}}}" in receivers for v in env_vars)
    assert main(["check", "-c", str(cfg)]) == 0
    assert "configuration OK" in capsys.readouterr().out

    cfg.write_text(cfg.read_text() + "# my edit\n")
    edited = cfg.read_bytes()
    assert main(["init", "--prefix", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert cfg.read_bytes() == edited and "created" not in out and f"kept    {cfg}" in out


def test_init_destdir_writes_files_naming_the_installed_paths(tmp_path: Path) -> None:
    assert main(["init", "--destdir", str(tmp_path)]) == 0
    doc = yaml.safe_load((tmp_path / "etc" / "sentinel" / "sentinel.yaml").read_text())
    assert doc["state_dir"] == "/var/lib/sentinel"
    assert [s["collector"] for s in doc["sources"]] == ["linux-auth", "auditd"]


def test_init_refuses_an_unknown_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--prefix", str(tmp_path), "--source", "nosuch"]) != 0
    assert "no shipped collector 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "etc").exists()
