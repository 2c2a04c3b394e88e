"""Line formats of the simulated sources: syslog, auditd, Okta, Entra ID, the billing app, osquery.

Times are integer milliseconds since the epoch so that output is byte-for-byte reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

AUDIT_SERIAL = "@SERIAL@"  # replaced by the host's next serial once events are in time order


def dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def iso_ms(ms: int) -> str:
    """``2026-11-27T08:15:02.123Z``."""
    d = dt(ms)
    return f"{d:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def iso_7(ms: int) -> str:
    """Windows-style seven fractional digits, as Entra ID writes them."""
    d = dt(ms)
    return f"{d:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}0000Z"


def syslog(ms: int, host: str, prog: str, pid: int | None, msg: str) -> str:
    """An RFC 3164 line: ``Nov 27 08:15:02 web01 sshd[1234]: ...``."""
    d = dt(ms)
    tag = f"{prog}[{pid}]" if pid is not None else prog
    return f"{d:%b} {d.day:>2} {d:%H:%M:%S} {host} {tag}: {msg}"


def audit(ms: int, host: str, records: list[tuple[str, str]]) -> str:
    """One auditd event (one or more records sharing a serial; EOE closes multi-record events)."""
    stamp = f"{ms // 1000}.{ms % 1000:03d}:{AUDIT_SERIAL}"
    lines = [f"node={host} type={rtype} msg=audit({stamp}): {body}" for rtype, body in records]
    if len(records) > 1:
        lines.append(f"node={host} type=EOE msg=audit({stamp}): ")
    return "\n".join(lines)


def hexenc(text: str) -> str:
    """auditd's hex encoding of values with spaces (proctitle, cmd)."""
    return text.encode().hex().upper()


def json_line(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def okta(ms: int, uuid: str, event_type: str, display: str, actor: dict[str, Any], client: dict[str, Any],
         result: str, reason: str | None = None, targets: list[dict[str, Any]] | None = None,
         factor: str | None = None, session: str | None = None, severity: str = "INFO",
         transaction: str = "") -> str:
    """An Okta System Log event in the API's shape."""
    debug: dict[str, Any] = {"requestUri": "/api/v1/authn" if event_type.startswith("user.session") else
                             "/api/v1/authn/factors/verify", "threatSuspected": "false"}
    if factor:
        debug["factor"] = factor
    obj: dict[str, Any] = {
        "actor": actor,
        "client": client,
        "device": None,
        "authenticationContext": {"authenticationProvider": "FACTOR_PROVIDER" if factor else None,
                                  "credentialProvider": "OKTA_CREDENTIAL_PROVIDER" if factor else None,
                                  "credentialType": None, "issuer": None, "interface": None,
                                  "authenticationStep": 0, "externalSessionId": session},
        "displayMessage": display,
        "eventType": event_type,
        "outcome": {"result": result, "reason": reason},
        "published": iso_ms(ms),
        "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": False},
        "severity": severity,
        "debugContext": {"debugData": debug},
        "legacyEventType": None,
        "transaction": {"type": "WEB", "id": transaction, "detail": {}},
        "uuid": uuid,
        "version": "0",
        "request": {"ipChain": [{"ip": client.get("ipAddress"), "version": "V4", "source": None}]},
        "target": targets or [],
    }
    return json_line(obj)


def entra(ms: int, tenant: str, sign_in_id: str, correlation: str, user_id: str, upn: str, display: str,
          ip: str, country: str, city: str, state: str, error: int, failure: str, methods: list[dict[str, Any]],
          app: str, client_app: str, os_name: str, browser: str, user_agent: str) -> str:
    """A Microsoft Entra ID sign-in log record as exported by diagnostic settings."""
    obj: dict[str, Any] = {
        "time": iso_7(ms),
        "resourceId": f"/tenants/{tenant}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": "SignInLogs",
        "tenantId": tenant,
        "resultType": str(error),
        "resultSignature": "None",
        "resultDescription": failure if error else "",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "identity": display,
        "Level": 4,
        "location": country,
        "properties": {
            "id": sign_in_id,
            "createdDateTime": iso_7(ms),
            "userDisplayName": display,
            "userPrincipalName": upn,
            "userId": user_id,
            "appId": "00000002-0000-0ff1-ce00-000000000000",
            "appDisplayName": app,
            "ipAddress": ip,
            "status": {"errorCode": error, "failureReason": failure if error else "Other."},
            "clientAppUsed": client_app,
            "userAgent": user_agent,
            "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": os_name, "browser": browser,
                             "isCompliant": False, "isManaged": False, "trustType": ""},
            "location": {"city": city, "state": state, "countryOrRegion": country,
                         "geoCoordinates": {"altitude": None, "latitude": None, "longitude": None}},
            "conditionalAccessStatus": "success" if error == 0 else "notApplied",
            "isInteractive": True,
            "authenticationDetails": methods,
            "authenticationRequirement": "multiFactorAuthentication",
            "riskDetail": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "tokenIssuerType": "AzureAD",
        },
    }
    return json_line(obj)


def billing(ms: int, event: str, user: str, user_id: str, role: str, session: str, client_ip: str,
            workstation: str, result: str = "success", patients: int | None = None, records: int | None = None,
            patient_ids: list[str] | None = None, destination: tuple[str, str] | None = None,
            fmt: str | None = None, nbytes: int | None = None, report: str | None = None,
            query: str | None = None, reason: str | None = None, app_host: str = "billing-app-01") -> str:
    """One claimsdesk PHI audit record; optional keys appear only when they apply."""
    obj: dict[str, Any] = {"ts": iso_ms(ms), "app": "claimsdesk", "app_host": app_host, "event": event,
                           "user": user, "user_id": user_id, "role": role, "session": session,
                           "client_ip": client_ip, "workstation": workstation, "result": result}
    if patients is not None:
        obj["patients"] = patients
        obj["records"] = records
        obj["patient_ids"] = patient_ids or []
    if destination is not None:
        obj["destination"] = {"type": destination[0], "target": destination[1]}
        obj["format"] = fmt
        obj["bytes"] = nbytes
    if report is not None:
        obj["report"] = report
    if query is not None:
        obj["query"] = query
    if reason is not None:
        obj["reason"] = reason
    return json_line(obj)


def osquery(ms: int, name: str, host: str, host_uuid: str, counter: int, columns: dict[str, str],
            action: str) -> str:
    """An osquery differential result line from the filesystem logger."""
    d = dt(ms)
    obj: dict[str, Any] = {"name": name, "hostIdentifier": host,
                           "calendarTime": f"{d:%a %b} {d.day:>2} {d:%H:%M:%S %Y} UTC",
                           "unixTime": ms // 1000, "epoch": 0, "counter": counter, "numerics": False,
                           "decorations": {"host_uuid": host_uuid, "hostname": host},
                           "columns": columns, "action": action}
    return json_line(obj)
