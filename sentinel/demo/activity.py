"""What people and machines do, as log lines: one method per kind of activity, written into a Timeline.

The Timeline keeps each file's lines with their times; ``render`` orders them and gives every auditd
event its host's next serial, so the files come out in time order like real logs.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sentinel.demo import formats
from sentinel.demo.population import APP_HOST, GEO, OFFICE_EGRESS, REPORTS, Company, Destination, Person

AUTH, AUDIT, OKTA, ENTRA, BILLING, OSQUERY = (
    "auth.log", "audit.log", "okta.jsonl", "entra.jsonl", "billing-audit.jsonl", "osquery.jsonl")
FILES = (AUTH, AUDIT, OKTA, ENTRA, BILLING, OSQUERY)
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000

SUDO_COMMANDS = ("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl status postgresql", "/usr/bin/apt update",
                 "/usr/bin/journalctl -u claimsdesk --since today", "/usr/bin/tail -n 200 /var/log/syslog",
                 "/usr/bin/systemctl reload claimsdesk", "/usr/bin/df -h", "/usr/sbin/logrotate -f /etc/logrotate.conf",
                 "/usr/bin/docker ps", "/usr/bin/certbot renew --dry-run")
SCAN_USERS = ("admin", "test", "ubuntu", "oracle", "postgres", "user", "git", "ftpuser", "support", "guest")
PAYERS = ("Aetna", "BCBS", "Cigna", "Humana", "Medicare", "Medicaid", "UHC")
REASONS = ("denial follow-up", "appeal prep", "eligibility check", "payment posting", "coding review",
           "patient balance inquiry", "corrected claim")


@dataclass
class Timeline:
    """Lines per file with their time (ms) and an insertion counter that keeps equal times stable."""

    items: dict[str, list[tuple[int, int, str]]] = field(default_factory=lambda: {f: [] for f in FILES})
    seq: int = 0

    def add(self, file: str, ms: int, text: str) -> None:
        self.items[file].append((ms, self.seq, text))
        self.seq += 1

    def render(self, serials: dict[str, int]) -> dict[str, list[tuple[int, str]]]:
        """Each file's lines in time order; auditd serials continue from ``serials`` (updated in place)."""
        out: dict[str, list[tuple[int, str]]] = {}
        for name, items in self.items.items():
            items.sort()
            if name == AUDIT:
                rendered = []
                previous = -1
                for ms, _, text in items:
                    host = text[5:text.index(" ")]
                    serial = serials.get(host, 1000 + zlib.crc32(host.encode()) % 900_000) + 1
                    if serial == previous:
                        # Readers join adjacent records that share a serial: never let two hosts' events touch.
                        serial += 1
                    serials[host] = previous = serial
                    rendered.append((ms, text.replace(formats.AUDIT_SERIAL, str(serial))))
                out[name] = rendered
            else:
                out[name] = [(ms, text) for ms, _, text in items]
        return out


class Sim:
    """Emits the log lines of one simulated company into a timeline."""

    def __init__(self, rng: random.Random, company: Company) -> None:
        self.rng = rng
        self.company = company
        self.tl = Timeline()
        self.audit_sessions: dict[str, int] = {}
        self.osq_counter = 0
        self.host_uuids: dict[str, str] = {}
        self.geo: dict[str, tuple[str, str, str]] = {OFFICE_EGRESS: ("US", "Austin", "Texas")}
        for p in company.people:
            for ip in p.home_ips:
                self.geo[ip] = (p.country, p.city[0], p.city[1])

    # ---- small helpers -------------------------------------------------------------------------
    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def pid(self) -> int:
        return self.rng.randint(1200, 64000)

    def port(self) -> int:
        return self.rng.randint(32768, 60999)

    def jitter(self, ms: int, spread: int) -> int:
        return ms + self.rng.randint(0, spread)

    def sign_in_ip(self, p: Person, at_office: bool) -> str:
        return OFFICE_EGRESS if at_office and not p.remote else self.rng.choice(p.home_ips)

    def locate(self, ip: str, country: str | None = None) -> tuple[str, str, str]:
        if ip not in self.geo:
            code = country or "US"
            city, state = self.rng.choice(GEO[code][1])
            self.geo[ip] = (code, city, state)
        return self.geo[ip]

    # ---- auth.log (sshd, PAM, sudo, useradd/usermod) ---------------------------------------------
    def auth(self, ms: int, host: str, prog: str, pid: int | None, msg: str) -> None:
        self.tl.add(AUTH, ms, formats.syslog(ms, host, prog, pid, msg))

    def ssh_session(self, p: Person, host: str, ms: int, minutes: int, commands: Sequence[str],
                    ip: str | None = None, method: str = "publickey") -> int:
        """An admin's SSH login with sudo commands, mirrored in auditd; returns the logout time."""
        ip = ip or p.office_ip
        pid, port = self.pid(), self.port()
        key = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                      for _ in range(43))
        detail = f" ssh2: ED25519 SHA256:{key}" if method == "publickey" else " ssh2"
        self.auth(ms, host, "sshd", pid, f"Accepted {method} for {p.name} from {ip} port {port}{detail}")
        self.auth(ms + 4, host, "sshd", pid, f"pam_unix(sshd:session): session opened for user {p.name}"
                                              f"(uid={p.uid}) by (uid=0)")
        ses = self.audit_sessions.get(host, 0) + 1
        self.audit_sessions[host] = ses
        self.audit_user(ms + 6, host, "USER_LOGIN", p, ses, f'op=login acct="{p.name}" exe="/usr/sbin/sshd" '
                                                            f"hostname=? addr={ip} terminal=sshd res=success")
        end = ms + minutes * MIN
        t = ms + MIN
        for cmd in commands:
            t += self.rng.randint(20_000, max(30_000, (end - t) // max(1, len(commands))))
            if t >= end - 5000:
                t = end - 5000 - self.rng.randint(0, 3000)
            self.sudo(p, host, t, cmd, ses)
        self.auth(end, host, "sshd", pid, f"Received disconnect from {ip} port {port}:11: disconnected by user")
        self.auth(end + 1, host, "sshd", pid, f"Disconnected from user {p.name} {ip} port {port}")
        self.auth(end + 3, host, "sshd", pid, f"pam_unix(sshd:session): session closed for user {p.name}")
        self.audit_user(end + 5, host, "USER_END", p, ses, f'op=PAM:session_close acct="{p.name}" '
                                                           f'exe="/usr/sbin/sshd" hostname={ip} addr={ip} '
                                                           f"terminal=ssh res=success")
        return end + 5

    def sudo(self, p: Person, host: str, ms: int, command: str, ses: int, fail_first: bool = False) -> None:
        pid = self.pid()
        if fail_first:
            self.auth(ms - 9000, host, "sudo", pid, f"pam_unix(sudo:auth): authentication failure; logname={p.name} "
                                                    f"uid={p.uid} euid=0 tty=/dev/pts/0 ruser={p.name} rhost=  "
                                                    f"user={p.name}")
            self.auth(ms - 8000, host, "sudo", pid, f"{p.name} : 1 incorrect password attempt ; TTY=pts/0 ; "
                                                    f"PWD=/home/{p.name} ; USER=root ; COMMAND={command}")
        self.auth(ms, host, "sudo", pid, f"{p.name} : TTY=pts/0 ; PWD=/home/{p.name} ; USER=root ; "
                                         f"COMMAND={command}")
        self.auth(ms + 2, host, "sudo", pid, f"pam_unix(sudo:session): session opened for user root(uid=0) by "
                                             f"{p.name}(uid={p.uid})")
        self.auth(ms + 900, host, "sudo", pid, "pam_unix(sudo:session): session closed for user root")
        self.audit_user(ms + 1, host, "USER_CMD", p, ses, f'cwd="/home/{p.name}" cmd={formats.hexenc(command)} '
                                                         f'exe="/usr/bin/sudo" terminal=pts/0 res=success')
        exe = command.split(" ")[0]
        self.audit_syscall(ms + 3, host, p, ses, 59, "execve", exe, exe.rsplit("/", 1)[-1], [exe], "privileged",
                           command, uid=0)

    def ssh_noise(self, host: str, ms: int, ip: str, attempts: int) -> None:
        """An internet scanner trying a few common accounts against an exposed SSH server."""
        for i in range(attempts):
            t = ms + i * self.rng.randint(2000, 9000)
            pid, port = self.pid(), self.port()
            user = "root" if self.rng.random() < 0.4 else self.rng.choice(SCAN_USERS)
            if user == "root":
                self.auth(t, host, "sshd", pid, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                                                f"euid=0 tty=ssh ruser= rhost={ip}  user=root")
                self.auth(t + 2000, host, "sshd", pid, f"Failed password for root from {ip} port {port} ssh2")
                self.auth(t + 2400, host, "sshd", pid, f"Connection closed by authenticating user root {ip} "
                                                       f"port {port} [preauth]")
            else:
                self.auth(t, host, "sshd", pid, f"Invalid user {user} from {ip} port {port}")
                self.auth(t + 5, host, "sshd", pid, "pam_unix(sshd:auth): check pass; user unknown")
                self.auth(t + 2000, host, "sshd", pid, f"Failed password for invalid user {user} from {ip} port "
                                                       f"{port} ssh2")
                self.auth(t + 2400, host, "sshd", pid, f"Connection closed by invalid user {user} {ip} port "
                                                       f"{port} [preauth]")

    def ssh_failed_password(self, host: str, ms: int, user: str, ip: str) -> None:
        pid, port = self.pid(), self.port()
        self.auth(ms, host, "sshd", pid, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                                         f"tty=ssh ruser= rhost={ip}  user={user}")
        self.auth(ms + 1800, host, "sshd", pid, f"Failed password for {user} from {ip} port {port} ssh2")

    def service_account_login(self, host: str, ms: int, user: str, uid: int, ip: str) -> None:
        pid, port = self.pid(), self.port()
        self.auth(ms, host, "sshd", pid, f"Accepted publickey for {user} from {ip} port {port} ssh2: RSA "
                                         f"SHA256:q3X9vJpN2mLr8TzYc7WkHb5sFdGa1uEo6iRtQyZxV0M")
        self.auth(ms + 3, host, "sshd", pid, f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) "
                                             f"by (uid=0)")
        end = ms + self.rng.randint(20_000, 600_000)
        self.auth(end, host, "sshd", pid, f"Received disconnect from {ip} port {port}:11: disconnected by user")
        self.auth(end + 2, host, "sshd", pid, f"pam_unix(sshd:session): session closed for user {user}")

    def useradd(self, host: str, ms: int, name: str, uid: int, groups: Sequence[str]) -> None:
        """Onboarding on a Linux server: useradd, then usermod -aG for each group."""
        pid = self.pid()
        self.auth(ms, host, "useradd", pid, f"new group: name={name}, GID={uid}")
        self.auth(ms + 3, host, "useradd", pid, f"new user: name={name}, UID={uid}, GID={uid}, home=/home/{name}, "
                                                f"shell=/bin/bash, from=/dev/pts/0")
        for g in groups:
            self.group_add(host, ms + 60_000, name, g)

    def group_add(self, host: str, ms: int, name: str, group: str) -> None:
        pid = self.pid()
        self.auth(ms, host, "usermod", pid, f"add '{name}' to group '{group}'")
        self.auth(ms + 1, host, "usermod", pid, f"add '{name}' to shadow group '{group}'")

    # ---- audit.log --------------------------------------------------------------------------------
    def audit(self, ms: int, host: str, records: list[tuple[str, str]]) -> None:
        self.tl.add(AUDIT, ms, formats.audit(ms, host, records))

    def audit_user(self, ms: int, host: str, rtype: str, p: Person | None, ses: int, msg: str) -> None:
        auid = p.uid if p else 4294967295
        self.audit(ms, host, [(rtype, f"pid={self.pid()} uid=0 auid={auid} ses={ses} "
                                      f"subj=unconfined msg='{msg}'")])

    def audit_syscall(self, ms: int, host: str, p: Person, ses: int, number: int, name: str, exe: str, comm: str,
                      paths: Sequence[str], key: str, proctitle: str, uid: int | None = None) -> None:
        """SYSCALL + PATH records + PROCTITLE (+ EOE), enriched like auditd's default log format."""
        uid = p.uid if uid is None else uid
        success = "yes"
        syscall = (f"arch=c000003e syscall={number} success={success} exit=0 a0=7ffd1c2e a1=0 a2=0 a3=0 "
                   f"items={len(paths)} ppid={self.pid()} pid={self.pid()} auid={p.uid} uid={uid} gid={uid} "
                   f"euid={uid} suid={uid} fsuid={uid} egid={uid} sgid={uid} fsgid={uid} tty=pts0 ses={ses} "
                   f'comm="{comm}" exe="{exe}" subj=unconfined key="{key}"'
                   f'\x1dARCH=x86_64 SYSCALL={name} AUID="{p.name}" UID="{"root" if uid == 0 else p.name}"')
        records = [("SYSCALL", syscall)]
        for i, path in enumerate(paths):
            records.append(("PATH", f'item={i} name="{path}" inode={self.rng.randint(10_000, 9_999_999)} '
                                    f"dev=08:11 mode=0100644 ouid={uid} ogid={uid} rdev=00:00 "
                                    f"nametype={'CREATE' if key == 'usb_copy' else 'NORMAL'} cap_fp=0 cap_fi=0 "
                                    f"cap_fe=0 cap_fver=0"))
        records.append(("PROCTITLE", f"proctitle={formats.hexenc(proctitle)}"))
        self.audit(ms, host, records)

    def audit_service(self, ms: int, host: str, unit: str, stop: bool, by: Person | None = None) -> None:
        rtype = "SERVICE_STOP" if stop else "SERVICE_START"
        self.audit(ms, host, [(rtype, f"pid=1 uid=0 auid={by.uid if by else 4294967295} "
                                      f"ses={self.audit_sessions.get(host, 4294967295)} subj=unconfined "
                                      f"msg='unit={unit} comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" "
                                      f"hostname=? addr=? terminal=? res=success'")])

    def workstation_login(self, p: Person, ms: int) -> None:
        host = p.workstation
        ses = self.audit_sessions.get(host, 0) + 1
        self.audit_sessions[host] = ses
        self.audit_user(ms, host, "USER_LOGIN", p, ses, f'op=login acct="{p.name}" '
                                                        f'exe="/usr/libexec/gdm-session-worker" hostname={host} '
                                                        f"addr=? terminal=/dev/tty2 res=success")

    # ---- Okta -------------------------------------------------------------------------------------
    def okta_actor(self, p: Person) -> dict[str, object]:
        return {"id": p.okta_id, "type": "User", "alternateId": p.email, "displayName": p.display,
                "detailEntry": None}

    def okta_client(self, ip: str, ua: str, country: str | None = None) -> dict[str, object]:
        code, city, state = self.locate(ip, country)
        os_name = "Windows 10" if "Windows" in ua else ("Mac OS X" if "Mac" in ua else "Linux")
        browser = "FIREFOX" if "Firefox" in ua else ("SAFARI" if "Safari/605" in ua else "CHROME")
        return {"userAgent": {"rawUserAgent": ua, "os": os_name, "browser": browser}, "zone": "null",
                "device": "Computer", "id": None, "ipAddress": ip,
                "geographicalContext": {"city": city, "state": state, "country": GEO[code][0], "postalCode": None}}

    def okta(self, ms: int, p: Person, event_type: str, display: str, ip: str, result: str = "SUCCESS",
             reason: str | None = None, targets: list[dict[str, object]] | None = None, factor: str | None = None,
             severity: str = "INFO", session: str | None = None, country: str | None = None,
             ua: str | None = None) -> None:
        self.tl.add(OKTA, ms, formats.okta(ms, self.uuid(), event_type, display, self.okta_actor(p),
                                           self.okta_client(ip, ua or p.user_agent, country), result, reason,
                                           targets, factor, session, severity, self.uuid().replace("-", "")[:20]))

    def okta_target(self, p: Person) -> dict[str, object]:
        return {"id": p.okta_id, "type": "User", "alternateId": p.email, "displayName": p.display,
                "detailEntry": None}

    def okta_login(self, p: Person, ms: int, ip: str, denies: int = 0, typo: bool = False,
                   country: str | None = None, ua: str | None = None, push_gap_ms: int = 25_000) -> int:
        """Password, Okta Verify push (denied ``denies`` times first), session start; returns the end time."""
        session = "102" + self.uuid().replace("-", "")[:22]
        t = ms
        if typo:
            self.okta(t, p, "user.session.start", "User login to Okta", ip, "FAILURE", "INVALID_CREDENTIALS",
                      session=session, country=country, ua=ua)
            t += self.rng.randint(8000, 30_000)
        for _ in range(denies):
            self.okta(t, p, "system.push.send_factor_verify_push", "Push notification sent for verification", ip,
                      factor="OKTA_VERIFY_PUSH", session=session, country=country, ua=ua)
            t += self.rng.randint(push_gap_ms // 3, push_gap_ms)
            self.okta(t, p, "user.mfa.okta_verify.deny_push", "User rejected Okta push verify", ip, "FAILURE",
                      "User rejected Okta push verify", factor="OKTA_VERIFY_PUSH", severity="WARN",
                      session=session, country=country, ua=ua)
            self.okta(t + 40, p, "user.authentication.auth_via_mfa", "Authentication of user via MFA", ip,
                      "FAILURE", "INVALID_CREDENTIALS", factor="OKTA_VERIFY_PUSH", severity="WARN",
                      session=session, country=country, ua=ua)
            t += self.rng.randint(push_gap_ms // 10, push_gap_ms // 4)
        self.okta(t, p, "system.push.send_factor_verify_push", "Push notification sent for verification", ip,
                  factor="OKTA_VERIFY_PUSH", session=session, country=country, ua=ua)
        t += self.rng.randint(3000, 12_000)
        self.okta(t, p, "user.authentication.auth_via_mfa", "Authentication of user via MFA", ip,
                  factor="OKTA_VERIFY_PUSH", session=session, country=country, ua=ua)
        self.okta(t + 150, p, "user.session.start", "User login to Okta", ip, session=session, country=country,
                  ua=ua)
        return t + 150

    def okta_admin(self, ms: int, admin: Person, event_type: str, display: str, targets: list[dict[str, object]],
                   factor: str | None = None) -> None:
        self.okta(ms, admin, event_type, display, OFFICE_EGRESS, targets=targets, factor=factor)

    # ---- Entra ID ---------------------------------------------------------------------------------
    def entra(self, p: Person, ms: int, ip: str, error: int = 0, country: str | None = None,
              app: str = "Office 365 Exchange Online") -> None:
        code, city, state = self.locate(ip, country)
        failure = {0: "Other.", 50074: "Strong Authentication is required.",
                   50126: "Error validating credentials due to invalid username or password.",
                   500121: "Authentication failed during strong authentication request."}[error]
        if error == 50126:
            methods = [{"authenticationMethod": "Password", "succeeded": False, "authenticationStepResultDetail":
                        "Invalid username or password or Invalid on-premise username or password."}]
        elif error == 50074:
            methods = [{"authenticationMethod": "Password", "succeeded": True,
                        "authenticationStepResultDetail": "Correct password"}]
        else:
            methods = [{"authenticationMethod": "Password", "succeeded": True,
                        "authenticationStepResultDetail": "Correct password"},
                       {"authenticationMethod": "Mobile app notification", "succeeded": error == 0,
                        "authenticationStepResultDetail": "MFA successfully completed" if error == 0
                        else "MFA denied; user declined the authentication"}]
        ua = p.user_agent
        os_name = "Windows10" if "Windows" in ua else ("MacOs" if "Mac" in ua else "Linux")
        browser = "Edge 131.0.0" if "Edg/" in ua else ("Firefox 132.0" if "Firefox" in ua else "Chrome 131.0.0")
        self.tl.add(ENTRA, ms, formats.entra(ms, self.company.tenant_id, self.uuid(), self.uuid(), _guid(p.okta_id),
                                             p.email, p.display, ip,
                                             code, city, state, error, failure, methods, app, "Browser", os_name,
                                             browser, ua))

    def entra_signin(self, p: Person, ms: int, ip: str, interrupt: bool = False, country: str | None = None) -> None:
        app = self.rng.choice(("Office 365 Exchange Online", "Microsoft Teams", "OfficeHome", "SharePoint Online"))
        if interrupt:
            self.entra(p, ms, ip, 50074, country, app)
            ms += self.rng.randint(5000, 20_000)
        self.entra(p, ms, ip, 0, country, app)

    # ---- billing app ------------------------------------------------------------------------------
    def bill(self, ms: int, p: Person, session: str, event: str, ip: str | None = None, **kw: Any) -> None:
        self.tl.add(BILLING, ms, formats.billing(ms, event, p.name, p.user_id, p.app_role, session,
                                                 ip or p.office_ip, p.workstation, app_host=APP_HOST, **kw))

    def new_app_session(self) -> str:
        return f"s-{self.rng.getrandbits(32):08x}"

    def view(self, ms: int, p: Person, session: str, mrn: str, reason: str | None = None,
             ip: str | None = None) -> None:
        self.bill(ms, p, session, "view", ip, patients=1, records=self.rng.randint(1, 6), patient_ids=[mrn],
                  reason=reason)

    def search(self, ms: int, p: Person, session: str, pool: Sequence[str]) -> None:
        n = self.rng.randint(1, 25)
        found = self.rng.sample(list(pool), min(n, len(pool)))
        query = f"payer:{self.rng.choice(PAYERS)} status:{self.rng.choice(('denied', 'pending', 'paid'))}"
        self.bill(ms, p, session, "search", patients=len(found), records=len(found) * self.rng.randint(1, 4),
                  patient_ids=found[:20], query=query)

    def export(self, ms: int, p: Person, session: str, dest: Destination, records: int, pool: Sequence[str],
               event: str = "export", report: str | None = None, fmt: str = "csv", ip: str | None = None) -> None:
        patients = max(1, records // self.rng.randint(3, 8))
        ids = self.rng.sample(list(pool), min(patients, len(pool), 50))
        self.bill(ms, p, session, event, ip, patients=patients, records=records, patient_ids=ids,
                  destination=(dest.type, dest.target), fmt=fmt,
                  nbytes=records * self.rng.randint(150, 260), report=report or REPORTS[p.index % len(REPORTS)])

    # ---- osquery ----------------------------------------------------------------------------------
    def osq(self, ms: int, host: str, name: str, columns: dict[str, str], action: str = "added") -> None:
        if host not in self.host_uuids:
            self.host_uuids[host] = self.uuid().upper()
        self.osq_counter += 1
        self.tl.add(OSQUERY, ms, formats.osquery(ms, name, host, self.host_uuids[host], self.osq_counter, columns,
                                                 action))

    def protection_status(self, ms: int, host: str, running: bool, action: str = "added") -> None:
        self.osq(ms, host, "pack_endpoint_endpoint_protection",
                 {"id": "falcon-sensor.service", "description": "CrowdStrike Falcon Sensor",
                  "load_state": "loaded", "active_state": "active" if running else "inactive",
                  "sub_state": "running" if running else "dead", "name": "falcon-sensor",
                  "status": "running" if running else "stopped"}, action)

    def usb_device(self, ms: int, host: str, storage: bool, serial: str) -> None:
        if storage:
            cols = {"usb_address": "2", "usb_port": "3", "vendor": "SanDisk", "vendor_id": "0781",
                    "model": "Cruzer_Blade", "model_id": "5567", "serial": serial, "class": "8", "subclass": "6",
                    "protocol": "80", "removable": "1", "version": "1.00"}
        else:
            cols = {"usb_address": "1", "usb_port": "2", "vendor": "Logitech, Inc.", "vendor_id": "046d",
                    "model": "USB_Receiver", "model_id": "c52b", "serial": serial, "class": "3", "subclass": "1",
                    "protocol": "1", "removable": "0", "version": "12.11"}
        self.osq(ms, host, "pack_endpoint_usb_devices", cols)

    def usb_mount(self, ms: int, p: Person, host: str, serial: str) -> None:
        """A USB stick mounted: osquery sees the mount, auditd the mount(2) call."""
        self.osq(ms + 1500, host, "pack_endpoint_removable_mounts",
                 {"device": "/dev/sdb1", "device_alias": "/dev/sdb1", "path": "/media/usb0", "type": "vfat",
                  "blocks_size": "4096", "blocks": "3784448", "flags": "rw,nosuid,nodev,relatime",
                  "serial": serial})
        ses = self.audit_sessions.get(host, 1)
        self.audit_syscall(ms, host, p, ses, 165, "mount", "/usr/bin/mount", "mount", ["/dev/sdb1", "/media/usb0"],
                           "removable_media", "mount -t vfat /dev/sdb1 /media/usb0", uid=0)

    def usb_copy(self, ms: int, p: Person, host: str, filename: str) -> None:
        ses = self.audit_sessions.get(host, 1)
        self.audit_syscall(ms, host, p, ses, 257, "openat", "/usr/bin/cp", "cp",
                           ["/media/usb0/", f"/media/usb0/{filename}"], "usb_copy",
                           f"cp /home/{p.name}/Downloads/{filename} /media/usb0/")


def _guid(okta_id: str) -> str:
    h = okta_id.encode().hex()[:32].ljust(32, "0")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
