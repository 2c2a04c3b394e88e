"""A normal day at the company: office hours on weekdays, a little evening and weekend work, internet noise.

Habits are stable per person (addresses, destinations, volumes), so a good rule pack stays quiet on this.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sentinel.demo.activity import DAY, HOUR, MIN, REASONS, SUDO_COMMANDS, Sim
from sentinel.demo.population import (
    INTERNET_FACING,
    IT_WORKSTATIONS,
    PATIENT_FIRST,
    PATIENT_LAST,
    SERVERS,
    Person,
    public_ip,
)

SCAN_COUNTRIES = ("RO", "DE", "NG", "IN")


def simulate_day(sim: Sim, day_ms: int, day_index: int, absent: Collection[str]) -> None:
    """Every person's and machine's ordinary activity on the day starting at ``day_ms`` (UTC midnight)."""
    rng = sim.rng
    weekday = datetime.fromtimestamp(day_ms / 1000, UTC).weekday() < 5
    if day_index == 0:
        _first_inventory(sim, day_ms)
    for p in sim.company.people:
        if p.name in absent:
            continue
        chance = 0.93 if weekday else (0.25 if p.role == "admin" else 0.04)
        if rng.random() < chance:
            _workday(sim, p, day_ms, weekday)
    _machines(sim, day_ms, weekday)


def _first_inventory(sim: Sim, day_ms: int) -> None:
    """osquery's first run on each endpoint reports the protection agent (differential 'added')."""
    for i, host in enumerate(sorted(set(sim.company.workstations) | set(IT_WORKSTATIONS) | set(SERVERS))):
        sim.protection_status(day_ms + 5 * MIN + i * 1700, host, True)


def _workday(sim: Sim, p: Person, day_ms: int, weekday: bool) -> None:
    rng = sim.rng
    if weekday:
        begin = day_ms + 8 * HOUR + int(rng.gauss(0, 20 * MIN))
        end = day_ms + 17 * HOUR + int(rng.gauss(0, 25 * MIN))
    else:
        begin = day_ms + 10 * HOUR + rng.randint(0, 2 * HOUR)
        end = begin + rng.randint(45 * MIN, 2 * HOUR)
    at_office = weekday
    ip = sim.sign_in_ip(p, at_office)
    t = sim.okta_login(p, begin - rng.randint(2 * MIN, 6 * MIN), ip,
                       denies=1 if rng.random() < 0.02 else 0, typo=rng.random() < 0.03)
    if weekday and p.role != "admin":
        sim.workstation_login(p, begin - 8 * MIN)
    if p.entra:
        sim.entra_signin(p, t + rng.randint(MIN, 10 * MIN), ip, interrupt=rng.random() < 0.1)
        if rng.random() < 0.5:
            sim.entra_signin(p, day_ms + 13 * HOUR + rng.randint(0, 2 * HOUR), ip)
    if weekday and rng.random() < 0.3:
        sim.okta_login(p, day_ms + 12 * HOUR + rng.randint(30 * MIN, 70 * MIN), ip)
    if p.role == "admin":
        _admin_day(sim, p, begin, end)
    else:
        _app_day(sim, p, begin, end, weekday)
    if weekday and p.evening and rng.random() < 0.3:
        start = day_ms + 19 * HOUR + rng.randint(0, 2 * HOUR)
        home = rng.choice(p.home_ips)
        sim.okta_login(p, start, home)
        if p.role == "admin":
            _admin_day(sim, p, start + 3 * MIN, start + rng.randint(20 * MIN, 60 * MIN), sessions=1)
        elif p.panel:
            _app_session(sim, p, start + 2 * MIN, start + rng.randint(15 * MIN, 40 * MIN), views=rng.randint(3, 10),
                         searches=1)


def _admin_day(sim: Sim, p: Person, begin: int, end: int, sessions: int | None = None) -> None:
    rng = sim.rng
    n = sessions if sessions is not None else rng.randint(2, 5)
    slot = max(10 * MIN, (end - begin) // max(1, n))
    for i in range(n):
        start = begin + i * slot + rng.randint(0, slot // 2)
        host = rng.choice(SERVERS)
        cmds = [rng.choice(SUDO_COMMANDS) for _ in range(rng.randint(0, 4))]
        minutes = rng.randint(5, 40)
        sim.ssh_session(p, host, start, minutes, [])
        ses = sim.audit_sessions[host]
        t = start + MIN
        for cmd in cmds:
            t += rng.randint(30_000, max(40_000, minutes * MIN // (len(cmds) + 1)))
            if t < start + minutes * MIN - 10_000:
                sim.sudo(p, host, t, cmd, ses, fail_first=rng.random() < 0.01)


def _app_day(sim: Sim, p: Person, begin: int, end: int, weekday: bool) -> None:
    rng = sim.rng
    if not p.panel:
        return
    scale = 1.0 if weekday else 0.2
    if p.role == "biller":
        views, searches = rng.randint(60, 120), rng.randint(15, 30)
        exports = (2 if rng.random() < 0.9 else rng.choice((1, 3))) if weekday else 0
    elif p.role == "coder":
        views, searches = rng.randint(40, 80), rng.randint(10, 20)
        exports = 1 if weekday and rng.random() < 0.5 else 0
    elif p.role == "manager":
        views, searches = rng.randint(10, 30), rng.randint(3, 8)
        exports = 2 if weekday else 0
    else:
        views, searches, exports = rng.randint(15, 40), rng.randint(5, 15), 0
    lunch = begin + (end - begin) // 2
    _app_session(sim, p, begin, lunch - rng.randint(10 * MIN, 30 * MIN), int(views * scale * 0.5),
                 int(searches * scale * 0.5))
    _app_session(sim, p, lunch + rng.randint(30 * MIN, 50 * MIN), end, int(views * scale * 0.5),
                 int(searches * scale * 0.5))
    _exports(sim, p, begin - begin % DAY, exports)


def _app_session(sim: Sim, p: Person, begin: int, end: int, views: int, searches: int) -> None:
    """One claimsdesk session: login, views and searches over the person's work queue, logout."""
    rng = sim.rng
    if end - begin < 5 * MIN:
        end = begin + 5 * MIN
    session = sim.new_app_session()
    if rng.random() < 0.02:
        sim.bill(begin - 40_000, p, session, "login_failed", result="failure", reason="invalid password")
    sim.bill(begin, p, session, "login")
    queue = rng.sample(p.panel, min(len(p.panel), max(1, views * 2 // 3)))
    span = end - begin - 2 * MIN
    for _ in range(views):
        reason = None
        if rng.random() < 0.03:
            reason = (f"called {rng.choice(PATIENT_FIRST)} {rng.choice(PATIENT_LAST)} re: claim "
                      f"{rng.randint(10000, 99999)}")
        elif rng.random() < 0.05:
            reason = rng.choice(REASONS)
        sim.view(begin + MIN + rng.randint(0, span), p, session, rng.choice(queue), reason)
    for _ in range(searches):
        sim.search(begin + MIN + rng.randint(0, span), p, session, queue)
    sim.bill(end, p, session, "logout")


def _exports(sim: Sim, p: Person, day_ms: int, count: int) -> None:
    """The day's report exports: at the person's habitual hours, to their usual destinations in turn."""
    rng = sim.rng
    for i in range(count):
        t = day_ms + p.export_hours[i % len(p.export_hours)] * HOUR + rng.randint(MIN, 55 * MIN)
        session = sim.new_app_session()
        sim.bill(t - MIN, p, session, "login")
        dest = p.destinations[i % len(p.destinations)]
        records = max(1, int(p.export_mean * rng.uniform(0.85, 1.15)))
        event = "print" if dest.type == "printer" else "export"
        sim.export(t, p, session, dest, records, p.panel, event=event, fmt="pdf" if event == "print" else "csv")
        sim.bill(t + 2 * MIN, p, session, "logout")


def _machines(sim: Sim, day_ms: int, weekday: bool) -> None:
    """Service accounts, internet scanners against exposed SSH, harmless USB use on IT workstations."""
    rng = sim.rng
    sim.service_account_login("db01", day_ms + HOUR + 15 * MIN + rng.randint(0, 60_000), "backup", 998, "10.20.0.5")
    if weekday:
        for _ in range(rng.randint(1, 2)):
            sim.service_account_login(rng.choice(("web01", "app01")), day_ms + 10 * HOUR + rng.randint(0, 5 * HOUR),
                                      "deploy", 997, "10.20.0.7")
    for host in INTERNET_FACING:
        for _ in range(rng.randint(8, 15)):
            ip = public_ip(rng, rng.choice(SCAN_COUNTRIES))
            sim.ssh_noise(host, day_ms + rng.randint(0, DAY - 5 * MIN), ip, rng.randint(1, 4))
    if weekday and rng.random() < 0.5:
        admins = sim.company.by_role("admin")
        if admins:
            p = rng.choice(admins)
            host = rng.choice(IT_WORKSTATIONS)
            t = day_ms + 11 * HOUR + rng.randint(0, 4 * HOUR)
            serial = f"IT{rng.getrandbits(40):012X}"
            sim.usb_device(t - 3000, host, True, serial)
            sim.usb_mount(t, p, host, serial)
    if weekday and rng.random() < 0.3:
        host = rng.choice(sim.company.workstations)
        sim.usb_device(day_ms + 9 * HOUR + rng.randint(0, 6 * HOUR), host, False, f"{rng.getrandbits(32):08X}")
