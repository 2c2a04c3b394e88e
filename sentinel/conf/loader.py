"""Load and validate ``sentinel.yaml``."""

from __future__ import annotations

import os
from pathlib import Path

from sentinel.conf.models import LoadedConfig, SentinelConfig
from sentinel.conf.yamlfile import load_yaml_file, parse_model
from sentinel.errors import ConfigError, Location
from sentinel.shipped import shipped_path

SYSTEM_CONFIG = Path("/etc/sentinel/sentinel.yaml")


def default_config_path() -> Path:
    """$SENTINEL_CONFIG, else the system's config, else the default config shipped in the package."""
    env = os.environ.get("SENTINEL_CONFIG")
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else shipped_path("config", "sentinel.yaml")


def load_config(path: Path) -> LoadedConfig:
    """Read and validate the daemon configuration; raises ConfigError/ConfigErrors with locations."""
    doc = load_yaml_file(path)
    if doc.data is None:
        # An empty file would silently mean "all defaults" (state in /var/lib, no sources): say so instead.
        raise ConfigError("the file is empty; expected the sentinel settings (see config/sentinel.yaml)",
                          Location(str(path), 1))
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping at the top level", Location(str(path), 1))
    cfg = parse_model(SentinelConfig, doc)
    return LoadedConfig(config=cfg, path=path.resolve())
