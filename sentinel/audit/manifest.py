"""Content hashes of what a (re)load reads: the config file and the collector, rule and alert folders."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

Manifest = dict[str, str]
_SUFFIXES = (".yaml", ".yml", ".txt", ".csv", ".j2", ".tmpl")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(config_file: Path, folders: Iterable[Path]) -> Manifest:
    """``{path: sha256}`` for the config file and every definition file under the configured folders."""
    out: Manifest = {}
    if config_file.is_file():
        out[str(config_file)] = file_sha256(config_file)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in _SUFFIXES:
                try:
                    out[str(path)] = file_sha256(path)
                except OSError:
                    continue
    return out


def manifest_digest(manifest: Manifest) -> str:
    """One hash naming the whole set, so two loads can be compared at a glance."""
    h = hashlib.sha256()
    for path, digest in sorted(manifest.items()):
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()


def diff_manifests(old: Manifest, new: Manifest) -> dict[str, dict[str, str]]:
    """Files added, removed and changed between two loads, each with its new (or last) content hash."""
    return {
        "added": {p: new[p] for p in sorted(new.keys() - old.keys())},
        "removed": {p: old[p] for p in sorted(old.keys() - new.keys())},
        "changed": {p: new[p] for p in sorted(old.keys() & new.keys()) if old[p] != new[p]},
    }
