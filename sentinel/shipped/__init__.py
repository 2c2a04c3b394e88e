"""The built-in defaults that travel inside the package: collectors, the rule pack, alert routes, receivers
and templates, the default config, the Grafana dashboard, Prometheus rules, the systemd units and the
logrotate snippet. An operator's folders override and extend them (``sentinel.conf.layers``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sentinel.errors import SentinelError


def shipped_path(*parts: str) -> Path:
    """The file or folder ``parts`` inside the installed package, as a real path on disk."""
    root = files(__name__)
    if not isinstance(root, Path):
        # A zipped install would hand back a Traversable; the loaders read folders with rglob.
        raise SentinelError(f"sentinel's shipped files are not on disk ({root}); install the package unzipped")
    return root.joinpath(*parts)
