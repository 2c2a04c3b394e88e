"""Ports for the daemons the tests start, chosen so that no other socket takes them in the meantime."""

from __future__ import annotations

import os
import random
import socket

_LOW = 20000
_rng = random.Random(os.getpid())
_handed_out: set[int] = set()  # this test run's ports: never the same port for two servers


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (Linux default 32768)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A TCP and UDP port free now, below the ephemeral range and not handed out before in this run.

    A port from ``bind(0)`` comes from the ephemeral range: between this call and the daemon's bind, an
    outgoing connection (a scrape, a client, Elasticsearch) may take it as its local port, or a second
    call may return it again. CI saw a daemon refuse to start on "Address already in use".
    """
    high = _ephemeral_low()
    for _ in range(500):
        port = _rng.randrange(_LOW, high)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port between {_LOW} and {high}")
