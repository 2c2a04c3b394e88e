"""YAML loading that remembers the line of every key, so errors can name file:line: field."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sentinel.errors import ConfigError, Location

# LibYAML's parser when PyYAML was built with it: composing the collectors and rules in pure Python
# took most of a second at every start.
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass
class LoadedYaml:
    """A parsed YAML document and the line (1-based) of each key path in it."""

    path: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Path_) -> int | None:
        """Line of the deepest known prefix of ``loc``."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def location(self, loc: Path_) -> Location:
        return Location(self.path, self.line_of(loc), dotted(loc) or None)


def dotted(loc: Path_) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml_text(text: str, path: str) -> LoadedYaml:
    """Parse text; broken YAML raises ConfigError naming the line and column."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", Location(path, line)) from None
    loaded = LoadedYaml(path, None)
    if node is None:
        return loaded
    loaded.data = _construct(node, (), loaded.lines, path)
    return loaded


MAX_YAML_BYTES = 16 << 20  # far above any real config, rule or route file; keeps a wrong path from eating memory


def load_yaml_file(path: Path) -> LoadedYaml:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", Location(str(path))) from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"file is larger than {MAX_YAML_BYTES >> 20} MiB; is this the right file?",
                          Location(str(path)))
    if b"\0" in raw:
        raise ConfigError("file is binary (contains NUL bytes), not YAML", Location(str(path)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("file is not valid UTF-8", Location(str(path), line)) from None
    return load_yaml_text(text, str(path))


def _construct(node: yaml.Node, loc: Path_, lines: dict[Path_, int], path: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported",
                                  Location(path, key_node.start_mark.line + 1))
            key = yaml.SafeLoader(b"").construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool):
                raise ConfigError("mapping keys must be plain scalars", Location(path, key_node.start_mark.line + 1))
            key = str(key)
            if key in out:
                raise ConfigError(f"duplicate key {key!r}",
                                  Location(path, key_node.start_mark.line + 1, dotted((*loc, key))))
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*loc, key), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, (*loc, i), lines, path) for i, child in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid value: {exc}", Location(path, node.start_mark.line + 1, dotted(loc))) from None


def validation_errors(exc: ValidationError, doc: LoadedYaml, prefix: Path_ = ()) -> list[ConfigError]:
    """Translate a pydantic ValidationError into located ConfigErrors."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the documented keys)"
        elif err["type"] == "missing":
            message = "required key is missing"
        errors.append(ConfigError(message, doc.location(loc)))
    return errors


def parse_model(model: type[M], doc: LoadedYaml, data: Any = None, prefix: Path_ = ()) -> M:
    """Validate ``data`` (default: the whole document) into ``model``; raise ConfigError(s) with lines."""
    from sentinel.errors import ConfigErrors

    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, doc, prefix)) from None


def load_each(
    paths: Iterable[Path], load: Callable[[Path], T], key: Callable[[T], str], what: str, key_field: str
) -> tuple[list[T], list[ConfigError]]:
    """Load every file, collecting every error instead of stopping at the first; a key defined twice
    (two collectors with one name, two rules with one id) is an error naming both files."""
    from sentinel.errors import ConfigErrors

    loaded: list[T] = []
    errors: list[ConfigError] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            item = load(path)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        name = key(item)
        if name in seen:
            errors.append(ConfigError(f"{what} {name!r} already defined in {seen[name]}",
                                      Location(str(path), None, key_field)))
            continue
        seen[name] = path
        loaded.append(item)
    return loaded, errors
