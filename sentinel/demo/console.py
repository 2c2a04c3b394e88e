"""The demo's receiver: a local webhook that apprise (``json://``) delivers to, printing each alert as it lands.

The demo routes its alerts here instead of to chat or a pager, so deliveries, grouping and the incident
clock are the daemon's real ones, and the person running the demo sees each alert arrive.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

MAX_BODY = 1 << 20

# A message set for the console: one line per notification (severity, rules, the summary of its alerts).
TEMPLATE = """\
alert:
  title: "{{ severity_upper }} {{ rule }}"
  body: "{{ summary }}"
"""


class ConsoleReceiver:
    """Receives apprise JSON posts on 127.0.0.1 and writes one line per delivered notification."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                try:
                    doc = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    doc = {}
                self.send_response(200)
                self.end_headers()
                receiver.show(str(doc.get("title", "")), str(doc.get("message", doc.get("body", ""))))

            def log_message(self, *_: object) -> None:
                return  # the console line is the log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def show(self, title: str, message: str) -> None:
        severity, _, rules = title.partition(" ")
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        with self.lock:
            self.received += 1
            self.out.write(f"  ALERT {severity:<8} {rules:<40} {lines[0] if lines else ''}\n")
            for line in lines[1:3]:
                self.out.write(f"  {'':<49} {line}\n")
            self.out.flush()
