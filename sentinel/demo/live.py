"""A live stream for the demo: fresh lines stamped with the wall clock, appended to the generated files.

The stream is planned up front (ordinary activity plus a few compressed incidents) and released as
the clock passes each line's time, so the daemon sees events arrive the way a real tail would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from sentinel.demo.activity import FILES, Timeline
from sentinel.demo.generator import World
from sentinel.demo.incidents import SPRAY_IP, Incident, when
from sentinel.demo.population import INTERNET_FACING, SERVERS, Person, public_ip

SECOND = 1000


def plan_live(world: World, t0_ms: int, seconds: float, rate: float = 25.0) -> tuple[
        dict[str, list[tuple[int, str]]], list[Incident]]:
    """Lines for ``seconds`` from ``t0_ms`` at about ``rate`` ordinary events a second, plus incidents."""
    sim = world.sim
    sim.tl = Timeline()
    rng = sim.rng
    absent = set(world.cast.absent)
    people = [p for p in world.company.people if p.name not in absent]
    workers = [p for p in people if p.panel]
    admins = [p for p in people if p.role == "admin"]
    sessions = {p.name: sim.new_app_session() for p in workers}
    end = t0_ms + int(seconds * SECOND)
    t = t0_ms
    while t < end:
        t += max(1, int(rng.expovariate(rate) * SECOND))
        roll = rng.random()
        if roll < 0.62:
            p = rng.choice(workers)
            sim.view(t, p, sessions[p.name], rng.choice(p.panel))
        elif roll < 0.75:
            p = rng.choice(workers)
            sim.search(t, p, sessions[p.name], p.panel)
        elif roll < 0.83:
            p = rng.choice(people)
            sim.okta_login(p, t, sim.sign_in_ip(p, True), push_gap_ms=3000)
        elif roll < 0.87:
            entra = [p for p in people if p.entra]
            if entra:
                p = rng.choice(entra)
                sim.entra_signin(p, t, sim.sign_in_ip(p, True))
        elif roll < 0.91 and admins:
            p = rng.choice(admins)
            sim.ssh_session(p, rng.choice(SERVERS), t, 1, [])
        elif roll < 0.999:
            if rng.random() < 0.02:
                sim.ssh_noise(rng.choice(INTERNET_FACING), t, public_ip(rng, "RO"), 1)
        else:
            sim.usb_device(t, rng.choice(world.company.workstations), False, f"{rng.getrandbits(32):08X}")
    incidents = _live_incidents(world, t0_ms, workers)
    lines = sim.tl.render(world.serials)
    for name in lines:
        lines[name] = [(ms, text) for ms, text in lines[name] if ms < end]
    return lines, [i for i in incidents if int(i.start.timestamp() * 1000) < end]


def _live_incidents(world: World, t0: int, workers: list[Person]) -> list[Incident]:
    """Compressed versions of three incidents, a few seconds apart, so a short demo shows alerts firing."""
    sim = world.sim
    rng = sim.rng
    out: list[Incident] = []
    victim = rng.choice([p for p in workers if p.role != "admin"])
    ms = t0 + 3 * SECOND
    ip = public_ip(rng, victim.country)
    done = sim.okta_login(victim, ms, ip, denies=10, push_gap_ms=1500, country=victim.country)
    out.append(Incident("live-mfa-push-bombing", f"ten pushes to {victim.name} denied in seconds, then accepted",
                        victim.email, None, when(ms), when(done), ["mfa-push-bombing", "mfa-failures-then-success"]))
    thief = rng.choice([p for p in workers if p.workstation in world.company.phi_workstations])
    ms = t0 + 7 * SECOND
    sim.usb_device(ms - 500, thief.workstation, True, "4C530001230822119999")
    sim.usb_mount(ms, thief, thief.workstation, "4C530001230822119999")
    for i, f in enumerate(("claims_export.csv", "patient_ledger.xlsx", "remits.csv")):
        sim.usb_copy(ms + (i + 1) * SECOND, thief, thief.workstation, f)
    out.append(Incident("live-usb-copy", f"USB stick on PHI workstation {thief.workstation}, three files copied",
                        thief.name, thief.workstation, when(ms), when(ms + 3 * SECOND),
                        ["endpoint-removable-media-phi-workstation"]))
    ms = t0 + 11 * SECOND
    present = [p for p in world.company.people if p.name not in world.cast.absent]
    targets = rng.sample(present, min(42, len(present)))
    for i, p in enumerate(targets):
        sim.okta(ms + i * 150, p, "user.session.start", "User login to Okta", SPRAY_IP, "FAILURE",
                 "INVALID_CREDENTIALS", country="DE", ua="python-requests/2.31.0")
    out.append(Incident("live-password-spray", f"one address tries {len(targets)} Okta accounts in seconds", None,
                        None, when(ms), when(ms + len(targets) * 150), ["auth-password-spray"],
                        {"source_ip": SPRAY_IP}))
    exporter = rng.choice([p for p in workers if p.role == "biller"])
    ms = t0 + 15 * SECOND
    for i in range(8):
        sim.export(ms + i * 700, exporter, "s-live", exporter.destinations[0], 6000 + i * 100, world.company.patients,
                   report="patient_ledger")
    out.append(Incident("live-bulk-export", f"{exporter.name} exports 8 reports of ~6000 records in six seconds",
                        exporter.name, None, when(ms), when(ms + 8 * 700), ["phi-bulk-export"]))
    return out


class LiveWriter:
    """Appends planned lines to their files as the clock reaches them (a thread; ``stop`` ends it)."""

    def __init__(self, out_dir: Path, lines: dict[str, list[tuple[int, str]]],
                 clock: Callable[[], float] = time.time, tick: float = 0.2) -> None:
        self.out_dir = out_dir
        self.pending = {name: list(reversed(lines.get(name, []))) for name in FILES}
        self.clock = clock
        self.tick = tick
        self.written: dict[str, int] = dict.fromkeys(FILES, 0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-live-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def release(self) -> int:
        """Write every line whose time has come; returns how many were written."""
        now_ms = int(self.clock() * 1000)
        total = 0
        for name, stack in self.pending.items():
            chunk: list[str] = []
            while stack and stack[-1][0] <= now_ms:
                chunk.append(stack.pop()[1])
            if chunk:
                with (self.out_dir / name).open("a", encoding="utf-8") as fh:
                    fh.write("".join(line + "\n" for line in chunk))
                self.written[name] += len(chunk)
                total += len(chunk)
        return total

    def _run(self) -> None:
        while not self.stopping.wait(self.tick):
            self.release()
        self.release()
