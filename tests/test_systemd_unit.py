"""The shipped systemd unit, sysusers and tmpfiles snippets, checked by systemd's own tools."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
UNIT = SHIPPED / "systemd" / "sentinel.service"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _unit_with_installed_entry_point(tmp_path: Path) -> Path:
    """The unit with /usr/bin/sentinel pointed at the entry point installed here (verify resolves ExecStart)."""
    exe = shutil.which("sentinel")
    assert exe, "the sentinel entry point must be installed (pip install -e .)"
    copy = tmp_path / "sentinel.service"
    copy.write_text(UNIT.read_text().replace("/usr/bin/sentinel", exe))
    return copy


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    done = subprocess.run(["systemd-analyze", "verify", str(_unit_with_installed_entry_point(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "sentinel.service" not in done.stderr  # no warnings about our unit at all


def test_security_exposure_is_ok_or_better() -> None:
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for sentinel.service: ([\d.]+) (\w+)", done.stdout)
    assert m, done.stdout[-2000:]
    assert m.group(2) in ("OK", "SAFE") and float(m.group(1)) <= 2.0, m.group(0)


def test_unit_declares_what_the_daemon_relies_on() -> None:
    keys = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    assert keys["Type"] == ["notify"] and keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert int(keys["WatchdogSec"][0]) >= 30  # the daemon's stall threshold is 30 s
    assert int(keys["TimeoutStopSec"][0]) > 20  # longer than the 20 s drain bound
    assert keys["User"] == ["sentinel"] and keys["CapabilityBoundingSet"] == [""]
    assert keys["StateDirectory"] == ["sentinel"] and keys["UMask"] == ["0077"]


def test_sysusers_and_tmpfiles_create_user_and_directories(tmp_path: Path) -> None:
    if shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None:
        pytest.skip("systemd-sysusers/systemd-tmpfiles not installed")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(["systemd-sysusers", f"--root={root}", str(SHIPPED / "systemd/sysusers.d/sentinel.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = (root / "etc/passwd").read_text()
    user = next(line.split(":") for line in passwd.splitlines() if line.startswith("sentinel:"))
    assert user[6] == "/usr/sbin/nologin"
    groups = {line.split(":")[0]: line.split(":")[3] for line in (root / "etc/group").read_text().splitlines()}
    assert "sentinel" in groups["adm"].split(",")
    tmpfiles = SHIPPED / "systemd/tmpfiles.d/sentinel.conf"
    subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create", str(tmpfiles)],
                   check=True, capture_output=True, timeout=60)
    state = (root / "var/lib/sentinel").stat()
    assert state.st_mode & 0o777 == 0o700 and state.st_uid == int(user[2])
    assert (root / "etc/sentinel/sentinel.env").stat().st_mode & 0o777 == 0o600
