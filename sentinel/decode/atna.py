"""IHE ATNA audit messages (RFC 3881, and the DICOM PS3.15 schema that succeeded it) into a flat context.

EHR and practice-management systems send these as XML in syslog (RFC 5425/5424). The XML is parsed
with defusedxml: an audit message comes from the network, and entity expansion ("billion laughs")
or external entities must never be resolved. Both schemas are read: RFC 3881 names codes ``code``,
DICOM ``csd-code``; DICOM's ``UserIsRequestor`` and RFC 3881's are the same attribute.

The context keys (``atna.*``) are what a collector maps onto ECS and ``phi.*``.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_XML_BYTES = 1 << 20

# ParticipantObjectTypeCode 1 = person, ParticipantObjectTypeCodeRole 1 = patient (RFC 3881 5.5.1/5.5.2).
_PERSON, _PATIENT = "1", "1"


class AtnaError(ValueError):
    """Not an ATNA audit message."""


def _code(el: Element | None) -> tuple[str | None, str | None]:
    if el is None:
        return None, None
    code = el.get("csd-code") or el.get("code")
    name = el.get("displayName") or el.get("originalText")
    return code, name


def parse_audit_message(xml: str) -> dict[str, Any]:
    """The audit message's facts as ``atna.*`` context keys; raises AtnaError when it is none."""
    if len(xml) > MAX_XML_BYTES:
        raise AtnaError(f"audit message of {len(xml)} bytes exceeds {MAX_XML_BYTES}")
    try:
        root = fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise AtnaError(f"refused XML construct: {type(exc).__name__}") from None
    except ParseError as exc:
        raise AtnaError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "AuditMessage":
        raise AtnaError(f"expected an AuditMessage element, got {_local(root.tag)}")
    ctx: dict[str, Any] = {}
    ident = _child(root, "EventIdentification")
    if ident is None:
        raise AtnaError("AuditMessage has no EventIdentification")
    ctx["atna.action_code"] = ident.get("EventActionCode")
    ctx["atna.outcome_indicator"] = ident.get("EventOutcomeIndicator")
    ctx["atna.event_time"] = ident.get("EventDateTime")
    ctx["atna.event_code"], ctx["atna.event_name"] = _code(_child(ident, "EventID"))
    type_code = _child(ident, "EventTypeCode")
    ctx["atna.event_type_code"], ctx["atna.event_type_name"] = _code(type_code)
    description = _child(ident, "EventOutcomeDescription")
    if description is not None and description.text:
        ctx["atna.outcome_description"] = description.text.strip()
    participants = _children(root, "ActiveParticipant")
    requestor = next((p for p in participants if (p.get("UserIsRequestor") or "").lower() == "true"), None)
    if requestor is None and participants:
        requestor = participants[0]
    if requestor is not None:
        ctx["atna.user_id"] = requestor.get("UserID")
        ctx["atna.user_name"] = requestor.get("UserName") or requestor.get("AlternativeUserID")
        ctx["atna.network_access_point"] = requestor.get("NetworkAccessPointID")
        ctx["atna.user_role"] = _code(_child(requestor, "RoleIDCode"))[1]
    destination = next((p for p in participants if p is not requestor
                        and p.get("NetworkAccessPointID")), None)
    if destination is not None:
        ctx["atna.destination_access_point"] = destination.get("NetworkAccessPointID")
        ctx["atna.destination_user_id"] = destination.get("UserID")
    source = _child(root, "AuditSourceIdentification")
    if source is not None:
        ctx["atna.source_id"] = source.get("AuditSourceID") or source.get("code")
        ctx["atna.enterprise_site_id"] = source.get("AuditEnterpriseSiteID")
    objects = _children(root, "ParticipantObjectIdentification")
    patients = {o.get("ParticipantObjectID") for o in objects
                if o.get("ParticipantObjectTypeCode") == _PERSON and o.get("ParticipantObjectTypeCodeRole") == _PATIENT}
    ctx["atna.patient_count"] = len(patients)
    ctx["atna.object_count"] = len(objects)
    return {k: v for k, v in ctx.items() if v is not None}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element, name: str) -> Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name]
