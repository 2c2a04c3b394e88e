"""Helpers for the install tests: a copy of the source to build from, wheels, fresh environments, commands run
the way an operator would (clean environment, working directory outside the checkout)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST_FILES = ("pyproject.toml", "README.md", "LICENSE")


def copy_source(dst: Path) -> Path:
    """What a wheel is built from (the package, its metadata files), copied so builds never write into the
    checkout and a test can change the copy (a newer version, a new shipped rule)."""
    dst.mkdir(parents=True)
    for name in DIST_FILES:
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "sentinel", dst / "sentinel",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return dst


def set_version(src: Path, version: str) -> None:
    path = src / "pyproject.toml"
    text, n = re.subn(r'(?m)^version = "[^"]+"$', f'version = "{version}"', path.read_text())
    assert n == 1, "pyproject.toml has one version line"
    path.write_text(text)


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that would point Python or sentinel back at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SENTINEL_CONFIG", "PYTHONHOME") and not k.startswith("PYTEST")}
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 600, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}\nstdout:\n{done.stdout}\n"
                             f"stderr:\n{done.stderr}")
    return done


def build_wheel(src: Path, out: Path) -> Path:
    """``pip wheel`` of the copied source, the way a release is built (isolated build environment)."""
    before = set(out.glob("*.whl")) if out.exists() else set()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], cwd=out.parent,
        timeout=900)
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


def new_venv(path: Path, cwd: Path) -> Path:
    """A fresh virtual environment from the interpreter's base installation (not the checkout's venv)."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    run([str(base), "-m", "venv", str(path)], cwd=cwd, timeout=300)
    return path / "bin"


def timed_install(pip: Path, wheel: Path, cwd: Path) -> float:
    started = time.perf_counter()
    run([str(pip), "install", "-q", "--disable-pip-version-check", str(wheel)], cwd=cwd, timeout=900)
    return time.perf_counter() - started


def without_checkout(cmd: list[str]) -> list[str]:
    """``cmd`` in a private mount namespace where the checkout is an empty tmpfs: whatever the installed
    package needs must have come with it."""
    return ["unshare", "--mount", "sh", "-c", f'mount -t tmpfs checkout-hidden "{ROOT}" && exec "$@"', "sh", *cmd]
