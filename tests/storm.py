"""A seeded brute-force storm: an sshd/sudo auth.log that is mostly attack traffic.

The shape of issue #18: uniform random accounts (2,000) and addresses (5,000), about 40% failed logins (a third
of them for invalid users), "Invalid user" probes, PAM failures, disconnects, some accepted logins and sudo
lines (commands and denials). Every account and address is drawn uniformly, so keyed rules hold thousands of
keys at once and raise alerts all through the file: the worst case for the rule engine, not a gentle log.

    python -m tests.storm OUT.log [--lines 200000] [--seed 18]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ACCOUNTS = 2000
ADDRESSES = 5000


def _address(rng: random.Random, i: int) -> str:
    if i % 10 == 9:  # one in ten an IPv6 address
        return f"2001:db8:{i:x}::{rng.randint(1, 65535):x}"
    return f"{(i * 37) % 223 + 1}.{(i * 11) % 256}.{i % 256}.{(i * 7) % 254 + 1}"


def storm_lines(lines: int, seed: int = 18, accounts_n: int = ACCOUNTS, addresses_n: int = ADDRESSES) -> list[str]:
    """``lines`` auth.log lines of the storm, the same for the same seed (fewer accounts and addresses: each
    of them seen more often, so a short storm trips every rule)."""
    rng = random.Random(seed)
    accounts = [f"user{i:04d}" for i in range(accounts_n)]
    addresses = [_address(rng, i) for i in range(addresses_n)]
    out = []
    for i in range(lines):
        s = 8 * 3600 + i // 20  # 20 lines a second: a storm, yet windows of minutes hold thousands of events
        stamp = f"Nov {27 + s // 86400:2d} {(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
        user = accounts[rng.randrange(accounts_n)]
        ip = addresses[rng.randrange(addresses_n)]
        port = rng.randint(1024, 65535)
        pid = rng.randint(1000, 60000)
        r = rng.random()
        program = "sshd"
        if r < 0.27:
            msg = f"Failed password for {user} from {ip} port {port} ssh2"
        elif r < 0.40:
            msg = f"Failed password for invalid user {user} from {ip} port {port} ssh2"
        elif r < 0.55:
            msg = f"Invalid user {user} from {ip} port {port}"
        elif r < 0.63:
            msg = (f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                   f"rhost={ip}  user={user}")
        elif r < 0.75:
            msg = f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
        elif r < 0.82:
            msg = f"Connection closed by authenticating user {user} {ip} port {port} [preauth]"
        elif r < 0.90:
            msg = f"Accepted password for {user} from {ip} port {port} ssh2"
        elif r < 0.94:
            msg = f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"
        elif r < 0.98:
            program = "sudo"
            msg = f"   {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status sshd"
        else:
            program = "sudo"
            msg = f"   {user} : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND=/bin/bash"
        out.append(f"{stamp} bastion01 {program}[{pid}]: {msg}")
    return out


def make_storm_log(path: Path, lines: int, seed: int = 18, accounts: int = ACCOUNTS,
                   addresses: int = ADDRESSES) -> None:
    path.write_text("".join(line + "\n" for line in storm_lines(lines, seed, accounts, addresses)), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    make_storm_log(args.out, args.lines, args.seed)


if __name__ == "__main__":
    main()
