"""The simulated company: people, roles, workstations, servers, addresses and sanctioned export destinations.

Everything is drawn from one seeded ``random.Random`` in a fixed order, so the same seed gives the same company.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DOMAIN = "meridianbilling.com"
APP_HOST = "billing-app-01"
SERVERS = ("web01", "app01", "db01", "sftp01", "jump01")
INTERNET_FACING = ("web01", "sftp01")
IT_WORKSTATIONS = tuple(f"ws-it-{i:02d}" for i in range(1, 9))
VPN_POOL = "10.30.{}.{}"

FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
         "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven",
         "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
         "Brian", "Melissa", "Luis", "Deborah", "Jose", "Stephanie", "Juan", "Rebecca", "Ana", "Sharon", "Minh",
         "Laura", "Priya", "Cynthia", "Raj", "Angela", "Wei", "Grace", "Ramon", "Maricel", "Jun", "Divya")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
        "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams",
        "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Reyes",
        "Santos", "Cruz", "Shah", "Chen", "Kim", "Bautista", "Mendoza", "Iyer", "Fischer", "Okafor", "Dubois")
PATIENT_FIRST = ("Maria", "Jose", "Linda", "Robert", "Dolores", "Hector", "Evelyn", "Walter", "Gloria", "Harold",
                 "Rosa", "Frank", "Shirley", "Arthur", "Carmen", "Eugene", "Judith", "Raymond", "Lucia", "Albert")
PATIENT_LAST = ("Gonzalez", "Alvarez", "Whitaker", "Kowalski", "Ferreira", "Holloway", "Brennan", "Castillo",
                "Lindqvist", "Okonkwo", "Delgado", "Marchetti", "Sorensen", "Abernathy", "Villanueva", "Pruitt")

# country name as Okta writes it, ISO code as Entra writes it, cities, and address blocks (first two octets)
GEO: dict[str, tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "US": ("United States", (("Austin", "Texas"), ("Dallas", "Texas"), ("Houston", "Texas"),
                             ("Chicago", "Illinois"), ("Denver", "Colorado")), ("73.155", "98.201", "24.28", "68.46")),
    "PH": ("Philippines", (("Manila", "Metro Manila"), ("Cebu City", "Central Visayas")), ("112.198", "49.145")),
    "IN": ("India", (("Pune", "Maharashtra"), ("Chennai", "Tamil Nadu")), ("49.36", "117.96")),
    "NG": ("Nigeria", (("Lagos", "Lagos"),), ("102.89",)),
    "RO": ("Romania", (("Bucharest", "Bucuresti"),), ("86.120", "45.155")),
    "DE": ("Germany", (("Frankfurt am Main", "Hesse"),), ("185.220",)),
}
OFFICE_EGRESS = "198.51.100.24"

ROLES = (("biller", 130), ("coder", 30), ("manager", 15), ("admin", 8), ("support", 17))
APP_ROLE = {"biller": "biller", "coder": "coder", "manager": "manager", "admin": "it-admin", "support": "support"}
REPORTS = ("claims_by_payer", "aging_ar", "denials_summary", "remittance_detail", "eligibility_batch",
           "charge_lag", "payment_posting")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
    "Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
)


@dataclass(frozen=True)
class Destination:
    """Where a user's exports go: one of the billing app's destination types and its target."""

    type: str
    target: str


@dataclass
class Person:
    """One employee with stable habits: home country, a few addresses, a workstation, export destinations."""

    index: int
    name: str
    display: str
    role: str
    uid: int
    okta_id: str
    country: str
    city: tuple[str, str]
    home_ips: list[str]
    office_ip: str
    workstation: str
    remote: bool
    user_agent: str
    entra: bool
    destinations: list[Destination] = field(default_factory=list)
    export_mean: int = 0
    panel: list[str] = field(default_factory=list)
    evening: bool = False
    export_hours: list[int] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"{self.name}@{DOMAIN}"

    @property
    def user_id(self) -> str:
        return f"u-{self.uid + 42}"

    @property
    def app_role(self) -> str:
        return APP_ROLE[self.role]


@dataclass
class Company:
    """The whole population plus the hosts and lists the operator maintains."""

    people: list[Person]
    workstations: list[str]
    phi_workstations: list[str]
    patients: list[str]
    tenant_id: str

    def by_role(self, role: str) -> list[Person]:
        return [p for p in self.people if p.role == role]

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise KeyError(name)


def public_ip(rng: random.Random, country: str) -> str:
    """An address from the country's blocks (illustrative: it is only ever written into log text)."""
    block = rng.choice(GEO[country][2])
    return f"{block}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"


def okta_id(rng: random.Random, prefix: str = "00u") -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(17))


def build_company(rng: random.Random, users: int) -> Company:
    """Draw a company of ``users`` people (role shares follow ``ROLES``, scaled; at least one of each)."""
    total = sum(n for _, n in ROLES)
    roles: list[str] = []
    for role, n in ROLES:
        roles += [role] * max(1, round(n * users / total))
    roles = (roles + ["biller"] * users)[:users]
    roles.sort(key=lambda r: [x for x, _ in ROLES].index(r))
    patients = [f"MRN-{100000 + i}" for i in range(max(4000, users * 100))]
    taken: set[str] = set()
    people: list[Person] = []
    workstations: list[str] = []
    counters: dict[str, int] = {}
    for i, role in enumerate(roles):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        base = (first[0] + last).lower()
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        country = "US"
        if role in ("biller", "coder") and rng.random() < 0.12:
            country = rng.choice(("PH", "IN"))
        remote = country != "US" or rng.random() < 0.25
        kind = {"biller": "billing", "coder": "coding", "manager": "mgmt", "admin": "it", "support": "support"}[role]
        counters[kind] = counters.get(kind, 0) + 1
        ws = f"ws-{kind}-{counters[kind]:02d}"
        workstations.append(ws)
        subnet = {"billing": 1, "coding": 2, "mgmt": 3, "it": 5, "support": 4}[kind]
        office_ip = (VPN_POOL.format(subnet, 10 + counters[kind]) if remote
                     else f"10.20.{subnet}.{10 + counters[kind]}")
        p = Person(
            index=i, name=name, display=f"{first} {last}", role=role, uid=1000 + i, okta_id=okta_id(rng),
            country=country, city=rng.choice(GEO[country][1]),
            home_ips=[public_ip(rng, country) for _ in range(rng.randint(1, 2))],
            office_ip=office_ip, workstation=ws, remote=remote, user_agent=rng.choice(USER_AGENTS),
            entra=role == "manager" or rng.random() < 0.12,
            evening=rng.random() < (0.5 if role == "admin" else 0.06),
        )
        p.destinations, p.export_mean = _habits(rng, p)
        # People run their reports at habitual times of day (UTC hours).
        p.export_hours = sorted(rng.sample(range(9, 16), 2))
        if role in ("biller", "coder", "support", "manager"):
            p.panel = rng.sample(patients, rng.randint(250, 400))
        people.append(p)
    phi = [w for w in workstations if w.startswith(("ws-billing-", "ws-coding-"))]
    return Company(people, workstations, phi, patients, _uuid(rng))


def _habits(rng: random.Random, p: Person) -> tuple[list[Destination], int]:
    share = f"\\\\fs01\\billing\\{p.name}"
    if p.role == "biller":
        dests = [Destination("file", share)]
        dests.append(rng.choice((Destination("sftp", "sftp://sftp.payerconnect.example/inbound/meridian"),
                                 Destination("sftp", "sftp://edi.clearinghouse.example/claims"),
                                 Destination("external_host", "portal.availity.example"))))
        return dests, rng.randint(120, 600)
    if p.role == "coder":
        return [Destination("file", share)], rng.randint(40, 160)
    if p.role == "manager":
        return [Destination("printer", f"prn-{rng.randint(1, 3)}f-mgmt"),
                Destination("email", f"ar-team@{DOMAIN}")], rng.randint(60, 250)
    return [Destination("file", share)], rng.randint(10, 50)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
