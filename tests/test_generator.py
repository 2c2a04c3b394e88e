"""The synthetic billing-company generator: deterministic, ordered, decodable, and true to its ground truth."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentinel.collect.framing import FramingSpec
from sentinel.daemon.collectors import load_collectors
from sentinel.decode.engine import Decoder
from sentinel.demo.generator import GROUND_TRUTH_FILE, GroundTruth, generate
from sentinel.demo.incidents import DORMANT_GAP_DAYS, SPRAY_IP
from sentinel.events.records import RawRecord
from sentinel.events.timestamps import bsd_timestamp

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
START = datetime(2026, 11, 2, tzinfo=UTC)
COLLECTOR_OF = {"auth.log": "linux-auth", "audit.log": "auditd", "okta.jsonl": "okta", "entra.jsonl": "entra",
                "billing-audit.jsonl": "billing-audit", "osquery.jsonl": "osquery"}


@dataclass
class Decoded:
    ts: float
    outcome: str
    fields: dict[str, Any]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    out = tmp_path_factory.mktemp("company")
    return out, generate(out, days=14, users=200, seed=7, start=START)


@pytest.fixture(scope="module")
def decoded(company: tuple[Path, GroundTruth]) -> dict[str, list[Decoded]]:
    """Every record of every file through the project's own collectors, framed as the tailer frames them."""
    out, truth = company
    collectors, errors = load_collectors(SHIPPED / "collectors")
    assert not errors, errors
    reference = truth.end.timestamp() + 3600
    result: dict[str, list[Decoded]] = {}
    for name, collector in COLLECTOR_OF.items():
        assert collector in collectors, f"collector {collector} missing from collectors/"
        spec = collectors[collector].spec
        decoder = Decoder(spec, "UTC", "test-host")
        framer = FramingSpec(spec.framing.mode, spec.framing.pattern, spec.framing.negate,
                             spec.framing.max_lines).framer(0, 1 << 20)
        data = (out / name).read_bytes()
        frames = framer.feed(data, 0) + framer.flush(True)
        records = []
        for f in frames:
            rec = RawRecord(collector, "s", str(out / name), f.offset, f.end, f.data, reference_time=reference)
            event, outcome = decoder.decode(rec, reference)
            records.append(Decoded(event.timestamp, outcome, event.fields))
        result[name] = records
    return result


def line_times(path: Path, year: int) -> list[float]:
    """Each line's own timestamp, read straight from the text (not through the decoders)."""
    times = []
    # split on newlines only: enriched auditd records contain a GS (0x1d), which splitlines() also breaks on
    for line in path.read_text().split("\n")[:-1]:
        if path.name == "auth.log":
            m = re.match(r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) ", line)
            assert m, line
            ref = datetime(year, 12, 31, tzinfo=UTC).timestamp()
            times.append(bsd_timestamp(m[1], int(m[2]), int(m[3]), int(m[4]), float(m[5]), "UTC", ref))
        elif path.name == "audit.log":
            m = re.search(r"msg=audit\((\d+\.\d+):\d+\)", line)
            assert m, line
            times.append(float(m[1]))
        else:
            doc = json.loads(line)
            if "unixTime" in doc:
                times.append(float(doc["unixTime"]))
            else:
                stamp = doc.get("ts") or doc.get("published") or doc["time"]
                times.append(datetime.fromisoformat(stamp[:23] + "+00:00").timestamp())
    return times


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"days": 4, "users": 40, "start": START}
    a = generate(tmp_path / "a", seed=11, **kwargs)
    b = generate(tmp_path / "b", seed=11, **kwargs)
    generate(tmp_path / "c", seed=12, **kwargs)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a.to_json() == b.to_json()
    billing = "billing-audit.jsonl"
    assert (tmp_path / "a" / billing).read_bytes() != (tmp_path / "c" / billing).read_bytes()


def test_every_source_file_is_non_empty_and_in_time_order(company: tuple[Path, GroundTruth]) -> None:
    out, truth = company
    for name in COLLECTOR_OF:
        times = line_times(out / name, START.year)
        assert len(times) > 50, name
        assert times == sorted(times), f"{name} is not in time order"
        assert truth.files[name].lines == len(times)
        # Everything but the dormant account's old activity lies inside the simulated period.
        inside = [t for t in times if truth.start.timestamp() <= t < truth.end.timestamp()]
        assert len(times) - len(inside) <= 40, name
    assert truth.files["billing-audit.jsonl"].lines > 100_000  # 200 people, two working weeks


def test_every_record_decodes_with_the_projects_collectors(decoded: dict[str, list[Decoded]]) -> None:
    for name, records in decoded.items():
        outcomes = Counter(r.outcome for r in records)
        assert outcomes["unparsed"] == 0, (name, outcomes)
        assert outcomes["parsed"] >= 0.8 * len(records), (name, outcomes)
        tagged = [r.fields["tags"] for r in records if r.fields.get("tags")]
        assert not tagged, (name, tagged[:3])


def test_billing_audit_schema_and_phi_only_as_mrns(company: tuple[Path, GroundTruth]) -> None:
    out, _ = company
    allowed = ["ts", "app", "app_host", "event", "user", "user_id", "role", "session", "client_ip", "workstation",
               "result", "patients", "records", "patient_ids", "destination", "format", "bytes", "report", "query",
               "reason"]
    names_in_reasons = 0
    events = Counter()
    for line in (out / "billing-audit.jsonl").read_text().split("\n")[:-1]:
        doc = json.loads(line)
        events[doc["event"]] += 1
        keys = list(doc)
        assert keys == [k for k in allowed if k in doc], keys  # documented keys, documented order
        assert doc["app"] == "claimsdesk"
        if doc["event"] in ("export", "print", "download"):
            assert doc["destination"]["type"] in ("file", "printer", "email", "removable_media", "external_host",
                                                  "sftp")
            assert isinstance(doc["bytes"], int) and doc["format"]
        else:
            assert "destination" not in doc and "bytes" not in doc
        assert all(re.fullmatch(r"MRN-\d{6}", m) for m in doc.get("patient_ids", []))
        if doc.get("reason", "").startswith("called "):
            names_in_reasons += 1
    assert set(events) >= {"view", "search", "export", "print", "login", "logout", "login_failed"}
    assert events["view"] > events["search"] > events["export"]
    assert names_in_reasons > 10  # patient names to test redaction against


def users_seen(decoded: dict[str, list[Decoded]]) -> dict[str, list[float]]:
    """When each account acted (``user.name``; an admin deactivating a leaver is not the leaver acting)."""
    seen: dict[str, list[float]] = {}
    for records in decoded.values():
        for r in records:
            if r.fields.get("user.name"):
                seen.setdefault(str(r.fields["user.name"]).split("@")[0], []).append(r.ts)
    return seen


def test_dormant_and_terminated_accounts_are_silent_except_for_their_incidents(
        company: tuple[Path, GroundTruth], decoded: dict[str, list[Decoded]]) -> None:
    out, truth = company
    seen = users_seen(decoded)
    dormant = truth.incident("dormant-account-wakes")
    assert truth.dormant_user == dormant.user
    times = sorted(seen[dormant.user])
    before = [t for t in times if t < dormant.start.timestamp()]
    assert before, "the dormant account's earlier activity must be in the logs"
    assert dormant.start.timestamp() - max(before) >= 120 * 86400
    assert max(before) < truth.start.timestamp() - (DORMANT_GAP_DAYS - 1) * 86400
    assert all(dormant.start.timestamp() <= t <= dormant.end.timestamp() for t in times if t >= truth.start.timestamp())

    terminated = truth.incident("terminated-account-login")
    listed = [ln for ln in (out / "terminated_accounts.txt").read_text().splitlines() if not ln.startswith("#")]
    assert terminated.user in listed and set(truth.terminated_accounts) == set(listed)
    for name in {n.split("@")[0] for n in listed}:
        for t in seen.get(name, []):
            assert name == terminated.user and terminated.start.timestamp() <= t <= terminated.end.timestamp()


def test_ground_truth_describes_the_planted_incidents(company: tuple[Path, GroundTruth],
                                                      decoded: dict[str, list[Decoded]]) -> None:
    out, truth = company
    doc = json.loads((out / GROUND_TRUTH_FILE).read_text())
    assert doc == json.loads(truth.to_json())
    assert len(doc["incidents"]) == 14 and len({i["name"] for i in doc["incidents"]}) == 14
    assert all(i.start <= i.end for i in truth.incidents)
    fixed = {"phi-export-volume-baseline", "phi-bulk-export", "phi-export-unusual-hours", "phi-export-new-destination",
             "mfa-push-bombing", "mfa-failures-then-success", "auth-password-spray", "auth-brute-force-user",
             "auth-success-after-failures", "account-dormant-activity", "account-terminated-activity",
             "endpoint-removable-media-phi-workstation", "phi-patient-snooping", "account-privileged-group-add",
             "auth-new-country", "endpoint-audit-logging-stopped", "endpoint-protection-disabled"}
    assert set(truth.expected_rules) == fixed
    shipped = {yaml.safe_load(p.read_text()).get("id") for p in (SHIPPED / "rules").rglob("*.yaml")} \
        if (SHIPPED / "rules").is_dir() else set()
    if shipped:
        assert fixed <= shipped, f"rule ids the incidents expect but the rule pack lacks: {fixed - shipped}"

    actions = Counter((r.fields.get("event.action"), r.fields.get("host.name")) for rs in decoded.values() for r in rs)
    usb = truth.incident("usb-copy-phi-workstation")
    assert usb.host in truth.phi_workstations
    assert actions[("removable_media_file_copy", usb.host)] == 6
    spray = truth.incident("password-spray")
    sprayed = {r.fields.get("user.name") for r in decoded["okta.jsonl"] if r.fields.get("source.ip") == SPRAY_IP}
    assert len(sprayed) >= 40 == spray.details["users"] - 5
    group = truth.incident("privileged-group-add")
    assert any(r.fields.get("event.action") == "user_added_to_group" and r.fields.get("group.name") == "sudo"
               and r.fields.get("user.target.name") == group.user for r in decoded["auth.log"])


def test_background_without_incidents_has_none_of_their_traces(tmp_path: Path) -> None:
    truth = generate(tmp_path, days=3, users=40, start=START, incidents=False)
    assert truth.incidents == [] and truth.dormant_user is None
    text = "".join((tmp_path / n).read_text() for n in COLLECTOR_OF)
    for trace in (SPRAY_IP, "@gmail.com", "falcon-sensor service", "DAEMON_END", "usb_copy", "to group 'sudo'"):
        assert trace not in text, trace
    times = line_times(tmp_path / "okta.jsonl", START.year)
    assert min(times) >= truth.start.timestamp()  # no dormant history either


def test_rejects_a_company_too_small_to_simulate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="10 users"):
        generate(tmp_path, users=3)
