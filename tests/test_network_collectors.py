"""Collectors for what arrives over network syslog: Cisco ASA VPN/AAA and IHE ATNA audit messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.daemon.collectors import load_collectors
from sentinel.decode.engine import Decoder
from sentinel.events.records import RawRecord
from tests.test_syslog import Daemon, _logger, free_port

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
NOW = 1_767_225_600.0

ATNA_LOGIN_FAILED = (
    '<AuditMessage><EventIdentification EventActionCode="E" EventDateTime="2025-12-30T16:00:00Z" '
    'EventOutcomeIndicator="8"><EventID csd-code="110114" codeSystemName="DCM" originalText="User Authentication"/>'
    '<EventTypeCode csd-code="110122" codeSystemName="DCM" originalText="Login"/></EventIdentification>'
    '<ActiveParticipant UserID="mallory" UserIsRequestor="true" NetworkAccessPointID="203.0.113.50"/>'
    '<AuditSourceIdentification AuditSourceID="EHR01"/></AuditMessage>')


def _decoder(name: str, source_type: str = "file") -> Decoder:
    collectors, errors = load_collectors(SHIPPED / "collectors")
    assert not errors
    return Decoder(collectors[name].spec, source_type=source_type)  # type: ignore[arg-type]


def _decode(name: str, line: str) -> tuple[dict[str, object], str]:
    ev, outcome = _decoder(name).decode(RawRecord(name, "s", "p", 0, 1, line.encode()), NOW)
    return ev.fields, outcome


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                  '<AuditMessage>&lol2;</AuditMessage>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            '<AuditMessage><EventIdentification EventActionCode="R" EventOutcomeIndicator="0">&xxe;'
            '</EventIdentification></AuditMessage>')


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_atna_xml_with_a_dtd_or_entities_is_refused_and_stored_unparsed(xml: str) -> None:
    fields, outcome = _decode("ihe-atna", xml)
    assert outcome == "unparsed"
    assert "refused XML construct" in str(fields["sentinel.parse_error"])
    assert "root:" not in str(fields)


@pytest.mark.parametrize("xml", ["<AuditMessage><EventIdentification", "<Other/>", "<AuditMessage/>"],
                         ids=["not-well-formed", "other-root", "no-event-identification"])
def test_xml_that_is_no_audit_message_is_stored_unparsed_with_the_reason(xml: str) -> None:
    fields, outcome = _decode("ihe-atna", xml)
    assert outcome == "unparsed" and fields["sentinel.parse_error"]


def test_atna_patient_count_counts_distinct_patients_only() -> None:
    patient = '<ParticipantObjectIdentification ParticipantObjectID="{}" ParticipantObjectTypeCode="1" ' \
              'ParticipantObjectTypeCodeRole="1"/>'
    report = '<ParticipantObjectIdentification ParticipantObjectID="r" ParticipantObjectTypeCode="2" ' \
             'ParticipantObjectTypeCodeRole="3"/>'
    xml = ATNA_LOGIN_FAILED.replace('EventID csd-code="110114"', 'EventID csd-code="110106"').replace(
        "</AuditMessage>", patient.format("A") + patient.format("B") + patient.format("A") + report + "</AuditMessage>")
    fields, outcome = _decode("ihe-atna", xml)
    assert outcome == "parsed" and fields["event.action"] == "phi_export"
    assert fields["phi.patient_count"] == 2


def test_asa_and_atna_over_the_network_with_logger(tmp_path: Path) -> None:
    asa_port, atna_port = free_port(), free_port()
    asa = Daemon(tmp_path / "asa", {"listen": [f"udp://127.0.0.1:{asa_port}"]}, collector="cisco-asa")
    atna = Daemon(tmp_path / "atna", {"listen": [f"tcp://127.0.0.1:{atna_port}"]}, collector="ihe-atna")
    try:
        _logger("--udp", "-n", "127.0.0.1", "-P", str(asa_port), "--rfc3164", "-t", "%ASA-6-113005",
                "AAA user authentication Rejected : reason = AAA failure : server = 10.1.1.5 : user = bob : "
                "user IP = 198.51.100.9")
        _logger("--tcp", "-n", "127.0.0.1", "-P", str(atna_port), "--octet-count", "--rfc5424", "--size", "65536",
                "-t", "EHR", ATNA_LOGIN_FAILED)
        (vpn,) = asa.wait_for(1)
        (audit,) = atna.wait_for(1)
    finally:
        asa.stop()
        atna.stop()
    assert (vpn["event.action"], vpn["event.outcome"], vpn["user.name"], vpn["source.ip"]) == \
        ("user_login", "failure", "bob", "198.51.100.9")
    assert vpn["event.code"] == "113005" and vpn["sentinel.log.source.address"].startswith("127.0.0.1:")
    assert (audit["event.action"], audit["event.outcome"], audit["user.name"], audit["source.ip"]) == \
        ("user_login", "failure", "mallory", "203.0.113.50")
    assert audit["@timestamp"] == "2025-12-30T16:00:00.000Z"
