"""Measure how far sentinel's decoders agree with third-party expected parse results.

Usage: ``python tests/corpus_agreement.py [--corpus /work/shared/corpus] [--verbose]``.
Exits 0 with "corpus not found, skipping" when the corpus is absent. The corpus files are read in
place and never copied. Each source prints: annotated cases, and the share where the decoded
user, source address and outcome agree with the expectation (plus a per-field breakdown).

How each expected format maps to (user, address, outcome):

fail2ban (``fail2ban/sshd``, ``sshd-journal``, ``pam-generic``)
    A ``# failJSON: {...}`` line annotates the log line that follows it. fail2ban's verdict is
    "this line is an offence by host H" (``match: true``) or "no offence" (``match: false``).
    sentinel has no ban verdict; its equivalent is an *attributed failure*: an event with
    ``event.outcome == failure`` and an address (``source.ip``, or ``source.address`` for host
    names). So:

    * ``match: true`` agrees when the event is a failure, its address equals ``host``/``ip``
      (both normalised; host names compared as text) and, when ``user`` is given, ``user.name``
      equals it (an absent ``user.name`` equals ``""``); ``users`` means user.name is one of them.
    * ``match: false`` agrees when the event is *not* an attributed failure.

    fail2ban runs each block under several modes (``# filterOptions``: normal, ddos, extra,
    aggressive). sentinel reports every pre-authentication abort as a failure, which is the
    aggressive mode's view, so an annotation is judged under ``aggressive`` when its block lists it
    and the annotation's ``constraint`` allows it, otherwise under the block's first mode the
    constraint allows; annotations no mode allows are not counted. Constraints are parsed, never
    evaluated as code (only ``opts.get('mode') ==/!= '...'`` and ``name == 'sshd'`` appear).
    Some fail2ban verdicts come from correlating several lines of one sshd process (the address of
    a "Connection from" line reused by a later "Disconnecting: Too many authentication failures"),
    or from deferring a failure until the connection closes. A per-line decoder cannot do either;
    those cases are counted, reported as ``needs-correlation`` when the expected address does not
    occur in the line at all, and left in the total.

elastic/integrations (``system-auth``, ``auditd-log``, ``azure-signinlogs``)
    Document *i* of ``X-expected.json`` is the expectation for event *i* of ``X`` (auditd inputs are
    framed with the real auditd framer, so records sharing a serial form one event). A document
    is annotated when it has any of ``user.name``, ``source.ip``, ``event.outcome``; only the
    fields it has are compared (a document without ``source.ip`` does not check ours; an expected
    ``""`` equals an absent field). Elastic's ``user.name`` is compared with the field that has the
    same role in sentinel's vocabulary (``_role_user``: ``user.target.name`` for account lifecycle,
    ``user.effective.name`` -- the "by" user -- for PAM sessions).
    ``user.name`` for Azure: Elastic splits the UPN into ``user.name`` + ``user.domain``; the
    expectation is ``name@domain`` when a domain is present. Known-broken pairs listed in the
    corpus README are handled as it says: the address of ``test-secure-rhel7`` and of
    ``test-auditd-preparsed-user-login`` (taken from a pre-parsed config, not the line) are not
    compared. Inputs whose event count differs from the expected documents are skipped.

loghub (``OpenSSH_2k``)
    The structured CSV gives each line's template (``EventId``). The table ``LOGHUB_OPENSSH`` below
    states, for each template, which ``<*>`` slot is the user and which the address, and the
    expected outcome: ``failure`` for failed/invalid logins, PAM failures and connections that end
    in ``[preauth]`` (never authenticated); ``success`` for accepted logins and PAM sessions;
    ``none`` (no outcome, or ``unknown``) for everything else. Slots are read by matching the line's
    content against its template.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sentinel.collect.framing import FramingSpec  # noqa: E402
from sentinel.daemon.collectors import load_collectors  # noqa: E402
from sentinel.decode.engine import Decoder  # noqa: E402
from sentinel.events.ecs import normalise_ip  # noqa: E402
from sentinel.events.records import RawRecord  # noqa: E402

DEFAULT_CORPUS = Path("/work/shared/corpus")
REFERENCE = 1_136_073_600.0  # 2006-01-01: fail2ban's year-less samples are from 2004/2005
NOW = 1_893_456_000.0  # 2030-01-01: no corpus timestamp is "in the future"

# EventId -> (user slot, address slot, expected outcome); slots are 0-based indexes of <*>.
LOGHUB_OPENSSH: dict[str, tuple[int | None, int | None, str]] = {
    "E1": (0, 1, "success"), "E2": (None, 0, "failure"), "E3": (None, 0, "failure"),
    "E4": (None, None, "failure"), "E5": (None, None, "failure"), "E6": (None, 0, "failure"),
    "E7": (None, 0, "failure"), "E8": (0, 1, "failure"), "E9": (0, 1, "failure"), "E10": (0, 1, "failure"),
    "E11": (None, None, "failure"), "E12": (0, None, "failure"), "E13": (0, 1, "failure"),
    "E14": (None, 1, "failure"), "E15": (None, 3, "failure"), "E16": (None, 3, "failure"),
    "E17": (None, 3, "failure"), "E18": (None, None, "none"), "E19": (None, 2, "failure"),
    "E20": (3, 2, "failure"), "E21": (None, None, "failure"), "E22": (0, None, "success"),
    "E23": (0, None, "success"), "E24": (None, 0, "failure"), "E25": (None, 0, "failure"),
    "E26": (None, 0, "none"), "E27": (None, 1, "none"),
}
# Fixed user names in templates (E14/E17 say "root", E4/E5 "admin"/"root").
LOGHUB_FIXED_USER = {"E14": "root", "E17": "root", "E4": "admin", "E5": "root"}


@dataclass
class Tally:
    """Agreement counts for one source."""

    name: str
    cases: int = 0
    agree: int = 0
    fields: dict[str, list[int]] = field(default_factory=dict)  # field -> [agree, compared]
    notes: dict[str, int] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool) -> bool:
        slot = self.fields.setdefault(name, [0, 0])
        slot[1] += 1
        slot[0] += int(ok)
        return ok

    def case(self, ok: bool, what: str) -> None:
        self.cases += 1
        self.agree += int(ok)
        if not ok:
            self.misses.append(what)

    def line(self) -> str:
        share = 100.0 * self.agree / self.cases if self.cases else 0.0
        parts = [f"{k} {a}/{n}" for k, (a, n) in sorted(self.fields.items())]
        notes = "".join(f"; {k}: {v}" for k, v in sorted(self.notes.items()))
        return f"{self.name:32s} {self.cases:5d} cases  {share:6.1f}% agree  ({', '.join(parts)}{notes})"


class Decoders:
    """Collector decoders by name, decoding single lines the way the daemon does."""

    def __init__(self) -> None:
        loaded, errors = load_collectors(SHIPPED / "collectors")
        if errors:
            raise SystemExit("collector errors:\n" + "\n".join(str(e) for e in errors))
        self.specs = {name: c.spec for name, c in loaded.items()}
        self.decoders = {name: Decoder(spec, "UTC", "corpus") for name, spec in self.specs.items()}

    def decode(self, collector: str, data: bytes, offset: int = 0) -> dict[str, Any]:
        rec = RawRecord(collector, "corpus", "corpus", offset, offset + len(data) + 1, data, reference_time=REFERENCE)
        event, _ = self.decoders[collector].decode(rec, NOW)
        return event.fields

    def frame(self, collector: str, blob: bytes) -> list[bytes]:
        """Frame a whole file with the collector's framing (auditd serial grouping, multiline...)."""
        fr = self.specs[collector].framing
        framer = FramingSpec(fr.mode, fr.pattern, fr.negate, fr.max_lines).framer(0, 1 << 20)
        frames = framer.feed(blob, 0) + framer.flush(True)
        return [f.data for f in frames]


def _addr(text: Any) -> str:
    value = str(text).strip()
    try:
        return normalise_ip(value)
    except ValueError:
        return value.lower()


def _our_addr(ev: dict[str, Any]) -> str | None:
    value = ev.get("source.ip") or ev.get("source.address")
    return _addr(value) if value else None


# ------------------------------------------------------------------------------------------ fail2ban
_CONSTRAINT = re.compile(r"opts\.get\('mode'\)\s*(==|!=)\s*'(\w+)'|name\s*==\s*'(\w+)'")


def _constraint_allows(constraint: str | None, mode: str) -> bool:
    if not constraint:
        return True
    for clause in constraint.split(" and "):
        m = _CONSTRAINT.search(clause)
        if m is None:
            return False  # an unknown constraint: do not guess
        op, want, name = m.groups()
        if name is not None:
            if name != "sshd":
                return False
        elif (mode == want) != (op == "=="):
            return False
    return True


def _modes(options: Any) -> list[str]:
    items = options if isinstance(options, list) else [options]
    return [str(o.get("mode", "normal")) for o in items if isinstance(o, dict)] or ["normal"]


def fail2ban_cases(path: Path) -> Iterator[tuple[dict[str, Any], list[bytes], str]]:
    """(annotation, the annotated line(s), mode) for every annotation that applies in some mode."""
    modes = ["normal"]
    lines = path.read_bytes().split(b"\n")
    i = 0
    while i < len(lines):
        text = lines[i].decode("utf-8", "replace").strip()
        i += 1
        if text.startswith("# filterOptions:"):
            modes = _modes(json.loads(text.split(":", 1)[1]))
            continue
        if not text.startswith("# failJSON:"):
            continue
        note = json.loads(text.split(":", 1)[1])
        body: list[bytes] = []
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(b"#"):
            body.append(lines[i])
            i += 1
        if not body:
            continue
        allowed = [m for m in modes if _constraint_allows(note.get("constraint"), m)]
        if not allowed:
            continue
        yield note, body, "aggressive" if "aggressive" in allowed else allowed[0]


def check_fail2ban(dec: Decoders, path: Path, tally: Tally) -> None:
    for note, body, _mode in fail2ban_cases(path):
        events = [dec.decode("linux-auth", line) for line in body]
        want_host = note.get("host", note.get("ip", note.get("ip4", note.get("ip6"))))
        if note.get("match"):
            ok = False
            for ev in events:
                fail = ev.get("event.outcome") == "failure" and _our_addr(ev) is not None
                addr_ok = want_host is None or _our_addr(ev) == _addr(want_host)
                user_ok = True
                if "user" in note:
                    user_ok = (ev.get("user.name") or "") == note["user"]
                elif "users" in note:
                    user_ok = ev.get("user.name") in note["users"]
                if tally.check("failure", fail) and tally.check("address", addr_ok) and tally.check("user", user_ok):
                    ok = True
            if not ok and want_host is not None and all(str(want_host).encode() not in line for line in body):
                tally.notes["needs-correlation"] = tally.notes.get("needs-correlation", 0) + 1
        else:
            ok = all(not (ev.get("event.outcome") == "failure" and _our_addr(ev)) for ev in events)
            tally.check("no-failure", ok)
        tally.case(ok, f"{note} | {body[0][:160].decode('utf-8', 'replace')}")


# ------------------------------------------------------------------------------------------- elastic
def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and dotted in node:
            return node[dotted]
        else:
            return None
    return node


def _role_user(ev: dict[str, Any]) -> Any:
    """The user Elastic's pipelines put in ``user.name``, read from the field sentinel's vocabulary uses.

    Elastic's system pipeline names the actor in ``user.name`` for account lifecycle lines when the
    line has one, else the *account acted on* (sentinel: ``user.name`` / ``user.target.name``), and
    the *invoking* user for PAM sessions
    ("session opened for user root by alice": Elastic alice; sentinel ``user.effective.name``,
    see docs/events.md). Elsewhere both use ``user.name``.
    """
    category = ev.get("event.category") or []
    if "iam" in category:
        return ev.get("user.name") or ev.get("user.target.name")
    if ev.get("event.action") == "session_opened" and ev.get("event.module") == "system":
        return ev.get("user.effective.name")
    return ev.get("user.name")


def check_elastic(dec: Decoders, collector: str, folder: Path, tally: Tally, skip_ip: set[str],
                  upn: bool = False) -> None:
    for log in sorted(folder.glob("*.log")):
        expected_path = log.with_name(log.name + "-expected.json")
        if not expected_path.exists():
            continue
        docs = json.loads(expected_path.read_text())["expected"]
        records = dec.frame(collector, log.read_bytes())
        if len(records) != len(docs):
            tally.notes["skipped-files"] = tally.notes.get("skipped-files", 0) + 1
            continue
        for rec, doc in zip(records, docs, strict=True):
            want_user = _get(doc, "user.name")
            if upn and want_user and _get(doc, "user.domain"):
                want_user = f"{want_user}@{_get(doc, 'user.domain')}"
            want_ip = None if log.name in skip_ip else _get(doc, "source.ip")
            want_outcome = _get(doc, "event.outcome")
            if want_user is None and want_ip is None and want_outcome is None:
                continue
            ev = dec.decode(collector, rec)
            ok = True
            if want_user is not None:
                ok &= tally.check("user", (_role_user(ev) or "") == want_user)
            if want_ip is not None:
                ok &= tally.check("address", _our_addr(ev) == _addr(want_ip))
            if want_outcome is not None:
                ok &= tally.check("outcome", ev.get("event.outcome") == want_outcome)
            tally.case(ok, f"{log.name}: want {want_user}/{want_ip}/{want_outcome} got "
                           f"{ev.get('user.name')}/{_our_addr(ev)}/{ev.get('event.outcome')} "
                           f"[{ev.get('sentinel.rule')}] {rec[:140].decode('utf-8', 'replace')}")


# -------------------------------------------------------------------------------------------- loghub
def _template_regex(template: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in template.split("<*>")]
    return re.compile("^" + "(.*?)".join(parts) + "$")


def check_loghub(dec: Decoders, folder: Path, tally: Tally) -> None:
    lines = (folder / "OpenSSH_2k.log").read_bytes().split(b"\n")
    with (folder / "OpenSSH_2k.log_structured.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            spec = LOGHUB_OPENSSH.get(row["EventId"])
            if spec is None:
                continue
            m = _template_regex(row["EventTemplate"]).match(row["Content"])
            if m is None:
                tally.notes["template-mismatch"] = tally.notes.get("template-mismatch", 0) + 1
                continue
            user_slot, addr_slot, outcome = spec
            want_user = m.group(user_slot + 1) if user_slot is not None else LOGHUB_FIXED_USER.get(row["EventId"])
            want_addr = m.group(addr_slot + 1) if addr_slot is not None else None
            ev = dec.decode("linux-auth", lines[int(row["LineId"]) - 1])
            ok = True
            if want_user is not None:
                ok &= tally.check("user", ev.get("user.name") == want_user)
            if want_addr is not None:
                ok &= tally.check("address", _our_addr(ev) == _addr(want_addr))
            got = ev.get("event.outcome")
            ok &= tally.check("outcome", (got in (None, "unknown")) if outcome == "none" else got == outcome)
            tally.case(ok, f"{row['EventId']}: want {want_user}/{want_addr}/{outcome} got "
                           f"{ev.get('user.name')}/{_our_addr(ev)}/{got} {row['Content'][:120]}")


def run(corpus: Path, verbose: bool = False) -> list[Tally]:
    """Decode every supported corpus input and return one tally per source."""
    dec = Decoders()
    tallies: list[Tally] = []
    for name in ("sshd", "sshd-journal", "pam-generic"):
        path = corpus / "fail2ban" / name
        if path.exists():
            tally = Tally(f"fail2ban/{name}")
            check_fail2ban(dec, path, tally)
            tallies.append(tally)
    elastic = corpus / "elastic-integrations"
    for folder, collector, skip_ip, upn in (
        ("system-auth", "linux-auth", {"test-secure-rhel7.log"}, False),
        ("auditd-log", "auditd", {"test-auditd-preparsed-user-login.log"}, False),
        ("azure-signinlogs", "entra", set(), True),
    ):
        if (elastic / folder).is_dir() and collector in dec.decoders:
            tally = Tally(f"elastic/{folder}")
            check_elastic(dec, collector, elastic / folder, tally, skip_ip, upn)
            tallies.append(tally)
    if (corpus / "loghub" / "OpenSSH_2k.log").exists():
        tally = Tally("loghub/OpenSSH_2k")
        check_loghub(dec, corpus / "loghub", tally)
        tallies.append(tally)
    for tally in tallies:
        print(tally.line())
        if verbose:
            for miss in tally.misses:
                print("    miss:", miss)
    return tallies


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--verbose", "-v", action="store_true", help="list every disagreeing case")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"corpus not found, skipping ({args.corpus})")
        return 0
    run(args.corpus, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
