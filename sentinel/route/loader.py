"""Load ``alerts/routes.yaml`` and ``alerts/receivers.yaml`` into a Routing; every problem carries file:line."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sentinel.conf.models import AlertFolders
from sentinel.conf.yamlfile import LoadedYaml, load_yaml_file, parse_model
from sentinel.credentials import SecretError, inline_secret, resolve_embedded
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.route.spec import ReceiversFile, RoutesFile
from sentinel.route.tree import RoutingTree

ROUTES_FILE = "routes.yaml"
RECEIVERS_FILE = "receivers.yaml"


@dataclass(frozen=True)
class Receiver:
    """A receiver with its URLs' secret references resolved (never print ``urls``)."""

    name: str
    urls: tuple[str, ...]
    fallback: str | None
    max_attempts: int | None
    template: str
    problem: str | None = None  # e.g. a secret reference that did not resolve: every send fails with this

    def __repr__(self) -> str:  # keeps resolved secrets out of tracebacks and debug output
        return f"Receiver({self.name!r}, {len(self.urls)} url(s), fallback={self.fallback!r})"


@dataclass(frozen=True)
class Routing:
    spec: RoutesFile
    tree: RoutingTree
    receivers: dict[str, Receiver]
    zone: ZoneInfo


def load_routing(alerts_dir: Path, default_zone: str = "UTC", resolve_secrets: bool = True) -> Routing:
    """Load both files; raises ConfigErrors listing every problem."""
    return _raise_on_errors(*_load(alerts_dir / ROUTES_FILE, alerts_dir / RECEIVERS_FILE, default_zone,
                                   resolve_secrets), alerts_dir)


def load_config_routing(folders: AlertFolders) -> Routing:
    """The configuration's routes and receivers: each file from the top-most alerts folder that has it."""
    return _raise_on_errors(*_load(folders.file(ROUTES_FILE), folders.file(RECEIVERS_FILE),
                                   folders.timezone, True), folders.operator_dir)


def _raise_on_errors(routing: Routing | None, errors: list[ConfigError], where: Path) -> Routing:
    if errors or routing is None:
        raise ConfigErrors(errors or [ConfigError("routing could not be loaded", Location(str(where)))])
    return routing


def _load(routes_path: Path, receivers_path: Path, default_zone: str,
          resolve_secrets: bool) -> tuple[Routing | None, list[ConfigError]]:
    errors: list[ConfigError] = []
    routes_doc = _read(routes_path, errors)
    receivers_doc = _read(receivers_path, errors)
    routes = _parse(RoutesFile, routes_doc, errors)
    receivers_spec = _parse(ReceiversFile, receivers_doc, errors)
    if routes is None or receivers_spec is None or routes_doc is None or receivers_doc is None:
        return None, errors

    zone_name = routes.timezone or default_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(ConfigError(f"unknown time zone {zone_name!r}; expected an IANA name such as America/Chicago",
                                  routes_doc.location(("timezone",))))
        zone = ZoneInfo("UTC")
    tree = RoutingTree(routes, zone)

    receivers: dict[str, Receiver] = {}
    for i, spec in enumerate(receivers_spec.receivers):
        if spec.name in receivers:
            errors.append(ConfigError(f"receiver {spec.name!r} is defined twice",
                                      receivers_doc.location(("receivers", i, "name"))))
            continue
        urls: list[str] = []
        problems: list[str] = []
        for j, url in enumerate(spec.urls):
            where = receivers_doc.location(("receivers", i, "urls", j))
            found = inline_secret(url)
            if found:
                errors.append(ConfigError(f"this URL carries a credential inline: {found}; reference it as "
                                          "${ENV_VAR} or file:/path instead", where))
                continue
            if not resolve_secrets:
                urls.append(url)
                continue
            try:
                urls.append(resolve_embedded(url, receivers_path.parent))
            except SecretError as exc:
                # Not fatal: the receiver's messages fail (recorded) and go to its fallback; check warns.
                problems.append(f"{where}: {exc}")
        receivers[spec.name] = Receiver(spec.name, tuple(urls), spec.fallback, spec.max_attempts, spec.template,
                                        "; ".join(problems) or None)

    for i, spec in enumerate(receivers_spec.receivers):
        if spec.fallback is not None and spec.fallback not in receivers:
            errors.append(ConfigError(f"unknown fallback receiver {spec.fallback!r}; known: {_known(receivers)}",
                                      receivers_doc.location(("receivers", i, "fallback"))))
        if spec.fallback == spec.name:
            errors.append(ConfigError("a receiver cannot be its own fallback",
                                      receivers_doc.location(("receivers", i, "fallback"))))

    for path, name in _receiver_refs(routes_doc.data):
        if name not in receivers:
            errors.append(ConfigError(f"unknown receiver {name!r}; known: {_known(receivers)}",
                                      routes_doc.location(path)))
    return Routing(routes, tree, receivers, zone), errors


def _known(receivers: dict[str, Receiver]) -> str:
    return ", ".join(sorted(receivers)) or "none defined"


def _read(path: Path, errors: list[ConfigError]) -> LoadedYaml | None:
    try:
        doc = load_yaml_file(path)
    except ConfigError as exc:
        errors.append(exc)
        return None
    if not isinstance(doc.data, dict):
        errors.append(ConfigError("expected a mapping at the top level", Location(str(path), 1)))
        return None
    return doc


def _parse(model: Any, doc: LoadedYaml | None, errors: list[ConfigError]) -> Any:
    if doc is None:
        return None
    try:
        return parse_model(model, doc)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
        return None


def _receiver_refs(data: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """(YAML path, receiver name) for every receiver a routes file names."""
    out: list[tuple[tuple[str | int, ...], str]] = []

    def names(node: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(node, list):
            out.extend(((*path, j), str(n)) for j, n in enumerate(node))

    def route(node: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(node, dict):
            return
        names(node.get("receivers"), (*path, "receivers"))
        for i, child in enumerate(node.get("routes") or []):
            route(child, (*path, "routes", i))

    route(data.get("route"), ("route",))
    for sev, tier in (data.get("tiers") or {}).items():
        if isinstance(tier, dict):
            names(tier.get("receivers"), ("tiers", sev, "receivers"))
    for key in ("digest", "incident"):
        if isinstance(data.get(key), dict):
            names(data[key].get("receivers"), (key, "receivers"))
    for i, esc in enumerate(data.get("escalation") or []):
        for k, step in enumerate((esc or {}).get("steps") or []):
            if isinstance(step, dict):
                names(step.get("receivers"), ("escalation", i, "steps", k, "receivers"))
    return out


def validate(folders: AlertFolders, load_templates: Callable[[], tuple[Collection[str], list[ConfigError]]],
             ) -> tuple[list[str], list[ConfigError]]:
    """``sentinel check``: routes, receivers (secret references resolvable) and the templates they name.

    Templates belong to notify, which route may not use: ``load_templates`` (given by the daemon) loads them."""
    receivers_path = folders.file(RECEIVERS_FILE)
    routing, errors = _load(folders.file(ROUTES_FILE), receivers_path, folders.timezone, resolve_secrets=True)
    if routing is None:
        return [f"alert routes: not loaded from {folders.operator_dir}"], errors
    templates, template_errors = load_templates()
    errors.extend(template_errors)
    for r in routing.receivers.values():
        if r.template not in templates:
            errors.append(ConfigError(f"unknown template {r.template!r}; known: {', '.join(sorted(templates))}",
                                      Location(str(receivers_path), None, f"receivers[{r.name}].template")))
    warnings = [f"warning: receiver {r.name} cannot send until fixed: {r.problem}"
                for r in routing.receivers.values() if r.problem]
    summary = (f"alert routes: {len(routing.receivers)} receivers, {len(templates)} templates, "
               f"{len(routing.spec.escalation)} escalation policies, zone {routing.zone.key}")
    return [summary, *warnings], errors

