"""Strict YAML reading with line numbers, for playbooks and funnelctl.yaml.

``yaml.safe_load`` loses line numbers and silently keeps the last of two
duplicate keys. Here every mapping remembers the line of each key, duplicate
keys are errors, and :class:`Fields` reads typed values out of a mapping while
collecting every problem as ``file:line: message`` so that all of them can be
reported in one run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ValidationError

T = TypeVar("T")


class YMap(dict[str, Any]):
    """A YAML mapping that knows the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YMap:
    result = YMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} must be text (quote it)", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(path: Path, text: str | None = None) -> Any:
    """Parse one YAML file; a syntax error or duplicate key raises ValidationError."""
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: is not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ValidationError(f"{path}:{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path}: invalid YAML: {exc}") from None


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (YAML reads yes/no/on/off as booleans; quote it)"
    if isinstance(value, (int, float)):
        return f"the number {value} (quote it if it is text)"
    if isinstance(value, (YMap, dict)):
        return "a mapping"
    if isinstance(value, (YList, list)):
        return "a list"
    if value is None:
        return "empty"
    return repr(value)


class Problems:
    """Collects ``file:line: message`` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: Path | str, line: int, message: str) -> None:
        self.items.append(f"{path}:{line}: {message}")

    def raise_if_any(self, summary: str) -> None:
        if self.items:
            raise ValidationError(summary.format(n=len(self.items)), self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


_MISSING: Any = object()


class Fields:
    """Typed, checked reads from one YAML mapping; unknown keys reported by :meth:`done`."""

    def __init__(self, mapping: YMap, path: Path | str, problems: Problems, where: str) -> None:
        self.map = mapping
        self.path = path
        self.problems = problems
        self.where = where
        self.seen: set[str] = set()

    def line(self, key: str | None = None) -> int:
        return self.map.line_of(key) if key else self.map.line

    def problem(self, key: str | None, message: str) -> None:
        self.problems.add(self.path, self.line(key), f"{self.where}: {message}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        required: bool = False,
        convert: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Value of ``key`` checked to be ``kind`` (then passed through ``convert``).

        ``convert`` raises ValueError with a message for an invalid value.
        On any problem the problem is recorded and ``default`` returned.
        """
        self.seen.add(key)
        if key not in self.map or self.map[key] is None:
            if required:
                self.problem(None, f"missing required key '{key}'")
            return default
        value = self.map[key]
        ok = isinstance(value, kind) and not (
            isinstance(value, bool) and kind in (str, int, float, (int, float))
        )
        if not ok:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            expected = {"str": "text", "YMap": "a mapping", "YList": "a list", "bool": "true or false"}
            self.problem(key, f"'{key}' must be {expected.get(names, names)}, not {describe(value)}")
            return default
        if convert is not None:
            try:
                return convert(value)
            except ValueError as exc:
                self.problem(key, f"'{key}': {exc}")
                return default
        return value

    def done(self) -> None:
        for key in self.map:
            if key not in self.seen:
                allowed = ", ".join(sorted(self.seen))
                self.problem(key, f"unknown key '{key}' (allowed: {allowed})")
