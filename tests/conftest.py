"""Shared fixtures. Integration fixtures (Elasticsearch, Prometheus, HTTP receivers) live in
``tests/fixtures/`` and are loaded here so every test module can ask for them by name."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    f"tests.fixtures.{p.stem}" for p in sorted((ROOT / "tests" / "fixtures").glob("*.py")) if p.stem != "__init__"
]


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests only ever talk to 127.0.0.1; make sure no proxy setting reroutes that."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("SENTINEL_TEST", "1")
