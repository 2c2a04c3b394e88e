"""The HTTP endpoint: ``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz``; optional basic auth and TLS."""

from __future__ import annotations

import base64
import hmac
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from sentinel.errors import ConfigError

log = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, str]]


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MetricsServer:
    """Serves one registry; ``health``/``ready`` probes decide the status of /healthz and /readyz."""

    def __init__(
        self,
        registry: CollectorRegistry,
        listen: str,
        health: Probe,
        ready: Probe,
        username: str | None = None,
        password: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        self.registry = registry
        self.host, self.requested_port = parse_listen(listen)
        self.health = health
        self.ready = ready
        if username is not None and not password:
            # An empty password would let anyone who sends the user name in: refuse rather than serve that.
            raise ValueError("metrics basic auth: the password is empty")
        self.credentials = (username, password) if username is not None and password is not None else None
        self.tls = (tls_cert, tls_key) if tls_cert else None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else self.requested_port

    def start(self) -> None:
        _Server.address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            httpd = _Server((self.host, self.requested_port), self._handler())
        except OSError as exc:
            hint = " (ports below 1024 need root)" if 0 < self.requested_port < 1024 else ""
            raise ConfigError(f"metrics.listen: cannot listen on {self.host}:{self.requested_port}: "
                              f"{exc.strerror or exc}{hint}; free the port or choose another") from None
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.tls[0], self.tls[1] or None)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics endpoint on %s://%s:%d/metrics", "https" if self.tls else "http", self.host, self.port)

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # Compare both parts in constant time so a wrong user name costs the same as a wrong password.
        ok_user = hmac.compare_digest(user.encode(), str(self.credentials[0]).encode())
        ok_pass = hmac.compare_digest(password.encode(), str(self.credentials[1]).encode())
        return ok_user and ok_pass

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if not server._authorized(self.headers.get("Authorization")):
                    self._send(401, b"unauthorized\n", "text/plain", {"WWW-Authenticate": 'Basic realm="sentinel"'})
                elif path == "/metrics":
                    encoder, ctype = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, encoder(server.registry), ctype)
                elif path in ("/healthz", "/readyz"):
                    ok, why = (server.health if path == "/healthz" else server.ready)()
                    self._send(200 if ok else 503, (why + "\n").encode(), "text/plain")
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Scrapes every second would flood the daemon log; client addresses do not belong there either.
                return

        return Handler
