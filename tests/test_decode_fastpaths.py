"""The decoder's shortcuts must give exactly what the general code gives: the syslog header fast path,
the pattern index by first characters, and the canonical-address check that skips :mod:`ipaddress`."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from sentinel.decode import syslog
from sentinel.decode.engine import start_texts
from sentinel.events.ecs import normalise_ip

HEADERS = [
    "Nov 27 08:00:00 bastion01 sshd[30457]: Failed password for root from 10.0.0.1 port 22 ssh2",
    "Nov  7 08:00:00 bastion01 sshd[1]: x",
    "Nov 07 08:00:00 h su: (to root) alice on pts/0",
    "Nov 27 08:00:00 2024 sshd[5]: year, not host",
    "Nov 27 08:00:00 20245 sshd[5]: five digits is a host",
    "Nov 27 08:00:00.123 h sshd[5]: fraction",
    "Nov 27 08:00:00  h sshd[5]: two spaces",
    "Nov 27 08:00:00 h sshd[5]:no space",
    "Nov 27 08:00:00 h sshd[x]: bad pid",
    "Nov 27 08:00:00 h [sshd]: bracketed program",
    "Nov 27 08:00:00 sshd[5]: no host",
    "Nov 27 08:00:00 h sshd[5]: message repeated 2 times: [ Failed password for x from 1.2.3.4 port 1 ssh2]",
    "Nov 27 08:00:00 h\u00a0x sshd[5]: odd space",
]


def _slow(line: str) -> tuple[object, dict[str, object]]:
    """RFC3164 parse with the shortcut disabled."""
    saved = syslog.FAST_3164
    syslog.FAST_3164 = re.compile(r"(?!)")
    try:
        fields: dict[str, object] = {}
        try:
            return syslog.parse_header(line, "Europe/Berlin", 1_795_000_000.0, fields), fields
        except ValueError as exc:
            return type(exc).__name__, fields
    finally:
        syslog.FAST_3164 = saved


@pytest.mark.parametrize("line", HEADERS)
def test_fast_header_reads_a_line_exactly_like_the_rfc3164_regex(line: str) -> None:
    fields: dict[str, object] = {}
    try:
        got: object = syslog.parse_header(line, "Europe/Berlin", 1_795_000_000.0, fields)
    except ValueError as exc:
        got = type(exc).__name__
    assert (got, fields) == _slow(line)


def test_impossible_date_sets_no_header_field() -> None:
    fields: dict[str, object] = {}
    with pytest.raises(ValueError):
        syslog.parse_header("Feb 30 08:00:00 h sshd[1]: x", "UTC", 1_795_000_000.0, fields)
    assert fields == {}


@pytest.mark.parametrize(("regex", "expected"), [
    (r"^(?:kernel: ?\[ *[\d.]+\]:? )?(?:error: )?Failed (?P<m>\S+)", {"ke", "er", "Fa"}),
    (r"^(?:Connection (?P<r>closed|reset) by|Disconnected from)", {"Co", "Di"}),
    (r"^(?P<sign>[+-]) (?P<tty>\S+)", {"+ ", "- "}),
    (r"^a?b", None),  # "b" alone matches: shorter than the key
    (r"^\s*x", None),
    (r"(?i)^ab", None),
    (r"^(?:ab|c)\S", None),
])
def test_start_texts_lists_every_possible_start(regex: str, expected: set[str] | None) -> None:
    got = start_texts(re.compile(regex, re.DOTALL))
    assert (set(got) if got is not None else None) == expected


def test_start_texts_never_excludes_a_matching_line() -> None:
    rng = random.Random(5)
    regex = re.compile(r"^(?:error: )?(?:Received disconnect|Connection (?:closed|reset)) from (?P<ip>\S+)", re.DOTALL)
    keys = start_texts(regex)
    assert keys is not None
    for _ in range(2000):
        text = rng.choice(["error: ", ""])
        text += rng.choice(["Received disconnect", "Connection closed", "Connection reset"])
        text += " from 10.0.0." + str(rng.randint(0, 255))
        assert regex.match(text) and text[:2] in keys


def test_canonical_addresses_come_back_as_ipaddress_prints_them() -> None:
    rng = random.Random(11)
    for _ in range(20000):
        groups = [rng.choice([0, 0, rng.randint(0, 0xFFFF), rng.randint(0, 15)]) for _ in range(8)]
        addr = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
        canonical = str(addr)
        for text in (canonical, addr.exploded, canonical.upper(), ":".join(f"{g:x}" for g in groups),
                     canonical.replace("::", ":0::", 1)):
            try:
                expected = str(ipaddress.ip_address(text))
            except ValueError:
                with pytest.raises(ValueError):
                    normalise_ip(text)
                continue
            assert normalise_ip(text) == expected
    for text in ("10.0.0.1", "0.0.0.0", "255.255.255.255"):
        assert normalise_ip(text) == text
    assert normalise_ip("::ffff:10.0.0.1") == "10.0.0.1"
    with pytest.raises(ValueError):
        normalise_ip("256.0.0.1")
