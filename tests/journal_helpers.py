"""Real journal files without a running journald: systemd-journal-remote turns journal export format into them."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

BOOT_ID = "0123456789abcdef0123456789abcdef"


def journal_remote() -> str:
    """The journal writer from Debian's systemd-journal-remote package (scripts/test installs it)."""
    for candidate in ("/usr/lib/systemd/systemd-journal-remote", "/lib/systemd/systemd-journal-remote"):
        if Path(candidate).exists():
            return candidate
    found = shutil.which("systemd-journal-remote")
    if found is None:
        raise RuntimeError("systemd-journal-remote is not installed (Debian package systemd-journal-remote)")
    return found


def export_entry(fields: dict[str, str | bytes], realtime_us: int, monotonic_us: int) -> bytes:
    """One entry in journal export format; a bytes value is written in the binary form (any content)."""
    out = bytearray()
    out += f"__REALTIME_TIMESTAMP={realtime_us}\n__MONOTONIC_TIMESTAMP={monotonic_us}\n_BOOT_ID={BOOT_ID}\n".encode()
    for key, value in fields.items():
        if isinstance(value, bytes):
            out += key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += f"{key}={value}\n".encode()
    return bytes(out + b"\n")


def sshd_failure(i: int, host: str = "web1") -> dict[str, str | bytes]:
    return {"_HOSTNAME": host, "SYSLOG_IDENTIFIER": "sshd", "_PID": str(1000 + i % 5000), "PRIORITY": "6",
            "SYSLOG_FACILITY": "10", "_SYSTEMD_UNIT": "ssh.service", "_TRANSPORT": "syslog",
            "MESSAGE": f"Failed password for user{i % 7} from 10.0.{i % 250}.{i % 200 + 1} port {20000 + i} ssh2"}


class JournalWriter:
    """Appends entries to one journal file through a running systemd-journal-remote."""

    def __init__(self, path: Path, start_us: int = 1_764_000_000_000_000, monotonic_us: int = 1_000_000) -> None:
        """``monotonic_us``: a writer that follows another in the same boot goes on from its monotonic time, as
        journald does (journalctl orders one boot's entries by it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.proc = subprocess.Popen([journal_remote(), f"--output={path}", "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.clock_us = start_us
        self.monotonic_us = monotonic_us

    def write(self, fields: dict[str, str | bytes]) -> None:
        self.write_many([fields])

    def write_many(self, entries: list[dict[str, str | bytes]]) -> None:
        assert self.proc.stdin is not None
        data = bytearray()
        for fields in entries:
            self.clock_us += 1000
            self.monotonic_us += 1000
            data += export_entry(fields, self.clock_us, self.monotonic_us)
        self.proc.stdin.write(bytes(data))
        self.proc.stdin.flush()

    def close(self) -> None:
        """End the export stream: journal-remote writes what it has and exits (the file is then offline)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(30)


def journal_count(directory: Path) -> int:
    """Entries journalctl itself sees in a directory (what the writer has made readable so far)."""
    done = subprocess.run(["journalctl", f"--directory={directory}", "--output=cat", "--output-fields=MESSAGE",
                           "--no-pager", "--quiet"], capture_output=True, check=False)
    return len([line for line in done.stdout.splitlines() if line])
