"""Syslog headers: RFC 3164 (BSD), RFC 5424, ISO-stamped (rsyslog high precision) and journal short form."""

from __future__ import annotations

import re
from typing import Any

from sentinel.events.timestamps import bsd_timestamp, iso_timestamp, year_doubtful

# <PRI>? Mmm dd hh:mm:ss[.frac] [year]? host prog[pid]: msg
RFC3164 = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)(?: (?P<year>\d{4}))? +"
    r"(?:(?P<host>[^\s\[\]:]+) +)?"
    r"(?:(?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?|\[(?P<bprog>[^\s\[\]:]+)\]):? ?(?P<msg>.*)",
    re.DOTALL,
)
# <PRI>? ISO-8601 host prog[pid]: msg
ISO_HEADER = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>[^\s\[\]:]+) (?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?:? ?(?P<msg>.*)",
    re.DOTALL,
)
# <PRI>VERSION TIMESTAMP HOST APP PROCID MSGID [SD] MSG
RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<ver>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\\"]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+) ?(?P<msg>.*)",
    re.DOTALL,
)
# journalctl -o short without a timestamp (e.g. fail2ban's journal test files): host prog[pid]: msg
JOURNAL_SHORT = re.compile(r"(?P<host>[^\s\[\]:]+) (?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)", re.DOTALL)

# Cisco ASA/FTD/IOS as the device itself sends: <PRI>[Mmm dd yyyy hh:mm:ss [host] : ]%ASA-6-113004: msg
# (rsyslog relaying it rewrites that into RFC 3164, which the patterns above already read).
CISCO = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?:(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?P<year>\d{4}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)(?: (?P<host>[^\s:]+))? ?: )?"
    r"(?P<prog>%[A-Z][A-Z0-9_]*-\d-[A-Z0-9_]+): ?(?P<msg>.*)",
    re.DOTALL,
)
SOLARIS_ID = re.compile(r"\[ID \d+ [\w.]+\] ")
REPEATED = re.compile(r"message repeated \d+ times: \[ ?(.*?)\]$", re.DOTALL)

SD_ELEMENT = re.compile(r"\[([^\s\]=]+)((?:\s+[^\s=\]]+=\"(?:[^\"\\]|\\.)*\")*)\]")
SD_PARAM = re.compile(r"([^\s=\]]+)=\"((?:[^\"\\]|\\.)*)\"")


class HeaderError(ValueError):
    """The line is not syslog in any form we know."""


def parse_structured_data(sd: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for m in SD_ELEMENT.finditer(sd):
        params = {k: re.sub(r"\\([\"\\\]])", r"\1", v) for k, v in SD_PARAM.findall(m.group(2))}
        out[m.group(1)] = params
    return out


# The common RFC 3164 shape, ``Mmm dd hh:mm:ss host prog[pid]: msg``, with single spaces, no priority,
# fraction or year (a 4-digit host would be RFC3164's year). Every line it matches, RFC3164 splits
# into exactly the same parts, so it is a shortcut, never a different reading.
FAST_3164 = re.compile(
    r"(?P<stamp>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d) (?!\d{4} )"
    r"(?P<host>[^\s\[\]:]+) (?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)",
    re.DOTALL,
)
_stamp_cache: dict[tuple[str, str, float], float] = {}


def _bsd_stamp(stamp: str, zone: str, reference: float) -> float:
    """Epoch of ``Mmm dd hh:mm:ss``: lines come in time order, so most repeat a recent line's second."""
    key = (stamp, zone, reference)
    ts = _stamp_cache.get(key)
    if ts is None:
        if len(_stamp_cache) >= 4096:
            _stamp_cache.clear()
        ts = _stamp_cache[key] = bsd_timestamp(stamp[:3], int(stamp[4:6]), int(stamp[7:9]), int(stamp[10:12]),
                                               float(stamp[13:15]), zone, reference)
    return ts


def _doubt(ts: float, reference: float, fields: dict[str, Any]) -> None:
    if year_doubtful(ts, reference):
        # Tagged, time kept: an analyst filters on the tag; retention counts from arrival regardless.
        fields["tags"] = ["timestamp_implausible"]


def parse_header(line: str, zone: str, reference: float, fields: dict[str, Any]) -> tuple[float | None, str, str]:
    """Fill header fields into ``fields``; return (timestamp or None, program, message)."""
    ts: float | None
    fast = FAST_3164.match(line)
    if fast is not None:
        stamp, host, prog, pid, msg = fast.groups()
        ts = _bsd_stamp(stamp, zone, reference)  # first: an impossible date (Feb 30) raises before any field is set
        _doubt(ts, reference, fields)
        fields["host.hostname"] = host
        fields["process.name"] = prog
        if pid:
            fields["process.pid"] = int(pid)
        return ts, prog, _unwrap(msg)
    if line.startswith("<") and (m5 := RFC5424.match(line)) is not None and m5.group("ver") == "1":
        _pri(m5.group("pri"), fields)
        fields["log.syslog.version"] = "1"
        ts_text = m5.group("ts")
        ts = None if ts_text == "-" else iso_timestamp(ts_text, zone)
        host, app, procid, msgid = m5.group("host", "app", "procid", "msgid")
        if host != "-":
            fields["host.hostname"] = host
        if app != "-":
            fields["log.syslog.appname"] = app
            fields["process.name"] = app
        if procid != "-":
            fields["log.syslog.procid"] = procid
            if procid.isdigit():
                fields["process.pid"] = int(procid)
        if msgid != "-":
            fields["log.syslog.msgid"] = msgid
        sd = m5.group("sd")
        if sd != "-":
            fields["log.syslog.structured_data"] = parse_structured_data(sd)
        msg = m5.group("msg")
        if msg.startswith("\ufeff"):
            msg = msg[1:]
        return ts, app if app != "-" else "", _unwrap(msg)
    m = RFC3164.match(line)
    if m is not None:
        pri, mon, day, h, mi, s, year, host, prog, pid, bprog, msg = m.groups()
        prog = prog or bprog
        second = float(s)
        if year:
            ts = iso_timestamp(f"{year}-{_month_num(mon):02d}-{int(day):02d}T{h}:{mi}:{s}", zone)
        else:
            ts = bsd_timestamp(mon, int(day), int(h), int(mi), second, zone, reference)
            _doubt(ts, reference, fields)
        _pri(pri, fields)
        if host:
            fields["host.hostname"] = host
        fields["process.name"] = prog
        if pid:
            fields["process.pid"] = int(pid)
        return ts, prog, _unwrap(msg)
    m = ISO_HEADER.match(line)
    if m is not None:
        pri, ts_text, host, prog, pid, msg = m.groups()
        _pri(pri, fields)
        fields["host.hostname"] = host
        fields["process.name"] = prog
        if pid:
            fields["process.pid"] = int(pid)
        return iso_timestamp(ts_text, zone), prog, _unwrap(msg)
    m = JOURNAL_SHORT.match(line)
    if m is not None:
        host, prog, pid, msg = m.groups()
        fields["host.hostname"] = host
        fields["process.name"] = prog
        fields["process.pid"] = int(pid)
        return None, prog, _unwrap(msg)
    m = CISCO.match(line)
    if m is not None:
        pri, mon, day, year, h, mi, s, host, prog, msg = m.groups()
        _pri(pri, fields)
        ts = iso_timestamp(f"{year}-{_month_num(mon):02d}-{int(day):02d}T{h}:{mi}:{s}", zone) if mon else None
        if host:
            fields["host.hostname"] = host
        fields["process.name"] = prog
        return ts, prog, msg
    raise HeaderError("not a syslog line (RFC 3164, RFC 5424, ISO-stamped or Cisco)")


def _unwrap(msg: str) -> str:
    """The message itself, without wrappers some syslog daemons add around it.

    Solaris/macOS prefix ``[ID 800047 auth.info] ``; rsyslog folds repeats into
    ``message repeated N times: [ original]``. Both hide the program's own text from the patterns.
    """
    if msg[:4] == "[ID ":
        m = SOLARIS_ID.match(msg)
        if m is not None:
            msg = msg[m.end():]
    if msg[:17] == "message repeated ":
        m = REPEATED.match(msg)
        if m is not None:
            msg = m.group(1)
    return msg


def _pri(pri: str | None, fields: dict[str, Any]) -> None:
    if pri:
        value = int(pri)
        fields["log.syslog.priority"] = value
        fields["log.syslog.facility.code"] = value >> 3
        fields["log.syslog.severity.code"] = value & 7


def _month_num(mon: str) -> int:
    from sentinel.events.timestamps import MONTHS

    return MONTHS[mon]
