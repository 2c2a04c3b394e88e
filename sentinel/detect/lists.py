"""Operator-maintained name lists (terminated accounts, PHI workstations) that rules refer to by name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from sentinel.conf.models import ConfigFile, DetectionSettings
from sentinel.errors import ConfigError, Location
from sentinel.shipped import shipped_path

# List name in rules → the detection setting that holds its file.
LIST_SETTINGS = {
    "terminated_accounts": "terminated_accounts_file",
    "phi_workstations": "phi_workstations_file",
    "personal_mail_domains": "personal_mail_domains_file",
}
# Lists the package ships filled in (an operator's file replaces them): the ones that are the same everywhere.
LIST_DEFAULTS = {"personal_mail_domains": ("lists", "personal-mail-domains.txt")}


def parse_list(text: str) -> frozenset[str]:
    """One name per line; ``#`` starts a comment; blank lines ignored; names compared lower-case."""
    names = set()
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name.lower())
    return frozenset(names)


class NamedLists(Mapping[str, frozenset[str]]):
    """The lists by name; :meth:`reload` swaps contents in place so compiled rules see the new names."""

    def __init__(self, files: Mapping[str, Path | None]) -> None:
        self.files = dict(files)
        for name, parts in LIST_DEFAULTS.items():
            if self.files.get(name) is None:
                self.files[name] = shipped_path(*parts)
        self._data: dict[str, frozenset[str]] = {name: frozenset() for name in self.files}
        self._stamp: dict[str, tuple[int, int] | None] = {name: None for name in self.files}

    @classmethod
    def from_settings(cls, d: DetectionSettings, origin: ConfigFile) -> NamedLists:
        files: dict[str, Path | None] = {}
        for name, setting in LIST_SETTINGS.items():
            value = getattr(d, setting)
            files[name] = origin.resolve(value) if value else None
        return cls(files)

    def reload(self) -> list[ConfigError]:
        """Re-read every list whose file changed; a list whose file is missing keeps its last contents."""
        errors = []
        for name, path in self.files.items():
            if path is None:
                continue
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp == self._stamp[name]:
                    continue
                self._data[name] = parse_list(path.read_text(encoding="utf-8", errors="replace"))
                self._stamp[name] = stamp
            except OSError as exc:
                errors.append(ConfigError(f"cannot read the {name} list: {exc.strerror}", Location(str(path))))
        return errors

    def __getitem__(self, key: str) -> frozenset[str]:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
