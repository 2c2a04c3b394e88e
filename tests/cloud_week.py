"""A seeded week of ordinary cloud work at a 50-person medical billing company, as the providers' APIs hand it
out (Okta System Log, Graph signIns and directoryAudits, the O365 Management Activity API, the Workspace Reports
API) plus the billing app's exports; and one incident of each kind the cloud rules are meant for.

Every record is a JSON line for a shipped collector: ``week()`` and ``incidents()`` return
``(collector, timestamp, line)`` tuples, decoded by the real decoders in tests/test_cloud_week.py.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

DOMAIN = "meridianbilling.example"
START = datetime(2026, 2, 2, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
DAY = 86400.0
USERS = [f"{n}@{DOMAIN}" for n in (
    "ana.ruiz", "ben.okafor", "carla.mendes", "dan.kowalski", "eve.larsen", "faisal.haddad", "gina.rossi",
    "hiro.tanaka", "ines.duarte", "jack.obrien", "kara.singh", "liam.murphy", "maya.cohen", "nate.brooks",
    "olga.petrova", "paul.nguyen", "quinn.harper", "rosa.alvarez", "sam.wright", "tara.bose", "umar.sheikh",
    "vera.novak", "will.chen", "xena.price", "yusuf.demir", "zoe.martin", "adam.fox", "bella.reyes",
    "caleb.ward", "dina.katz", "eli.stone", "fern.walsh", "gabe.lopez", "hana.kim", "ivan.ivanov",
    "jade.moreau", "kofi.mensah", "lena.weber", "marc.dubois", "nina.berg", "omar.farouk", "pia.lund",
    "raj.patel", "sara.lind", "theo.grant", "uma.rao", "vic.hale", "wren.ellis", "yara.haddad", "zack.bell")]
ADMINS = USERS[:2]
# What a billing company's people share with outsiders: none of it PHI, some of it with names a careless
# substring match takes for PHI ("media" holds "edi", "graphics" holds "phi", "adobe" holds "dob").
EXTERNAL_FILES = ("brand-media-kit.pdf", "Q1-graphics-refresh.zip", "adobe-sign-howto.pdf", "credit-card-form.pdf",
                  "offsite-agenda.docx", "vendor-onboarding-checklist.xlsx", "conference-photos.zip",
                  "philanthropy-day-flyer.pdf", "invoice-template.docx")
INTERNAL_FILES = ("claims-837-batch-{n}.txt", "remit-835-{n}.csv", "patient-census-{n}.xlsx", "denials-{n}.xlsx",
                  "eob-scan-{n}.pdf", "team-schedule-{n}.xlsx", "handbook.pdf", "payer-contacts.xlsx")
PAYERS = ("claims@payer-example.com", "remits@bluecross-example.org", "edi@clearinghouse.example")
NARROW_GRAPH_SCOPES = ("User.Read openid profile offline_access", "Calendars.Read User.Read",
                       "openid profile email", "User.ReadBasic.All Calendars.ReadWrite offline_access")
NARROW_GOOGLE_SCOPES = (["openid", "https://www.googleapis.com/auth/userinfo.email"],
                        ["https://www.googleapis.com/auth/calendar.readonly", "openid"])


def _iso(ts: float, ms: bool = True) -> str:
    text = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{int(ts * 1000) % 1000:03d}Z" if ms else "")


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, kind: str) -> str:
        self.n += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloud-week-{kind}-{self.n}"))


def okta_login(ids: _Ids, ts: float, user: str, ip: str) -> tuple[str, float, str]:
    doc = {"uuid": ids("okta"), "published": _iso(ts), "eventType": "user.session.start", "severity": "INFO",
           "actor": {"id": "00u" + user[:6], "type": "User", "alternateId": user, "displayName": user.split("@")[0]},
           "client": {"ipAddress": ip, "geographicalContext": {"country": "United States", "city": "Boise"},
                      "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
           "outcome": {"result": "SUCCESS"}, "authenticationContext": {"credentialType": "PASSWORD"}, "target": []}
    return "okta", ts, _line(doc)


def graph_sign_in(ids: _Ids, ts: float, user: str, ip: str) -> tuple[str, float, str]:
    doc = {"id": ids("signin"), "createdDateTime": _iso(ts, ms=False) + "Z", "userPrincipalName": user,
           "ipAddress": ip, "location": {"city": "Boise", "countryOrRegion": "US"}, "status": {"errorCode": 0},
           "authenticationDetails": [{"authenticationMethod": "Password", "succeeded": True}]}
    return "entra", ts, _line(doc)


def directory_audit(ids: _Ids, ts: float, activity: str, actor: str, target: dict[str, Any],
                    category: str = "ApplicationManagement") -> tuple[str, float, str]:
    doc = {"id": "Directory_" + ids("audit"), "category": category, "result": "success",
           "activityDisplayName": activity,
           "activityDateTime": _iso(ts), "loggedByService": "Core Directory", "operationType": "Assign",
           "initiatedBy": {"user": {"id": "u-" + actor[:4], "userPrincipalName": actor, "ipAddress": "10.1.0.5"}},
           "targetResources": [target]}
    return "entra-audit", ts, _line(doc)


def consent(ids: _Ids, ts: float, user: str, app: str, scopes: str) -> tuple[str, float, str]:
    return directory_audit(ids, ts, "Consent to application", user, {
        "id": "sp-" + app.lower().replace(" ", "-"), "displayName": app, "type": "ServicePrincipal",
        "modifiedProperties": [{"displayName": "ConsentAction.Permissions", "oldValue": None,
                                "newValue": f'"Scope: {scopes}"'}]})


def role_member(ids: _Ids, ts: float, activity: str, actor: str, user: str, role: str) -> tuple[str, float, str]:
    return directory_audit(ids, ts, activity, actor, {
        "id": "u-" + user[:4], "displayName": user.split("@")[0], "type": "User", "userPrincipalName": user,
        "modifiedProperties": [{"displayName": "Role.DisplayName", "oldValue": None, "newValue": f'"{role}"'}]},
        "RoleManagement")


def o365(ids: _Ids, ts: float, user: str, operation: str, workload: str, **fields: Any) -> tuple[str, float, str]:
    doc = {"CreationTime": _iso(ts, ms=False), "Id": ids("o365"), "Operation": operation, "OrganizationId": "72f988bf",
           "RecordType": 6 if workload in ("SharePoint", "OneDrive") else 1, "ResultStatus": "Succeeded",
           "UserId": user, "UserType": 0, "Workload": workload, "ClientIP": "10.1.3.20", **fields}
    return "o365", ts, _line(doc)


def o365_file(ids: _Ids, ts: float, user: str, operation: str, name: str, **fields: Any) -> tuple[str, float, str]:
    site = f"https://meridian-my.sharepoint.com/personal/{user.split('@')[0].replace('.', '_')}/Documents"
    return o365(ids, ts, user, operation, "OneDrive", ObjectId=f"{site}/{name}", SourceFileName=name,
                ItemType="File", SiteUrl=site, **fields)


def o365_params(ids: _Ids, ts: float, user: str, operation: str, params: dict[str, str]) -> tuple[str, float, str]:
    return o365(ids, ts, user, operation, "Exchange", ObjectId=user, Parameters=[
        {"Name": k, "Value": v} for k, v in params.items()], ParametersByName=params)


def workspace(ids: _Ids, ts: float, user: str, app: str, name: str, params: dict[str, Any],
              kind: str = "access") -> tuple[str, float, str]:
    doc = {"kind": "admin#reports#activity",
           "id": {"time": _iso(ts), "uniqueQualifier": ids("ws")[:8], "applicationName": app,
                  "customerId": "C03az79cb"},
           "actor": {"callerType": "USER", "email": user, "profileId": f"11{sum(map(ord, user))}"},
           "ipAddress": "10.1.4.30", "networkInfo": {"regionCode": "US"},
           "event": {"type": kind, "name": name, "params": params}}
    return "google-workspace", ts, _line(doc)


def export(ids: _Ids, ts: float, user: str, target: str, kind: str = "email",
           result: str = "success") -> tuple[str, float, str]:
    doc = {"ts": _iso(ts), "app": "claimsdesk", "app_host": "billing-app-01", "event": "export",
           "user": user.split("@")[0], "client_ip": "10.1.2.3", "workstation": "ws-billing-07", "result": result,
           "patients": 12, "records": 140, "patient_ids": ["MRN-100234"],
           "destination": {"type": kind, "target": target},
           "format": "csv", "session": ids("session")[:8]}
    return "billing-audit", ts, _line(doc)


def week(seed: int = 15) -> list[tuple[str, float, str]]:
    """Five workdays and a weekend of ordinary activity for every user, in timestamp order."""
    rng = random.Random(seed)
    ids = _Ids()
    out: list[tuple[str, float, str]] = []
    for day in range(7):
        weekend = day >= 5
        for k, user in enumerate(USERS):
            if weekend and rng.random() > 0.1:
                continue
            ip = f"10.1.{k // 200}.{k % 200 + 10}"
            t = START + day * DAY + 13 * 3600 + rng.uniform(0, 2 * 3600)  # 07:00-09:00 Mountain
            out.append(okta_login(ids, t, user, ip))
            out.append(graph_sign_in(ids, t + 5, user, ip))
            out.append(workspace(ids, t + 9, user, "login", "login_success", {"login_type": "saml"}, "login"))
            out.append(o365(ids, t + 12, user, "UserLoggedIn", "AzureActiveDirectory"))
            # A working day's files: a few downloads an hour, now and then a folder of a dozen at once.
            t_files = t + 600
            for _ in range(rng.randint(4, 25)):
                t_files += rng.uniform(60, 1500)
                name = rng.choice(INTERNAL_FILES).format(n=rng.randint(1, 60))
                if rng.random() < 0.5:
                    out.append(o365_file(ids, t_files, user, "FileDownloaded", name))
                else:
                    out.append(workspace(ids, t_files, user, "drive", "download",
                                         {"doc_title": name, "doc_id": f"d{rng.randint(1, 999)}", "doc_type": "file",
                                          "visibility": "shared_internally", "owner": rng.choice(USERS)}))
            if rng.random() < 0.15:
                burst = t_files + 300
                for j in range(rng.randint(10, 40)):
                    out.append(o365_file(ids, burst + j * 4, user, "FileDownloaded", f"scan-{day}-{k}-{j}.pdf"))
            # Internal sharing of PHI-bearing files: to colleagues, never outside.
            if rng.random() < 0.4:
                name = rng.choice(INTERNAL_FILES).format(n=rng.randint(1, 60))
                peer = rng.choice(USERS)
                if rng.random() < 0.5:
                    out.append(o365_file(ids, t + 7200, user, "SharingSet", name, TargetUserOrGroupName=peer,
                                         TargetUserOrGroupType="Member"))
                else:
                    out.append(workspace(ids, t + 7200, user, "drive", "change_user_access",
                                         {"doc_title": name, "doc_id": "d1", "visibility": "shared_internally",
                                          "target_user": peer, "doc_type": "spreadsheet"}, "acl_change"))
            # Marketing, office and vendor paperwork shared with outsiders.
            if rng.random() < 0.08:
                name = rng.choice(EXTERNAL_FILES)
                guest = f"contact{rng.randint(1, 9)}@agency-example.com"
                if rng.random() < 0.5:
                    out.append(o365_file(ids, t + 9000, user, "SharingInvitationCreated", name,
                                         TargetUserOrGroupName=guest, TargetUserOrGroupType="Guest"))
                else:
                    out.append(workspace(ids, t + 9000, user, "drive", "change_user_access",
                                         {"doc_title": name, "doc_id": "d2", "visibility": "shared_externally",
                                          "target_user": guest, "doc_type": "pdf"}, "acl_change"))
            if rng.random() < 0.03:
                out.append(workspace(ids, t + 9500, user, "drive", "change_document_visibility",
                                     {"doc_title": rng.choice(EXTERNAL_FILES), "doc_id": "d3",
                                      "visibility": "people_with_link", "old_visibility": "private"}, "acl_change"))
            # Out-of-office cover: forward to a colleague or the team's shared mailbox.
            if rng.random() < 0.03:
                peer = rng.choice(USERS)
                if rng.random() < 0.5:
                    out.append(o365_params(ids, t + 3000, user, "New-InboxRule",
                                           {"Name": "cover while away", "ForwardTo": peer,
                                            "StopProcessingRules": "False"}))
                else:
                    out.append(o365_params(ids, t + 3000, ADMINS[0], "Set-Mailbox",
                                           {"Identity": user, "ForwardingSmtpAddress": f"smtp:billing-team@{DOMAIN}",
                                            "DeliverToMailboxAndForward": "True"}))
            if rng.random() < 0.01:
                out.append(workspace(ids, t + 3100, ADMINS[1], "admin", "CHANGE_EMAIL_SETTING",
                                     {"USER_EMAIL": user, "EMAIL_FORWARDING_DESTINATION_ADDRESS": f"frontdesk@{DOMAIN}",
                                      "SETTING_NAME": "EMAIL_FORWARDING"}, "EMAIL_SETTINGS"))
            # Narrow app grants: sign-in with Microsoft / Google, a calendar app.
            if rng.random() < 0.04:
                app = rng.choice(("Zoom", "Calendly", "DocuSign", "Slack"))
                if rng.random() < 0.5:
                    out.append(consent(ids, t + 4000, user, app, rng.choice(NARROW_GRAPH_SCOPES)))
                else:
                    out.append(workspace(ids, t + 4000, user, "token", "authorize",
                                         {"app_name": app, "client_id": f"{app.lower()}.apps",
                                          "scope": rng.choice(NARROW_GOOGLE_SCOPES)}, "auth"))
            # Billers send claims and remits to payers and the clearinghouse.
            if k % 3 == 0 and not weekend:
                for h in (1.0, 5.0):
                    if rng.random() < 0.7:
                        out.append(export(ids, t + h * 3600, user, rng.choice(PAYERS)))
                out.append(export(ids, t + 3 * 3600, user, "sftp://edi.clearinghouse.example/claims", "sftp"))
        if not weekend:
            # The two administrators activate their eligible Entra roles (PIM) each morning: routine, the
            # assignment that made them eligible is what the role rule is for.
            for admin in ADMINS:
                t = START + day * DAY + 14 * 3600 + rng.uniform(0, 1800)
                out.append(role_member(ids, t, "Add member to role completed (PIM activation)", admin, admin,
                                       "User Administrator"))
    out.sort(key=lambda r: r[1])
    return out


INCIDENTS = {
    "account-admin-role-granted": "an account is made Global Administrator",
    "account-oauth-broad-grant": "a user consents to an app reading and writing all mail and files",
    "phi-file-shared-externally": "a claims batch shared with an outside address",
    "file-mass-download": "150 files downloaded from Drive in eight minutes",
    "mail-forwarding-personal": "a mailbox forwarded to the user's Gmail (smtp: prefixed, as Set-Mailbox logs it)",
    "mail-forwarding-personal/inbox-rule-two-recipients": "an inbox rule forwarding to Gmail and a colleague",
    "mail-forwarding-personal/workspace-admin": "an administrator forwarding a user's Gmail to Yahoo",
    "phi-export-personal-email": "a PHI export e-mailed to a personal address",
}


def incident(rule: str) -> list[tuple[str, float, str]]:
    """One incident for ``rule``, on the Wednesday afternoon of the week."""
    ids = _Ids()
    ids.n = 10_000_000
    t = START + 2 * DAY + 20 * 3600
    user = USERS[17]
    if rule == "account-admin-role-granted":
        return [role_member(ids, t, "Add member to role", ADMINS[0], user, "Global Administrator")]
    if rule == "account-oauth-broad-grant":
        return [consent(ids, t, user, "Mail Merge Pro", "Mail.ReadWrite Files.ReadWrite.All offline_access")]
    if rule == "phi-file-shared-externally":
        return [o365_file(ids, t, user, "SharingInvitationCreated", "claims_837_batch_0204.txt",
                          TargetUserOrGroupName="friend@outside-example.net", TargetUserOrGroupType="Guest")]
    if rule == "file-mass-download":
        return [workspace(ids, t + i * 3.2, user, "drive", "download",
                          {"doc_title": f"patient-file-{i}.pdf", "doc_id": f"x{i}", "doc_type": "pdf",
                           "visibility": "shared_internally"}) for i in range(150)]
    if rule == "mail-forwarding-personal/inbox-rule-two-recipients":
        return [o365_params(ids, t, user, "New-InboxRule", {"Name": "copies", "StopProcessingRules": "False",
                                                            "ForwardTo": f"rosa.home@gmail.com;nate.brooks@{DOMAIN}"})]
    if rule == "mail-forwarding-personal/workspace-admin":
        return [workspace(ids, t, ADMINS[1], "admin", "CHANGE_EMAIL_SETTING",
                          {"USER_EMAIL": user, "EMAIL_FORWARDING_DESTINATION_ADDRESS": "rosa.home@yahoo.com",
                           "SETTING_NAME": "EMAIL_FORWARDING"}, "EMAIL_SETTINGS")]
    if rule == "mail-forwarding-personal":
        return [o365_params(ids, t, user, "Set-Mailbox", {"Identity": user,
                                                          "ForwardingSmtpAddress": "smtp:rosa.home@gmail.com",
                                                          "DeliverToMailboxAndForward": "False"})]
    if rule == "phi-export-personal-email":
        return [export(ids, t, user, "Rosa <rosa.alvarez.1990@gmail.com>")]
    raise KeyError(rule)
