"""The /metrics, /healthz and /readyz endpoint: content, basic auth, TLS, secret references."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sentinel.credentials import SecretError
from sentinel.credentials import resolve_reference as resolve_secret
from sentinel.metrics.registry import Metrics
from sentinel.metrics.server import MetricsServer, parse_listen


def _get(url: str, auth: tuple[str, str] | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def state() -> dict[str, bool]:
    return {"live": True, "ready": False}


@pytest.fixture
def server(metrics: Metrics, state: dict[str, bool]) -> Iterator[MetricsServer]:
    srv = MetricsServer(metrics.registry, "127.0.0.1:0", lambda: (state["live"], "live?"),
                        lambda: (state["ready"], "ready?"), username="prom", password="s3cret-pass")
    srv.start()
    yield srv
    srv.stop()


def test_metrics_need_the_right_credentials(server: MetricsServer, metrics: Metrics) -> None:
    metrics.lines_read.labels("linux-auth").inc(3)
    base = f"http://127.0.0.1:{server.port}"
    assert _get(base + "/metrics")[0] == 401
    assert _get(base + "/metrics", ("prom", "wrong"))[0] == 401
    assert _get(base + "/metrics", ("other", "s3cret-pass"))[0] == 401
    code, body = _get(base + "/metrics", ("prom", "s3cret-pass"))
    assert code == 200
    assert 'sentinel_lines_read_total{source="linux-auth"} 3.0' in body
    assert 'sentinel_build_info{version="' in body


def test_health_and_readiness_follow_the_probes(server: MetricsServer, state: dict[str, bool]) -> None:
    base = f"http://127.0.0.1:{server.port}"
    auth = ("prom", "s3cret-pass")
    assert _get(base + "/healthz", auth) == (200, "live?\n")
    assert _get(base + "/readyz", auth)[0] == 503
    state["ready"] = True
    assert _get(base + "/readyz", auth)[0] == 200
    state["live"] = False
    assert _get(base + "/healthz", auth)[0] == 503
    assert _get(base + "/nope", auth)[0] == 404


def test_tls(metrics: Metrics, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    srv = MetricsServer(metrics.registry, "127.0.0.1:0", lambda: (True, "ok"), lambda: (True, "ok"),
                        tls_cert=str(cert), tls_key=str(key))
    srv.start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        code, body = _get(f"https://127.0.0.1:{srv.port}/metrics", context=ctx)
        assert code == 200 and "sentinel_build_info" in body
        with pytest.raises(urllib.error.URLError):
            _get(f"https://127.0.0.1:{srv.port}/metrics")  # an unknown certificate is refused by clients
    finally:
        srv.stop()


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_METRICS_PW", "from-env")
    assert resolve_secret("${SENTINEL_METRICS_PW}") == "from-env"
    (tmp_path / "pw").write_text("from-file\n")
    assert resolve_secret(f"file:{tmp_path / 'pw'}") == "from-file"
    with pytest.raises(SecretError, match="never the secret itself"):
        resolve_secret("hunter2")
    with pytest.raises(SecretError, match="not set"):
        resolve_secret("${SENTINEL_UNSET_VARIABLE}")
    with pytest.raises(SecretError, match="cannot read"):
        resolve_secret(f"file:{tmp_path / 'missing'}")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError, match="is empty"):
        resolve_secret(f"file:{tmp_path / 'empty'}")
    monkeypatch.setenv("SENTINEL_METRICS_EMPTY", "")
    with pytest.raises(SecretError, match="is empty"):
        resolve_secret("${SENTINEL_METRICS_EMPTY}")


def test_an_empty_basic_auth_password_is_refused() -> None:
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="password is empty"):
        MetricsServer(registry, "127.0.0.1:0", lambda: (True, "ok"), lambda: (True, "ok"), "prometheus", "")


def test_a_port_in_use_is_refused_naming_the_setting_and_the_address(tmp_path: Path) -> None:
    """``sentinel run`` says which listener could not bind, not a bare "Address already in use"."""
    shipped = Path(__file__).resolve().parents[1] / "sentinel" / "shipped"
    (tmp_path / "auth.log").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "sentinel.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": str(tmp_path / "state"), "collectors_dir": str(shipped / "collectors"),
            "rules_dir": str(shipped / "rules"), "alerts_dir": str(shipped / "alerts"),
            "metrics": {"enabled": True, "listen": f"127.0.0.1:{port}"}, "api": {"enabled": False},
            "notify": {"enabled": False},
            "sources": [{"collector": "linux-auth", "paths": [str(tmp_path / "auth.log")]}],
        }))
        done = subprocess.run([sys.executable, "-m", "sentinel", "run", "-c", str(config)], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 1
    assert f"metrics.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    with pytest.raises(ValueError):
        parse_listen("9464")


def test_config_rejects_inline_password_and_half_auth(make_config) -> None:  # type: ignore[no-untyped-def]
    from sentinel.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match=r"metrics\.password"):
        make_config(metrics={"username": "prom", "password": "hunter2"})
    with pytest.raises(ConfigErrors, match="both username and password"):
        make_config(metrics={"username": "prom"})
