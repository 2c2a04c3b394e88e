"""The alert HTTP server on the daemon: list/show/ack/resolve alerts, list/add/expire silences.

Bound to 127.0.0.1 by default; every request needs ``Authorization: Bearer <token>`` with the token from
``api.token_file`` (created with mode 0600 if missing). Bodies are JSON; responses are JSON.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sentinel.credentials import remember as register_secret
from sentinel.errors import ConfigError
from sentinel.route.durations import parse_duration
from sentinel.route.lifecycle import LifecycleError, get_alert, list_alerts, transition
from sentinel.route.silences import (
    BOUND_SILENCE_LIMIT,
    add_silence,
    expire_silence,
    list_silences,
    parse_matcher,
    silence_alert,
)
from sentinel.route.state import ensure_schema
from sentinel.store.database import connect, immediate

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


def load_token(path: Path) -> str:
    """Read the API token, creating a random one (0600) on first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise ValueError(f"{path}: the API token must be at least 16 characters")
    register_secret(token)
    return token


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ApiError(400, f"'{key}' must be a string")
    return value.strip() or None


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AlertApi:
    """A Worker: starts a ThreadingHTTPServer in a thread; each request uses its own SQLite connection."""

    def __init__(self, db_path: Path, listen: str, token: str, clock: Callable[[], float] = time.time,
                 audit: Callable[..., Any] | None = None) -> None:
        host, _, port = listen.rpartition(":")
        # Acknowledgements and silences are recorded in the daemon's audit trail (passed in by the daemon).
        self.audit = audit or (lambda action, actor, **details: None)
        self.address = (host or "127.0.0.1", int(port))
        self.db_path = db_path
        self.token = token
        self.clock = clock
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.address[1]

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_DELETE(self) -> None:
                api._handle(self, "DELETE")

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("api: " + fmt, *args)

        conn = connect(self.db_path)
        ensure_schema(conn)
        conn.close()
        try:
            self._server = ThreadingHTTPServer(self.address, Handler)
        except OSError as exc:
            raise ConfigError(f"api.listen: cannot listen on {self.address[0]}:{self.address[1]}: "
                              f"{exc.strerror or exc}; free the port or choose another") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sentinel-api", daemon=True)
        self._thread.start()
        log.info("alert API listening on %s:%d", self.address[0], self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- request handling --------------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        try:
            auth = req.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].strip(), self.token):
                raise _ApiError(401, "missing or wrong bearer token")
            url = urlsplit(req.path)
            body = self._body(req) if method == "POST" else {}
            status, doc = self._route(method, [p for p in url.path.split("/") if p], parse_qs(url.query), body)
        except _ApiError as exc:
            status, doc = exc.status, {"error": str(exc)}
        except (LifecycleError, ValueError) as exc:
            status, doc = 400 if not str(exc).startswith("no alert") else 404, {"error": str(exc)}
        except sqlite3.Error as exc:
            log.warning("api: database error: %s", exc)
            status, doc = 503, {"error": "database busy, retry"}
        data = json.dumps(doc, default=str).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _body(req: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _ApiError(413, "request body too large")
        raw = req.rfile.read(length) if length else b"{}"
        try:
            doc = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            raise _ApiError(400, "body must be JSON") from None
        if not isinstance(doc, dict):
            raise _ApiError(400, "body must be a JSON object")
        return doc

    def _route(self, method: str, parts: list[str], query: dict[str, list[str]],
               body: dict[str, Any]) -> tuple[int, Any]:
        if not parts or parts[0] != "api":
            raise _ApiError(404, "not found; try /api/alerts or /api/silences")
        conn = connect(self.db_path)
        try:
            now = self.clock()
            rest = parts[1:]
            if rest == ["alerts"] and method == "GET":
                q = {k: v[-1] for k, v in query.items()}
                views = list_alerts(conn, q.get("status"), q.get("severity"), limit=int(q.get("limit", "100")))
                return 200, {"alerts": [v.as_dict() for v in views]}
            if len(rest) == 2 and rest[0] == "alerts" and method == "GET":
                return 200, get_alert(conn, rest[1]).as_dict()
            if len(rest) == 3 and rest[0] == "alerts" and rest[2] in ("ack", "resolve") and method == "POST":
                by = str(body.get("by") or "").strip()
                if not by:
                    raise _ApiError(400, "give 'by': who acknowledges or resolves")
                with immediate(conn):
                    view, why = transition(conn, rest[2], rest[1], by, now, _optional_str(body, "disposition"),
                                           _optional_str(body, "note"))
                self.audit(rest[2], actor=by, alert_id=view.alert.id, rule=view.alert.rule_id, via="api", **why)
                return 200, view.as_dict()
            if rest == ["silences"] and method == "GET":
                expired = query.get("all", ["0"])[-1] in ("1", "true")
                return 200, {"silences": [s.as_dict() for s in list_silences(conn, now, include_expired=expired)]}
            if rest == ["silences"] and method == "POST":
                bound = _optional_str(body, "alert_id")
                matchers = body.get("matchers", [] if bound else None)
                if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
                    raise _ApiError(400, "matchers must be a list like [\"rule=phi-bulk-export\", \"user.name=u1\"]")
                duration = parse_duration(body.get("duration") or (BOUND_SILENCE_LIMIT if bound else ""))
                with immediate(conn):
                    if bound:
                        s = silence_alert(conn, bound, [parse_matcher(m) for m in matchers], duration,
                                          str(body.get("author", "")), str(body.get("reason", "")), now)
                    else:
                        s = add_silence(conn, [parse_matcher(m) for m in matchers], duration,
                                        str(body.get("author", "")), str(body.get("reason", "")), now)
                self.audit("silence_add", actor=s.author, silence_id=s.id, matchers=[str(m) for m in s.matchers],
                           ends_at=s.ends_at, reason=s.reason, via="api",
                           **({"alert_id": s.alert_id} if s.alert_id else {}))
                return 201, s.as_dict()
            if len(rest) == 2 and rest[0] == "silences" and method == "DELETE":
                with immediate(conn):
                    ok = expire_silence(conn, rest[1], now)
                if not ok:
                    raise _ApiError(404, f"no active silence {rest[1]!r}")
                self.audit("silence_expire", actor="api", silence_id=rest[1], via="api")
                return 200, {"expired": rest[1]}
            raise _ApiError(404 if method == "GET" else 405, "no such endpoint")
        finally:
            conn.close()


