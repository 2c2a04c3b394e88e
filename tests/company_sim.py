"""A realistic background for measuring detection quality: weeks of a ~100-person medical billing company.

Written independently of ``sentinel.demo``'s simulation (only its ``formats`` module is reused, so every line is
in its source's real shape): staff in several time zones with DST (Chicago office, remote staff in New York,
Denver and Phoenix, an offshore team in Manila), weekends, US holidays, month-end peaks, new hires and leavers,
domestic travel, password typos, phone changes, a nightly batch export, internet scanners on the bastion, sudo
on the servers, systemd-logind and cron noise. Okta is in its Identity Engine form, Entra in its sign-in log
form. On top, ``plant`` adds the attack shapes of issue #21 and a benign look-alike of each.

``simulate(weeks, seed)`` returns each file's lines in time order and the ground truth; the same arguments
always give the same lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sentinel.demo import formats

DOMAIN = "harborclaims.com"
OFFICE_ZONE = ZoneInfo("America/Chicago")
OFFICE_EGRESS = "198.51.100.24"
BASTION = "bastion01"
SERVERS = ("app01", "db01", "sftp01")
HOLIDAYS = {date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 5, 25), date(2026, 7, 3),
            date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25)}
APPS = ("claimsdesk", "Microsoft Office 365", "Slack", "Availity Essentials", "Zoom", "Workday")
FILES = ("auth.log", "audit.log", "okta.jsonl", "entra.jsonl", "billing-audit.jsonl", "osquery.jsonl")
COLLECTOR_OF = {"auth.log": "linux-auth", "audit.log": "auditd", "okta.jsonl": "okta", "entra.jsonl": "entra",
                "billing-audit.jsonl": "billing-audit", "osquery.jsonl": "osquery"}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SCAN_NAMES = ("admin", "test", "oracle", "ubuntu", "postgres", "git", "user", "ftpuser", "pi", "deploy", "support")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
         "Daniel", "Lisa", "Minh", "Nancy", "Priya", "Betty", "Ramon", "Sandra", "Maricel", "Ashley", "Jun",
         "Divya", "Andrew", "Emily", "Paul", "Donna", "Rosa", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
        "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Lewis", "Robinson", "Walker", "Young",
        "Santos", "Cruz", "Reyes", "Bautista", "Mendoza", "Iyer", "Patel", "Nguyen", "Okafor", "Dubois")
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000


@dataclass
class Person:
    login: str
    display: str
    role: str
    zone: ZoneInfo
    country: str  # as Okta writes it
    iso: str  # as Entra writes it
    home_ip: str
    workstation: str
    office: bool
    okta_id: str
    entra: bool
    start_hour: float
    panel: list[str]
    export_hours: list[float]
    dests: list[tuple[str, str]]
    records: int
    uid: int
    evening: bool = False
    first_day: date | None = None
    last_day: date | None = None
    suspended: tuple[date, date] | None = None

    @property
    def email(self) -> str:
        return f"{self.login}@{DOMAIN}"

    @property
    def ip(self) -> str:
        return OFFICE_EGRESS if self.office else self.home_ip

    def client_ip(self) -> str:
        """The address the billing app sees: the office LAN or the VPN pool."""
        n = self.uid % 200 + 10
        return f"10.20.1.{n}" if self.office else f"10.30.1.{n}"


@dataclass
class Planted:
    """One planted scenario: an attack (``rule`` must fire for it) or a look-alike (nothing may fire)."""

    name: str
    rule: str
    key: str  # what the alert's group key contains (an account or a network)
    start: float
    end: float
    attack: bool = True


@dataclass
class Truth:
    start: datetime
    days: int
    users: int
    planted: list[Planted] = field(default_factory=list)
    terminated_list: list[str] = field(default_factory=list)

    @property
    def attacks(self) -> list[Planted]:
        return [p for p in self.planted if p.attack]

    @property
    def lookalikes(self) -> list[Planted]:
        return [p for p in self.planted if not p.attack]


class Company:
    """The simulation: people, a timeline of (ms, line) per file, and a seeded random source."""

    def __init__(self, rng: random.Random, users: int, start: datetime) -> None:
        self.rng = rng
        self.start = start
        self.lines: dict[str, list[tuple[int, str]]] = {f: [] for f in FILES}
        self.patients = [f"MRN-{300000 + i}" for i in range(6000)]
        self.people: list[Person] = []
        self.serial = 0
        self.osq_counter = 0
        self.sessions: dict[str, str] = {}
        taken: set[str] = set()
        roles = ["biller"] * 62 + ["coder"] * 14 + ["manager"] * 8 + ["support"] * 10 + ["admin"] * 6
        roles = (roles * 2)[:users]
        for i, role in enumerate(roles):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            login = (first[0] + last).lower()
            n = 1
            while login in taken:
                n += 1
                login = f"{(first[0] + last).lower()}{n}"
            taken.add(login)
            offshore = role in ("biller", "coder") and rng.random() < 0.14
            if offshore:
                zone, country, iso, office = ZoneInfo("Asia/Manila"), "Philippines", "PH", False
            else:
                zone = rng.choices([OFFICE_ZONE, ZoneInfo("America/New_York"), ZoneInfo("America/Denver"),
                                    ZoneInfo("America/Phoenix")], [70, 14, 8, 8])[0]
                country, iso = "United States", "US"
                office = zone == OFFICE_ZONE and rng.random() < 0.8
            ws = f"ws-{role}-{i:03d}"
            share = f"\\\\fs01\\billing\\{login}"
            if role == "biller":
                dests = [("file", share), rng.choice((("sftp", "sftp://edi.clearinghouse.example/claims"),
                                                      ("external_host", "portal.availity.com")))]
                records = rng.randint(100, 500)
            elif role == "manager":
                dests = [("email", f"ar-team@{DOMAIN}"), ("printer", f"prn-{rng.randint(1, 3)}f-mgmt")]
                records = rng.randint(50, 200)
            else:
                dests = [("file", share)]
                records = rng.randint(10, 80)
            block = "112.198" if offshore else rng.choice(("73.155", "98.201", "24.28", "68.46"))
            p = Person(login, f"{first} {last}", role, zone, country, iso,
                       f"{block}.{rng.randint(1, 254)}.{rng.randint(1, 254)}", ws, office,
                       "00u" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyz0123456789") for _ in range(17)),
                       role == "manager" or rng.random() < 0.1, rng.gauss(8.0, 0.6),
                       rng.sample(self.patients, rng.randint(200, 350)) if role in ("biller", "coder", "support")
                       else [], sorted(rng.sample([9.5, 10.5, 11.0, 13.5, 14.0, 15.5, 16.0], 2)), dests, records,
                       2000 + i, evening=rng.random() < (0.5 if role == "admin" else 0.05))
            self.people.append(p)

    # ---- writing --------------------------------------------------------------------------------------
    def add(self, file: str, ms: int, text: str) -> None:
        self.lines[file].append((ms, text))

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def syslog(self, ms: int, host: str, prog: str, pid: int | None, msg: str) -> None:
        self.add("auth.log", ms, formats.syslog(ms, host, prog, pid, msg))

    def audit(self, ms: int, host: str, records: list[tuple[str, str]]) -> None:
        self.serial += 1
        self.add("audit.log", ms, formats.audit(ms, host, records).replace(formats.AUDIT_SERIAL, str(self.serial)))

    def okta(self, ms: int, actor: Person | None, event_type: str, display: str, ip: str, result: str = "SUCCESS",
             reason: str | None = None, targets: list[dict[str, object]] | None = None, factor: str | None = None,
             country: str | None = None, city: str = "Chicago", severity: str = "INFO",
             session: str | None = None) -> None:
        who: dict[str, object] = ({"id": actor.okta_id, "type": "User", "alternateId": actor.email,
                                   "displayName": actor.display, "detailEntry": None} if actor else
                                  {"id": "0oa1system", "type": "PublicClientApp", "alternateId": "Okta",
                                   "displayName": "Okta System", "detailEntry": None})
        client = {"userAgent": {"rawUserAgent": UA, "os": "Windows 10", "browser": "CHROME"}, "zone": "null",
                  "device": "Computer", "id": None, "ipAddress": ip,
                  "geographicalContext": {"city": city, "state": None,
                                          "country": country or (actor.country if actor else "United States"),
                                          "postalCode": None}}
        self.add("okta.jsonl", ms, formats.okta(ms, self.uuid(), event_type, display, who, client, result, reason,
                                                targets, factor, session, severity, self.uuid()[:20]))

    @staticmethod
    def target(p: Person) -> dict[str, object]:
        return {"id": p.okta_id, "type": "User", "alternateId": p.email, "displayName": p.display,
                "detailEntry": None}

    def entra(self, ms: int, p: Person, ip: str, error: int, detail: str = "", iso: str | None = None) -> None:
        failure = {0: "Other.", 50074: "Strong Authentication is required.",
                   50126: "Error validating credentials due to invalid username or password.",
                   500121: "Authentication failed during strong authentication request.",
                   50057: "User account is disabled. The account has been disabled by an administrator."}[error]
        methods: list[dict[str, object]] = [{"authenticationMethod": "Password", "succeeded": error != 50126,
                                             "authenticationStepResultDetail": "Correct password"}]
        if error in (0, 500121):
            methods.append({"authenticationMethod": "Mobile app notification", "succeeded": error == 0,
                            "authenticationStepRequirement": "Multifactor authentication",
                            "authenticationStepResultDetail": detail or "MFA successfully completed"})
        self.add("entra.jsonl", ms, formats.entra(ms, "7d1e5c2a-0b3f-4e8a-9c6d-2f4a1b3c5d7e", self.uuid(),
                                                  self.uuid(), p.okta_id, p.email, p.display, ip, iso or p.iso,
                                                  "Chicago", "Illinois", error, failure, methods,
                                                  "Office 365 Exchange Online", "Browser", "Windows10",
                                                  "Chrome 131.0.0", UA))

    def bill(self, ms: int, p: Person, event: str, result: str = "success", ip: str | None = None,
             **kw: object) -> None:
        session = self.sessions.setdefault(p.login, f"s-{self.rng.getrandbits(32):08x}")
        self.add("billing-audit.jsonl", ms, formats.billing(ms, event, p.login, f"u-{p.uid}", p.role, session,
                                                            ip or p.client_ip(), p.workstation, result, **kw))  # type: ignore[arg-type]

    def export(self, ms: int, p: Person, dest: tuple[str, str], records: int, event: str = "export") -> None:
        pool = p.panel or self.patients
        ids = self.rng.sample(pool, min(len(pool), max(1, records // 5), 50))
        self.bill(ms, p, event, patients=max(1, records // 5), records=records, patient_ids=ids, destination=dest,
                  fmt="csv", nbytes=records * 180, report="claims_by_payer")

    # ---- routine pieces -------------------------------------------------------------------------------
    def okta_signin(self, ms: int, p: Person, ip: str | None = None, typo: bool = False, country: str | None = None,
                    city: str = "Chicago") -> int:
        ip = ip or p.ip
        session = "102" + self.uuid().replace("-", "")[:22]
        t = ms
        self.okta(t, p, "policy.evaluate_sign_on", "Evaluation of sign-on policy", ip, "ALLOW",
                  country=country, city=city, session=session)
        if typo:
            self.okta(t + 2000, p, "user.session.start", "User login to Okta", ip, "FAILURE",
                      "INVALID_CREDENTIALS", country=country, city=city, session=session)
            t += self.rng.randint(8000, 40_000)
        self.okta(t + 3000, p, "user.session.start", "User login to Okta", ip, country=country, city=city,
                  session=session)
        self.okta(t + 9000, p, "user.authentication.auth_via_mfa", "Authentication of user via MFA", ip,
                  factor="OKTA_VERIFY_PUSH", country=country, city=city, session=session)
        return t + 9000

    def sso(self, ms: int, p: Person, app: str) -> None:
        self.okta(ms, p, "user.authentication.sso", f"User single sign on to app {app}", p.ip,
                  targets=[{"id": "0oa" + app[:6], "type": "AppInstance", "alternateId": app, "displayName": app,
                            "detailEntry": None}])

    def ssh_session(self, ms: int, p: Person, host: str, ip: str, minutes: int, commands: list[str]) -> None:
        pid, port = self.rng.randint(2000, 60000), self.rng.randint(40000, 65000)
        self.syslog(ms, host, "sshd", pid, f"Accepted publickey for {p.login} from {ip} port {port} ssh2: ED25519 "
                                           "SHA256:Jq8v2mLr8TzYc7WkHb5sFdGa1uEo6iRtQyZxV0Mabcd")
        self.syslog(ms + 4, host, "sshd", pid, f"pam_unix(sshd:session): session opened for user {p.login}"
                                               f"(uid={p.uid}) by (uid=0)")
        self.syslog(ms + 9, host, "systemd-logind", 812, f"New session {pid % 900 + 1} of user {p.login}.")
        self.audit(ms + 6, host, [("USER_LOGIN", f"pid={pid} uid=0 auid={p.uid} ses={pid % 900 + 1} msg='op=login "
                                                 f"acct=\"{p.login}\" exe=\"/usr/sbin/sshd\" hostname=? addr={ip} "
                                                 f"terminal=sshd res=success'")])
        t = ms + MIN
        for cmd in commands:
            t += self.rng.randint(30_000, 300_000)
            spid = self.rng.randint(2000, 60000)
            if self.rng.random() < 0.04:  # a mistyped sudo password, then the right one
                self.syslog(t - 9000, host, "sudo", spid, f"pam_unix(sudo:auth): authentication failure; "
                                                          f"logname={p.login} uid={p.uid} euid=0 tty=/dev/pts/0 "
                                                          f"ruser={p.login} rhost=  user={p.login}")
            self.syslog(t, host, "sudo", spid, f"{p.login} : TTY=pts/0 ; PWD=/home/{p.login} ; USER=root ; "
                                               f"COMMAND={cmd}")
            self.syslog(t + 2, host, "sudo", spid, f"pam_unix(sudo:session): session opened for user root(uid=0) "
                                                   f"by {p.login}(uid={p.uid})")
            self.syslog(t + 800, host, "sudo", spid, "pam_unix(sudo:session): session closed for user root")
        end = max(t + MIN, ms + minutes * MIN)
        self.syslog(end, host, "sshd", pid, f"Received disconnect from {ip} port {port}:11: disconnected by user")
        self.syslog(end + 1, host, "sshd", pid, f"Disconnected from user {p.login} {ip} port {port}")
        self.syslog(end + 3, host, "sshd", pid, f"pam_unix(sshd:session): session closed for user {p.login}")
        self.syslog(end + 5, host, "systemd-logind", 812, f"Session {pid % 900 + 1} logged out. Waiting for "
                                                          "processes to exit.")
        self.syslog(end + 9, host, "systemd-logind", 812, f"Removed session {pid % 900 + 1}.")

    def scanner(self, ms: int, ip: str, attempts: int) -> None:
        for i in range(attempts):
            t = ms + i * self.rng.randint(3000, 20000)
            pid, port = self.rng.randint(2000, 60000), self.rng.randint(30000, 65000)
            user = "root" if self.rng.random() < 0.3 else self.rng.choice(SCAN_NAMES)
            if user == "root":
                self.syslog(t, BASTION, "sshd", pid, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                                                     f"euid=0 tty=ssh ruser= rhost={ip}  user=root")
                self.syslog(t + 2000, BASTION, "sshd", pid, f"Failed password for root from {ip} port {port} ssh2")
                self.syslog(t + 2300, BASTION, "sshd", pid, f"Connection closed by authenticating user root {ip} "
                                                            f"port {port} [preauth]")
            else:
                self.syslog(t, BASTION, "sshd", pid, f"Invalid user {user} from {ip} port {port}")
                self.syslog(t + 2000, BASTION, "sshd", pid, f"Failed password for invalid user {user} from {ip} "
                                                            f"port {port} ssh2")
                self.syslog(t + 2300, BASTION, "sshd", pid, f"Connection closed by invalid user {user} {ip} port "
                                                            f"{port} [preauth]")

    def local(self, day: date, hour: float, zone: ZoneInfo) -> int:
        h, m = int(hour), round((hour % 1) * 60)
        when = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(hours=h, minutes=m)
        return int(when.timestamp() * 1000)

    # ---- a day ----------------------------------------------------------------------------------------
    def day(self, day: date) -> None:
        rng = self.rng
        weekday = day.weekday() < 5 and day not in HOLIDAYS
        month_end = (weekday and (day + timedelta(days=1)).month != day.month) or (
            weekday and day.weekday() == 4 and (day + timedelta(days=3)).month != day.month)
        for p in self.people:
            if (p.first_day and day < p.first_day) or (p.last_day and day > p.last_day):
                continue
            if p.suspended and p.suspended[0] <= day <= p.suspended[1]:
                continue
            works = weekday and rng.random() > 0.06  # PTO and sick days
            if not weekday and p.role == "admin" and rng.random() < 0.15:
                works = True
            if works:
                self.workday(p, day, month_end, weekday)
        self.machines(day)

    def workday(self, p: Person, day: date, month_end: bool, weekday: bool) -> None:
        rng = self.rng
        begin = self.local(day, p.start_hour + rng.gauss(0, 0.3), p.zone)
        end = begin + int((8.5 + rng.gauss(0, 0.5)) * HOUR)
        self.sessions.pop(p.login, None)
        t = self.okta_signin(begin, p, typo=rng.random() < 0.04)
        if p.entra:
            self.entra(begin + 40_000, p, p.ip, 50074)
            self.entra(begin + 55_000, p, p.ip, 0)
        for _ in range(rng.randint(4, 9)):
            self.sso(rng.randint(t, end), p, rng.choice(APPS))
        if rng.random() < 0.3:
            self.okta(end, p, "user.session.end", "User logout from Okta", p.ip)
        if rng.random() < 0.01:
            self.okta(begin + 20 * MIN, p, "user.account.update_password", "Update user password", p.ip,
                      targets=[self.target(p)])
        if p.role == "admin":
            for _ in range(rng.randint(1, 3)):
                at = rng.randint(begin + 10 * MIN, end - HOUR)
                self.ssh_session(at, p, BASTION, p.ip, rng.randint(5, 40), [])
                self.ssh_session(at + 2 * MIN, p, rng.choice(SERVERS), "10.20.5.10", rng.randint(3, 30),
                                 rng.sample(["/usr/bin/systemctl status nginx", "/usr/bin/journalctl -u claimsdesk",
                                             "/usr/bin/apt-get update", "/usr/bin/df -h"], rng.randint(0, 2)))
            return
        if p.role == "manager" and rng.random() < 0.5:
            self.export(rng.randint(begin + HOUR, end - HOUR), p, rng.choice(p.dests), p.records)
        if not p.panel:
            return
        self.bill(begin + 60_000, p, "login")
        hours = (end - begin) / HOUR
        n = int(hours * rng.uniform(4, 9))
        for _ in range(n):
            at = rng.randint(begin + 2 * MIN, end - 2 * MIN)
            if rng.random() < 0.7:
                mrn = rng.choice(p.panel)
                self.bill(at, p, "view", patients=1, records=rng.randint(1, 5), patient_ids=[mrn])
            else:
                found = rng.sample(p.panel, rng.randint(1, 15))
                self.bill(at, p, "search", patients=len(found), records=len(found) * 2, patient_ids=found,
                          query="payer:bcbs status:denied")
        if p.evening and rng.random() < 0.3:  # an evening catch-up from home
            at = end + int(rng.uniform(2, 4) * HOUR)
            for i in range(rng.randint(5, 15)):
                self.bill(at + i * 90_000, p, "view", patients=1, records=2, patient_ids=[rng.choice(p.panel)])
        exports = 2 if month_end else 1  # month-end close: a second run of the day's reports, a little larger
        for h in (p.export_hours * 2)[:exports]:
            at = self.local(day, h + (p.start_hour - 8.0) + rng.gauss(0, 0.2), p.zone)
            dest = p.dests[-1] if p.role == "biller" else p.dests[0]
            records = int(p.records * rng.uniform(0.6, 1.4) * (1.2 if month_end else 1))
            self.export(at, p, dest, records)
        if rng.random() < 0.15:  # a report saved to one's own workstation
            self.export(rng.randint(begin, end), p, ("download", p.workstation), rng.randint(5, 60), "download")
        if rng.random() < 0.1:
            self.bill(rng.randint(begin, end), p, "print", patients=3, records=3,
                      destination=("printer", f"prn-{rng.randint(1, 4)}f-{p.role}"), fmt="pdf", nbytes=9000)
        self.bill(end, p, "logout")

    def machines(self, day: date) -> None:
        """The nightly batch export, backups, cron, logind, osquery snapshots and scanners."""
        rng = self.rng
        batch = self.local(day, 2.0, OFFICE_ZONE) + rng.randint(0, 5 * MIN)
        svc = self.service
        self.bill(batch, svc, "login", ip="10.20.9.5")
        for i in range(3):
            self.export(batch + (i + 1) * 4 * MIN, svc, ("sftp", "sftp://edi.clearinghouse.example/claims"),
                        rng.randint(1500, 4000))
        pid = rng.randint(2000, 60000)
        self.syslog(batch + 14 * MIN, "sftp01", "sshd", pid, f"Accepted publickey for svc-edi from 10.20.9.5 port "
                                                             f"{rng.randint(40000, 65000)} ssh2: RSA SHA256:q3X9vJpN2")
        self.syslog(batch + 14 * MIN + 3, "sftp01", "sshd", pid, "pam_unix(sshd:session): session opened for user "
                                                                 "svc-edi(uid=998) by (uid=0)")
        self.syslog(batch + 17 * MIN, "sftp01", "sshd", pid, "pam_unix(sshd:session): session closed for user "
                                                             "svc-edi")
        for host in (BASTION, *SERVERS):
            for h in range(0, 24, 6):
                at = int(datetime(day.year, day.month, day.day, h, 17, tzinfo=UTC).timestamp() * 1000)
                cpid = rng.randint(2000, 60000)
                self.syslog(at, host, "CRON", cpid, "pam_unix(cron:session): session opened for user root(uid=0) "
                                                    "by (uid=0)")
                self.syslog(at + 1500, host, "CRON", cpid, "pam_unix(cron:session): session closed for user root")
            self.osquery(int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp() * 1000), host,
                         "pack/endpoint/endpoint_protection", {"name": "falcon-sensor", "status": "running"})
        # Internet scanners: a few short bursts an hour against the bastion, mostly names that do not exist.
        base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        for _ in range(rng.randint(10, 20)):
            ip = f"{rng.choice(('45.227', '141.98', '193.32', '218.92', '61.177'))}.{rng.randint(1, 254)}." \
                 f"{rng.randint(1, 254)}"
            self.scanner(base + rng.randint(0, DAY - 10 * MIN), ip, rng.randint(1, 6))

    def osquery(self, ms: int, host: str, name: str, columns: dict[str, str]) -> None:
        self.osq_counter += 1
        self.add("osquery.jsonl", ms, formats.osquery(ms, name, host, f"{hash(host) & 0xffffffff:08X}-0000",
                                                      self.osq_counter, columns, "added"))

    @property
    def service(self) -> Person:
        return self._service

    def make_service(self) -> None:
        self._service = Person("svc-claims-batch", "Claims Batch", "service", OFFICE_ZONE, "United States", "US",
                               "10.20.9.5", "batch01", True, "00usvc", False, 2.0, self.patients[:2000], [], [], 0,
                               998)


def _by_role(c: Company, role: str, n: int, exclude: set[str]) -> list[Person]:
    pool = [p for p in c.people if p.role == role and p.login not in exclude and p.zone == OFFICE_ZONE]
    out = c.rng.sample(pool, n)
    exclude.update(p.login for p in out)
    return out


def simulate(weeks: int = 4, seed: int = 21, users: int = 100,
             start: datetime = datetime(2026, 2, 9, tzinfo=UTC)) -> tuple[dict[str, list[tuple[int, str]]], Truth]:
    """``weeks`` of the company from ``start`` (a Monday), attacks and look-alikes in the last week."""
    rng = random.Random(seed)
    c = Company(rng, users, start)
    c.make_service()
    days = weeks * 7
    first = start.date()
    truth = Truth(start, days, users)
    used: set[str] = set()
    # Hires and leavers in the first half, a leave of absence in the middle.
    hires = _by_role(c, "biller", 2, used)
    for i, p in enumerate(hires):
        p.first_day = first + timedelta(days=7 + 7 * i)
    leavers = _by_role(c, "biller", 2, used)
    for i, p in enumerate(leavers):
        p.last_day = first + timedelta(days=10 + 3 * i)
    on_leave = _by_role(c, "coder", 1, used)[0]
    on_leave.suspended = (first + timedelta(days=8), first + timedelta(days=days - 6))
    it = _by_role(c, "admin", 1, used)[0]
    helpdesk = _by_role(c, "support", 1, used)[0]
    for d in range(days):
        c.day(first + timedelta(days=d))
    for p in hires:
        at = c.local(p.first_day - timedelta(days=3), 10, OFFICE_ZONE)  # type: ignore[operator]
        c.okta(at, it, "user.lifecycle.create", "Create okta user", OFFICE_EGRESS, targets=[c.target(p)])
        c.okta(at + MIN, it, "user.lifecycle.activate", "Activate Okta user", OFFICE_EGRESS, targets=[c.target(p)])
        c.okta(at + 2 * MIN, it, "group.user_membership.add", "Add user to group membership", OFFICE_EGRESS,
               targets=[c.target(p), {"id": "00g1", "type": "UserGroup", "displayName": "Billing Team"}])
        c.okta(c.local(p.first_day, 8.2, OFFICE_ZONE), p, "device.enrollment.create",  # type: ignore[arg-type]
               "Enroll a device", p.ip, targets=[c.target(p)])
    for p in leavers:
        at = c.local(p.last_day + timedelta(days=1), 9.5, OFFICE_ZONE)  # type: ignore[operator]
        c.okta(at, it, "user.lifecycle.deactivate", "Deactivate Okta user", OFFICE_EGRESS, targets=[c.target(p)])
        c.okta(at + 2000, None, "user.session.clear", "Clear user session", OFFICE_EGRESS, targets=[c.target(p)])
        c.okta(at + 4000, it, "application.user_membership.remove", "Remove user from application membership",
               OFFICE_EGRESS, targets=[c.target(p), {"id": "0oaclaims", "type": "AppInstance",
                                                     "alternateId": "claimsdesk", "displayName": "claimsdesk"}])
    s0, s1 = on_leave.suspended
    c.okta(c.local(s0, 9, OFFICE_ZONE), it, "user.lifecycle.suspend", "Suspend Okta user", OFFICE_EGRESS,
           targets=[c.target(on_leave)])
    back = c.local(s1 + timedelta(days=1), 7.9, OFFICE_ZONE)
    c.okta(back, it, "user.lifecycle.unsuspend", "Unsuspend Okta user", OFFICE_EGRESS, targets=[c.target(on_leave)])
    truth.planted.append(Planted("suspended for leave, back at work", "account-terminated-activity", on_leave.login,
                                 back / 1000, back / 1000 + 3 * 86400, attack=False))
    plant(c, truth, used, it, helpdesk, leavers[0])
    for f in FILES:
        c.lines[f].sort(key=lambda item: item[0])
    return c.lines, truth


def plant(c: Company, truth: Truth, used: set[str], it: Person, helpdesk: Person, leaver: Person) -> None:
    """The attacks of issue #21, each beside a benign look-alike, on the last week's days."""
    rng = c.rng
    last_monday = c.start.date() + timedelta(days=truth.days - 7)

    def at(day: int, hour: float, zone: ZoneInfo = OFFICE_ZONE) -> int:
        return c.local(last_monday + timedelta(days=day), hour, zone)

    def add(name: str, rule: str, key: str, t0: int, t1: int, attack: bool = True) -> None:
        truth.planted.append(Planted(name, rule, key, t0 / 1000, t1 / 1000 + 12 * 3600, attack))

    # 1. Low-and-slow spray: 40 real accounts, one guess every 4-7 minutes for ~4 hours from 4 addresses of one /24.
    t = t0 = at(0, 23.0)
    victims = rng.sample([p for p in c.people if p.login not in used], 40)
    for i, v in enumerate(victims):
        ip = f"185.220.101.{(17, 33, 58, 91)[i % 4]}"
        c.okta(t, v, "user.session.start", "User login to Okta", ip, "FAILURE", "INVALID_CREDENTIALS",
               country="Germany", city="Frankfurt am Main")
        t += rng.randint(4 * MIN, 7 * MIN)
    add("low-and-slow password spray", "auth-password-spray-slow", "185.220.101.0/24", t0, t)
    # Look-alike: a Monday morning of typos at the office after a forced password change (7 people, 3 hours).
    t1 = at(1, 7.5)
    for i, p in enumerate(rng.sample([p for p in c.people if p.office and p.login not in used], 7)):
        c.okta(t1 + i * 25 * MIN, p, "user.session.start", "User login to Okta", OFFICE_EGRESS, "FAILURE",
               "INVALID_CREDENTIALS")
    add("office typos after a password change", "auth-password-spray-slow", OFFICE_EGRESS, t1, t1 + 3 * HOUR, False)

    # 2. A terminated account used again over SSH, days after the IdP deactivated it.
    t2 = at(2, 1.5)
    c.syslog(t2, BASTION, "sshd", 41022, f"Accepted password for {leaver.login} from 203.0.113.77 port 51514 ssh2")
    c.syslog(t2 + 4, BASTION, "sshd", 41022, f"pam_unix(sshd:session): session opened for user {leaver.login}"
                                             f"(uid={leaver.uid}) by (uid=0)")
    add("terminated account used over SSH", "account-terminated-activity", leaver.login, t2, t2)

    # 3. Night-time snooping: 140 patients outside the panel at 2 am, one view each, no export.
    snoop = _by_role(c, "biller", 1, used)[0]
    t3 = at(1, 2.1)
    outside = rng.sample([m for m in c.patients if m not in set(snoop.panel)], 140)
    for i, mrn in enumerate(outside):
        c.bill(t3 + i * rng.randint(20_000, 40_000), snoop, "view", patients=1, records=1, patient_ids=[mrn],
               ip=snoop.client_ip())
    add("night-time snooping", "phi-patient-snooping-hours", snoop.login, t3, t3 + 140 * 40_000)
    # Look-alike: a biller's evening catch-up on their own panel (20 patients at 21:00).
    late = _by_role(c, "biller", 1, used)[0]
    t3b = at(2, 21.0)
    for i in range(20):
        c.bill(t3b + i * 80_000, late, "view", patients=1, records=2, patient_ids=[late.panel[i]])
    add("evening catch-up", "phi-patient-snooping-hours", late.login, t3b, t3b + HOUR, False)

    # 4. Help-desk takeover: reset password and factors, then minutes later a new address signs in and enrols.
    victim = _by_role(c, "manager", 1, used)[0]
    t4 = at(3, 15.0)
    c.okta(t4, helpdesk, "user.account.reset_password", "Reset password for user", OFFICE_EGRESS,
           targets=[c.target(victim)])
    c.okta(t4 + MIN, helpdesk, "user.mfa.factor.reset_all", "Reset all factors for user", OFFICE_EGRESS,
           targets=[c.target(victim)])
    c.okta_signin(t4 + 6 * MIN, victim, ip="104.28.55.201", city="Miami")
    c.okta(t4 + 8 * MIN, victim, "device.enrollment.create", "Enroll a device", "104.28.55.201",
           targets=[c.target(victim)], city="Miami")
    c.okta(t4 + 8 * MIN + 5000, victim, "user.mfa.factor.activate", "Activate factor or authenticator",
           "104.28.55.201", targets=[c.target(victim)], factor="OKTA_VERIFY_PUSH", city="Miami")
    add("help-desk takeover chain", "account-helpdesk-takeover", victim.login, t4, t4 + 9 * MIN)
    # Look-alike: the same reset for a user who lost their phone; they sign in from their usual address.
    lost = _by_role(c, "biller", 1, used)[0]
    t4b = at(2, 10.0)
    c.okta(t4b, helpdesk, "user.account.reset_password", "Reset password for user", OFFICE_EGRESS,
           targets=[c.target(lost)])
    c.okta(t4b + MIN, helpdesk, "user.mfa.factor.reset_all", "Reset all factors for user", OFFICE_EGRESS,
           targets=[c.target(lost)])
    c.okta_signin(t4b + 5 * MIN, lost)
    c.okta(t4b + 7 * MIN, lost, "device.enrollment.create", "Enroll a device", lost.ip, targets=[c.target(lost)])
    c.okta(t4b + 7 * MIN + 5000, lost, "user.mfa.factor.activate", "Activate factor or authenticator", lost.ip,
           targets=[c.target(lost)], factor="OKTA_VERIFY_PUSH")
    add("help-desk reset for a lost phone", "account-helpdesk-takeover", lost.login, t4b, t4b + 8 * MIN, False)

    # 5a. MFA fatigue, Okta Identity Engine: failed auth_via_mfa with OKTA_VERIFY_PUSH, then an approval.
    tired = _by_role(c, "biller", 1, used)[0]
    t5 = at(3, 22.5)
    ip5 = "91.219.236.18"
    c.okta(t5, tired, "user.session.start", "User login to Okta", ip5, country="Ukraine", city="Kyiv")
    for i in range(6):
        c.okta(t5 + (i + 1) * 70_000, tired, "user.authentication.auth_via_mfa", "Authentication of user via MFA",
               ip5, "FAILURE", "INVALID_CREDENTIALS", factor="OKTA_VERIFY_PUSH", country="Ukraine", city="Kyiv",
               severity="WARN")
    c.okta(t5 + 8 * 70_000, tired, "user.authentication.auth_via_mfa", "Authentication of user via MFA", ip5,
           factor="OKTA_VERIFY_PUSH", country="Ukraine", city="Kyiv")
    add("MFA fatigue (Okta Identity Engine)", "mfa-failures-then-success", tired.login, t5, t5 + 9 * 70_000)
    # Look-alike: one stray push denied, then approved; and two mistyped codes then a good one.
    stray = _by_role(c, "biller", 1, used)[0]
    t5b = at(0, 8.1)
    c.okta(t5b, stray, "user.authentication.auth_via_mfa", "Authentication of user via MFA", stray.ip, "FAILURE",
           "INVALID_CREDENTIALS", factor="OKTA_VERIFY_PUSH")
    c.okta(t5b + 40_000, stray, "user.authentication.auth_via_mfa", "Authentication of user via MFA", stray.ip,
           factor="OKTA_VERIFY_PUSH")
    for i in range(2):
        c.okta(t5b + HOUR + i * 30_000, stray, "user.authentication.auth_via_mfa", "Authentication of user via MFA",
               stray.ip, "FAILURE", "INVALID_CREDENTIALS", factor="OKTA_VERIFY_TOTP")
    c.okta(t5b + HOUR + 90_000, stray, "user.authentication.auth_via_mfa", "Authentication of user via MFA",
           stray.ip, factor="OKTA_VERIFY_TOTP")
    add("a stray push denied, mistyped codes", "mfa-failures-then-success", stray.login, t5b, t5b + 2 * HOUR, False)

    # 5b. MFA fatigue, Entra: 50074, then 500121 declined / did not respond, then success with MFA satisfied.
    entra_users = [p for p in c.people if p.entra and p.login not in used and p.zone == OFFICE_ZONE]
    etired, eok = entra_users[0], entra_users[1]
    used.update({etired.login, eok.login})
    t6 = at(2, 23.2)
    ip6 = "45.133.1.90"
    c.entra(t6, etired, ip6, 50074, iso="NL")
    for i in range(5):
        c.entra(t6 + (i + 1) * 60_000, etired, ip6, 500121,
                "MFA denied; user declined the authentication" if i % 2 else
                "MFA denied; user did not respond to mobile app notification", iso="NL")
    c.entra(t6 + 7 * 60_000, etired, ip6, 0, iso="NL")
    add("MFA fatigue (Entra ID)", "mfa-failures-then-success", etired.login, t6, t6 + 7 * MIN)
    t6b = at(1, 9.0)
    c.entra(t6b, eok, eok.ip, 50074)
    c.entra(t6b + 60_000, eok, eok.ip, 500121, "MFA denied; user did not respond to mobile app notification")
    c.entra(t6b + 120_000, eok, eok.ip, 0)
    add("one push unanswered (Entra)", "mfa-failures-then-success", eok.login, t6b, t6b + 3 * MIN, False)

    # 6. Okta new country (a country name, not a code).
    abroad = _by_role(c, "coder", 1, used)[0]
    t7 = at(4, 3.0)
    c.okta_signin(t7, abroad, ip="86.120.44.9", country="Romania", city="Bucharest")
    add("Okta sign-in from a new country", "auth-new-country", abroad.login, t7, t7)
    traveller = _by_role(c, "biller", 1, used)[0]
    t7b = at(3, 8.0, ZoneInfo("America/Denver"))
    c.okta_signin(t7b, traveller, ip="174.51.3.90", city="Denver")
    add("domestic travel", "auth-new-country", traveller.login, t7b, t7b, False)

    # 7. PHI sent to a personal mailbox; look-alike: first download to one's own workstation, a new printer.
    exfil = _by_role(c, "biller", 1, used)[0]
    t8 = at(4, 11.0)
    c.export(t8, exfil, ("email", "bigmike.1987@gmail.com"), 900)
    add("PHI e-mailed to a personal address", "phi-export-new-destination", exfil.login, t8, t8)
    own = _by_role(c, "biller", 1, used)[0]
    t8b = at(3, 11.0)
    c.export(t8b, own, ("download", own.workstation), 40, "download")
    c.export(t8b + HOUR, own, ("printer", "prn-9f-annex"), 12, "print")
    c.export(t8b + 2 * HOUR, own, ("file", f"\\\\fs02\\billing-archive\\{own.login}"), 200)
    add("first download to own workstation, new printer and share", "phi-export-new-destination", own.login, t8b,
        t8b + 2 * HOUR, False)

    # 8. An export at 03:00 by a daytime user; look-alike: the offshore team and the nightly batch.
    night = _by_role(c, "biller", 1, used)[0]
    t9 = at(2, 3.2)
    c.export(t9, night, night.dests[-1], night.records)
    add("export at 3 am by a daytime user", "phi-export-unusual-hours", night.login, t9, t9)
    manila = next(p for p in c.people if p.zone.key == "Asia/Manila" and p.role == "biller")
    add("offshore team's daytime exports", "phi-export-unusual-hours", manila.login,
        c.start.timestamp() * 1000, at(5, 0), False)
    truth.terminated_list = []
