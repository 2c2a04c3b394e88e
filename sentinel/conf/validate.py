"""Everything ``sentinel check`` and a reload validate, collected in one report.

Other parts (rules, routes) add their loaders through :func:`register_validator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sentinel.conf.models import LoadedConfig
from sentinel.errors import ConfigError

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
    folders = " + ".join(str(d) for d in cfg.collector_dirs)
    report.summary.append(f"collectors: {len(collectors)} loaded from {folders}; {len(plans)} sources enabled")
    _load_plugins()
    for _, fn in _validators:
        lines, errs = fn(cfg)
        report.summary.extend(lines)
        report.errors.extend(errs)
    return report


def _load_plugins() -> None:
    """Import the parts that register validators (kept lazy so conf never imports them at load)."""
    import importlib

    for module in ("sentinel.detect.loader", "sentinel.route.loader"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
