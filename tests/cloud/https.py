"""The small HTTPS server every provider's contract server builds on: a self-signed certificate made with
``cryptography``, a threading server, and the faults the pollers must survive (an outage answering 429s and
503s, a page cut off halfway)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key; the certificate is its own CA."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Reply:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                 cut: bool = False) -> None:
        self.status, self.body, self.headers, self.cut = status, body, headers or {}, cut


class Faults:
    """What the server does wrong, switched by the tests while the poller runs."""

    def __init__(self) -> None:
        self.outage_until = 0.0  # until then: alternately 429 (Retry-After) and 503
        self.outage_requests = 0  # so many requests more are refused the same way, however long that takes
        self.cut_every = 0  # every Nth page is cut off after half its body
        self.throttle_every = 0  # every Nth request is refused with a 429 unannounced (a concurrency limit)
        self.surprise = 0
        self.served = 0
        self.refused = 0
        self.cut = 0


class ContractServer:
    """Dispatches requests to ``route(method, path, query, headers, form) -> Reply`` on HTTPS."""

    def __init__(self, folder: Path, route: Callable[[str, str, dict[str, list[str]], dict[str, str],
                                                      dict[str, list[str]]], Reply]) -> None:
        self.cert, self.key = self_signed(folder)
        self.route = route
        self.faults = Faults()
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = parse_qs(raw)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    outer.requests.append((method, parts.path))
                    reply = outer._faulty(parts.path)
                    if reply is None:
                        reply = outer.route(method, parts.path, query, headers, form)
                body = b"" if reply.body is None else (reply.body if isinstance(reply.body, bytes)
                                                      else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if reply.cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _faulty(self, path: str) -> Reply | None:
        f = self.faults
        if f.throttle_every and "token" not in path and len(self.requests) % f.throttle_every == 0:
            f.surprise += 1
            return Reply(429, {"error": "too many concurrent requests"},
                         {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": f"{time.time() + 0.3:.3f}"})
        if (time.time() < f.outage_until or f.outage_requests > 0) and "token" not in path:
            f.outage_requests = max(0, f.outage_requests - 1)
            f.refused += 1
            if f.refused % 2:
                return Reply(429, {"error": "throttled"}, {"Retry-After": "0"})
            return Reply(503, {"error": {"code": "ServiceUnavailable"}})
        return None

    def cut_now(self) -> bool:
        """For a route serving a page: should this one be cut off halfway?"""
        f = self.faults
        f.served += 1
        if f.cut_every and f.served % f.cut_every == 0:
            f.cut += 1
            return True
        return False

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
