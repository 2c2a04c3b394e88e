"""The network syslog receiver, fed by real clients: util-linux logger and rsyslog."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentinel.collect.syslog_net import Listener, SyslogEvents, SyslogSettings, SyslogSource
from sentinel.store.docs import ShapeReader
from tests.ops_helpers import free_port, metric_value, scrape

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"


def _certs(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test-ca")
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}.example")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", "ext")
    return {n: directory / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def _failure(i: int) -> str:
    return f"Failed password for user{i} from 10.9.0.{i % 250 + 1} port {30000 + i} ssh2"


class Daemon:
    def __init__(self, tmp_path: Path, syslog: dict[str, Any], collector: str = "linux-auth",
                 decode_workers: int = 0) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        cfg = {
            "state_dir": str(tmp_path / "state"),
            "collectors_dir": str(SHIPPED / "collectors"),
            "rules_dir": str(tmp_path / "no-rules"), "alerts_dir": str(tmp_path / "no-alerts"),
            "pipeline": {"poll_interval_ms": 50, "decode_workers": decode_workers},
            "metrics": {"enabled": True, "listen": f"127.0.0.1:{self.metrics_port}"},
            "api": {"enabled": False}, "detection": {"enabled": False}, "notify": {"enabled": False},
            "sources": [{"collector": collector, "type": "syslog", "syslog": syslog}],
        }
        config = tmp_path / "sentinel.yaml"
        config.write_text(yaml.safe_dump(cfg))
        self.db = tmp_path / "state" / "events.db"
        self.log = tmp_path / "daemon.log"
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(config), "--log-level",
                                      "WARNING"], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                scrape(self.metrics_port)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(self.log.read_text())

    def events(self) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            reader = ShapeReader(conn)
            return [reader.fields(shape, doc) for shape, doc in conn.execute("SELECT shape, doc FROM events")]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                time.sleep(0.3)  # a duplicate would show up meanwhile
                return self.events()
            time.sleep(0.05)
        return self.events()

    def problems(self, kind: str) -> float:
        return metric_value(scrape(self.metrics_port), "sentinel_syslog_problems_total",
                            f'kind="{kind}",source="linux-auth"') or 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # not left running into the next tests
                self.proc.wait(10)
                raise AssertionError("the daemon did not stop within 30 s of SIGTERM:\n"
                                     + self.log.read_text(errors="replace")[-4000:]) from None


def _logger(*args: str) -> None:
    subprocess.run(["logger", *args], check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize("decode_workers", [0, 1], ids=["decode-inline", "decode-workers"])
def test_logger_over_udp_tcp_octet_counting_and_rfc5424_each_stored_once_with_its_sender(
        tmp_path: Path, decode_workers: int) -> None:
    udp, tcp = free_port(), free_port()
    d = Daemon(tmp_path, {"listen": [f"udp://127.0.0.1:{udp}", f"tcp://127.0.0.1:{tcp}"]},
               decode_workers=decode_workers)
    try:
        _logger("--udp", "-n", "127.0.0.1", "-P", str(udp), "--rfc3164", "-t", "sshd", _failure(1))
        _logger("--tcp", "-n", "127.0.0.1", "-P", str(tcp), "--rfc3164", "-t", "sshd", _failure(2))
        _logger("--tcp", "-n", "127.0.0.1", "-P", str(tcp), "--octet-count", "--rfc5424", "-t", "sshd",
                "--sd-id", "origin@32473", "--sd-param", 'zone="dmz"', _failure(3))
        _logger("--udp", "-n", "127.0.0.1", "-P", str(udp), "--rfc5424", "-t", "sshd", _failure(4))
        events = d.wait_for(4)
    finally:
        d.stop()
    by_user = {e["user.name"]: e for e in events}
    assert sorted(by_user) == ["user1", "user2", "user3", "user4"], [e.get("message") for e in events]
    assert len(events) == 4
    for user, transport in (("user1", "udp"), ("user2", "tcp"), ("user3", "tcp"), ("user4", "udp")):
        e = by_user[user]
        assert e["event.action"] == "ssh_login" and e["event.outcome"] == "failure"
        assert e["network.transport"] == transport
        assert e["sentinel.log.source.address"].startswith("127.0.0.1:")
    assert by_user["user3"]["log.syslog.structured_data"]["origin@32473"] == {"zone": "dmz"}


def test_tls_with_client_certificates_records_the_peer_and_refuses_clients_without_one(tmp_path: Path) -> None:
    certs = _certs(tmp_path / "tls")
    port = free_port()
    d = Daemon(tmp_path, {"listen": [f"tls://127.0.0.1:{port}"], "tls_cert": str(certs["server.pem"]),
                          "tls_key": str(certs["server.key"]), "tls_client_ca": str(certs["ca.pem"])})
    try:
        ctx = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        ctx.load_cert_chain(str(certs["client.pem"]), str(certs["client.key"]))
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") \
                as tls:
            msg = f"<38>1 2026-12-01T10:00:00Z web1 sshd 77 - - {_failure(5)}".encode()
            tls.sendall(str(len(msg)).encode() + b" " + msg)
        anonymous = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        with pytest.raises((ssl.SSLError, OSError)), socket.create_connection(("127.0.0.1", port)) as raw, \
                    anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"<38>Dec  1 10:00:00 web1 sshd[1]: " + _failure(6).encode() + b"\n")
            tls.recv(1)  # TLS 1.3 reports the refused certificate on the first read
        events = d.wait_for(1)
        time.sleep(0.5)
        failed = d.problems("tls_failed")
    finally:
        d.stop()
    assert [e["user.name"] for e in d.events()] == ["user5"]
    assert events[0]["tls.client.subject"] == "CN=client.example"
    assert failed >= 1


def test_garbage_half_open_tls_oversized_frames_and_silent_clients_are_survived_and_counted(tmp_path: Path) -> None:
    certs = _certs(tmp_path / "tls")
    tcp, tls_port = free_port(), free_port()
    d = Daemon(tmp_path, {"listen": [f"tcp://127.0.0.1:{tcp}", f"tls://127.0.0.1:{tls_port}"],
                          "tls_cert": str(certs["server.pem"]), "tls_key": str(certs["server.key"]),
                          "idle_timeout_seconds": 1, "max_message_bytes": 65536})
    try:
        silent = socket.create_connection(("127.0.0.1", tcp))
        half_open = socket.create_connection(("127.0.0.1", tls_port))  # never starts the handshake
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(os.urandom(5000) + b"\n")
            s.sendall(b"999999999 " + b"x" * 70000)  # an octet count far beyond the limit
        big = ("<38>Dec  1 10:00:00 web1 sshd[9]: " + _failure(7) + " " + "A" * 65000).encode()
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(str(len(big)).encode() + b" " + big)
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"<38>Dec  1 10:00:01 web1 sshd[9]: " + _failure(8).encode() + b"\n")
        time.sleep(11.5)  # the handshake timeout (10 s) passes
        events = d.wait_for(4)
        counted = {k: d.problems(k) for k in ("oversized", "idle_timeout", "handshake_timeout")}
        alive = d.proc.poll() is None
        silent.close()
        half_open.close()
    finally:
        d.stop()
    assert alive
    users = sorted(e["user.name"] for e in events if "user.name" in e)
    assert users == ["user8"]
    (big_event,) = [e for e in events if e["event.original"] == big.decode()]  # 64 KiB, whole, unflagged
    assert "truncated" not in (big_event.get("tags") or [])
    assert any("unparsed" in (e.get("tags") or []) for e in events), "the garbage is stored as unparsed"
    assert counted["oversized"] >= 1 and counted["idle_timeout"] >= 1 and counted["handshake_timeout"] >= 1


def test_a_sender_outside_the_allow_list_is_refused_and_counted(tmp_path: Path) -> None:
    tcp = free_port()
    d = Daemon(tmp_path, {"listen": [f"tcp://127.0.0.1:{tcp}"], "allow": ["10.0.0.0/8"]})
    try:
        _logger("--tcp", "-n", "127.0.0.1", "-P", str(tcp), "-t", "sshd", _failure(1))
        time.sleep(1.0)
        denied = d.problems("denied")
    finally:
        d.stop()
    assert d.events() == []
    assert denied >= 1


def test_a_tcp_sender_faster_than_the_reader_is_slowed_not_dropped() -> None:
    port = free_port()
    source = SyslogSource("linux-auth", SyslogSettings(listeners=(Listener("tcp", "127.0.0.1", port),),
                                                       queue_max=200))
    source.start()
    total = 300_000  # far more than the kernel's socket buffers hold
    payload = b"".join(f"<38>Dec  1 10:00:00 web1 sshd[1]: message {i}\n".encode() for i in range(total))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(1.0)
    sent = 0
    try:
        with pytest.raises(TimeoutError):
            while sent < len(payload):  # nothing reads: the receiver must stop taking bytes
                sent += sock.send(payload[sent:sent + 65536])
        assert sent < len(payload)
        got: list[bytes] = []
        sock.settimeout(None)
        import threading

        sender = threading.Thread(target=lambda: sock.sendall(payload[sent:]), daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while len(got) < total and time.monotonic() < deadline:
            got += [r.data for r in source.read(5000)]
            time.sleep(0.001)
        sender.join(10)
    finally:
        sock.close()
        source.close()
    assert len(got) == total
    assert got == [f"<38>Dec  1 10:00:00 web1 sshd[1]: message {i}".encode() for i in range(total)]


def test_rsyslog_forwarding_over_tcp_and_tls_is_stored_once_per_message(tmp_path: Path) -> None:
    certs = _certs(tmp_path / "tls")
    tcp, tls_port, rsyslog_in = free_port(), free_port(), free_port()
    d = Daemon(tmp_path, {"listen": [f"tcp://127.0.0.1:{tcp}", f"tls://127.0.0.1:{tls_port}"],
                          "tls_cert": str(certs["server.pem"]), "tls_key": str(certs["server.key"])})
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = work / "rsyslog.conf"
    conf.write_text(f'''
global(workDirectory="{work}" defaultNetstreamDriverCAFile="{certs["ca.pem"]}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{rsyslog_in}")
action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted"
       template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp" StreamDriver="gtls" StreamDriverMode="1"
       StreamDriverAuthMode="x509/certvalid")
''')
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        for i in range(10):
            _logger("--udp", "-n", "127.0.0.1", "-P", str(rsyslog_in), "-t", "sshd", _failure(i))
        events = d.wait_for(20, timeout=30)
    finally:
        rsyslog.terminate()
        rsyslog.wait(10)
        d.stop()
    tls_events = [e for e in events if e.get("network.protocol") == "syslog-tls"]
    tcp_events = [e for e in events if e.get("network.protocol") != "syslog-tls"]
    assert sorted(e["user.name"] for e in tcp_events) == [f"user{i}" for i in range(10)]
    assert sorted(e["user.name"] for e in tls_events) == [f"user{i}" for i in range(10)]
    assert all(e["log.syslog.version"] == "1" for e in tcp_events), "RFC 5424 template over TCP"
    assert len(events) == 20


def test_sockets_passed_by_systemd_are_used(tmp_path: Path) -> None:
    """systemd-socket-activate holds the port (as systemd would for sentinel-syslog.socket) and passes it in
    through LISTEN_FDS; sentinel binding the port itself would fail with "address in use"."""
    port = free_port()
    cfg = {
        "state_dir": str(tmp_path / "state"), "collectors_dir": str(SHIPPED / "collectors"),
        "rules_dir": str(tmp_path / "no-rules"), "alerts_dir": str(tmp_path / "no-alerts"),
        "pipeline": {"poll_interval_ms": 50}, "metrics": {"enabled": False}, "api": {"enabled": False},
        "detection": {"enabled": False}, "notify": {"enabled": False},
        "sources": [{"collector": "linux-auth", "type": "syslog", "syslog": {"listen": [f"tcp://127.0.0.1:{port}"]}}],
    }
    config = tmp_path / "sentinel.yaml"
    config.write_text(yaml.safe_dump(cfg))
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", sys.executable, "-m", "sentinel",
                             "run", "-c", str(config)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=log, stderr=log)
    db = tmp_path / "state" / "events.db"
    try:
        time.sleep(0.5)
        _logger("--tcp", "-n", "127.0.0.1", "-P", str(port), "-t", "sshd", _failure(3))
        deadline = time.monotonic() + 30
        users: list[str] = []
        while not users and time.monotonic() < deadline:
            time.sleep(0.1)
            if db.exists():
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    reader = ShapeReader(conn)
                    rows = conn.execute("SELECT shape, doc FROM events")
                    users = [reader.fields(s, d).get("user.name") for s, d in rows]
                except sqlite3.OperationalError:
                    pass
                finally:
                    conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert users == ["user3"], (tmp_path / "daemon.log").read_text()


def test_the_socket_unit_verifies() -> None:
    done = subprocess.run(["systemd-analyze", "verify", str(SHIPPED / "systemd" / "sentinel-syslog.socket")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_udp_overload_drops_are_counted_so_received_plus_dropped_is_everything_sent() -> None:
    port = free_port()
    drops: list[int] = []
    source = SyslogSource("linux-auth", SyslogSettings(listeners=(Listener("udp", "127.0.0.1", port),), queue_max=100),
                          SyslogEvents(on_udp_drops=lambda _source, n: drops.append(n)))
    source.start()
    total = 50_000
    got = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            for i in range(total):  # nothing reads meanwhile: the queue fills, then the kernel buffer
                client.sendto(f"<38>Dec  1 10:00:00 web1 sshd[1]: message {i}".encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 30
        idle = 0
        while time.monotonic() < deadline and idle < 50:
            batch = source.read(1000)
            got += len(batch)
            idle = 0 if batch else idle + 1
            time.sleep(0.01)
        source.discover()
    finally:
        source.close()
    assert sum(drops) > 0, "the overload did not overflow the socket buffer: the test proves nothing"
    assert got + sum(drops) == total


def test_a_sender_over_its_rate_is_slowed_not_dropped() -> None:
    port = free_port()
    source = SyslogSource("linux-auth", SyslogSettings(listeners=(Listener("tcp", "127.0.0.1", port),),
                                                       rate_per_sender=100, rate_burst=20))
    source.start()
    got: list[bytes] = []
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"".join(f"<38>Dec  1 10:00:00 web1 sshd[1]: m{i}\n".encode() for i in range(220)))
            deadline = time.monotonic() + 30
            while len(got) < 220 and time.monotonic() < deadline:
                got += [r.data for r in source.read(1000)]
                time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        source.close()
    assert [g.rsplit(b" ", 1)[1] for g in got] == [f"m{i}".encode() for i in range(220)]
    assert elapsed >= 1.5, f"220 messages at 100/s after a burst of 20 took only {elapsed:.2f} s"


def test_check_names_a_missing_certificate_and_start_names_a_port_in_use(tmp_path: Path) -> None:
    config = tmp_path / "sentinel.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "collectors_dir": str(SHIPPED / "collectors"),
        "sources": [{"collector": "linux-auth", "type": "syslog",
                     "syslog": {"listen": ["tls://127.0.0.1:6514"], "tls_cert": str(tmp_path / "missing.pem")}}]}))
    done = subprocess.run([sys.executable, "-m", "sentinel", "check", "-c", str(config)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 1
    assert f"sources[0].syslog.tls_cert: cannot read {tmp_path / 'missing.pem'}" in done.stdout + done.stderr
    from sentinel.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        source = SyslogSource("linux-auth", SyslogSettings(listeners=(Listener("tcp", "127.0.0.1", port),)))
        with pytest.raises(ConfigError, match=f"cannot listen on tcp://127.0.0.1:{port}: Address already in use"):
            source.start()
