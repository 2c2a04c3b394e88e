"""The last pass before anything leaves the host: mask what looks like PHI in a rendered message.

Masked: SSNs, MRNs (``MRN 12345`` style and a configurable pattern), dates of birth (after DOB/born/birth
keywords, and calendar dates such as 03/14/1985 or 1985-03-14 that are not timestamps), phone numbers,
e-mail addresses, and patient names and ids known from the audit log. Names come from two places, both
pragmatic: an operator-maintained names file (``notify.patient_names_file``, one name per line), and the
``phi.*name*`` / ``phi.patient_ids`` fields of the events behind the alerts in the message. Tokens the message
is supposed to carry (user ids and host names from routing labels, which are not PHI) are kept even when they
look like an e-mail address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "[REDACTED]"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b(?:SSN|social security)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*\d{9}\b",
                       re.IGNORECASE)),
    ("mrn", re.compile(r"\b(?:MRN|medical record(?: number| no\.?)?|patient id)\s*[:#=]?\s*[A-Z0-9-]{3,}\b",
                       re.IGNORECASE)),
    ("dob", re.compile(r"\b(?:DOB|D\.O\.B\.|date of birth|birth ?date|born(?: on)?)\s*[:=]?\s*"
                       r"[A-Za-z0-9,./ -]{6,20}?(?=$|\s{2}|[;|\n)]|\s[a-z]{3,}\b)", re.IGNORECASE)),
    ("date", re.compile(r"\b(?:0?[1-9]|1[0-2])[/-](?:0?[1-9]|[12]\d|3[01])[/-](?:19|20)\d{2}\b")),
    # An ISO date that is not the start of a timestamp (ours always carry a time: 2026-01-02T03:04:05Z).
    ("date", re.compile(r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b(?![T\d:])")),
    ("phone", re.compile(r"(?<![\w.])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])")),
]
_NAME_FIELD = re.compile(r"^phi\..*name", re.IGNORECASE)
_ID_FIELD = re.compile(r"^phi\..*(patient|member|subscriber).*ids?$", re.IGNORECASE)


def load_names(path: Path | None) -> list[str]:
    """Patient names from a file, one per line (``#`` comments allowed); missing file → none."""
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def phi_tokens_from_events(docs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Patient names and ids that the billing app's audit events carry (``phi.*name*``, ``phi.patient_ids``)."""
    out: set[str] = set()
    for doc in docs:
        for key, value in doc.items():
            if _NAME_FIELD.match(key) or _ID_FIELD.match(key):
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, str | int) and len(str(v).strip()) >= 3:
                        out.add(str(v).strip())
                        # A "Last, First" name is also written "First Last" in free text.
                        if isinstance(v, str) and "," in v:
                            last, first = (p.strip() for p in v.split(",", 1))
                            out.update(x for x in (f"{first} {last}", last, first) if len(x) >= 3)
    return out


class Redactor:
    """Masks PHI-looking text; ``names`` are known patient names (case-insensitive, whole words)."""

    def __init__(self, names: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        self.names = {n.strip() for n in names if len(n.strip()) >= 3}
        self.extra = [re.compile(p) for p in extra_patterns]

    def redact(self, text: str, keep: Iterable[str] = (), tokens: Iterable[str] = ()) -> str:
        """Mask ``text``; ``keep`` are exact tokens that stay (user ids, host names); ``tokens`` extra PHI to mask."""
        kept: list[str] = []

        def protect(m: re.Match[str]) -> str:
            kept.append(m.group(0))
            return f"\x00{len(kept) - 1}\x00"

        keep_list = sorted({k for k in keep if k and len(k) >= 3}, key=len, reverse=True)
        if keep_list:
            text = re.sub("|".join(re.escape(k) for k in keep_list), protect, text)
        phi = sorted(self.names | {t for t in tokens if len(t) >= 3}, key=len, reverse=True)
        if phi:
            text = re.sub(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in phi) + r")(?!\w)", MASK, text,
                          flags=re.IGNORECASE)
        for _, pattern in _PATTERNS:
            text = pattern.sub(MASK, text)
        for pattern in self.extra:
            text = pattern.sub(MASK, text)
        return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
