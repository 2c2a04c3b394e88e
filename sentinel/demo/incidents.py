"""Planted incidents: each one writes its lines into the simulation and says which rules should fire."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sentinel.demo.activity import DAY, HOUR, MIN, Sim
from sentinel.demo.population import OFFICE_EGRESS, Destination, Person, okta_id, public_ip

DORMANT_GAP_DAYS = 131
SPRAY_IP = "185.220.101.47"
PRIVILEGED_GROUP = "sudo"


@dataclass
class Incident:
    """One planted incident and the rule ids a good rule pack raises for it."""

    name: str
    description: str
    user: str | None
    host: str | None
    start: datetime
    end: datetime
    expected_rules: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat().replace("+00:00", "Z")
        d["end"] = self.end.isoformat().replace("+00:00", "Z")
        return d


def when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class Cast:
    """Who plays which part; chosen before the background so some people can be kept silent."""

    leavers: list[Person]
    dormant: Person | None = None
    roles: dict[str, Person] = field(default_factory=dict)

    @property
    def absent(self) -> list[str]:
        """People with no ordinary activity at all: the terminated and the dormant account."""
        names = [p.name for p in self.leavers]
        return names + ([self.dormant.name] if self.dormant else [])


def choose_cast(sim: Sim, incidents: bool) -> Cast:
    """Pick leavers (always) and, with incidents, one distinct person per incident part."""
    rng = sim.rng
    people = sim.company.people
    pool = sorted((p for p in people if p.role in ("biller", "coder", "support")), key=lambda p: p.index)
    leavers = rng.sample(pool, min(3, max(1, len(pool) // 20)))
    cast = Cast(leavers)
    if not incidents:
        return cast
    taken = {p.name for p in leavers}

    def pick(role: str | None, part: str, need: Any = None) -> None:
        options = [p for p in people if p.name not in taken and (role is None or p.role == role)
                   and (need is None or need(p))]
        if not options:
            options = [p for p in people if p.name not in taken] or list(people)
        chosen = rng.choice(options)
        taken.add(chosen.name)
        cast.roles[part] = chosen

    pick("biller", "dormant")
    cast.dormant = cast.roles.pop("dormant")
    pick("biller", "creep", lambda p: p.export_mean >= 300)
    for part in ("burst", "new_destination", "brute_force", "snooping", "usb", "group_target"):
        pick("biller", part)
    pick(None, "push_bombing", lambda p: p.role != "admin")
    pick(None, "new_country", lambda p: p.entra and p.country == "US")
    for part in ("group_admin", "audit_stop"):
        pick("admin", part)
    return cast


class Planter:
    """Writes the incidents into the simulation, placed relative to the end of the simulated period."""

    def __init__(self, sim: Sim, cast: Cast, start_ms: int, days: int) -> None:
        self.sim = sim
        self.cast = cast
        self.start_ms = start_ms
        self.days = days

    def day(self, days_before_last: int) -> int:
        """Midnight of the day ``days_before_last`` days before the last simulated day (clamped to the first)."""
        return self.start_ms + max(0, self.days - 1 - days_before_last) * DAY

    def plant(self) -> list[Incident]:
        out = [self.dormant(), self.terminated()]
        if self.days >= 6:
            out.append(self.export_creep())
        out += [self.export_burst(), self.new_destination(), self.push_bombing(), self.password_spray(),
                self.brute_force(), self.usb_on_phi_workstation(), self.protection_disabled(), self.snooping(),
                self.privileged_group_add(), self.new_country(), self.audit_stopped()]
        return out

    # ---- PHI access and export ----------------------------------------------------------------------
    def _session(self, p: Person, ms: int, ip: str | None = None) -> str:
        session = self.sim.new_app_session()
        self.sim.bill(ms, p, session, "login", ip)
        return session

    def export_creep(self) -> Incident:
        p = self.cast.roles["creep"]
        first = self.day(4)
        growth = (2.0, 3.0, 5.0, 8.0, 12.0)
        t = first
        for k, factor in enumerate(growth):
            t = self.day(4 - k) + p.export_hours[-1] * HOUR + self.sim.rng.randint(0, 40 * MIN)
            session = self._session(p, t - 2 * MIN)
            extra = int(p.export_mean * factor)
            # Several ordinary-sized exports rather than one big one: a creep, not a burst.
            for _ in range(-(-extra // 1200)):
                self.sim.export(t, p, session, p.destinations[0], min(1200, extra), p.panel, report="claims_by_payer")
                extra -= 1200
                t += self.sim.rng.randint(2 * MIN, 6 * MIN)
            self.sim.bill(t + 3 * MIN, p, session, "logout")
        return Incident("export-creep", f"{p.name}'s daily export volume grows day after day, to about twelve "
                        "times their usual volume, to their usual destination", p.name, None,
                        when(first + p.export_hours[-1] * HOUR),
                        when(t), ["phi-export-volume-baseline"], {"usual_records": p.export_mean})

    def export_burst(self) -> Incident:
        p = self.cast.roles["burst"]
        sim = self.sim
        day = self.day(1)
        home = p.home_ips[0]
        sim.okta_login(p, day + 1 * HOUR + 52 * MIN, home)
        vpn = f"10.30.9.{40 + p.index % 200}"
        session = self._session(p, day + 1 * HOUR + 58 * MIN, vpn)
        t = day + 2 * HOUR + 3 * MIN
        total = 0
        for _ in range(12):
            records = sim.rng.randint(3000, 8000)
            total += records
            sim.export(t, p, session, p.destinations[0], records, sim.company.patients, report="patient_ledger",
                       ip=vpn)
            t += sim.rng.randint(60_000, 150_000)
        sim.bill(t, p, session, "logout", vpn)
        return Incident("export-burst-night", f"{p.name} exports {total} records in twelve exports around 02:00",
                        p.name, None, when(day + 2 * HOUR + 3 * MIN), when(t),
                        ["phi-bulk-export", "phi-export-unusual-hours", "phi-export-volume-baseline"],
                        {"records": total})

    def new_destination(self) -> Incident:
        p = self.cast.roles["new_destination"]
        sim = self.sim
        at = self.day(2) + p.export_hours[0] * HOUR
        session = self._session(p, at)
        personal = Destination("email", f"{p.name}.{1970 + p.index % 30}@gmail.com")
        usb = Destination("removable_media", f"/media/{p.name}/KINGSTON")
        sim.export(at + 20 * MIN, p, session, personal, p.export_mean, p.panel, report="aging_ar")
        sim.export(at + 35 * MIN, p, session, usb, p.export_mean, p.panel, report="aging_ar", fmt="xlsx")
        sim.bill(at + 40 * MIN, p, session, "logout")
        return Incident("export-new-destination", f"{p.name} exports to a personal gmail.com address and to a USB "
                        "drive, neither used before", p.name, None, when(at + 20 * MIN),
                        when(at + 35 * MIN), ["phi-export-new-destination"],
                        {"destinations": [personal.target, usb.target]})

    def snooping(self) -> Incident:
        p = self.cast.roles["snooping"]
        sim = self.sim
        day = self.day(2)
        session = self._session(p, day + 9 * HOUR)
        targets = sim.rng.sample(sim.company.patients, min(700, len(sim.company.patients)))
        span = 7 * HOUR
        times = sorted(day + 9 * HOUR + MIN + sim.rng.randint(0, span) for _ in targets)
        for t, mrn in zip(times, targets, strict=True):
            sim.view(t, p, session, mrn)
        sim.bill(times[-1] + MIN, p, session, "logout")
        return Incident("patient-snooping", f"{p.name} opens {len(targets)} distinct patients' records in one day, "
                        "about ten times their peers", p.name, None, when(times[0]), when(times[-1]),
                        ["phi-patient-snooping"], {"patients": len(targets)})

    # ---- authentication and MFA -------------------------------------------------------------------
    def push_bombing(self) -> Incident:
        p = self.cast.roles["push_bombing"]
        sim = self.sim
        ms = self.day(1) + 23 * HOUR + 10 * MIN
        ip = public_ip(sim.rng, p.country)
        end = sim.okta_login(p, ms, ip, denies=14, push_gap_ms=20_000, country=p.country)
        return Incident("mfa-push-bombing", f"fourteen Okta Verify pushes to {p.name} denied within minutes, then "
                        "one accepted", p.email, None, when(ms), when(end),
                        ["mfa-push-bombing", "mfa-failures-then-success"], {"source_ip": ip})

    def password_spray(self) -> Incident:
        sim = self.sim
        ms = self.day(3) + 3 * HOUR + 20 * MIN
        absent = set(self.cast.absent)
        victims = sim.rng.sample([p for p in sim.company.people if p.name not in absent],
                                 min(45, len(sim.company.people) - len(absent)))
        t = ms
        for v in victims:
            sim.okta(t, v, "user.session.start", "User login to Okta", SPRAY_IP, "FAILURE", "INVALID_CREDENTIALS",
                     country="DE", ua="python-requests/2.31.0")
            t += sim.rng.randint(12_000, 25_000)
        return Incident("password-spray", f"one address tries a password against {len(victims)} Okta accounts",
                        None, None, when(ms), when(t), ["auth-password-spray"],
                        {"source_ip": SPRAY_IP, "users": len(victims)})

    def brute_force(self) -> Incident:
        p = self.cast.roles["brute_force"]
        sim = self.sim
        ms = self.day(4) + 21 * HOUR + 40 * MIN
        ip = public_ip(sim.rng, "RO")
        t = ms
        for _ in range(30):
            sim.ssh_failed_password("sftp01", t, p.name, ip)
            t += sim.rng.randint(8000, 15_000)
        end = sim.ssh_session(p, "sftp01", t, 3, [], ip=ip, method="password")
        return Incident("ssh-brute-force", f"thirty wrong passwords for {p.name} on sftp01 from one address, then a "
                        "successful login", p.name, "sftp01", when(ms), when(end),
                        ["auth-brute-force-user", "auth-success-after-failures"], {"source_ip": ip})

    def new_country(self) -> Incident:
        p = self.cast.roles["new_country"]
        sim = self.sim
        ms = self.day(1) + 3 * HOUR + 12 * MIN
        ip = public_ip(sim.rng, "NG")
        sim.entra_signin(p, ms, ip, interrupt=True, country="NG")
        return Incident("sign-in-new-country", f"{p.name} signs in to Microsoft 365 from Nigeria, never seen before",
                        p.email, None, when(ms), when(ms + 20_000), ["auth-new-country"],
                        {"source_ip": ip, "country": "NG"})

    # ---- account lifecycle --------------------------------------------------------------------------
    def dormant(self) -> Incident:
        p = self.cast.dormant
        assert p is not None
        sim = self.sim
        old = self.start_ms - DORMANT_GAP_DAYS * DAY + 9 * HOUR + 10 * MIN
        ip = sim.sign_in_ip(p, True)
        sim.okta_login(p, old, ip)
        session = self._session(p, old + 3 * MIN)
        for i in range(5):
            sim.view(old + (5 + i) * MIN, p, session, p.panel[i])
        sim.bill(old + 20 * MIN, p, session, "logout")
        wake = self.day(2) + 10 * HOUR + 15 * MIN
        sim.okta_login(p, wake, p.home_ips[0])
        session = self._session(p, wake + 5 * MIN)
        for i in range(25):
            sim.view(wake + (6 + i * 2) * MIN, p, session, p.panel[10 + i])
        sim.export(wake + 70 * MIN, p, session, p.destinations[0], p.export_mean, p.panel)
        sim.bill(wake + 75 * MIN, p, session, "logout")
        idle = (wake - old) // DAY
        return Incident("dormant-account-wakes", f"{p.name}, idle for {idle} days, signs in and exports", p.name,
                        None, when(wake), when(wake + 75 * MIN),
                        ["account-dormant-activity"], {"last_seen_before": when(old + 20 * MIN).isoformat(),
                                                       "email": p.email})

    def terminated(self) -> Incident:
        p = self.cast.leavers[0]
        sim = self.sim
        ms = self.day(4) + 18 * HOUR + 45 * MIN
        vpn = "10.30.9.201"
        session = self._session(p, ms, vpn)
        for i in range(15):
            sim.view(ms + (1 + i) * MIN, p, session, p.panel[i], ip=vpn)
        sim.export(ms + 20 * MIN, p, session, p.destinations[0], p.export_mean, p.panel, ip=vpn)
        sim.bill(ms + 22 * MIN, p, session, "logout", vpn)
        return Incident("terminated-account-login", f"{p.name}, on the terminated-accounts list, logs in to the "
                        "billing app over VPN and exports", p.name, None, when(ms), when(ms + 22 * MIN),
                        ["account-terminated-activity"], {"source_ip": vpn})

    def privileged_group_add(self) -> Incident:
        admin, target = self.cast.roles["group_admin"], self.cast.roles["group_target"]
        sim = self.sim
        ms = self.day(3) + 11 * HOUR + 5 * MIN
        sim.ssh_session(admin, "jump01", ms, 6, [])
        t = ms + 2 * MIN
        sim.sudo(admin, "jump01", t, f"/usr/sbin/usermod -aG {PRIVILEGED_GROUP} {target.name}",
                 sim.audit_sessions["jump01"])
        sim.group_add("jump01", t + 300, target.name, PRIVILEGED_GROUP)
        return Incident("privileged-group-add", f"{admin.name} adds biller {target.name} to the '{PRIVILEGED_GROUP}' "
                        "group on jump01", target.name, "jump01", when(t), when(t + 300),
                        ["account-privileged-group-add"], {"actor": admin.name, "group": PRIVILEGED_GROUP})

    # ---- endpoint ---------------------------------------------------------------------------------------
    def protection_disabled(self) -> Incident:
        p = self.cast.roles["usb"]
        host = p.workstation
        ms = self.day(1) + 16 * HOUR + 48 * MIN
        self.sim.audit_service(ms, host, "falcon-sensor", stop=True, by=p)
        self.sim.protection_status(ms + 20_000, host, True, "removed")
        self.sim.protection_status(ms + 20_000, host, False, "added")
        return Incident("endpoint-protection-stopped", f"the falcon-sensor service is stopped on {host}", p.name,
                        host, when(ms), when(ms + 20_000), ["endpoint-protection-disabled"])

    def usb_on_phi_workstation(self) -> Incident:
        p = self.cast.roles["usb"]
        sim = self.sim
        host = p.workstation
        ms = self.day(1) + 16 * HOUR + 55 * MIN
        serial = "4C530001230822115524"
        sim.usb_device(ms - 2000, host, True, serial)
        sim.usb_mount(ms, p, host, serial)
        files = ["claims_2026_q4.csv", "remittance_batch_1187.csv", "patient_ledger.xlsx", "denials_oct.csv",
                 "eob_scans.zip", "aging_ar_full.csv"]
        t = ms + MIN
        for f in files:
            sim.usb_copy(t, p, host, f)
            t += sim.rng.randint(20_000, 70_000)
        return Incident("usb-copy-phi-workstation", f"a USB stick is mounted on PHI workstation {host} and "
                        f"{len(files)} files are copied to it", p.name, host, when(ms), when(t),
                        ["endpoint-removable-media-phi-workstation"], {"files": files})

    def audit_stopped(self) -> Incident:
        p = self.cast.roles["audit_stop"]
        sim = self.sim
        ms = self.day(2) + 22 * HOUR + 5 * MIN
        vpn = f"10.30.5.{60 + p.index % 150}"
        sim.ssh_session(p, "db01", ms, 10, [], ip=vpn)
        t = ms + 3 * MIN
        ses = sim.audit_sessions["db01"]
        sim.sudo(p, "db01", t, "/usr/bin/systemctl stop auditd", ses)
        sim.audit_service(t + 500, "db01", "auditd", stop=True, by=p)
        sim.audit(t + 600, "db01", [("DAEMON_END", f"op=terminate auid={p.uid} uid=0 ses={ses} pid=1 "
                                                   "subj=system_u:system_r:init_t:s0 res=success")])
        return Incident("audit-daemon-stopped", f"{p.name} stops auditd on db01 late in the evening", p.name, "db01",
                        when(t), when(t + 600), ["endpoint-audit-logging-stopped"])


def company_events(sim: Sim, cast: Cast, start_ms: int, days: int) -> None:
    """Ordinary account administration: a new hire, a helpdesk MFA reset, a lockout, a leaver, a policy change."""
    rng = sim.rng
    admins = sim.company.by_role("admin")
    if not admins:
        return
    admin = admins[0]
    absent = set(cast.absent)
    active = [p for p in sim.company.people if p.name not in absent and p.role != "admin"]
    day = start_ms + min(2, days - 1) * DAY
    taken = {p.name for p in sim.company.people}
    hire_name = next(n for n in ("tnakamura", "tnakamura2", "tnakamura3", "tnakamura4") if n not in taken)
    hire = replace(active[-1], name=hire_name, display="Taro Nakamura", okta_id=okta_id(rng), uid=1900)
    t = day + 10 * HOUR + rng.randint(0, HOUR)
    sim.okta_admin(t, admin, "user.lifecycle.create", "Create okta user", [sim.okta_target(hire)])
    sim.okta_admin(t + 40_000, admin, "group.user_membership.add", "Add user to group membership",
                   [sim.okta_target(hire), {"id": "00g1billing", "type": "UserGroup", "alternateId": "unknown",
                                             "displayName": "Billing Team", "detailEntry": None}])
    sim.okta(t + 30 * MIN, hire, "user.mfa.factor.activate", "Activate factor or authenticator", OFFICE_EGRESS,
             targets=[sim.okta_target(hire)], factor="OKTA_VERIFY_PUSH")
    sim.useradd("app01", t + 5 * MIN, hire.name, hire.uid, ["billing"])
    reset = active[len(active) // 2]
    t = start_ms + min(4, days - 1) * DAY + 9 * HOUR + rng.randint(0, 3 * HOUR)
    sim.okta_admin(t, admin, "user.mfa.factor.reset_all", "Reset all factors for user", [sim.okta_target(reset)])
    sim.okta_admin(t + 5000, admin, "user.mfa.factor.deactivate", "Reset factor or authenticator",
                   [sim.okta_target(reset)], factor="OKTA_VERIFY_PUSH")
    sim.okta(t + 15 * MIN, reset, "user.mfa.factor.activate", "Activate factor or authenticator", OFFICE_EGRESS,
             targets=[sim.okta_target(reset)], factor="OKTA_VERIFY_PUSH")
    locked = active[len(active) // 3]
    t = start_ms + min(6, days - 1) * DAY + 8 * HOUR + rng.randint(0, HOUR)
    for i in range(4):
        sim.okta(t + i * 40_000, locked, "user.session.start", "User login to Okta", sim.sign_in_ip(locked, True),
                 "FAILURE", "INVALID_CREDENTIALS")
    sim.okta(t + 170_000, locked, "user.account.lock", "Max sign in attempts exceeded", sim.sign_in_ip(locked, True),
             "FAILURE", "LOCKED_OUT", severity="WARN", targets=[sim.okta_target(locked)])
    if len(cast.leavers) > 1:
        leaver = cast.leavers[1]
        sim.okta_admin(start_ms + 9 * HOUR + 30 * MIN, admin, "user.lifecycle.deactivate", "Deactivate Okta user",
                       [sim.okta_target(leaver)])
    t = start_ms + min(5, days - 1) * DAY + 15 * HOUR
    sim.okta_admin(t, admin, "policy.lifecycle.update", "Update policy",
                   [{"id": "00p1signon", "type": "PolicyEntity", "alternateId": "unknown",
                     "displayName": "Default sign-on policy", "detailEntry": {"policyType": "OktaSignOn"}}])

