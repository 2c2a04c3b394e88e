"""``sentinel init``'s work: lay out a site's configuration folder and state directory.

Nothing that exists is ever overwritten: running it again (or after an upgrade) only adds what is missing,
so an operator's edits survive. Shipped collectors, rules and alert routes are not copied: the written
config layers the operator's empty folders over the ones inside the package (``shipped_defaults``).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentinel.errors import SentinelError
from sentinel.shipped import shipped_path

CONFIG_NAME = "sentinel.yaml"
ENV_NAME = "sentinel.env"
OVERRIDE_DIRS = ("collectors", "rules", "alerts", "alerts/templates")


@dataclass(frozen=True)
class Source:
    """One ``--source COLLECTOR[=GLOB,GLOB]``: a shipped collector to read, on its own or the given paths."""

    collector: str
    paths: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Source:
        name, _, globs = text.partition("=")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SentinelError(f"--source {text!r}: expected COLLECTOR or COLLECTOR=PATH[,PATH...]")
        return cls(name, tuple(p for p in globs.split(",") if p))


@dataclass(frozen=True)
class SiteChoices:
    """What the operator decides at install time; everything else keeps the shipped defaults."""

    timezone: str = "UTC"
    host_name: str | None = None
    sources: tuple[Source, ...] = (Source("linux-auth"), Source("auditd"))
    metrics_listen: str = "127.0.0.1:9464"
    api_listen: str = "127.0.0.1:9465"


@dataclass(frozen=True)
class Owners:
    """Who owns what: root (or the caller) writes the config, the service user reads it and owns the state."""

    admin_uid: int
    service_uid: int
    service_gid: int
    service_user: str
    chown: bool


@dataclass(frozen=True)
class Layout:
    config_dir: Path
    state_dir: Path

    @classmethod
    def under(cls, prefix: Path) -> Layout:
        return cls(prefix / "etc" / "sentinel", prefix / "var" / "lib" / "sentinel")

    @property
    def config(self) -> Path:
        return self.config_dir / CONFIG_NAME

    @property
    def env_file(self) -> Path:
        return self.config_dir / ENV_NAME


@dataclass
class InitResult:
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def owners_for(user: str, scratch: bool) -> Owners:
    """The service user's ids; in a scratch prefix (or without root) the caller owns everything instead."""
    me = os.geteuid()
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        if scratch or me != 0:
            return Owners(me, me, os.getegid(), pwd.getpwuid(me).pw_name, chown=False)
        raise SentinelError(f"no user {user!r}: create it first (systemd-sysusers "
                            f"{shipped_path('systemd', 'sysusers.d', 'sentinel.conf')}), or give --user") from None
    return Owners(0, entry.pw_uid, entry.pw_gid, user, chown=me == 0)


def receiver_env_name(receiver: str) -> str:
    return "SENTINEL_" + re.sub(r"[^A-Za-z0-9]", "_", receiver).upper() + "_URL"


def receivers_text() -> tuple[str, list[str]]:
    """The shipped receivers with every URL replaced by one ``${ENV}`` reference; and those variable names."""
    shipped = yaml.safe_load(shipped_path("alerts", "receivers.yaml").read_text(encoding="utf-8")) or {}
    names: list[str] = []
    receivers = []
    for r in shipped.get("receivers", []):
        var = receiver_env_name(r["name"])
        names.append(var)
        receivers.append({**r, "urls": [f"${{{var}}}"]})
    head = ("# This site's receivers; they replace the shipped alerts/receivers.yaml (the shipped routes.yaml\n"
            "# still routes to these names: put a routes.yaml beside this file to change that). Each URL is an\n"
            f"# apprise URL read from the environment: set the variables in ../{ENV_NAME}, never here.\n")
    return head + yaml.safe_dump({"receivers": receivers}, sort_keys=False), names


def env_text(variables: Sequence[str]) -> str:
    lines = ["# Secrets for sentinel, read by systemd (EnvironmentFile=) into the service's environment; keep it\n"
             "# mode 0600. Each receiver's apprise URL, e.g. slack://T000/B000/XXXX or mailtos://user:pass@host\n"
             "# (https://github.com/caronc/apprise/wiki). A receiver left unset fails over to its fallback.\n"]
    lines += [f"#{var}=\n" for var in variables]
    return "".join(lines)


def config_text(layout: Layout, site: SiteChoices) -> str:
    """The site's sentinel.yaml; ``layout`` names the paths as they are on the machine that runs it."""
    sources = [{"collector": s.collector, **({"paths": list(s.paths)} if s.paths else {})} for s in site.sources]
    body = {
        "shipped_defaults": True,
        "collectors_dir": "collectors",
        "rules_dir": "rules",
        "alerts_dir": "alerts",
        "state_dir": str(layout.state_dir),
        "timezone": site.timezone,
        **({"host_name": site.host_name} if site.host_name else {}),
        "storage": {"backend": "sqlite"},
        "sources": sources,
        "metrics": {"listen": site.metrics_listen},
        "api": {"listen": site.api_listen},
    }
    return ("# sentinel configuration, written by `sentinel init`; validate with\n"
            f"#   sentinel check -c {layout.config}\n"
            "# Everything not set here keeps its default (the full list: the shipped config/sentinel.yaml).\n"
            "# shipped_defaults: the collectors, rules and alert routes inside the package are the base; the\n"
            "# folders below add to them. A collector of the same name or a rule of the same id replaces the\n"
            "# shipped one; a file holding only `id: RULE` and `enabled: false` turns a shipped rule off;\n"
            "# `sentinel rules` shows where each rule comes from. Upgrades bring new shipped rules and never\n"
            "# touch these files. Secrets never go here: reference them as ${ENV_VAR} (see sentinel.env).\n"
            + yaml.safe_dump(body, sort_keys=False))


class _Writer:
    def __init__(self, owners: Owners, result: InitResult) -> None:
        self.owners = owners
        self.result = result

    def _own(self, path: Path, mode: int, uid: int, gid: int) -> None:
        if self.owners.chown:
            os.chown(path, uid, gid)
        os.chmod(path, mode)

    def folder(self, path: Path, mode: int, uid: int, gid: int) -> None:
        if path.is_dir():
            self.result.kept.append(path)
            return
        path.mkdir(parents=True)
        self._own(path, mode, uid, gid)
        self.result.created.append(path)

    def file(self, path: Path, text: str, mode: int, uid: int, gid: int) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            self.result.kept.append(path)
            return
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        self._own(path, mode, uid, gid)
        self.result.created.append(path)


def lay_out(layout: Layout, site: SiteChoices, owners: Owners, named: Layout | None = None) -> InitResult:
    """Create what is missing of the config folder, its override folders, receivers, secrets file and state.
    ``named``: the paths the written files refer to, when they are written elsewhere (a package's staging tree)."""
    result = InitResult()
    w = _Writer(owners, result)
    admin, service_gid = owners.admin_uid, owners.service_gid
    root_gid = 0 if owners.chown else os.getegid()
    layout.config_dir.parent.mkdir(parents=True, exist_ok=True)
    w.folder(layout.config_dir, 0o750, admin, service_gid)
    for sub in OVERRIDE_DIRS:
        w.folder(layout.config_dir / sub, 0o750, admin, service_gid)
    w.file(layout.config, config_text(named or layout, site), 0o640, admin, service_gid)
    receivers, variables = receivers_text()
    w.file(layout.config_dir / "alerts" / "receivers.yaml", receivers, 0o640, admin, service_gid)
    w.file(layout.env_file, env_text(variables), 0o600, admin, root_gid)
    layout.state_dir.parent.mkdir(parents=True, exist_ok=True)
    w.folder(layout.state_dir, 0o700, owners.service_uid, service_gid)
    return result


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
