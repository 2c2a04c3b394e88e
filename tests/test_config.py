"""Configuration loading: every error names the file, line and key, and says what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.conf.loader import load_config
from sentinel.errors import ConfigError, ConfigErrors

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"


def _errors(path: Path) -> list[str]:
    try:
        load_config(path)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    except ConfigError as exc:
        return [str(exc)]
    return []


def test_shipped_config_is_valid() -> None:
    out = subprocess.run([sys.executable, "-m", "sentinel", "check", "-c", str(SHIPPED / "config" / "sentinel.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "configuration OK" in out.stdout


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text("state_dir: /tmp/x\npipeline:\n  batch_max_lines: 10\n  batch_max_wiat_ms: 5\n")
    errors = _errors(cfg)
    assert errors == [f"{cfg}:4: pipeline.batch_max_wiat_ms: unknown key (check the spelling; see the documented keys)"]


def test_wrong_types_and_values_are_all_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text("timezone: Mars/Olympus\npipeline:\n  batch_max_lines: lots\n  start_position: middle\n")
    errors = _errors(cfg)
    assert len(errors) == 3
    assert errors[0].startswith(f"{cfg}:1: timezone: ") and "unknown time zone 'Mars/Olympus'" in errors[0]
    assert errors[1].startswith(f"{cfg}:3: pipeline.batch_max_lines: ") and "integer" in errors[1]
    assert errors[2].startswith(f"{cfg}:4: pipeline.start_position: ") and "'beginning' or 'end'" in errors[2]


def test_broken_yaml_gives_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text("state_dir: /tmp/x\nsources:\n  - collector: [linux-auth\n")
    (error,) = _errors(cfg)
    assert error.startswith(f"{cfg}:4: invalid YAML")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text("state_dir: /a\nstate_dir: /b\n")
    assert _errors(cfg) == [f"{cfg}:2: state_dir: duplicate key 'state_dir'"]


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_bytes(b"state_dir: /tmp\ntimezone: \xff\n")
    assert _errors(cfg) == [f"{cfg}:2: file is not valid UTF-8"]
    assert "cannot read file" in _errors(tmp_path / "absent.yaml")[0]


def test_check_reports_unknown_collector_and_bad_collector_file(tmp_path: Path) -> None:
    collectors = tmp_path / "collectors"
    collectors.mkdir()
    (collectors / "broken.yaml").write_text(
        "name: broken\ndescription: x\nformat: syslog\npatterns:\n  - name: bad\n    regex: '(unclosed'\n")
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\ncollectors_dir: {collectors}\nrules_dir: {SHIPPED}/rules\n"
                   f"alerts_dir: {SHIPPED}/alerts\nsources:\n  - collector: nosuch\n")
    out = subprocess.run([sys.executable, "-m", "sentinel", "check", "-c", str(cfg)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1
    assert f"{collectors / 'broken.yaml'}:6: patterns[0].regex: invalid regular expression" in out.stderr
    assert "sources[0].collector: unknown collector 'nosuch'" in out.stderr


@pytest.mark.parametrize("value", ["hunter2", "plain-api-key"])
def test_secrets_must_be_references(tmp_path: Path, value: str) -> None:
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text(f"storage:\n  elasticsearch:\n    api_key: {value}\n")
    (error,) = _errors(cfg)
    assert error.startswith(f"{cfg}:3: storage.elasticsearch.api_key:") and "never the secret" in error
    assert value not in error


def test_two_collectors_with_one_name_are_both_named(tmp_path: Path) -> None:
    from sentinel.daemon.collectors import load_collectors

    collectors = tmp_path / "collectors"
    collectors.mkdir()
    for stem in ("a", "b"):
        (collectors / f"{stem}.yaml").write_text("name: app\ndescription: x\nformat: plain\n")
    loaded, errors = load_collectors(collectors)
    assert list(loaded) == ["app"]
    assert [str(e) for e in errors] == [f"{collectors / 'b.yaml'}: name: collector name 'app' already defined in "
                                        f"{collectors / 'a.yaml'}"]
