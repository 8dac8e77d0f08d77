"""Reads the YAML configuration file: its `backends`, `models` and `embeddings` sections become
a `ModelsConfig`, every other top-level key is handed back as a setting for the caller to check,
and every mistake is reported as `file:line: key.path: problem`.

`${VAR}` inside a string value is replaced by the environment variable (unset: an error), so
secrets need not be written in the file; `$${VAR}` stands for a literal `${VAR}`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from assistants_server.backends.config import ModelsConfig

SECTIONS = ("backends", "models", "embeddings")
Loc = tuple[str | int, ...]
_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigFileError(Exception):
    """A mistake in the configuration file. `line` is 1-based (None: not about one line),
    `key` the key path such as `backends[0].timeouts.idle` ("" for the whole file)."""

    def __init__(self, path: Path, problem: str, *, line: int | None = None, key: str = "",
                 others: Sequence[str] = ()) -> None:
        self.path, self.problem, self.line, self.key = path, problem, line, key
        where = f"{path}:{line}" if line is not None else str(path)
        first = f"{where}: {key}: {problem}" if key else f"{where}: {problem}"
        # Every validation mistake at once, so an operator need not fix them one run at a time.
        super().__init__("\n".join([first, *others]))


@dataclass(frozen=True)
class ConfigFile:
    models: ModelsConfig
    settings: dict[str, Any]
    path: Path
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """The line of each top-level key, for errors the caller finds in `settings`."""

    def error_at(self, key: str, problem: str) -> ConfigFileError:
        """An error about the top-level `key`, at its line (for the caller's Settings check)."""
        return ConfigFileError(self.path, problem, line=self.lines.get(key), key=key)


def load_config_file(path: Path) -> ConfigFile:
    """The file at `path`, expanded and validated; ConfigFileError names any mistake's line."""
    reader = _Reader(path)
    root = reader.compose(_read_text(path))
    data = reader.document(root)
    section = {key: data[key] for key in SECTIONS if key in data}
    settings = {key: value for key, value in data.items() if key not in SECTIONS}
    models = reader.validate(section)
    lines = {str(loc[0]): line for loc, line in reader.lines.items() if len(loc) == 1}
    return ConfigFile(models=models, settings=settings, path=path, lines=lines)


def check_settings_keys(config: ConfigFile, known: Iterable[str]) -> None:
    """Refuse the first top-level key that is neither a section nor one of `known`."""
    expected = sorted({*known, *SECTIONS})
    for key in config.settings:
        if key not in expected:
            raise config.error_at(key, _unknown_key(key, expected))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, "configuration file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(path, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigFileError(path, f"cannot read the file: {exc.strerror}") from None


def _unknown_key(key: str, expected: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, expected, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key ({hint}expected one of {', '.join(expected)})"


def _key_path(loc: Loc) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


class _Reader:
    """One reading of one file: YAML nodes to plain data, remembering the line of every key
    and list item so that pydantic's error locations can be turned back into lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        # Only its scalar constructors are used: they give YAML's own int/float/bool/null.
        self.loader = yaml.SafeLoader("")

    def error(self, loc: Loc, problem: str, others: Sequence[str] = ()) -> ConfigFileError:
        return ConfigFileError(self.path, problem, line=self.line(loc), key=_key_path(loc),
                               others=others)

    def line(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor written in the file (a missing key
        is reported at the mapping that lacks it)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def compose(self, text: str) -> Any:
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            raise self._yaml_error(exc) from None
        except yaml.YAMLError as exc:
            raise ConfigFileError(self.path, f"invalid YAML: {exc}") from None

    def _yaml_error(self, exc: Any) -> ConfigFileError:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            return ConfigFileError(self.path, f"invalid YAML: {problem}")
        where = f"column {mark.column + 1}"
        if exc.problem and exc.context:  # e.g. "while parsing a flow mapping", where it began
            began = exc.context_mark
            where += f"; {exc.context}" + (f", line {began.line + 1}" if began else "")
        return ConfigFileError(self.path, f"invalid YAML: {problem} ({where})",
                               line=mark.line + 1)

    def document(self, root: Any) -> dict[str, Any]:
        if root is None:  # empty, or nothing but comments
            return {}
        self.lines[()] = root.start_mark.line + 1
        if not isinstance(root, yaml.MappingNode):
            kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
            raise self.error((), f"the top level must be a mapping of keys (backends, models, "
                                 f"embeddings and settings such as port), not {kind}")
        data: dict[str, Any] = self.value(root, (), frozenset())
        return data

    def value(self, node: Any, loc: Loc, above: frozenset[int]) -> Any:
        if id(node) in above:
            raise self.error(loc, "an alias refers to a node that contains it")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, loc, above | {id(node)})
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.value(item, (*loc, index), above | {id(node)}))
            return items
        scalar = self.scalar(node)
        return self.expand(scalar, loc) if isinstance(scalar, str) else scalar

    def mapping(self, node: Any, loc: Loc, above: frozenset[int]) -> dict[str, Any]:
        self.refuse_duplicates(node, loc)
        try:
            self.loader.flatten_mapping(node)  # `<<: *anchor` merges, as yaml.safe_load does
        except yaml.MarkedYAMLError as exc:
            raise self._yaml_error(exc) from None
        entries: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):  # `yes:` or `8080:` would be a bool or an int
                written = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                raise ConfigFileError(self.path, "a key must be a string; quote it",
                                      line=key_node.start_mark.line + 1,
                                      key=_key_path((*loc, written)))
            entries[key] = (key_node, value_node)  # a merged key gives way to the node's own
        result = {}
        for key, (key_node, value_node) in entries.items():
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*loc, key), above)
        return result

    def refuse_duplicates(self, node: Any, loc: Loc) -> None:
        """PyYAML keeps the last of two equal keys silently; a typo'd copy would hide."""
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key, line = self.scalar(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise ConfigFileError(self.path, f"duplicate key (first at line {seen[key]})",
                                      line=line, key=_key_path((*loc, key_node.value)))
            seen[key] = line

    def scalar(self, node: Any) -> Any:
        try:
            return self.loader.construct_object(node)
        except yaml.MarkedYAMLError as exc:  # an unknown tag such as `!env`
            raise self._yaml_error(exc) from None

    def expand(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if name not in os.environ:
                raise self.error(loc, f"environment variable {name} is not set")
            return os.environ[name]

        return _VARIABLE.sub(replace, text)

    def validate(self, section: dict[str, Any]) -> ModelsConfig:
        try:
            return ModelsConfig.model_validate(section)
        except ValidationError as exc:
            errors = exc.errors()
        problems = sorted((self.problem(error, section) for error in errors),
                          key=lambda found: self.line(found[0]) or 0)
        others = [str(self.error(loc, problem)) for loc, problem in problems[1:]]
        raise self.error(*problems[0], others=others)

    def problem(self, error: ErrorDetails, section: dict[str, Any]) -> tuple[Loc, str]:
        """Where pydantic's error is and what to say about it, in the file's own words."""
        loc, kind = tuple(error["loc"]), error["type"]
        if kind == "extra_forbidden":
            return loc, _unknown_key(str(loc[-1]), _fields_at(loc[:-1]))
        if kind == "missing":
            return loc, "required key is missing"
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return loc, "expected a mapping (indented `key: value` lines)"
        if kind == "value_error":
            message = str(error.get("ctx", {}).get("error", error["msg"]))
            return (loc or _locate_reference(message, section)), message
        return loc, error["msg"]


def _fields_at(loc: Loc) -> list[str]:
    """The field names of the model found at `loc` inside ModelsConfig."""
    model: type[BaseModel] = ModelsConfig
    for part in loc:
        if isinstance(part, int):
            continue  # a list item: the model is the list's item type, already found
        info = model.model_fields.get(part)
        nested = _model_in(info.annotation) if info is not None else None
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model in an annotation such as `list[Target]` or `EmbeddingsConfig | None`."""
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation if issubclass(annotation, BaseModel) else None
    return next((found for arg in get_args(annotation) if (found := _model_in(arg))), None)


def _locate_reference(message: str, section: dict[str, Any]) -> Loc:
    """The key that ModelsConfig's cross-reference check (which has no location of its own)
    complains about, found from the names its message quotes; else the section it is about."""
    # Only reached once every field has validated: each route here is a mapping.
    routes: list[dict[str, Any]] = list(section.get("models") or [])
    if found := re.match(r"model '(.*)' names backend '(.*)', which is not declared", message):
        return _route_target(routes, *found.groups())
    if message.startswith("embeddings names backend"):
        return ("embeddings", "backend")
    places: list[tuple[Loc, Any]] = []
    if message.startswith("backend names"):
        places = [(("backends", i, "name"), backend.get("name"))
                  for i, backend in enumerate(section.get("backends") or [])]
    elif message.startswith("model names"):
        for i, route in enumerate(routes):
            places.append((("models", i, "name"), route.get("name")))
            places += [(("models", i, "aliases", k), alias)
                       for k, alias in enumerate(route.get("aliases") or [])]
    repeated = re.search(r"repeated: ([^,]*)", message)
    again = [loc for loc, name in places if repeated and name == repeated.group(1)]
    if len(again) > 1:
        return again[1]  # the second use is the one to remove or rename
    first = message.split(" ", 1)[0].rstrip("s")
    return next(((name,) for name in SECTIONS if name.rstrip("s") == first), ())


def _route_target(routes: list[dict[str, Any]], model: str, backend: str) -> Loc:
    """The `backend` key of route `model` (or of one of its fallbacks) naming `backend`."""
    for i, route in enumerate(routes):
        if route.get("name") != model:
            continue
        if route.get("backend") == backend:
            return ("models", i, "backend")
        for k, target in enumerate(route.get("fallbacks") or []):
            if target.get("backend") == backend:
                return ("models", i, "fallbacks", k, "backend")
        return ("models", i)
    return ("models",)
