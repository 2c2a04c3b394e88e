"""auditd records: ``type=T msg=audit(EPOCH:SERIAL): k=v k="v v" msg='k=v ...'``."""

from __future__ import annotations

import re
from typing import Any

RECORD = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<epoch>\d+(?:\.\d+)?):(?P<serial>\d+)\):\s?(?P<body>.*)",
    re.DOTALL,
)
PAIR = re.compile(r"([\w.-]+)=(\"[^\"]*\"|'[^']*'|\S*)")
PLACEHOLDERS = frozenset({"?", "(null)", "(none)", "unset"})
HEX = re.compile(r"^[0-9A-F]+$")
# Fields auditd writes hex-encoded when the value has spaces or odd characters.
EXECVE_ARG = re.compile(r"^a\d+$")
HEX_FIELDS = frozenset({"acct", "cmd", "comm", "exe", "name", "proctitle", "cwd", "data", "path", "old", "new"})


class AuditError(ValueError):
    """The text is not an auditd record."""


def parse_pairs(body: str, execve: bool = False) -> dict[str, str]:
    """``execve``: the body of an EXECVE record, whose arguments (a0, a1, ...) are hex when not quoted."""
    out: dict[str, str] = {}
    for key, raw in PAIR.findall(body):
        if raw[:1] == "'" and key == "msg":
            out.update(parse_pairs(raw[1:-1], execve))
            continue
        value = raw[1:-1] if raw[:1] in ("'", '"') else raw
        if value in PLACEHOLDERS:
            continue  # auditd's spelling of "no value": keep it out of fields like source.ip
        hexed = key in HEX_FIELDS or (execve and EXECVE_ARG.match(key) is not None)
        if raw[:1] not in ("'", '"') and hexed and len(value) % 2 == 0 and value and HEX.match(value):
            try:
                value = bytes.fromhex(value).decode("utf-8", "replace").replace("\x00", " ")
            except ValueError:
                pass
        out.setdefault(key, value)
    return out


def parse_records(text: str) -> tuple[float, int, list[str], dict[str, Any]]:
    """Parse one or more records sharing a serial into (epoch, serial, types, context).

    The context has every record's pairs as ``TYPE.key`` and the first occurrence of each key
    plain, so patterns can say either ``acct`` or ``USER_LOGIN.acct``; ``paths`` lists every PATH record's name.
    """
    epoch = 0.0
    serial = 0
    types: list[str] = []
    ctx: dict[str, Any] = {}
    paths: list[str] = []
    for line in text.split("\n"):
        # Enriched logs append interpreted values after a GS (0x1d) character.
        raw, _, enriched = line.partition("\x1d")
        m = RECORD.match(raw.strip())
        if m is None:
            if not types:
                raise AuditError("not an auditd record (expected type=... msg=audit(epoch:serial): ...)")
            continue
        rtype = m.group("type")
        epoch = float(m.group("epoch"))
        serial = int(m.group("serial"))
        types.append(rtype)
        pairs = parse_pairs(m.group("body"), rtype == "EXECVE")
        if m.group("node"):
            pairs.setdefault("node", m.group("node"))
        if enriched:
            for key, value in parse_pairs(enriched).items():
                pairs.setdefault(key, value)
        if rtype == "PATH" and pairs.get("name"):
            # Every path of a syscall (parent dir and file), for conditions like paths: {prefix: /media/}.
            paths.append(pairs["name"])
        for key, value in pairs.items():
            ctx.setdefault(f"{rtype}.{key}", value)
            ctx.setdefault(key, value)
    ctx["record_type"] = types[0] if types else ""
    ctx["record_types"] = types
    ctx["paths"] = paths
    return epoch, serial, types, ctx
