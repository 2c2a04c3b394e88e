"""Everything ``sentinel check`` and a reload validate, collected in one report.

Other parts (rules, routes) add their loaders through :func:`register_validator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sentinel.conf.models import LoadedConfig
from sentinel.errors import ConfigError

if TYPE_CHECKING:
    from sentinel.daemon.build import SourcePlan

Validator = Callable[[LoadedConfig], tuple[list[str], list[ConfigError]]]
_validators: list[tuple[str, Validator]] = []


def register_validator(name: str, fn: Validator) -> None:
    if all(n != name for n, _ in _validators):
        _validators.append((name, fn))


@dataclass
class Report:
    summary: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)


def validate_all(cfg: LoadedConfig) -> Report:
    from sentinel.daemon.build import plan_sources

    report = Report()
    plans, collectors, errors = plan_sources(cfg)
    report.errors.extend(errors)
    report.summary.append(f"collectors: {len(collectors)} loaded from {cfg.collectors_dir}; "
                          f"{len(plans)} sources enabled")
    for plan in plans:
        if plan.type == "journal":
            how = f"the systemd journal{_journal_what(plan)}"
        elif plan.type == "syslog":
            how = "syslog on " + ", ".join(plan.settings.syslog.listen)
        else:
            how = ", ".join(plan.paths)
        reason = f" (type: auto; {plan.why})" if plan.settings.type == "auto" else ""
        report.summary.append(f"source {plan.collector.spec.name}: reads {how}{reason}")
    _load_plugins()
    for _, fn in _validators:
        lines, errs = fn(cfg)
        report.summary.extend(lines)
        report.errors.extend(errs)
    return report


def _journal_what(plan: SourcePlan) -> str:
    journal = plan.settings.journal
    where = f" in {journal.directory}" if journal.directory else ""
    return where + (f" files {', '.join(journal.files)}" if journal.files else "")


def _load_plugins() -> None:
    """Import the parts that register validators (kept lazy so conf never imports them at load)."""
    import importlib

    for module in ("sentinel.detect.loader", "sentinel.route.loader"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
