"""A network syslog receiver: UDP, TCP (RFC 6587 octet counting and LF framing) and TLS (RFC 5425).

One thread owns the sockets (a selector loop); the pipeline takes the messages it framed from a
bounded queue. When the queue is full the loop stops reading TCP and TLS connections, so a fast
sender is slowed by TCP flow control instead of losing messages; UDP cannot be slowed, so the
kernel drops datagrams then, and those drops are read from /proc/net/udp and counted.

Each message is handed on with its sender (``tcp://10.0.0.5:41234``, with the TLS client certificate's
subject as ``tls://CN=host@10.0.0.5:41234``); the decoder records both.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import selectors
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sentinel.errors import ConfigError
from sentinel.events.records import Checkpoint, RawRecord

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3


@dataclass(frozen=True)
class Listener:
    protocol: str  # udp, tcp, tls
    host: str
    port: int


@dataclass(frozen=True)
class SyslogSettings:
    listeners: tuple[Listener, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None  # client certificates required and verified against this CA
    allow: tuple[str, ...] = ()  # sender networks; empty: everyone
    rate_per_sender: float = 0.0  # messages per second per sender address; 0: unlimited
    rate_burst: int = 1000
    max_message_bytes: int = 256 * 1024
    queue_max: int = 20_000
    idle_timeout_seconds: float = 300.0  # a connection silent this long is closed
    handshake_timeout_seconds: float = 10.0
    socket_activation: bool = True  # take sockets from systemd (LISTEN_FDS) when it passes them


@dataclass
class SyslogEvents:
    on_message: Callable[[str, str, int], None] = lambda source, protocol, nbytes: None
    on_problem: Callable[[str, str], None] = lambda source, kind: None  # garbage, oversized, denied, tls_failed…
    on_udp_drops: Callable[[str, int], None] = lambda source, n: None
    on_connections: Callable[[str, int], None] = lambda source, n: None


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    protocol: str
    peer: str
    origin: str
    buffer: bytearray = field(default_factory=bytearray)
    last: float = 0.0
    handshaking: bool = False
    skip: int = 0  # bytes of an oversized octet-counted frame still to discard
    discarding: bool = False  # inside an oversized LF-framed message
    paused: bool = False
    held: bool = False  # framing stopped at the rate limit with messages still in the buffer


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, burst: int, now: float) -> None:
        self.tokens = float(burst)
        self.stamp = now


class SyslogSource:
    """Receives syslog messages for one source; the pipeline reads them like lines of a file."""

    def __init__(self, source: str, settings: SyslogSettings, events: SyslogEvents | None = None,
                 clock: Callable[[], float] = time.time, wake: threading.Event | None = None) -> None:
        self.source = source
        self.settings = settings
        self.events = events or SyslogEvents()
        self.clock = clock
        self.wake = wake
        self.patterns: list[str] = []
        self.framing = None
        self.bytes_read = 0  # every read hands out whole records
        # Network messages have no upstream position: ids are unique per run and message, never reused.
        self.stream = f"syslog:{uuid.uuid4().hex}"
        self._seq = 0
        self._queue: deque[RawRecord] = deque()
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}  # by id(): a closed socket's fileno() is -1
        self._servers: list[tuple[socket.socket, Listener]] = []
        self._buckets: dict[str, _Bucket] = {}
        self._networks = [ipaddress.ip_network(n, strict=False) for n in settings.allow]
        self._tls: ssl.SSLContext | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._udp_drops: dict[int, int] = {}
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._paused = False
        self._udp_paused = False
        self.bound: list[tuple[str, str, int]] = []  # (protocol, host, port) actually listened on

    @property
    def active(self) -> dict[int, _Conn]:
        return self._conns

    # ------------------------------------------------------------------ the Source protocol
    def restore(self, checkpoints: list[Checkpoint]) -> None:
        if self._thread is None:
            self.start()

    def rewind(self, checkpoints: list[Checkpoint]) -> None:
        """Messages have no upstream position to go back to: those in a rolled-back batch are gone."""
        log.warning("source %s: a batch rolled back; the syslog messages it held cannot be received again "
                    "(network syslog is at most once)", self.source)

    def discover(self) -> None:
        self._count_udp_drops()

    def read(self, budget: int) -> list[RawRecord]:
        out: list[RawRecord] = []
        with self._lock:
            while self._queue and len(out) < budget:
                out.append(self._queue.popleft())
            resume = self._paused and len(self._queue) < self.settings.queue_max // 2
        if resume:
            self._poke()
        return out

    def checkpoints(self) -> list[Checkpoint]:
        return []

    def lag(self) -> list[tuple[str, int, float]]:
        with self._lock:
            return [("syslog", sum(len(r.data) for r in self._queue), 0.0)]

    def close(self) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        for conn in list(self._conns.values()):
            self._drop(conn)
        for sock, _ in self._servers:
            sock.close()
        self._servers.clear()
        self._sel.close()
        self._waker_r.close()
        self._waker_w.close()

    # ------------------------------------------------------------------ setting up
    def start(self) -> None:
        s = self.settings
        if s.tls_cert and any(li.protocol == "tls" for li in s.listeners):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(s.tls_cert, s.tls_key)
                if s.tls_client_ca:
                    ctx.verify_mode = ssl.CERT_REQUIRED
                    ctx.load_verify_locations(s.tls_client_ca)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"syslog source {self.source}: cannot load the TLS certificate, key or client CA "
                                  f"({s.tls_cert}, {s.tls_key}, {s.tls_client_ca}): {exc}") from None
            self._tls = ctx
        inherited = self._inherited() if s.socket_activation else []
        for listener in s.listeners:
            sock = next((so for so, li in inherited if li == listener), None)
            if sock is None:
                try:
                    sock = self._bind(listener)
                except OSError as exc:
                    hint = (" (ports below 1024 need root or systemd/sentinel-syslog.socket)"
                            if listener.port < 1024 else "")
                    raise ConfigError(f"syslog source {self.source}: cannot listen on {listener.protocol}://"
                                      f"{listener.host}:{listener.port}: {exc.strerror}{hint}") from None
            sock.setblocking(False)
            self._servers.append((sock, listener))
            host, port = sock.getsockname()[:2]
            self.bound.append((listener.protocol, host, port))
            self._sel.register(sock, selectors.EVENT_READ, ("server", listener))
        self._sel.register(self._waker_r, selectors.EVENT_READ, ("waker", None))
        self._thread = threading.Thread(target=self._loop, name=f"syslog-{self.source}", daemon=True)
        self._thread.start()

    def _inherited(self) -> list[tuple[socket.socket, Listener]]:
        """Sockets systemd opened for us (sentinel-syslog.socket): privileged ports without root."""
        if os.environ.get("LISTEN_PID") != str(os.getpid()):
            return []
        count = int(os.environ.get("LISTEN_FDS", "0") or 0)
        out = []
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
            sock = socket.socket(fileno=fd)
            kind = "udp" if sock.type == socket.SOCK_DGRAM else "tcp"
            _host, port = sock.getsockname()[:2]
            for li in self.settings.listeners:
                if li.port == port and (li.protocol == "udp") == (kind == "udp"):
                    out.append((sock, li))
        return out

    @staticmethod
    def _bind(listener: Listener) -> socket.socket:
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        if listener.protocol == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener.host, listener.port))
        if listener.protocol != "udp":
            sock.listen(128)
        return sock

    # ------------------------------------------------------------------ the loop
    def _poke(self) -> None:
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass

    def _loop(self) -> None:
        soon = False
        while not self._stop.is_set():
            try:
                ready = self._sel.select(timeout=0.05 if soon else 1.0)
            except OSError:
                return
            for key, _ in ready:
                kind, what = key.data
                try:
                    if kind == "waker":
                        self._waker_r.recv(4096)
                    elif kind == "server":
                        self._accept(key.fileobj, what)  # type: ignore[arg-type]
                    else:
                        self._service(what)
                except Exception:
                    log.exception("syslog receiver %s: unexpected error; the connection is closed", self.source)
                    if kind == "conn":
                        self._drop(what)
            soon = self._apply_backpressure()
            self._expire()

    def _apply_backpressure(self) -> bool:
        """Stop reading connections while the queue is full (or their sender is over its rate); True when
        some connection waits only for its rate, so the loop must look again soon."""
        with self._lock:
            self._paused = len(self._queue) >= self.settings.queue_max or (
                self._paused and len(self._queue) >= self.settings.queue_max // 2)
            paused = self._paused
        if paused != self._udp_paused:
            # UDP cannot be slowed: left unread, the kernel drops what overflows its buffer, and those
            # drops are counted from /proc/net/udp (discover()), so nothing is lost uncounted.
            self._udp_paused = paused
            for sock, listener in self._servers:
                if listener.protocol == "udp":
                    if paused:
                        self._sel.unregister(sock)
                    else:
                        self._sel.register(sock, selectors.EVENT_READ, ("server", listener))
        limited = False
        for conn in list(self._conns.values()):
            over = self._limited(conn)
            want = paused or over
            if want != conn.paused:
                conn.paused = want
                if want:
                    self._sel.unregister(conn.sock)
                else:
                    conn.last = time.monotonic()  # waiting on us is not the sender being idle
                    self._sel.register(conn.sock, selectors.EVENT_READ, ("conn", conn))
                    if isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                        self._service(conn)  # decrypted bytes the selector cannot see would wait for more traffic
            if not want and conn.held:
                conn.held = False
                self._frame(conn)  # what was held back by the rate limit, without waiting for more traffic
            limited = limited or over or conn.held
        return limited

    def _limited(self, conn: _Conn) -> bool:
        if self.settings.rate_per_sender <= 0:
            return False
        bucket = self._bucket(_address(conn.peer))
        return bucket.tokens < 1

    def _bucket(self, address: str) -> _Bucket:
        now = time.monotonic()
        b = self._buckets.get(address)
        if b is None:
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            b = self._buckets[address] = _Bucket(self.settings.rate_burst, now)
        b.tokens = min(float(self.settings.rate_burst), b.tokens + (now - b.stamp) * self.settings.rate_per_sender)
        b.stamp = now
        return b

    def _expire(self) -> None:
        now = time.monotonic()
        s = self.settings
        for conn in list(self._conns.values()):
            limit = s.handshake_timeout_seconds if conn.handshaking else s.idle_timeout_seconds
            if now - conn.last > limit and not conn.paused:
                self._problem("handshake_timeout" if conn.handshaking else "idle_timeout")
                self._drop(conn)

    def _allowed(self, host: str) -> bool:
        if not self._networks:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._networks)

    def _accept(self, server: socket.socket, listener: Listener) -> None:
        if listener.protocol == "udp":
            self._datagrams(server)
            return
        try:
            sock, addr = server.accept()
        except OSError:
            return
        host, port = addr[0], addr[1]
        if not self._allowed(host):
            self._problem("denied")
            sock.close()
            return
        sock.setblocking(False)
        peer = _hostport(host, port)
        conn = _Conn(sock, listener.protocol, peer, f"{listener.protocol}://{peer}", last=time.monotonic())
        if listener.protocol == "tls":
            if self._tls is None:
                self._problem("tls_unconfigured")
                sock.close()
                return
            conn.sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn.handshaking = True
        self._conns[id(conn)] = conn
        self._sel.register(conn.sock, selectors.EVENT_READ, ("conn", conn))
        self.events.on_connections(self.source, len(self._conns))
        if conn.handshaking:
            self._handshake(conn)

    def _handshake(self, conn: _Conn) -> bool:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except (ssl.SSLError, OSError) as exc:
            self._problem("tls_failed")
            log.warning("syslog receiver %s: TLS handshake with %s failed: %s", self.source, conn.peer,
                        getattr(exc, "reason", None) or exc)
            self._drop(conn)
            return False
        conn.handshaking = False
        cert = sock.getpeercert()
        subject = _subject(cert) if cert else ""
        conn.origin = f"tls://{quote(subject, safe='=,')}@{conn.peer}" if subject else f"tls://{conn.peer}"
        return True

    def _service(self, conn: _Conn) -> None:
        conn.last = time.monotonic()
        if conn.handshaking and not self._handshake(conn):
            return
        try:
            data = conn.sock.recv(1 << 16)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except (ssl.SSLError, OSError):
            self._problem("connection_error")
            self._drop(conn)
            return
        if not data:
            self._frame(conn, final=True)
            self._drop(conn)
            return
        conn.buffer += data
        self._frame(conn)
        if isinstance(conn.sock, ssl.SSLSocket):
            # TLS may hold decrypted bytes the selector cannot see.
            while conn.sock.fileno() >= 0 and conn.sock.pending():
                conn.buffer += conn.sock.recv(1 << 16)
                self._frame(conn)

    def _frame(self, conn: _Conn, final: bool = False) -> None:
        """RFC 6587: a frame starting with a digit is octet-counted (``LEN SP MSG``), else ends at LF."""
        buf = conn.buffer
        limit = self.settings.max_message_bytes
        pos = 0
        while pos < len(buf):
            # At the close, what the sender already delivered (at most one read) is kept despite its rate.
            if self.settings.rate_per_sender > 0 and not final and self._limited(conn):
                conn.held = True  # over its rate: the rest waits in the buffer, the connection is not read meanwhile
                break
            if conn.skip:
                n = min(conn.skip, len(buf) - pos)
                conn.skip -= n
                pos += n
                continue
            if conn.discarding:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = len(buf)
                    break
                conn.discarding = False
                pos = nl + 1
                continue
            if 48 <= buf[pos] <= 57:
                sp = buf.find(b" ", pos, pos + 11)
                if sp < 0:
                    if len(buf) - pos >= 11:
                        self._problem("garbage")  # digits that are no length: read it as LF-framed
                    elif not final:
                        break
                else:
                    digits = bytes(buf[pos:sp])
                    if digits.isdigit():
                        length = int(digits)
                        if length > limit:
                            self._problem("oversized")
                            self._emit(conn, bytes(buf[sp + 1:sp + 1 + min(limit, length)]), True, length)
                            conn.skip = length
                            pos = sp + 1
                            continue
                        if len(buf) - (sp + 1) < length:
                            if final:
                                self._problem("incomplete_frame")
                                self._emit(conn, bytes(buf[sp + 1:]), True, length)
                                pos = len(buf)
                            break
                        self._emit(conn, bytes(buf[sp + 1:sp + 1 + length]))
                        pos = sp + 1 + length
                        continue
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > limit:
                    self._problem("oversized")
                    self._emit(conn, bytes(buf[pos:pos + limit]), True, len(buf) - pos)
                    conn.discarding = True
                    pos = len(buf)
                elif final and len(buf) > pos:
                    self._emit(conn, bytes(buf[pos:]))
                    pos = len(buf)
                break
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            if end > pos:
                self._emit(conn, bytes(buf[pos:end]))
            pos = nl + 1
        del buf[:pos]

    def _datagrams(self, sock: socket.socket) -> None:
        for _ in range(256):
            try:
                data, addr = sock.recvfrom(1 << 17)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            host, port = addr[0], addr[1]
            if not self._allowed(host):
                self._problem("denied")
                continue
            peer = _hostport(host, port)
            if self.settings.rate_per_sender > 0:
                bucket = self._bucket(host)
                if bucket.tokens < 1:
                    self._problem("rate_limited")
                    continue
            data = data.rstrip(b"\r\n")
            if data:
                self._emit(_Conn(sock, "udp", peer, f"udp://{peer}"), data)

    def _emit(self, conn: _Conn, data: bytes, truncated: bool = False, length: int = 0) -> None:
        if self.settings.rate_per_sender > 0:
            self._bucket(_address(conn.peer)).tokens -= 1
        if not data.strip():
            self._problem("empty")  # whitespace only: nothing to store, but not dropped unseen
            return
        limit = self.settings.max_message_bytes
        if len(data) > limit:
            data, truncated, length = data[:limit], True, len(data)
        self._seq += 1
        rec = RawRecord(self.source, self.stream, conn.origin, self._seq, self._seq + 1, data, truncated, length,
                        self.clock())
        with self._lock:
            self._queue.append(rec)
        self.events.on_message(self.source, conn.protocol, len(data))
        if self.wake is not None:
            self.wake.set()

    def _drop(self, conn: _Conn) -> None:
        self._conns.pop(id(conn), None)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        self.events.on_connections(self.source, len(self._conns))

    def _problem(self, kind: str) -> None:
        self.events.on_problem(self.source, kind)

    def _count_udp_drops(self) -> None:
        """The kernel's receive-buffer drops of our UDP sockets (the ``drops`` column of /proc/net/udp)."""
        inodes = {os.fstat(s.fileno()).st_ino: s for s, li in self._servers if li.protocol == "udp"}
        if not inodes:
            return
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table) as fh:
                    next(fh)
                    for line in fh:
                        cols = line.split()
                        if len(cols) >= 13 and int(cols[9]) in inodes:
                            ino, drops = int(cols[9]), int(cols[12])
                            seen = self._udp_drops.get(ino, 0)
                            if drops > seen:
                                self.events.on_udp_drops(self.source, drops - seen)
                            self._udp_drops[ino] = drops
            except (OSError, ValueError, StopIteration):
                continue


def _address(peer: str) -> str:
    return peer.rsplit(":", 1)[0].strip("[]")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _subject(cert: Mapping[str, Any]) -> str:
    parts = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                     "countryName": "C"}.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts)
