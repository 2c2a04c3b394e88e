"""The Debian package's life on a machine, run by tests/test_install_deb.py inside a throw-away copy of this
machine (an overlay chroot): ``dpkg -i``, the user/groups/modes/conffiles, the unit verified, the unit's own
ExecStart run as the sentinel user ingesting a log only group adm may read, an upgrade that keeps the
operator's edits and brings a new shipped rule, and ``dpkg --purge`` leaving only the documented state.

    python -m tests.deb_scenario OLD.deb NEW.deb
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shlex
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.install_helpers import clean_env, run
from tests.ops_helpers import free_port, wait_until

PKG = "phi-sentinel"
UNIT = Path("/usr/lib/systemd/system/sentinel.service")
ETC = Path("/etc/sentinel")
STATE = Path("/var/lib/sentinel")
TEST_LOGS = Path("/var/log/phi-sentinel-test")
SLASH = Path("/")


def _dpkg(*args: str) -> None:
    run(["dpkg", *args], cwd=SLASH, timeout=600, env=clean_env(DEBIAN_FRONTEND="noninteractive"))


def _mode(path: Path) -> tuple[int, str, str]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def _unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]


def _as_sentinel(cmd: list[str]) -> list[str]:
    """``cmd`` as the unit runs it: the sentinel user with its groups, the unit's Environment= and UMask."""
    env = dict(item.split("=", 1) for value in _unit_values("Environment") for item in shlex.split(value))
    return ["setpriv", "--reuid=sentinel", "--regid=sentinel", "--init-groups", "env", "-i",
            "PATH=/usr/bin:/bin", *(f"{k}={v}" for k, v in env.items()), "sh", "-c",
            f'umask {_unit_values("UMask")[0]}; exec "$@"', "sh", *cmd]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        time.sleep(0.2)
        return False


def _sentinel(*args: str) -> str:
    return run(["/usr/bin/sentinel", *args], cwd=SLASH).stdout


def install_and_check(deb: Path) -> None:
    started = time.perf_counter()
    _dpkg("-i", str(deb))
    print(f"dpkg -i {deb.name}: {time.perf_counter() - started:.1f} s")
    user = pwd.getpwnam("sentinel")
    assert user.pw_dir == str(STATE) and user.pw_shell == "/usr/sbin/nologin" and user.pw_uid < 1000, user
    groups = {g.gr_name for g in grp.getgrall() if "sentinel" in g.gr_mem}
    assert {"adm", "systemd-journal"} <= groups, groups
    assert _mode(ETC) == (0o750, "root", "sentinel"), _mode(ETC)
    assert _mode(ETC / "sentinel.env") == (0o600, "root", "root"), _mode(ETC / "sentinel.env")
    assert _mode(STATE) == (0o700, "sentinel", "sentinel"), _mode(STATE)
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG], cwd=SLASH).stdout
    listed = {line.split()[0] for line in conffiles.strip().splitlines()}
    assert listed == {"/etc/sentinel/sentinel.yaml", "/etc/sentinel/alerts/receivers.yaml",
                      "/etc/sentinel/sentinel.env", "/etc/logrotate.d/sentinel"}, listed
    assert os.readlink("/usr/bin/sentinel") == "/usr/lib/phi-sentinel/bin/sentinel"
    verify = run(["systemd-analyze", "verify", str(UNIT)], cwd=SLASH, check=False)
    assert verify.returncode == 0 and "sentinel.service" not in verify.stderr, verify.stderr


def operator_edits() -> tuple[int, Path, dict[Path, str]]:
    """Point linux-auth at a log only root and group adm may read, move the listeners to free ports, edit a
    shipped rule: what an operator does after installing. Returns the metrics port, the log, the edits."""
    adm = grp.getgrnam("adm").gr_gid
    TEST_LOGS.mkdir(mode=0o750)
    os.chown(TEST_LOGS, 0, adm)
    log = TEST_LOGS / "auth.log"
    log.touch(mode=0o640)
    os.chown(log, 0, adm)
    cfg_path = ETC / "sentinel.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    metrics = free_port()
    cfg["sources"] = [{"collector": "linux-auth", "paths": [str(log)]}]
    cfg["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    cfg["api"] = {"listen": f"127.0.0.1:{free_port()}"}
    cfg_path.write_text("# edited by the operator\n" + yaml.safe_dump(cfg, sort_keys=False))
    shipped_rule = next(Path("/usr/lib/phi-sentinel/lib").glob(
        "python*/site-packages/sentinel/shipped/rules/auth/auth-root-login.yaml"))
    edited_rule = ETC / "rules" / "auth-root-login.yaml"
    edited_rule.write_text(shipped_rule.read_text().replace("severity: high", "severity: critical"))
    return metrics, log, {p: _sha(p) for p in (cfg_path, edited_rule)}


def run_unit_command(metrics: int, log: Path) -> None:
    """ExecStartPre and ExecStart from the installed unit, as the sentinel user; lines in, an alert out."""
    (check_cmd,) = _unit_values("ExecStartPre")
    checked = run(_as_sentinel(shlex.split(check_cmd)), cwd=SLASH)
    assert "configuration OK" in checked.stdout, checked.stdout
    (start_cmd,) = _unit_values("ExecStart")
    daemon = subprocess.Popen(_as_sentinel(shlex.split(start_cmd)), cwd="/", stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    alerts: list[dict[str, object]] = []
    try:
        wait_until(lambda: _ready(metrics), 90, "the packaged daemon's /readyz")
        stamp = datetime.now(UTC).strftime("%b %e %H:%M:%S")  # the zone init wrote (UTC)
        with log.open("a") as fh:
            for i in range(3):
                fh.write(f"{stamp} billing-app-01 sshd[{900 + i}]: Failed password for alice from 198.51.100.{i} "
                         f"port 4000{i} ssh2\n")
            fh.write(f"{stamp} billing-app-01 sshd[999]: Accepted password for root from 198.51.100.9 port 40009 "
                     "ssh2\n")

        def raised() -> bool:
            nonlocal alerts
            alerts = json.loads(_sentinel("alerts", "list", "--format", "json") or "[]")
            return bool(alerts)

        wait_until(raised, 60, "an alert from the packaged daemon")
        found = _sentinel("search", "user.name=alice", "--format", "json")
        assert found.count("198.51.100.") >= 3, found
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert [(a["rule"], a["severity"]) for a in alerts] == [("auth-root-login", "critical")], alerts
    assert _mode(STATE / "events.db")[1:] == ("sentinel", "sentinel")


def upgrade(deb: Path, edits: dict[Path, str]) -> None:
    started = time.perf_counter()
    _dpkg("-i", str(deb))
    print(f"dpkg -i {deb.name} (upgrade): {time.perf_counter() - started:.1f} s")
    assert {p: _sha(p) for p in edits} == edits, "the upgrade kept the operator's edits"
    lines = _sentinel("rules").splitlines()
    assert any(line.startswith("upgrade-probe-deb ") and line.endswith("[shipped]") for line in lines), lines
    root_line = next(line for line in lines if line.startswith("auth-root-login "))
    assert "critical" in root_line and "v2" not in root_line and str(ETC / "rules") in root_line, root_line


def purge() -> None:
    _dpkg("--purge", PKG)
    for gone in (Path("/usr/lib/phi-sentinel"), Path("/usr/bin/sentinel"), UNIT, ETC,
                 Path("/etc/logrotate.d/sentinel"), Path("/usr/lib/sysusers.d/sentinel.conf"),
                 Path("/usr/share/doc/phi-sentinel")):
        assert not gone.exists() and not gone.is_symlink(), f"{gone} left after purge"
    # Kept, as docs/operations.md says: the evidence and the user owning it.
    assert (STATE / "events.db").is_file() and (STATE / "audit.jsonl").is_file()
    assert pwd.getpwnam("sentinel").pw_dir == str(STATE)
    print("purged; kept /var/lib/sentinel and the sentinel user")


def main(old: Path, new: Path) -> None:
    for there in (ETC, STATE, Path("/usr/bin/sentinel")):
        assert not there.exists(), f"{there} exists before the install (the overlay starts from this machine)"
    install_and_check(old)
    metrics, log, edits = operator_edits()
    run_unit_command(metrics, log)
    upgrade(new, edits)
    purge()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
