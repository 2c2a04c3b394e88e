"""The shipped collectors decode realistic lines of every source into the vocabulary of docs/events.md."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.collect.framing import FramingSpec, LineFramer
from sentinel.daemon.collectors import load_collector, load_collectors
from sentinel.decode.engine import Decoder, Outcome, compile_source
from sentinel.errors import ConfigError, ConfigErrors
from sentinel.events.records import RawRecord

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "sentinel" / "shipped"
JAN_2026 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC).timestamp()
SHIPPED = {"linux-auth", "auditd", "okta", "entra", "billing-audit", "osquery"}

_LOADED, _ERRORS = load_collectors(SHIPPED_DIR / "collectors")


def decoder(name: str, zone: str = "UTC") -> Decoder:
    return Decoder(_LOADED[name].spec, zone, "collector-host")


def decode(name: str, line: str | bytes, ref: float = JAN_2026, zone: str = "UTC",
           truncated: bool = False) -> tuple[dict[str, Any], Outcome]:
    data = line.encode() if isinstance(line, str) else line
    rec = RawRecord(name, "s1", "/var/log/test.log", 100, 100 + len(data) + 1, data, truncated, len(data), ref)
    event, outcome = decoder(name, zone).decode(rec, ref)
    return event.fields, outcome


def assert_fields(fields: dict[str, Any], expect: dict[str, Any]) -> None:
    wrong = {k: (fields.get(k), v) for k, v in expect.items() if fields.get(k) != v}
    assert not wrong, f"(got, expected): {wrong}\nall: {fields}"


# ------------------------------------------------------------------------------------ shipped files
def test_every_shipped_collector_loads_and_its_examples_pass() -> None:
    assert _ERRORS == []
    assert set(_LOADED) >= SHIPPED
    for name in SHIPPED:
        spec = _LOADED[name].spec
        assert spec.paths, f"{name} has no default paths"
        assert spec.description.strip()
        assert len(spec.examples) >= 3, f"{name} needs several examples"


def test_a_wrong_example_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    text = (SHIPPED_DIR / "collectors" / "billing-audit.yaml").read_text().replace("phi.patient_count: 12", "phi.patient_count: 13")  # noqa: E501 (log line kept whole)
    path = tmp_path / "billing-audit.yaml"
    path.write_text(text)
    with pytest.raises(ConfigErrors) as err:
        load_collector(path)
    message = str(err.value.errors[0])
    assert "billing-audit.yaml" in message and "phi.patient_count" in message and "13" in message


def test_a_bad_list_source_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndescription: x\nformat: json\nmap:\n  user.name: 'target[type=User'\n")
    with pytest.raises(ConfigErrors) as err:
        load_collector(path)
    assert isinstance(err.value.errors[0], ConfigError)
    assert "target[type=User" in str(err.value.errors[0])


def test_list_sources_pick_by_index_and_by_field() -> None:
    ctx = {"target": [{"type": "AppInstance", "alternateId": "app"}, {"type": "User", "alternateId": "bob", "x": {"y": 1}}]}  # noqa: E501 (log line kept whole)
    assert compile_source("target[type=User].alternateId")(ctx) == "bob"
    assert compile_source("target[type=User].x.y")(ctx) == 1
    assert compile_source("target[0].alternateId")(ctx) == "app"
    assert compile_source("target[-1].alternateId")(ctx) == "bob"
    assert compile_source("target[5].alternateId")(ctx) is None
    assert compile_source("target[type=Group].alternateId")(ctx) is None
    assert compile_source("missing[0]")(ctx) is None


# --------------------------------------------------------------------------------------- linux-auth
SSHD_CASES = [
    ("Jan  1 00:01:02 web1 sshd[1]: Failed password for root from 203.0.113.5 port 4242 ssh2",
     {"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root", "source.ip": "203.0.113.5",
      "source.port": 4242, "sentinel.authentication.method": "password", "related.ip": ["203.0.113.5"]}),
    ("Jan  1 00:01:02 web1 sshd[1]: Failed publickey for invalid user graysky from 2001:db8::1:1 port 37955 ssh2: RSA SHA256:x",  # noqa: E501 (log line kept whole)
     {"event.action": "ssh_login", "event.outcome": "failure", "user.name": "graysky", "source.ip": "2001:db8::1:1"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Failed keyboard-interactive/pam for invalid user jane doe from 198.51.100.2 port 1 ssh2",  # noqa: E501 (log line kept whole)
     {"user.name": "jane doe", "sentinel.authentication.method": "keyboard-interactive/pam",
      "source.ip": "198.51.100.2"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Accepted password for müller from 198.51.100.3 port 50022 ssh2",
     {"event.action": "ssh_login", "event.outcome": "success", "user.name": "müller", "related.user": ["müller"]}),
    ("Jan  1 00:01:02 web1 sshd[1]: Accepted keyboard-interactive/pam for alice from ::ffff:10.0.0.8 port 2 ssh2",
     {"event.outcome": "success", "source.ip": "10.0.0.8",
      "sentinel.authentication.method": "keyboard-interactive/pam"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Invalid user oracle from 192.0.2.9 port 5555",
     {"event.action": "ssh_invalid_user", "event.outcome": "failure", "user.name": "oracle", "source.ip": "192.0.2.9"}),
    ("Jan  1 00:01:02 web1 sshd[1]: ROOT LOGIN REFUSED FROM 192.0.2.4",
     {"event.action": "ssh_root_login_refused", "user.name": "root", "source.ip": "192.0.2.4", "event.outcome": "failure"}),  # noqa: E501 (log line kept whole)
    ("Jan  1 00:01:02 web1 sshd[1]: error: PAM: Authentication failure for jsmith from 192.0.2.7",
     {"event.action": "pam_authentication_failure", "user.name": "jsmith", "source.ip": "192.0.2.7"}),
    ("Jan  1 00:01:02 web1 sshd[1]: error: maximum authentication attempts exceeded for root from 192.0.2.8 port 49940 ssh2 [preauth]",  # noqa: E501 (log line kept whole)
     {"event.action": "ssh_too_many_auth_failures", "user.name": "root", "source.ip": "192.0.2.8"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Connection closed by authenticating user admin 192.0.2.10 port 46038 [preauth]",
     {"event.action": "ssh_preauth_disconnect", "user.name": "admin", "source.ip": "192.0.2.10", "event.outcome": "failure"}),  # noqa: E501 (log line kept whole)
    ("Jan  1 00:01:02 web1 sshd[1]: Received disconnect from 10.0.2.2 port 5000:11: disconnected by user",
     {"event.action": "ssh_disconnect", "source.ip": "10.0.2.2", "event.reason": "disconnected by user",
      "event.category": ["session"], "event.type": ["end"]}),
    ("Jan  1 00:01:02 web1 sshd[1]: Received disconnect from 10.0.2.3 port 5001:11: Bye Bye [preauth]",
     {"event.action": "ssh_preauth_disconnect", "source.ip": "10.0.2.3"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Disconnected from invalid user test 192.0.2.11 port 1 [preauth]",
     {"event.action": "ssh_preauth_disconnect", "user.name": "test"}),
    ("Jan  1 00:01:02 web1 sshd[1]: Disconnected from user vagrant 10.0.2.2 port 58803",
     {"event.action": "ssh_disconnect", "user.name": "vagrant", "source.ip": "10.0.2.2"}),
    # An address injected through the user name must not replace the real (last) one.
    ("Jan  1 00:01:02 web1 sshd[1]: Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2",  # noqa: E501 (log line kept whole)
     {"source.ip": "127.0.0.1", "source.port": 58946}),
    ("Jan  1 00:01:02 web1 sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::5  user=bob",  # noqa: E501 (log line kept whole)
     {"event.action": "pam_authentication_failure", "user.name": "bob", "source.ip": "2001:db8::5", "process.name": "sshd"}),  # noqa: E501 (log line kept whole)
    ("Jan  1 00:01:02 web1 sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scanner.example.net",  # noqa: E501 (log line kept whole)
     {"source.address": "scanner.example.net", "source.domain": "scanner.example.net", "event.outcome": "failure"}),
    ("Jan  1 00:01:02 web1 sshd[1]: message repeated 2 times: [ Failed password for root from 192.0.2.66 port 4 ssh2]",
     {"event.action": "ssh_login", "source.ip": "192.0.2.66"}),
    ("Jan  1 00:01:02 web1 sshd[1]: [ID 800047 auth.info] Failed keyboard-interactive for james from 192.0.2.30 port 1 ssh2",  # noqa: E501 (log line kept whole)
     {"user.name": "james", "source.ip": "192.0.2.30"}),
    ("Jan  1 00:01:02 web1 sshd[1]: User root from 192.0.2.31 not allowed because listed in DenyUsers",
     {"event.action": "ssh_user_not_allowed", "user.name": "root", "event.reason": "listed in DenyUsers"}),
]

OTHER_AUTH_CASES = [
    ("Jan  1 00:01:02 web1 sudo:  alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/usr/bin/su -",
     {"event.action": "sudo_command", "event.outcome": "success", "user.name": "alice", "user.effective.name": "root",
      "process.command_line": "/usr/bin/su -", "process.working_directory": "/", "related.user": ["alice", "root"]}),
    ("Jan  1 00:01:02 web1 sudo[7]: Mary Ann : TTY=pts/1 ; PWD=/home/mary ; USER=root ; COMMAND=/bin/ls",
     {"event.action": "sudo_command", "user.name": "Mary Ann"}),
    ("Jan  1 00:01:02 web1 sudo:      tsg : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/tsg ; USER=root ; COMMAND=/bin/ls",  # noqa: E501 (log line kept whole)
     {"event.action": "sudo_failure", "event.outcome": "failure", "user.name": "tsg", "event.reason": "incorrect password attempts"}),  # noqa: E501 (log line kept whole)
    ("Jan  1 00:01:02 web1 sudo:      tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/tsg ; USER=root ; COMMAND=/bin/ls",  # noqa: E501 (log line kept whole)
     {"event.action": "sudo_failure", "event.reason": "user NOT in sudoers", "user.effective.name": "root"}),
    ("Jan  1 00:01:02 web1 sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1117 euid=0 tty=/dev/pts/1 ruser=bob rhost= user=bob",  # noqa: E501 (log line kept whole)
     {"event.action": "sudo_failure", "user.name": "bob", "event.outcome": "failure"}),
    ("Jan  1 00:01:02 web1 su[9]: Successful su for root by alice",
     {"event.action": "su", "event.outcome": "success", "user.name": "alice", "user.effective.name": "root"}),
    ("Jan  1 00:01:02 web1 su[9]: FAILED su for root by mallory",
     {"event.action": "su", "event.outcome": "failure", "user.name": "mallory", "user.effective.name": "root"}),
    ("Jan  1 00:01:02 web1 sshd[9]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
     {"event.action": "session_opened", "user.name": "alice", "user.id": "1000"}),
    ("Jan  1 00:01:02 web1 sshd[9]: pam_unix(sshd:session): session closed for user alice",
     {"event.action": "session_closed", "user.name": "alice"}),
    ("Jan  1 00:01:02 web1 useradd[9]: new user: name=jdoe, UID=1042, GID=1042, home=/home/jdoe, shell=/bin/bash",
     {"event.action": "user_created", "user.target.name": "jdoe", "user.target.id": "1042", "event.type": ["user", "creation"]}),  # noqa: E501 (log line kept whole)
    ("Jan  1 00:01:02 web1 groupadd[9]: new group: name=billing, GID=2001",
     {"event.action": "group_created", "group.name": "billing", "group.id": "2001"}),
    ("Jan  1 00:01:02 web1 usermod[9]: add 'jdoe' to group 'wheel'",
     {"event.action": "user_added_to_group", "user.target.name": "jdoe", "group.name": "wheel"}),
    ("Jan  1 00:01:02 web1 userdel[9]: delete user 'jdoe'",
     {"event.action": "user_deleted", "user.target.name": "jdoe"}),
    ("Jan  1 00:01:02 web1 groupdel[9]: group 'billing' removed",
     {"event.action": "group_deleted", "group.name": "billing"}),
    ("Jan  1 00:01:02 web1 gpasswd[9]: user alice added by root to group sudo",
     {"event.action": "user_added_to_group", "user.name": "root", "user.target.name": "alice", "group.name": "sudo"}),
    ("Jan  1 00:01:02 web1 passwd[9]: pam_unix(passwd:chauthtok): password changed for jdoe",
     {"event.action": "password_changed", "user.target.name": "jdoe", "event.outcome": "success"}),
]


@pytest.mark.parametrize(("line", "expect"), SSHD_CASES + OTHER_AUTH_CASES, ids=lambda v: str(v)[:60])
def test_linux_auth_lines(line: str, expect: dict[str, Any]) -> None:
    fields, outcome = decode("linux-auth", line)
    assert outcome == "parsed"
    assert_fields(fields, {"event.module": "system", "host.name": "web1", **expect})


def test_rfc5424_with_structured_data() -> None:
    line = ('<38>1 2025-07-08T17:40:16.954167-04:00 bastion.example.com sshd 57915 ID47 '
            '[timeQuality tzKnown="1" isSynced="0"][meta@123 note="a \\"quoted\\" [x]"] '
            'Failed password for invalid user redmond from 192.0.2.1 port 59197 ssh2')
    fields, outcome = decode("linux-auth", line)
    assert outcome == "parsed"
    assert_fields(fields, {"@timestamp": "2025-07-08T21:40:16.954Z", "host.name": "bastion.example.com",
                           "user.name": "redmond", "source.ip": "192.0.2.1", "process.pid": 57915,
                           "log.syslog.msgid": "ID47", "log.syslog.priority": 38})
    assert fields["log.syslog.structured_data"]["meta@123"]["note"] == 'a "quoted" [x]'


def test_year_is_inferred_across_new_year() -> None:
    fields, _ = decode("linux-auth", "Dec 31 23:59:58 web1 sshd[1]: Invalid user a from 192.0.2.1", ref=JAN_2026)
    assert fields["@timestamp"] == "2025-12-31T23:59:58.000Z"
    fields, _ = decode("linux-auth", "Jan  1 00:04:00 web1 sshd[1]: Invalid user a from 192.0.2.1", ref=JAN_2026)
    assert fields["@timestamp"] == "2026-01-01T00:04:00.000Z"


def test_zone_less_syslog_is_read_in_the_configured_zone() -> None:
    ref = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    fields, _ = decode("linux-auth", "Jun 30 08:00:00 web1 sshd[1]: Invalid user a from 192.0.2.1", ref=ref,
                       zone="America/New_York")
    assert fields["@timestamp"] == "2026-06-30T12:00:00.000Z"  # EDT is UTC-4


def test_unrecognised_and_unparsable_lines_still_become_events() -> None:
    fields, outcome = decode("linux-auth", "Jan  1 00:01:02 web1 sshd[1]: Server listening on 0.0.0.0 port 22.")
    assert outcome == "unmatched"
    assert fields["event.kind"] == "event" and "event.action" not in fields
    assert fields["message"] == "Server listening on 0.0.0.0 port 22."
    fields, outcome = decode("linux-auth", "this is not syslog at all")
    assert outcome == "unparsed"
    assert fields["event.kind"] == "pipeline_error" and "unparsed" in fields["tags"]
    assert fields["event.original"] == "this is not syslog at all"


def test_invalid_utf8_is_kept_with_replacement_characters_and_tagged() -> None:
    fields, outcome = decode("linux-auth", b"Jan  1 00:01:02 web1 sshd[1]: Invalid user caf\xe9 from 192.0.2.1")
    assert outcome == "parsed"
    assert fields["user.name"] == "caf\ufffd"
    assert "invalid_utf8" in fields["tags"]


def test_impossible_timestamps_are_tagged() -> None:
    fields, _ = decode("linux-auth", "9999-01-01T00:00:00Z web1 sshd[1]: Invalid user a from 192.0.2.1")
    assert "timestamp_out_of_range" in fields["tags"]
    assert fields["@timestamp"] == "2026-01-01T00:05:00.000Z"  # falls back to the time it was read
    line = '{"ts":"yesterday-ish o\'clock","app":"claimsdesk","app_host":"h","event":"view","user":"u","client_ip":"10.0.0.1","result":"success"}'  # noqa: E501 (log line kept whole)
    fields, outcome = decode("billing-audit", line)
    assert outcome == "parsed" and "timestamp_unparsable" in fields["tags"]
    line = '{"uuid":"x","published":"9999-12-31T00:00:00Z","eventType":"user.session.start","outcome":{"result":"SUCCESS"}}'  # noqa: E501 (log line kept whole)
    fields, _ = decode("okta", line)
    assert "timestamp_out_of_range" in fields["tags"]


def test_a_ten_megabyte_line_is_truncated_flagged_and_memory_stays_bounded() -> None:
    cap = 64 * 1024
    framer = LineFramer(0, cap)
    head = b"Jan  1 00:01:02 web1 sshd[1]: Invalid user " + b"x" * 100 + b" from 192.0.2.1 "
    blob = head + b"A" * (10 * 1024 * 1024 - len(head)) + b"\nJan  1 00:01:03 web1 sshd[1]: Invalid user b from 192.0.2.2\n"  # noqa: E501 (log line kept whole)
    frames = []
    for i in range(0, len(blob), 1024 * 1024):
        frames += framer.feed(blob[i:i + 1024 * 1024], i)
        assert len(framer.buf) <= cap
    assert len(frames) == 2
    big = frames[0]
    assert big.truncated and len(big.data) == cap and big.original_length == 10 * 1024 * 1024
    rec = RawRecord("linux-auth", "s", "p", big.offset, big.end, big.data, True, big.original_length, JAN_2026)
    event, _ = decoder("linux-auth").decode(rec, JAN_2026)
    assert "truncated" in event.fields["tags"]
    assert frames[1].offset == 10 * 1024 * 1024 + 1 and not frames[1].truncated


# ------------------------------------------------------------------------------------------- auditd
def frame_audit(text: str) -> list[bytes]:
    framer = FramingSpec("auditd").framer(0, 1 << 20)
    data = text.encode()
    return [f.data for f in framer.feed(data, 0) + framer.flush(True)]


def decode_audit(record: bytes) -> tuple[dict[str, Any], Outcome]:
    return decode("auditd", record)


def test_auditd_records_sharing_a_serial_are_joined_into_one_event() -> None:
    text = (
        'type=SYSCALL msg=audit(1767225000.100:900): arch=c000003e syscall=165 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 '
        'items=2 ppid=1 pid=4242 auid=1000 uid=0 gid=0 euid=0 tty=pts0 ses=3 comm="mount" exe="/usr/bin/mount" '
        'key="removable_media"\x1dARCH=x86_64 SYSCALL=mount AUID="jdoe" UID="root"\n'
        'type=PATH msg=audit(1767225000.100:900): item=0 name="/dev/sdb1" inode=1 nametype=UNKNOWN\n'
        'type=PATH msg=audit(1767225000.100:900): item=1 name=2F6D656469612F6A646F652F5553422053544943 inode=2 nametype=NORMAL\n'  # noqa: E501 (log line kept whole)
        'type=PROCTITLE msg=audit(1767225000.100:900): proctitle=6D6F756E74\n'
        'type=EOE msg=audit(1767225000.100:900):\n'
        "type=USER_LOGIN msg=audit(1767225001.000:901): pid=1 uid=0 auid=1000 ses=4 msg='op=login id=1000 "
        "exe=\"/usr/sbin/sshd\" hostname=? addr=2001:db8::9 terminal=ssh res=success'\x1dUID=\"root\" AUID=\"jdoe\" ID=\"jdoe\"\n"  # noqa: E501 (log line kept whole)
    )
    records = frame_audit(text)
    assert len(records) == 2
    fields, outcome = decode_audit(records[0])
    assert outcome == "parsed"
    assert_fields(fields, {"event.action": "removable_media_mounted", "device.id": "/dev/sdb1",
                           "file.path": "/media/jdoe/USB STIC", "user.name": "jdoe", "auditd.log.key": "removable_media",  # noqa: E501 (log line kept whole)
                           "auditd.log.sequence": 900, "event.outcome": "success",
                           "auditd.log.records": ["SYSCALL", "PATH", "PATH", "PROCTITLE", "EOE"]})
    fields, _ = decode_audit(records[1])
    assert_fields(fields, {"event.action": "user_login", "user.name": "jdoe", "source.ip": "2001:db8::9",
                           "event.outcome": "success"})
    assert "source.domain" not in fields  # hostname=? is auditd's "no value"


AUDIT_CASES = [
    ("type=USER_AUTH msg=audit(1767225000.1:1): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication "
     "acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.4 addr=203.0.113.4 terminal=ssh res=failed'",
     {"event.action": "user_authentication", "event.outcome": "failure", "user.name": "alice", "source.ip": "203.0.113.4"}),  # noqa: E501 (log line kept whole)
    ("type=USER_CMD msg=audit(1767225000.1:2): pid=1 uid=1000 auid=1000 ses=3 msg='cwd=\"/home/alice\" "
     "cmd=73797374656D63746C2073746F70206175646974 exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'\x1dUID=\"alice\" AUID=\"alice\"",  # noqa: E501 (log line kept whole)
     {"event.action": "sudo_command", "user.name": "alice", "process.command_line": "systemctl stop audit",
      "process.working_directory": "/home/alice"}),
    ("type=DAEMON_ABORT msg=audit(1767225000.1:3): op=abort auid=0 pid=1 res=failed",
     {"event.action": "audit_log_stopped"}),
    ("type=SERVICE_STOP msg=audit(1767225000.1:4): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='unit=auditd "
     "comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'",
     {"event.action": "audit_log_stopped"}),
    ("type=CONFIG_CHANGE msg=audit(1767225000.1:5): auid=1000 ses=3 op=remove_rule key=(null) list=4 res=1",
     {"event.action": "audit_config_changed", "event.outcome": "success"}),
    ("type=SERVICE_STOP msg=audit(1767225000.1:6): pid=1 uid=0 auid=1000 ses=3 msg='unit=clamav-daemon comm=\"systemd\" "  # noqa: E501 (log line kept whole)
     "exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'\x1dAUID=\"alice\"",
     {"event.action": "endpoint_protection_disabled", "process.name": "clamav-daemon", "user.name": "alice"}),
    ("type=DEL_USER msg=audit(1767225000.1:7): pid=1 uid=0 auid=1000 ses=3 msg='op=delete-user id=1042 "
     "exe=\"/usr/sbin/userdel\" hostname=web1 addr=? terminal=pts/1 res=success'\x1dUID=\"root\" AUID=\"admin\" ID=\"jdoe\"",  # noqa: E501 (log line kept whole)
     {"event.action": "user_deleted", "user.target.name": "jdoe", "user.name": "admin"}),
    ("type=USER_MGMT msg=audit(1767225000.1:8): pid=1 uid=0 auid=1000 ses=3 msg='op=add-user-to-group grp=\"wheel\" "
     "acct=\"jdoe\" exe=\"/usr/sbin/usermod\" hostname=web1 addr=? terminal=pts/1 res=success'",
     {"event.action": "user_added_to_group", "group.name": "wheel", "user.target.name": "jdoe"}),
    ("node=web1 type=ADD_GROUP msg=audit(1767225000.1:9): pid=1 uid=0 auid=1000 ses=3 msg='op=add-group id=2001 "
     "exe=\"/usr/sbin/groupadd\" hostname=? addr=? terminal=pts/1 res=success'\x1dID=\"billing\"",
     {"event.action": "group_created", "group.name": "billing", "group.id": "2001", "host.name": "web1"}),
]


@pytest.mark.parametrize(("line", "expect"), AUDIT_CASES, ids=lambda v: str(v)[:40])
def test_auditd_records(line: str, expect: dict[str, Any]) -> None:
    fields, outcome = decode_audit(line.encode())
    assert outcome == "parsed"
    assert_fields(fields, {"event.module": "auditd", **expect})


def test_auditd_log_cleared_by_unlink_of_the_audit_log() -> None:
    text = (
        'type=SYSCALL msg=audit(1767225000.5:950): arch=c000003e syscall=87 success=yes exit=0 items=2 ppid=1 pid=7 '
        'auid=1000 uid=0 ses=3 comm="rm" exe="/usr/bin/rm" key=(null)\n'
        'type=PATH msg=audit(1767225000.5:950): item=0 name="/var/log/audit/" inode=1 nametype=PARENT\n'
        'type=PATH msg=audit(1767225000.5:950): item=1 name="/var/log/audit/audit.log" inode=2 nametype=DELETE\n'
        'type=EOE msg=audit(1767225000.5:950):\n'
        'type=SYSCALL msg=audit(1767225000.6:951): arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=1 pid=8 '
        'auid=1000 uid=1000 ses=3 comm="cp" exe="/usr/bin/cp" key="usb_copy"\x1dAUID="jdoe"\n'
        'type=PATH msg=audit(1767225000.6:951): item=0 name="/run/media/jdoe/KINGSTON/claims.csv" inode=3 nametype=CREATE\n'  # noqa: E501 (log line kept whole)
    )
    records = frame_audit(text)
    assert len(records) == 2
    fields, _ = decode_audit(records[0])
    assert_fields(fields, {"event.action": "audit_log_cleared", "file.path": "/var/log/audit/audit.log"})
    fields, _ = decode_audit(records[1])
    assert_fields(fields, {"event.action": "removable_media_file_copy", "user.name": "jdoe",
                           "file.path": "/run/media/jdoe/KINGSTON/claims.csv"})


# --------------------------------------------------------------------------------------------- okta
def okta(event_type: str, **extra: Any) -> str:
    import orjson

    doc: dict[str, Any] = {
        "uuid": "e1", "published": "2025-12-31T12:00:00.123Z", "eventType": event_type,
        "actor": {"id": "00u1", "type": "User", "alternateId": "jdoe@example.com", "displayName": "J Doe"},
        "client": {"ipAddress": "2001:db8::44", "geographicalContext": {"country": "Canada"},
                   "userAgent": {"rawUserAgent": "Okta Verify"}},
        "outcome": {"result": "SUCCESS"}, "target": [],
    }
    doc.update(extra)
    return orjson.dumps(doc).decode()


OKTA_CASES = [
    (okta("user.session.start", outcome={"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}),
     {"event.action": "user_login", "event.outcome": "failure", "event.reason": "INVALID_CREDENTIALS",
      "user.name": "jdoe@example.com", "source.ip": "2001:db8::44", "source.geo.country_name": "Canada",
      "@timestamp": "2025-12-31T12:00:00.123Z"}),
    (okta("user.authentication.auth_via_mfa", debugContext={"debugData": {"factor": "OKTA_VERIFY_PUSH"}}),
     {"event.action": "mfa_verify", "sentinel.authentication.factor": "push", "event.outcome": "success"}),
    (okta("system.push.send_factor_verify_push", outcome={"result": "CHALLENGE"}),
     {"event.action": "mfa_challenge", "sentinel.authentication.factor": "push", "event.outcome": "unknown"}),
    (okta("user.mfa.okta_verify.deny_push", outcome={"result": "DENY"}),
     {"event.action": "mfa_push_denied", "event.outcome": "failure"}),
    (okta("user.mfa.factor.activate", target=[{"type": "User", "alternateId": "jdoe@example.com", "id": "00u1"}],
          debugContext={"debugData": {"factor": "token:software:totp"}}),
     {"event.action": "mfa_factor_enrolled", "sentinel.authentication.factor": "totp",
      "user.target.name": "jdoe@example.com"}),
    (okta("user.mfa.factor.reset_all", actor={"type": "User", "alternateId": "admin@example.com"},
          target=[{"type": "AppInstance", "alternateId": "Okta Admin"}, {"type": "User", "alternateId": "jdoe@example.com"}]),  # noqa: E501 (log line kept whole)
     {"event.action": "mfa_factor_reset", "user.name": "admin@example.com", "user.target.name": "jdoe@example.com",
      "related.user": ["admin@example.com", "jdoe@example.com"]}),
    (okta("policy.lifecycle.deactivate", target=[{"type": "PolicyEntity", "displayName": "MFA enrollment"}]),
     {"event.action": "mfa_disabled", "event.category": ["iam", "configuration"]}),
    (okta("user.account.lock", target=[{"type": "User", "alternateId": "jdoe@example.com"}]),
     {"event.action": "account_locked", "user.target.name": "jdoe@example.com"}),
    (okta("user.lifecycle.create", target=[{"type": "User", "alternateId": "new.hire@example.com"}]),
     {"event.action": "user_created", "user.target.name": "new.hire@example.com"}),
    (okta("user.lifecycle.deactivate", target=[{"type": "User", "alternateId": "leaver@example.com"}]),
     {"event.action": "user_deactivated", "user.target.name": "leaver@example.com"}),
]


@pytest.mark.parametrize(("line", "expect"), OKTA_CASES, ids=lambda v: str(v)[60:110])
def test_okta_events(line: str, expect: dict[str, Any]) -> None:
    fields, outcome = decode("okta", line)
    assert outcome == "parsed"
    assert_fields(fields, {"event.module": "okta", "user_agent.original": "Okta Verify", **expect})


def test_malformed_json_is_unparsed_not_lost() -> None:
    for name in ("okta", "entra", "billing-audit", "osquery"):
        fields, outcome = decode(name, '{"eventType": "user.session.start", ')
        assert outcome == "unparsed", name
        assert fields["event.kind"] == "pipeline_error" and "unparsed" in fields["tags"]
        fields, outcome = decode(name, '["a", "list"]')
        assert outcome == "unparsed", name


# -------------------------------------------------------------------------------------------- entra
ENTRA_CASES = [
    ('{"time":"2025-12-31T08:00:00.0000000Z","category":"SignInLogs","callerIpAddress":"198.51.100.9",'
     '"properties":{"userPrincipalName":"ana.lópez@example.com","ipAddress":"198.51.100.9",'
     '"location":{"countryOrRegion":"ES"},"status":{"errorCode":0},'
     '"authenticationDetails":[{"authenticationMethod":"Password"},{"authenticationMethod":"Mobile app notification"}]}}',  # noqa: E501 (log line kept whole)
     {"event.action": "user_login", "event.outcome": "success", "user.name": "ana.lópez@example.com",
      "source.geo.country_iso_code": "ES", "sentinel.authentication.factor": "push",
          "@timestamp": "2025-12-31T08:00:00.000Z"}),
    ('{"createdDateTime":"2025-12-31T08:01:00Z","userPrincipalName":"jdoe@example.com","ipAddress":"198.51.100.10",'
     '"status":{"errorCode":50126,"failureReason":"Invalid username or password."}}',
     {"event.action": "user_login", "event.outcome": "failure", "event.code": "50126",
      "event.reason": "Invalid username or password."}),
    ('{"createdDateTime":"2025-12-31T08:02:00Z","userPrincipalName":"jdoe@example.com","ipAddress":"198.51.100.10",'
     '"status":{"errorCode":500121,"failureReason":"Authentication failed during strong authentication request."},'
     '"authenticationDetails":[{"authenticationMethod":"Mobile app notification","succeeded":false}]}',
     {"event.action": "mfa_verify", "event.outcome": "failure", "sentinel.authentication.factor": "push"}),
    ('{"time":"2025-12-31T08:03:00Z","category":"SignInLogs","properties":{"userPrincipalName":"jdoe@example.com",'
     '"ipAddress":"198.51.100.10","status":{"errorCode":50076},'
     '"authenticationDetails":[{"authenticationMethod":"Text message"}]}}',
     {"event.action": "mfa_challenge", "sentinel.authentication.factor": "sms"}),
]


@pytest.mark.parametrize(("line", "expect"), ENTRA_CASES, ids=lambda v: str(v)[40:80])
def test_entra_sign_ins(line: str, expect: dict[str, Any]) -> None:
    fields, outcome = decode("entra", line)
    assert outcome == "parsed"
    assert_fields(fields, {"event.module": "azure", "event.category": ["authentication"], **expect})


# ------------------------------------------------------------------------------------ billing-audit
def billing(**over: Any) -> str:
    import orjson

    doc: dict[str, Any] = {
        "ts": "2025-11-27T08:15:02.123Z", "app": "claimsdesk", "app_host": "billing-app-01", "event": "export",
        "user": "jdoe", "user_id": "u-1042", "role": "biller", "session": "s-8f2a", "client_ip": "10.1.2.3",
        "workstation": "ws-billing-07", "result": "success", "patients": 12, "records": 340,
        "patient_ids": ["MRN-100234"], "destination": {"type": "removable_media", "target": "/media/usb0/claims.csv"},
        "format": "csv", "bytes": 12345, "report": "claims_by_payer",
    }
    doc.update(over)
    return orjson.dumps(doc).decode()


@pytest.mark.parametrize(("event", "action"), [("view", "phi_view"), ("search", "phi_search"), ("export", "phi_export"),
                                               ("print", "phi_print"), ("download", "phi_download")])
def test_billing_phi_actions(event: str, action: str) -> None:
    fields, outcome = decode("billing-audit", billing(event=event))
    assert outcome == "parsed"
    assert_fields(fields, {"event.action": action, "event.category": ["database"], "event.type": ["access"],
                           "user.name": "jdoe", "source.ip": "10.1.2.3", "host.name": "billing-app-01",
                           "phi.workstation": "ws-billing-07", "phi.patient_count": 12, "phi.record_count": 340,
                           "phi.patient_ids": ["MRN-100234"], "phi.export.destination": "/media/usb0/claims.csv",
                           "phi.export.destination_type": "removable_media", "phi.export.bytes": 12345,
                           "@timestamp": "2025-11-27T08:15:02.123Z", "event.outcome": "success"})
    assert "destination.domain" not in fields


def test_billing_email_export_names_the_recipient_domain_and_logins_map() -> None:
    fields, _ = decode("billing-audit", billing(destination={"type": "email", "target": "ops@Partner-Billing.example"}))
    assert fields["destination.domain"] == "Partner-Billing.example"
    assert fields["event.action"] == "phi_export"
    fields, _ = decode("billing-audit", billing(event="login_failed", result="failure", client_ip="2001:db8::7"))
    assert_fields(fields, {"event.action": "user_login", "event.outcome": "failure", "source.ip": "2001:db8::7"})
    fields, outcome = decode("billing-audit", billing(event="reindex"))
    assert outcome == "unmatched" and fields["user.name"] == "jdoe"


# ------------------------------------------------------------------------------------------ osquery
def test_osquery_endpoint_pack() -> None:
    base = '"hostIdentifier":"ws-billing-07","calendarTime":"Wed Dec 31 10:00:00 2025 UTC","unixTime":1767175200'
    mounts = ('{"name":"pack/endpoint/removable_media_mounts",' + base +
              ',"columns":{"device":"/dev/sdb1","path":"/media/jdoe/KINGSTON","type":"vfat"},"action":"added"}')
    fields, _ = decode("osquery", mounts)
    assert_fields(fields, {"event.action": "removable_media_mounted", "file.path": "/media/jdoe/KINGSTON",
                           "device.id": "/dev/sdb1", "host.name": "ws-billing-07", "@timestamp": "2025-12-31T10:00:00.000Z"})  # noqa: E501 (log line kept whole)
    root_mount = '{"name":"pack/x/mounts",' + base + ',"columns":{"device":"/dev/sda1","path":"/"},"action":"added"}'
    assert decode("osquery", root_mount)[1] == "unmatched"
    stopped = ('{"name":"pack/endpoint/services",' + base +
               ',"columns":{"name":"mdatp","status":"stopped"},"action":"snapshot"}')
    assert decode("osquery", stopped)[0]["event.action"] == "endpoint_protection_disabled"
    gone = '{"name":"pack/endpoint/processes",' + base + ',"columns":{"name":"falcon-sensor","pid":"77"},"action":"removed"}'  # noqa: E501 (log line kept whole)
    assert_fields(decode("osquery", gone)[0], {"event.action": "endpoint_protection_disabled", "process.name": "falcon-sensor"})  # noqa: E501 (log line kept whole)
    other = '{"name":"pack/endpoint/services",' + base + ',"columns":{"name":"cron","status":"stopped"},"action":"added"}'  # noqa: E501 (log line kept whole)
    assert decode("osquery", other)[1] == "unmatched"


# --------------------------------------------------------------------------------- corpus agreement
def test_corpus_agreement_when_the_corpus_is_present() -> None:
    corpus = Path("/work/shared/corpus")
    if not corpus.is_dir():
        pytest.skip("corpus not found")
    spec = importlib.util.spec_from_file_location("corpus_agreement", ROOT / "tests" / "corpus_agreement.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the script resolve their module through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    shares = {t.name: t.agree / t.cases for t in module.run(corpus) if t.cases}
    # Floors a little under the measured values: a decoder regression shows up here.
    assert shares["loghub/OpenSSH_2k"] >= 0.98
    assert shares["fail2ban/sshd"] >= 0.78
    assert shares["fail2ban/pam-generic"] >= 0.9
    assert shares["elastic/system-auth"] >= 0.9



def test_every_collector_format_and_the_journal_has_a_header_reader() -> None:
    from typing import get_args

    from sentinel.decode.headers import header_reader
    from sentinel.decode.spec import CollectorSpec

    formats = get_args(CollectorSpec.model_fields["format"].annotation)
    assert "syslog" in formats, "CollectorSpec.format is no longer a Literal: list its values here"
    for fmt in (*formats, "journal"):
        reader = header_reader(fmt, "UTC", "")  # a format missing from the table raises KeyError here
        assert isinstance(reader.by_program, bool) and callable(reader.read), fmt
