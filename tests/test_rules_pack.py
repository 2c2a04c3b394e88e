"""Every rule in the shipped pack: one realistic case that must fire, one that must not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.detect.lists import NamedLists
from sentinel.detect.loader import load_rules
from sentinel.events.alerts import Alert
from sentinel.events.model import Event
from tests.detect_events import DAY, HOUR, MINUTE, RULES, Harness, ev, export

Case = Callable[[], list[Event]]
LISTS = {"terminated_accounts": ["mallory", "former.admin"], "phi_workstations": ["ws-billing-07", "ws-billing-08"]}
US_IP, RO_IP, SCANNER = "198.51.100.7", "185.220.101.4", "203.0.113.9"


def _history(
    user: str,
    days: int = 8,
    records: int = 200,
    hours: tuple[float, ...] = (1.0, 5.0),
    dest: str = "sftp://edi.clearinghouse.example/claims",
) -> list[Event]:
    """A user's routine: exports at 10:00 and 14:00 (BASE is 09:00 UTC) every day for ``days`` days."""
    return [export(d * DAY + h * HOUR, user, records, dest) for d in range(days) for h in hours]


def _views(user: str, day: int, patients: int, offset: int = 0) -> list[Event]:
    """A day of chart views as searches returning 20 patients each."""
    out = []
    for i in range(0, patients, 20):
        ids = [f"MRN-{200000 + offset + j}" for j in range(i, min(i + 20, patients))]
        out.append(
            ev(
                "phi_search",
                day * DAY + i * 30,
                user,
                "success",
                phi__patient_ids=ids,
                phi__patient_count=len(ids),
                phi__record_count=len(ids),
                source__ip="10.1.2.40",
            )
        )
    return out


def _workdays(user: str, days: int = 16, view_hours: tuple[float, ...] = (0.5, 2.0, 3.0, 6.0, 7.0),
              export_hours: tuple[float, ...] = (1.0, 5.0)) -> list[Event]:
    """Days of billing-app work (BASE is 09:00 UTC): views teach a user's hours, exports at 10:00 and 14:00."""
    out = []
    for d in range(days):
        out += [ev("phi_view", d * DAY + h * HOUR, user, "success", phi__patient_ids=[f"MRN-{d}{i}"],
                   phi__patient_count=1) for i, h in enumerate(view_hours)]
        out += [export(d * DAY + h * HOUR, user, 150) for h in export_hours]
    return sorted(out, key=lambda e: e.timestamp)


def _hourly_views(user: str, day: int, hour: float, patients: int, offset: int = 0, role: str = "biller",
                  per_event: int = 1) -> list[Event]:
    """``patients`` distinct patients viewed within the hour starting ``hour`` hours after BASE on ``day``."""
    out = []
    step = 3000 / max(1, patients // per_event)
    for i in range(0, patients, per_event):
        ids = [f"MRN-{500000 + offset + j}" for j in range(i, min(i + per_event, patients))]
        out.append(ev("phi_view" if per_event == 1 else "phi_search", day * DAY + hour * HOUR + (i // per_event) * step,
                      user, "success", phi__patient_ids=ids, phi__patient_count=len(ids), user__roles=[role]))
    return out


def _team_days(days: int, users: int = 4) -> list[Event]:
    """A team of day workers: 15 patients an hour from 09:00 to 17:00 UTC."""
    out = []
    for d in range(days):
        for u in range(users):
            for h in range(8):
                out += _hourly_views(f"biller{u}", d, h, 15, offset=(u * 7 + d * 3 + h) * 15, per_event=5)
    return out


def _okta_logins(user: str, days: int, ip: str = US_IP) -> list[Event]:
    return [ev("user_login", d * DAY, user, "success", source__ip=ip, sentinel__authentication__factor="push")
            for d in range(days)]


def _helpdesk_reset(user: str, at: float) -> list[Event]:
    """The help desk resets a user's password and factors (the actor is the agent, the target the user)."""
    return [ev("password_reset", at, HELPDESK, "success", user__target__name=user),
            ev("mfa_factor_reset", at + MINUTE, HELPDESK, "success", user__target__name=user)]


def _enrol(user: str, at: float, ip: str) -> Event:
    return ev("device_enrolled", at, user, "success", user__target__name=user, source__ip=ip)


def _peers(days: int = 6, users: int = 25) -> list[Event]:
    out = []
    for d in range(days):
        for u in range(users):
            out += _views(f"biller{u:02d}", d, 40, offset=(u * 97 + d * 13) % 500)
    return out


def _logins(user: str, days: int, country: str = "US", ip: str = US_IP) -> list[Event]:
    return [
        ev("user_login", d * DAY, user, "success", source__ip=ip, source__geo__country_iso_code=country)
        for d in range(days)
    ]


def _fails(user: str, n: int, every: float, ip: str = SCANNER, action: str = "ssh_login", at: float = 0) -> list[Event]:
    return [
        ev(action, at + i * every, user, "failure", source__ip=ip,
           sentinel__authentication__method="password") for i in range(n)
    ]


def _mfa_fail(user: str, at: float) -> list[Event]:
    """An Okta push denial: the denial plus the failed MFA verification Okta logs with it."""
    return [
        ev("mfa_push_denied", at, user, "failure", sentinel__authentication__factor="push", source__ip=US_IP),
        ev("mfa_verify", at + 0.04, user, "failure", sentinel__authentication__factor="push", source__ip=US_IP),
    ]


def _mfa_ok(user: str, at: float) -> Event:
    return ev("mfa_verify", at, user, "success", sentinel__authentication__factor="push", source__ip=US_IP)


ALICE = "alice@meridianbilling.example"
HELPDESK = "helpdesk@meridianbilling.example"
SPRAY_NET = "185.220.101."

FIRES: dict[str, Case] = {
    "phi-export-volume-baseline": lambda: [*_history("alice"), export(8 * DAY + HOUR, "alice", 3000)],
    "phi-bulk-export": lambda: [export(HOUR, "alice", 6000, dest_type="file", dest="/srv/share/x.csv")],
    # BASE is 09:00 UTC, so +17h is an export at 02:00 (zone UTC) by a user who exports at 10:00 and 14:00.
    # 16 days of work between 09:30 and 16:00 UTC, then an export at 02:00 (zone UTC) on a Thursday.
    "phi-export-unusual-hours": lambda: [*_workdays("alice"), export(16 * DAY + 17 * HOUR, "alice", 150)],
    "phi-export-new-destination": lambda: [
        *_history("alice"),
        export(8 * DAY + HOUR, "alice", 150, "alice.personal@gmail.example", "email", dest_class="email_personal"),
    ],
    # A day worker (and their team) learnt for 8 days; then 120 patients outside their work viewed at 02:00.
    "phi-patient-snooping-hours": lambda: sorted(
        _team_days(8) + _hourly_views("biller0", 8, 17, 120, offset=900000), key=lambda e: e.timestamp),
    "account-helpdesk-takeover": lambda: [
        *_okta_logins(ALICE, 3),
        *_helpdesk_reset(ALICE, 3 * DAY),
        ev("user_login", 3 * DAY + 6 * MINUTE, ALICE, "success", source__ip=RO_IP),
        _enrol(ALICE, 3 * DAY + 8 * MINUTE, RO_IP),
    ],
    # One guess every six minutes for two hours, 20 real accounts, four addresses of one /24.
    "auth-password-spray-slow": lambda: [
        ev("user_login", i * 6 * MINUTE, f"user{i}@meridianbilling.example", "failure",
           source__ip=f"{SPRAY_NET}{10 + i % 4}", event__reason="INVALID_CREDENTIALS") for i in range(20)
    ],
    "phi-patient-snooping": lambda: _peers() + _views("mallory", 6, 400, offset=1000),
    "phi-print-download-spike": lambda: [
        ev("phi_print", i * 50, "alice", "success", phi__record_count=3, phi__export__destination_type="printer")
        for i in range(25)
    ],
    "account-admin-role-granted": lambda: [
        ev("admin_role_granted", 0, "it.admin@meridianbilling.example", "success", source="okta",
           user__target__name="bob@meridianbilling.example", event__module="azure", event__dataset="azure.auditlogs")
    ],
    "account-oauth-broad-grant": lambda: [
        ev("oauth_app_granted", 0, ALICE, "success", source="okta", event__dataset="azure.auditlogs",
           azure__auditlogs__properties__target_resources__0__display_name="Mail Merge Pro",
           azure__auditlogs__properties__target_resources__0__modified_properties__0__new_value=(
               '"Scope: Mail.ReadWrite Files.ReadWrite.All offline_access"'))
    ],
    "phi-export-personal-email": lambda: [
        ev("phi_export", 0, "jdoe", "success", source="billing", phi__record_count=40,
           phi__export__destination="Big Mike <bigmike.1987@gmail.com>", destination__domain="gmail.com",
           phi__export__destination_class="email_personal")
    ],
    "mail-forwarding-personal": lambda: [
        ev("mail_forwarding_set", 0, ALICE, "success", source="okta", email__to__address="alice.home@GMail.com")
    ],
    "phi-file-shared-externally": lambda: [
        ev("file_shared_publicly", 0, ALICE, "success", source="okta", file__name="claims-november.xlsx")
    ],
    "file-mass-download": lambda: [
        ev("file_downloaded", i * 3, ALICE, "success", source="okta", file__name=f"doc-{i}.pdf") for i in range(120)
    ],
    "mfa-push-bombing": lambda: [e for i in range(4) for e in _mfa_fail(ALICE, i * 70)],
    "mfa-failures-then-success": lambda: (
        [e for i in range(3) for e in _mfa_fail(ALICE, i * 60)] + [_mfa_ok(ALICE, 250)]
    ),
    "mfa-factor-change": lambda: [
        ev(
            "mfa_factor_enrolled",
            0,
            "helpdesk@meridianbilling.example",
            user__target__name=ALICE,
            sentinel__authentication__factor="sms",
        )
    ],
    "mfa-disabled": lambda: [ev("mfa_disabled", 0, "it.admin@meridianbilling.example", user__target__name=ALICE)],
    "mfa-policy-change": lambda: [ev("mfa_policy_changed", 0, "it.admin@meridianbilling.example")],
    "auth-password-spray": lambda: [
        ev("ssh_login", i * 20, f"user{i}", "failure", source__ip=SCANNER) for i in range(15)
    ],
    "auth-brute-force-user": lambda: _fails("bob", 12, 25),
    "auth-success-after-failures": lambda: [
        *_fails("bob", 7, 20),
        ev("ssh_login", 300, "bob", "success", source__ip=SCANNER, sentinel__authentication__method="password"),
    ],
    "auth-new-country": lambda: [
        *_logins(ALICE, 8),
        ev("user_login", 8 * DAY, ALICE, "success", source__ip=RO_IP, source__geo__country_iso_code="RO"),
    ],
    "sudo-failure": lambda: [ev("sudo_failure", 0, "carol", "failure", event__reason="user NOT in sudoers")],
    "auth-root-login": lambda: [
        ev("ssh_login", 0, "root", "success", source__ip="10.1.9.9", sentinel__authentication__method="password")
    ],
    "account-dormant-activity": lambda: [
        ev("ssh_login", 0, "dave", "success", source__ip="10.1.2.5"),
        ev("ssh_login", 100 * DAY, "dave", "success", source__ip="10.1.2.5"),
    ],
    "account-terminated-activity": lambda: [
        ev("user_login", 0, "Mallory@meridianbilling.example", "success", source__ip=US_IP)
    ],
    "account-privileged-group-add": lambda: [
        ev("user_added_to_group", 0, "root", user__target__name="eve", group__name="sudo")
    ],
    "account-created-then-phi-export": lambda: [
        ev("user_created", 0, "it.admin@meridianbilling.example", user__target__name="newbie@meridianbilling.example"),
        export(3 * HOUR, "newbie", 800),
    ],
    "endpoint-audit-logging-stopped": lambda: [ev("audit_log_stopped", 0, "root", host__name="app-srv-01")],
    "endpoint-removable-media-phi-workstation": lambda: [
        ev(
            "removable_media_mounted",
            0,
            None,
            host__name="ws-billing-07",
            device__id="4C5300012309",
            device__model__name="Cruzer Blade",
        )
    ],
    "endpoint-protection-disabled": lambda: [
        ev("endpoint_protection_disabled", 0, None, host__name="ws-billing-07", process__name="falcon-sensor")
    ],
}

QUIET: dict[str, Case] = {
    # A busier day that stays under 3x the median, and a new user's big first day (no history yet).
    # A busier day that stays under 3x the median, a month-end close (two runs, 2.6x), and a new user's big first
    # day (no history yet).
    "phi-export-volume-baseline": lambda: [
        *_history("alice"),
        export(8 * DAY + HOUR, "alice", 450),
        export(9 * DAY + HOUR, "alice", 520),
        export(9 * DAY + 5 * HOUR, "alice", 520),
        export(HOUR, "newbie", 4000),
    ],
    "phi-bulk-export": lambda: [
        export(HOUR, "alice", 4000),
        ev("phi_view", 0, "alice", "success", phi__record_count=9000),
    ],
    # 02:00 while learning; after learning an hour next to a usual one and a first export in the organisation's
    # working hours (15:00); an offshore user whose work (views) is at 01:00-03:00, exporting at 02:00; and a user
    # with two weeks but too few events (a thin history) exporting at 02:00.
    "phi-export-unusual-hours": lambda: sorted([
        export(17 * HOUR, "alice", 150),
        *_workdays("alice"),
        export(16 * DAY + 8 * HOUR, "alice", 150),
        export(16 * DAY + 6 * HOUR, "alice", 150),
        *_workdays("maria", view_hours=(16.0, 17.0, 17.5, 18.0, 18.5), export_hours=(16.5,)),
        export(16 * DAY + 17 * HOUR, "maria", 150),
        *[export(d * DAY + HOUR, "thin", 100) for d in range(15)],
        export(16 * DAY + 17 * HOUR, "thin", 100),
    ], key=lambda e: e.timestamp),
    # The same destination; a printer; and what used to fool it: a first download to one's own workstation and a
    # first export to an internal share, after learning.
    "phi-export-new-destination": lambda: [
        *_history("alice"),
        export(8 * DAY + HOUR, "alice", 150),
        export(8 * DAY + 2 * HOUR, "alice", 40, "prn-2f-west", "printer"),
        export(8 * DAY + 3 * HOUR, "alice", 40, "ws-billing-07", "download", action="phi_download"),
        export(8 * DAY + 4 * HOUR, "alice", 40, "\\\\fs02\\archive\\alice", "file"),
    ],
    # An offshore biller working 02:00-03:00 UTC every night at 70 patients an hour, and a day worker's evening
    # catch-up of 25 patients at 21:00.
    "phi-patient-snooping-hours": lambda: sorted(
        _team_days(8)
        + [e for d in range(9) for e in _hourly_views("nightowl", d, 17, 70, offset=d * 1000)]
        + _hourly_views("biller1", 8, 12, 25, offset=800000), key=lambda e: e.timestamp),
    # The help desk resets a user who lost their phone; they sign in from their usual address and enrol a new one.
    "account-helpdesk-takeover": lambda: [
        *_okta_logins(ALICE, 3),
        *_helpdesk_reset(ALICE, 3 * DAY),
        ev("user_login", 3 * DAY + 6 * MINUTE, ALICE, "success", source__ip=US_IP),
        _enrol(ALICE, 3 * DAY + 8 * MINUTE, US_IP),
    ],
    # A Monday of typos at the office (ten people in six hours); an internet scanner guessing 30 names the server
    # does not know from one /24 within an hour.
    "auth-password-spray-slow": lambda: (
        [ev("user_login", i * 36 * MINUTE, f"staff{i}@meridianbilling.example", "failure", source__ip="198.51.100.24")
         for i in range(10)]
        + [ev("ssh_login", i * 2 * MINUTE, f"guess{i}", "failure", source__ip=f"{SPRAY_NET}{i % 5}",
              event__reason="unknown account") for i in range(30)]
    ),
    "phi-patient-snooping": lambda: _peers() + _views("mallory", 6, 60, offset=1000),
    "phi-print-download-spike": lambda: [
        ev("phi_print", i * 12 * MINUTE, "alice", "success", phi__record_count=3) for i in range(25)
    ],
    # Denials 40 minutes apart; four mistyped one-time codes within minutes.
    # A role removed; a group membership (another rule's); a directory change that is no role.
    "account-admin-role-granted": lambda: [
        ev("admin_role_removed", 0, "it.admin@meridianbilling.example", "success", source="okta",
           user__target__name="bob@meridianbilling.example"),
        ev("user_added_to_group", HOUR, "it.admin@meridianbilling.example", "success",
           user__target__name="bob@meridianbilling.example", group__name="Claims Team"),
    ],
    # Sign-in-only consent (openid profile User.Read) is what every SSO app asks for.
    "account-oauth-broad-grant": lambda: [
        ev("oauth_app_granted", 0, ALICE, "success", source="okta", event__dataset="azure.auditlogs",
           azure__auditlogs__properties__target_resources__0__display_name="Zoom",
           azure__auditlogs__properties__target_resources__0__modified_properties__0__new_value=(
               '"Scope: openid profile email User.Read offline_access"'))
    ],
    # A clearinghouse and a colleague at work: not personal domains.
    "phi-export-personal-email": lambda: [
        ev("phi_export", 0, "jdoe", "success", source="billing", phi__record_count=40,
           phi__export__destination="claims@payer.example", destination__domain="payer.example"),
        ev("phi_export", HOUR, "jdoe", "success", source="billing", phi__record_count=4,
           phi__export__destination="ann@meridianbilling.example", destination__domain="meridianbilling.example"),
    ],
    # Forwarding to a colleague inside the organisation, and to a look-alike that is no consumer domain.
    "mail-forwarding-personal": lambda: [
        ev("mail_forwarding_set", 0, ALICE, "success", source="okta", email__to__address="bob@meridianbilling.example"),
        ev("mail_forwarding_set", HOUR, ALICE, "success", source="okta", email__to__address="ops@gmail.com.example"),
    ],
    # A lunch menu made public, a PHI file shared... with nobody (a view).
    "phi-file-shared-externally": lambda: [
        ev("file_shared_publicly", 0, ALICE, "success", source="okta", file__name="team-lunch-menu.docx"),
        ev("file_downloaded", HOUR, ALICE, "success", source="okta", file__name="claims-november.xlsx"),
    ],
    # A busy day: 60 downloads over an hour.
    "file-mass-download": lambda: [
        ev("file_downloaded", i * 60, ALICE, "success", source="okta", file__name=f"doc-{i}.pdf") for i in range(60)
    ],
    "mfa-push-bombing": lambda: (
        [e for i in range(4) for e in _mfa_fail(ALICE, i * 40 * MINUTE)]
        + [ev("mfa_verify", 5 * HOUR + i * 30, "carol", "failure",
              sentinel__authentication__factor="totp") for i in range(4)]
    ),
    # Success too late; one denial then success; mistyped codes then a good one; an Entra push left unanswered
    # once, then a sign-in with MFA satisfied.
    "mfa-failures-then-success": lambda: (
        [e for i in range(3) for e in _mfa_fail(ALICE, i * 60)]
        + [_mfa_ok(ALICE, 3 * HOUR)]
        + [e for e in _mfa_fail("bob@meridianbilling.example", 0)]
        + [_mfa_ok("bob@meridianbilling.example", 60)]
        + [ev("mfa_verify", 5 * HOUR + i * 30, "carol", "failure",
              sentinel__authentication__factor="totp") for i in range(4)]
        + [ev("mfa_verify", 5 * HOUR + 150, "carol", "success", sentinel__authentication__factor="totp")]
        + [ev("mfa_verify", 6 * HOUR, "dan@meridianbilling.example", "failure", source="okta",
              sentinel__authentication__factor="push", event__reason="MFA denied; user did not respond to mobile app "
                                                          "notification"),
           ev("user_login", 6 * HOUR + 60, "dan@meridianbilling.example", "success",
              sentinel__authentication__factor="push")]
    ),
    # A challenge; what used to fire: a user enrolling their own new phone, and a help-desk factor reset.
    "mfa-factor-change": lambda: [
        ev("mfa_challenge", 0, ALICE, sentinel__authentication__factor="push"),
        ev("mfa_factor_enrolled", HOUR, ALICE, "success", user__target__name=ALICE,
           sentinel__authentication__factor="push"),
        ev("mfa_factor_reset", 2 * HOUR, HELPDESK, "success", user__target__name="bob@meridianbilling.example"),
    ],
    "mfa-disabled": lambda: [_mfa_ok(ALICE, 0)],
    # An MFA policy being disabled outright is the high-severity rule's, not this one's.
    "mfa-policy-change": lambda: [ev("mfa_disabled", 0, "it.admin@meridianbilling.example")],
    # One account from one source, and many accounts each from its own source.
    "auth-password-spray": lambda: (
        _fails("bob", 15, 20)
        + [ev("ssh_login", i * 20, f"user{i}", "failure", source__ip=f"10.9.0.{i}") for i in range(15)]
        + [ev("ssh_login", i * 20, f"guess{i}", "failure", source__ip=SCANNER, event__reason="unknown account")
           for i in range(15)]
    ),
    "auth-brute-force-user": lambda: _fails("bob", 12, 20 * MINUTE),
    "auth-success-after-failures": lambda: [
        *_fails("bob", 3, 20),
        ev("ssh_login", 300, "bob", "success", source__ip=SCANNER),
    ],
    # The usual country, and a new user whose first sign-ins (learning) come from abroad.
    "auth-new-country": lambda: [
        *_logins(ALICE, 8),
        ev("user_login", 8 * DAY, ALICE, "success", source__ip=US_IP, source__geo__country_iso_code="US"),
        # Okta's name for the usual country now arrives as its code too (collectors/okta.yaml).
        ev("user_login", 8 * DAY + HOUR, ALICE, "success", source__ip="198.51.100.90",
           source__geo__country_name="United States", source__geo__country_iso_code="US"),
        *_logins("traveller@meridianbilling.example", 2, "RO", RO_IP),
    ],
    # A mistyped sudo password (PAM's authentication failure), then the command.
    "sudo-failure": lambda: [
        ev("sudo_failure", 0, "carol", "failure", event__reason="authentication failure"),
        ev("sudo_command", 9, "carol", "success", process__command_line="/usr/bin/df -h"),
    ],
    "auth-root-login": lambda: [
        ev("ssh_login", 0, "root", "failure", source__ip=SCANNER),
        ev("ssh_login", 0, "alice", "success", source__ip="10.1.2.5"),
    ],
    "account-dormant-activity": lambda: (
        [ev("ssh_login", d * 30 * DAY, "dave", "success") for d in range(4)]
        + [ev("ssh_login", 0, "erin", "success"), ev("ssh_login", 100 * DAY, "erin", "failure")]
    ),
    # Not listed; a name that only starts like a listed one; an account suspended for leave and unsuspended, then
    # back at work; Okta's own session clean-up right at a deactivation.
    "account-terminated-activity": lambda: [
        ev("user_login", 0, ALICE, "success", source__ip=US_IP),
        ev("ssh_login", 0, "mallory2", "failure", source__ip=SCANNER),
        ev("user_deactivated", HOUR, "it.admin@meridianbilling.example", "success", user__target__name=ALICE),
        ev("user_reactivated", 20 * DAY, "it.admin@meridianbilling.example", "success", user__target__name=ALICE),
        ev("ssh_login", 21 * DAY, "alice", "success", source__ip="10.1.2.5"),
        ev("user_deactivated", 22 * DAY, "it.admin@meridianbilling.example", "success", user__target__name="bob"),
        ev("user_sso", 22 * DAY + 30, "bob@meridianbilling.example", "success"),
    ],
    "account-privileged-group-add": lambda: [
        ev("user_added_to_group", 0, "root", user__target__name="eve", group__name="billing")
    ],
    "account-created-then-phi-export": lambda: [
        ev("user_created", 0, "it.admin@meridianbilling.example", user__target__name="newbie@meridianbilling.example"),
        export(3 * DAY, "newbie", 800),
        export(HOUR, "alice", 800),
    ],
    "endpoint-audit-logging-stopped": lambda: [ev("audit_config_changed", 0, "root", host__name="app-srv-01")],
    "endpoint-removable-media-phi-workstation": lambda: [
        ev("removable_media_mounted", 0, None, host__name="ws-dev-01", device__id="4C5300012309")
    ],
    "endpoint-protection-disabled": lambda: [
        ev("endpoint_protection_enabled", 0, None, host__name="ws-billing-07", process__name="falcon-sensor")
    ],
}


def _pack_ids() -> set[str]:
    rules, errors = load_rules(RULES, NamedLists({"terminated_accounts": None, "phi_workstations": None}))
    assert not errors
    return {r.id for r in rules}


def test_every_rule_in_the_pack_has_both_cases() -> None:
    assert set(FIRES) == _pack_ids()
    assert set(QUIET) == _pack_ids()


def _detections(alerts: list[Alert]) -> list[Alert]:
    """The alerts events raised: the dormant rule's weekly access-review listings (one per boundary the
    data spans, tests/test_digests.py) are scheduled reports, not detections."""
    return [a for a in alerts if a.labels.get("digest") != "true"]


@pytest.mark.parametrize("rule", sorted(FIRES))
def test_rule_fires(rule: str, tmp_path: Path) -> None:
    h = Harness(tmp_path, [rule], LISTS)
    alerts = _detections(h.feed(FIRES[rule]()))
    assert [a.rule_id for a in alerts] == [rule], [a.summary for a in alerts]
    alert = alerts[0]
    assert "?" not in alert.summary, alert.summary
    assert "MRN-" not in alert.summary and "MRN-" not in str(alert.labels)
    assert alert.labels["rule"] == rule and alert.runbook
    assert any(t.startswith("hipaa:") for t in alert.tags)
    assert alert.event_ids and alert.details["why"]


@pytest.mark.parametrize("rule", sorted(QUIET))
def test_rule_stays_quiet(rule: str, tmp_path: Path) -> None:
    h = Harness(tmp_path, [rule], LISTS)
    alerts = _detections(h.feed(QUIET[rule]()))
    assert alerts == [], [a.summary for a in alerts]


def test_terminated_account_is_critical(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["account-terminated-activity"], LISTS)
    alerts = h.feed(FIRES["account-terminated-activity"]())
    assert alerts[0].severity == "critical"
    assert alerts[0].labels["user.name"] == "Mallory@meridianbilling.example"


def test_snooping_alert_explains_with_peer_values(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["phi-patient-snooping"], LISTS)
    (alert,) = h.feed(FIRES["phi-patient-snooping"]())
    d = alert.details
    # Fires as soon as the day's count clears 4x the peer median (160), not at the end of the day.
    assert 160 < d["value"] <= 200 and d["peer_median"] == 40 and "peers" in d["compared_with"]
    assert f"viewed {d['value']:.0f} distinct patients today (peer median 40" in alert.summary


def test_export_baseline_summary_names_the_median(tmp_path: Path) -> None:
    h = Harness(tmp_path, ["phi-export-volume-baseline"], LISTS)
    (alert,) = h.feed(FIRES["phi-export-volume-baseline"]())
    assert alert.summary == "alice exported 3000 PHI records today: 7.5x their median of 400 over 8 days"
