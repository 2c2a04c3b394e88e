"""`sentinel check` on one fixture per failure mode (tests/data/check/): one file, one mistake, one message.

Each fixture starts with ``# expect: TEXT`` (what check prints right after the fixture's own path) and
``# level: error|warning``. An error fails check (exit 1); a warning is printed and check still passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from sentinel.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
DATA = ROOT / "tests" / "data" / "check"
MINIMAL_ROUTES = "route:\n  receivers: [security-email]\n"
MINIMAL_RECEIVERS = 'receivers:\n  - name: security-email\n    urls: ["json://127.0.0.1:9/x"]\n'
FIXTURES = sorted(p.relative_to(DATA) for p in DATA.rglob("*.yaml"))


def header(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: ") and lines[1].startswith("# level: "), f"{path}: no header"
    return lines[0][len("# expect: "):], lines[1][len("# level: "):]


def project(tmp: Path, kind: str, fixture: Path) -> tuple[Path, Path]:
    """A project whose one file is the fixture; returns (config path, where the fixture was placed)."""
    (tmp / "config").mkdir()
    alerts = tmp / "alerts"
    alerts.mkdir()
    shutil.copytree(SHIPPED / "alerts" / "templates", alerts / "templates")
    (alerts / "routes.yaml").write_text(MINIMAL_ROUTES)
    (alerts / "receivers.yaml").write_text(MINIMAL_RECEIVERS)
    config = tmp / "config" / "sentinel.yaml"
    doc = {"state_dir": str(tmp / "state"), "collectors_dir": str(SHIPPED / "collectors"),
           "rules_dir": str(SHIPPED / "rules"), "alerts_dir": str(alerts), "metrics": {"enabled": False},
           "api": {"enabled": False}}
    if kind == "config":
        placed = config
        shutil.copy(fixture, config)
        for name in ("collectors", "rules"):
            (tmp / name).symlink_to(SHIPPED / name)
    elif kind == "rules":
        (tmp / "rules").mkdir()
        placed = tmp / "rules" / fixture.name
        shutil.copy(fixture, placed)
        doc["rules_dir"] = str(tmp / "rules")
    else:
        placed = alerts / (fixture.name.split(".", 1)[0] + ".yaml")
        shutil.copy(fixture, placed)
    if kind != "config":
        config.write_text(yaml.safe_dump(doc))
    return config, placed


def test_every_failure_mode_has_a_fixture() -> None:
    kinds = {p.parts[0] for p in FIXTURES}
    assert kinds == {"config", "rules", "routes"}
    assert len(FIXTURES) >= 30


@pytest.mark.parametrize("fixture", FIXTURES, ids=[str(p) for p in FIXTURES])
def test_check_reports_the_fixture_mistake(fixture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTINEL_FIXTURE_UNSET_PASSWORD", raising=False)
    expect, level = header(DATA / fixture)
    config, placed = project(tmp_path, fixture.parts[0], DATA / fixture)
    code = main(["check", "-c", str(config)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{placed}{expect}" in text, text
    mistakes = [line for line in text.splitlines() if line.startswith(("error:", "warning:"))]
    if level == "error":
        assert code == 1, text
        assert len([m for m in mistakes if m.startswith("error:")]) == 1, f"one mistake, one message:\n{text}"
    else:
        assert code == 0 and "configuration OK" in text, text
        assert len(mistakes) == 1 and mistakes[0].startswith("warning:"), text
