"""The Debian package: built from two wheels (a release and a newer one), then installed, run, upgraded and
purged by tests/deb_scenario.py inside a throw-away copy of this machine.

The copy is an overlay chroot: this machine's root filesystem as the lower layer, a tmpfs as the upper, in a
private mount namespace. dpkg, the new user, /etc/sentinel and /var/lib/sentinel all land in the tmpfs, which
vanishes with the namespace, so the test can't leave anything behind on the machine or race other tests
for /etc/sentinel, even when it is killed."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.install_helpers import ROOT, build_wheel, copy_source, run, set_version

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dpkg-deb") is None,
                       reason="builds and installs a Debian package: needs root and dpkg"),
]

NEW_RULE = """id: upgrade-probe-deb
title: Added in the newer package
description: Shows that an upgrade brings new shipped rules.
severity: low
tags: ["hipaa:164.312(b)"]
filter:
  event.action: sudo
type: match
group_by: [user.name]
summary: "{user.name} ran sudo"
runbook: Confirm the change was approved.
"""

# Inside the namespace: the overlay, /proc /dev /sys bound in, this machine's own sentinel files (if any
# other test or person left some) hidden, then the scenario chrooted. $1 scratch dir, the rest the command.
OVERLAY = r"""set -e
d="$1"; shift
mount -t tmpfs overlay-upper "$d"
mkdir "$d/upper" "$d/work" "$d/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
for fs in proc sys dev; do mount --rbind "/$fs" "$d/root/$fs"; done
rm -rf "$d/root/etc/sentinel" "$d/root/var/lib/sentinel" "$d/root/usr/bin/sentinel"
exec chroot "$d/root" "$@"
"""


def _build_deb(src: Path, out: Path) -> Path:
    out.mkdir(parents=True)
    wheel = build_wheel(src, out / "wheels")
    started = time.perf_counter()
    done = run(["bash", str(ROOT / "scripts" / "build-deb"), str(wheel), str(out)], cwd=out, timeout=1200)
    deb = Path(done.stdout.split()[-3])
    print(f"{deb.name}: {deb.stat().st_size} bytes, built in {time.perf_counter() - started:.1f} s "
          f"(from a {wheel.stat().st_size}-byte wheel)")
    return deb


def test_deb_install_run_upgrade_purge(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    old = _build_deb(src, tmp_path / "v1")
    set_version(src, "0.2.0")
    rule_file = src / "sentinel" / "shipped" / "rules" / "auth" / "auth-root-login.yaml"
    rule_file.write_text(rule_file.read_text().replace("title: Direct root login", "title: Direct root login v2"))
    (src / "sentinel" / "shipped" / "rules" / "auth" / "upgrade-probe-deb.yaml").write_text(NEW_RULE)
    new = _build_deb(src, tmp_path / "v2")

    before = _host_state()
    scratch = tmp_path / "machine"
    scratch.mkdir()
    done = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", OVERLAY, "sh", str(scratch),
                "env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "tests.deb_scenario", str(old), str(new)],
               cwd=ROOT, timeout=900, check=False)
    print(done.stdout)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "purged; kept /var/lib/sentinel and the sentinel user" in done.stdout
    assert _host_state() == before, "nothing reached the real machine"


def _host_state() -> tuple[int, int, bool, bool]:
    package = run(["dpkg-query", "-W", "phi-sentinel"], cwd=ROOT, check=False).returncode
    user = run(["getent", "passwd", "sentinel"], cwd=ROOT, check=False).returncode
    return package, user, Path("/usr/bin/sentinel").exists(), Path("/etc/logrotate.d/sentinel").exists()
