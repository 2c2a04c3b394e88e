"""The demo on a pinned clock: every planted incident is detected whatever the weekday, and over a New Year;
each alert is printed as the demo's local receiver gets it; the folder is kept and never wiped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

# One date per weekday (2026-03-02 is a Monday) and a run whose history crosses a New Year.
DATES = {"monday": "2026-03-02T15:00:00Z", "tuesday": "2026-03-03T15:00:00Z", "wednesday": "2026-03-04T15:00:00Z",
         "thursday": "2026-03-05T15:00:00Z", "friday": "2026-03-06T15:00:00Z", "saturday": "2026-03-07T15:00:00Z",
         "sunday": "2026-03-08T15:00:00Z", "new-year": "2027-01-02T09:00:00Z"}


def demo(directory: Path, now: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", "demo", "--dir", str(directory), "--now", now,
                           "--users", "30", "--duration", "3", "--interval", "1", *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("day", list(DATES))
def test_every_planted_incident_is_detected_on_any_day(day: str, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = demo(folder, DATES[day])
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    truth = json.loads((folder / "logs" / "ground-truth.json").read_text())
    assert len(truth["incidents"]) == 14
    for incident in truth["incidents"]:
        line = next(x for x in out.splitlines() if re.match(rf"\s+\[.\] {re.escape(incident['name'])}\s", x))
        assert line.strip().startswith("[x]"), f"{day}: {line}\n{out}"
    # Alerts arrive through the demo's receiver (apprise json:// to its local webhook), one line each.
    delivered = [x for x in out.splitlines() if x.startswith("  ALERT ")]
    assert len(delivered) >= 10, out
    assert any("CRITICAL account-terminated-activity" in x for x in delivered), delivered
    # The folder is kept and the run ends with the three commands to explore it, with the -c it used.
    config = folder / "sentinel.yaml"
    tail = out.rstrip().splitlines()[-3:]
    assert [x.split()[1:3] for x in tail] == [["alerts", "list"], ["search", "-c"], ["report", "-c"]]
    assert all(f"-c {config}" in x for x in tail) and config.exists()


def test_dir_on_an_existing_demo_folder_refuses_and_keeps_it(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / ".sentinel-demo").write_text("made by 'sentinel demo'\n")
    (folder / "state").mkdir()
    (folder / "state" / "events.db").write_text("an earlier demo's data")
    done = demo(folder, DATES["tuesday"])
    assert done.returncode == 1
    assert f"--dir {folder} already holds a demo" in done.stderr and "Traceback" not in done.stderr
    assert (folder / "state" / "events.db").read_text() == "an earlier demo's data"
