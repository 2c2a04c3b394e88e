"""Everything ``sentinel check``, ``run`` and a reload validate, collected in one report.

It asks every part to check its own files, so it lives with the wiring: conf may not know the parts above it."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sentinel.conf.models import LoadedConfig
from sentinel.credentials import SecretError, resolve_reference
from sentinel.daemon.build import SourcePlan, plan_sources
from sentinel.decode.vocabulary import vocabulary_of
from sentinel.detect.loader import validate as validate_rules
from sentinel.errors import ConfigError, Location
from sentinel.notify.templates import load_template_layers
from sentinel.route.loader import validate as validate_routes


@dataclass
class Report:
    summary: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)


def validate_all(cfg: LoadedConfig) -> Report:
    """Collectors and sources, then rules (fields checked against what the collectors emit), then routes."""
    report = Report()
    plans, collectors, errors = plan_sources(cfg)
    report.errors.extend(errors)
    folders = " + ".join(str(d) for d in cfg.collector_dirs)
    report.summary.append(f"collectors: {len(collectors)} loaded from {folders}; {len(plans)} sources enabled")
    for plan in plans:
        if plan.type == "journal":
            how = f"the systemd journal{_journal_what(plan)}"
        elif plan.type == "syslog":
            how = "syslog on " + ", ".join(plan.settings.syslog.listen)
        elif plan.type == "api":
            api = plan.settings.api
            streams = f" ({', '.join(api.streams)})" if api.streams else ""
            how = f"the {api.provider} API{' at ' + api.url if api.url else ''}{streams}, every " \
                  f"{api.poll_interval_seconds:g} s"
        else:
            how = ", ".join(plan.paths)
        reason = f" (type: auto; {plan.why})" if plan.settings.type == "auto" else ""
        report.summary.append(f"source {plan.collector.spec.name}: reads {how}{reason}")
        index = cfg.config.sources.index(plan.settings)
        if plan.type != "api":
            report.warnings.extend(missing_directories(cfg, plan.settings.collector, plan.paths, index))
    vocabulary = vocabulary_of(c.spec for c in collectors.values())
    lines, errs, warns = validate_rules(cfg.rule_sources, vocabulary)
    report.summary.extend(lines)
    report.errors.extend(errs)
    report.warnings.extend(warns)
    if cfg.config.notify.enabled:
        lines, errs = validate_routes(cfg.alert_folders,
                                      lambda: load_template_layers([d / "templates" for d in cfg.alert_dirs]))
        report.summary.extend(lines)
        report.errors.extend(errs)
    else:
        report.summary.append("alert routes: notifications disabled")
    report.errors.extend(secret_problems(cfg))
    return report


def _journal_what(plan: SourcePlan) -> str:
    journal = plan.settings.journal
    where = f" in {journal.directory}" if journal.directory else ""
    return where + (f" files {', '.join(journal.files)}" if journal.files else "")


def secret_problems(cfg: LoadedConfig) -> list[ConfigError]:
    """The config's own secret references (metrics password, Elasticsearch credentials, API sources'
    tokens, client secrets and key files) must resolve."""
    refs: list[tuple[str, str | None]] = []
    if cfg.config.metrics.enabled:
        refs.append(("metrics.password", cfg.config.metrics.password))
    if cfg.config.storage.backend == "elasticsearch":
        es = cfg.config.storage.elasticsearch
        refs += [("storage.elasticsearch.api_key", es.api_key), ("storage.elasticsearch.password", es.password)]
    for i, src in enumerate(cfg.config.sources):
        if src.enabled and src.type == "api":
            refs += [(f"sources[{i}].api.{name}", getattr(src.api, name))
                     for name in ("token", "client_secret", "credentials", "private_key")]
    errors = []
    for name, reference in refs:
        if reference is None:
            continue
        try:
            value = resolve_reference(reference, cfg.base)
        except SecretError as exc:
            errors.append(ConfigError(str(exc), Location(str(cfg.path), None, name)))
            continue
        if name.endswith(".private_key") and not _is_pem_private_key(value):
            errors.append(ConfigError(f"{reference} is not a PEM private key (-----BEGIN PRIVATE KEY----- or "
                                      "-----BEGIN RSA PRIVATE KEY-----, unencrypted)",
                                      Location(str(cfg.path), None, name)))
    return errors


def _is_pem_private_key(value: str) -> bool:
    try:
        key = serialization.load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError):
        return False
    return isinstance(key, rsa.RSAPrivateKey)  # Okta's private_key_jwt here is signed RS256


def missing_directories(cfg: LoadedConfig, collector: str, paths: list[str], index: int) -> list[ConfigError]:
    """A source glob whose directory does not exist yet: not an error (it may appear later), but said."""
    out = []
    for path in paths:
        directory = os.path.dirname(path)
        # The fixed part of the glob: the directory that must exist for anything to ever match.
        while glob.has_magic(directory):
            directory = os.path.dirname(directory)
        if directory and not os.path.isdir(directory):
            out.append(ConfigError(f"source {collector}: directory {directory} does not exist (yet), so {path} "
                                   "matches nothing until it appears",
                                   Location(str(cfg.path), None, f"sources[{index}].paths")))
    return out
