"""Loading rules: the shipped pack is valid; each broken file fails with file, line and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sentinel.cli.main import main
from sentinel.detect.lists import NamedLists, parse_list
from sentinel.detect.loader import load_rules
from sentinel.events.conditions import compile_condition
from tests.detect_events import RULES
from tests.fixtures.common import MakeConfig

BAD = Path(__file__).parent / "data" / "detect" / "bad"
NO_LISTS = NamedLists({"terminated_accounts": None, "phi_workstations": None})


def _errors_for(name: str) -> list[str]:
    _rules, errors = load_rules(BAD, NO_LISTS)
    return [str(e) for e in errors if f"/{name}.yaml" in str(e)]


def test_shipped_pack_loads_with_the_fixed_rule_ids() -> None:
    rules, errors = load_rules(RULES, NO_LISTS)
    assert errors == []
    assert len(rules) == 33
    for r in rules:
        assert r.spec.hipaa(), f"{r.id} has no HIPAA tag"
        assert r.path.parent.name in {"phi", "auth", "accounts", "endpoint"}


@pytest.mark.parametrize(("name", "line", "needle"), [
    ("unknown-key", 6, "sumary: unknown key"),
    ("bad-condition", 7, "unknown operator 'matches'"),
    ("phi-in-summary", 6, "placeholder {phi.patient_ids} is not allowed"),
    ("missing-params", 1, "type threshold needs a 'threshold:' section"),
    ("bad-duration", 5, "threshold.window: Value error, expected a duration"),
    ("bad-resolve-after", 6, "resolve_after: Value error, a duration must be positive"),
    ("unknown-list", 6, "unknown list 'contractors'"),
    ("broken-yaml", 3, "invalid YAML"),  # where the parser notices the unclosed list
])
def test_each_broken_rule_names_file_line_and_reason(name: str, line: int, needle: str) -> None:
    errors = _errors_for(name)
    assert errors, f"no error for {name}"
    assert any(f"{name}.yaml:{line}" in e and needle in e for e in errors), errors


def test_summary_may_not_show_the_export_destination() -> None:
    errors = _errors_for("phi-in-summary")
    assert any("{phi.export.destination}" in e for e in errors)


def test_sentinel_check_fails_on_a_bad_rule(tmp_path: Path, make_config: MakeConfig,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    shutil.copy(BAD / "phi-in-summary.yaml", rules / "phi" / "leaky.yaml")
    cfg = make_config(rules_dir=str(rules))
    assert main(["check", "--config", str(cfg.path)]) == 1
    err = capsys.readouterr().err
    assert f"{rules}/phi/leaky.yaml:6: summary: placeholder {{phi.patient_ids}}" in err


def test_sentinel_check_reports_a_missing_list_file(tmp_path: Path, make_config: MakeConfig,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(detection={"terminated_accounts_file": str(tmp_path / "nope.txt")})
    main(["check", "--config", str(cfg.path)])
    captured = capsys.readouterr()
    assert "nope.txt: cannot read the terminated_accounts list" in captured.err
    assert "rules: 33 enabled" in captured.out


def test_duplicate_rule_ids_are_rejected(tmp_path: Path) -> None:
    shutil.copy(RULES / "auth" / "sudo-failure.yaml", tmp_path / "a.yaml")
    shutil.copy(RULES / "auth" / "sudo-failure.yaml", tmp_path / "b.yaml")
    rules, errors = load_rules(tmp_path, NO_LISTS)
    assert len(rules) == 1 and "already defined" in str(errors[0]) and "b.yaml" in str(errors[0])


def test_list_files_and_in_list_matching() -> None:
    names = parse_list("# HR export 2026-03\nMallory\n\n  trent   # left in Feb\n")
    assert names == {"mallory", "trent"}
    pred = compile_condition({"user.name": {"in_list": "terminated"}}, lists={"terminated": names})
    assert pred({"user.name": "mallory"}) and pred({"user.name": "Trent@corp.example"})
    assert not pred({"user.name": "mallory2"}) and not pred({})
