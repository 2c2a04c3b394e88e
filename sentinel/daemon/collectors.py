"""Load every collector definition in a folder and check each one, reporting all problems.

Reading files is wiring work: decode itself stays pure functions of a record (DESIGN.md), so the loading lives here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.conf.yamlfile import LoadedYaml, load_each, load_yaml_file, parse_model
from sentinel.decode.engine import Decoder, compile_pattern, compile_source
from sentinel.decode.spec import CollectorSpec
from sentinel.errors import ConfigError, ConfigErrors, Location
from sentinel.events.conditions import ConditionError
from sentinel.events.records import RawRecord

EXAMPLE_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z: examples decode against a fixed clock


@dataclass(frozen=True)
class LoadedCollector:
    spec: CollectorSpec
    path: Path


def load_collector(path: Path) -> LoadedCollector:
    """Load and validate one collector file, including its patterns and examples."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping with name, format and patterns", Location(str(path), 1))
    spec = parse_model(CollectorSpec, doc)
    errors = _check_patterns(spec, doc) + _check_examples(spec, doc)
    if errors:
        raise ConfigErrors(errors)
    return LoadedCollector(spec, path)


def load_collectors(directory: Path) -> tuple[dict[str, LoadedCollector], list[ConfigError]]:
    """Every ``*.yaml`` in ``directory``; returns what loaded and every error found."""
    if not directory.is_dir():
        return {}, [ConfigError("collectors folder does not exist", Location(str(directory)))]
    loaded, errors = load_each(sorted(directory.glob("*.yaml")), load_collector, lambda c: c.spec.name,
                               "collector name", "name")
    return {c.spec.name: c for c in loaded}, errors


def load_collector_layers(directories: Sequence[Path]) -> tuple[dict[str, LoadedCollector], list[ConfigError]]:
    """Each folder's collectors, lowest layer first; a later folder's collector replaces one of the same name."""
    merged: dict[str, LoadedCollector] = {}
    errors: list[ConfigError] = []
    for directory in directories:
        loaded, layer_errors = load_collectors(directory)
        merged.update(loaded)
        errors.extend(layer_errors)
    return merged, errors


def _check_patterns(spec: CollectorSpec, doc: LoadedYaml) -> list[ConfigError]:
    errors = []
    for i, pattern in enumerate(spec.patterns):
        try:
            compile_pattern(pattern)
        except re.error as exc:
            errors.append(ConfigError(f"invalid regular expression: {exc}", doc.location(("patterns", i, "regex"))))
        except ConditionError as exc:
            errors.append(ConfigError(f"invalid condition: {exc}", doc.location(("patterns", i, "when"))))
        except ValueError as exc:
            errors.append(ConfigError(str(exc), doc.location(("patterns", i))))
    for section in ("map", "lookup"):
        for target, keys in getattr(spec, section).items():
            sources = keys.source if section == "lookup" else keys
            for key in [sources] if isinstance(sources, str) else sources:
                try:
                    compile_source(key)
                except ValueError as exc:
                    errors.append(ConfigError(str(exc), doc.location((section, target))))
    return errors


def _check_examples(spec: CollectorSpec, doc: LoadedYaml) -> list[ConfigError]:
    try:
        decoder = Decoder(spec, "UTC", "example-host")
    except (re.error, ValueError):
        return []
    errors = []
    for i, example in enumerate(spec.examples):
        rec = RawRecord(spec.name, "example", "example.log", 0, len(example.line) + 1, example.line.encode(),
                        reference_time=EXAMPLE_TIME)
        event, _ = decoder.decode(rec, EXAMPLE_TIME)
        for name, want in example.expect.items():
            got = event.fields.get(name)
            if got != want:
                errors.append(ConfigError(f"example decodes {name} to {got!r}, expected {want!r}",
                                          doc.location(("examples", i, "expect", name))))
    return errors
