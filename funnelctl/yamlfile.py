"""Strict YAML reading with line numbers, for playbooks and funnelctl.yaml.

``yaml.safe_load`` loses line numbers and silently keeps the last of two
duplicate keys. Here every mapping remembers the line of each key and the text
as written of values YAML did not read as text, duplicate keys are errors
reported with every other problem of the file, and :class:`Fields` reads typed
values out of a mapping while collecting every problem as ``file:line: message``
so that all of them can be reported in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from .errors import ValidationError

T = TypeVar("T")


class Problem(NamedTuple):
    """One problem of a file: where it is (``line`` None for the whole file) and what."""

    path: Path | str
    line: int | None
    message: str

    def __str__(self) -> str:
        """``file:line: message``: the one way a problem is written for the user."""
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class YamlError(ValidationError):
    """A file that cannot be read as YAML. ``problem`` keeps the place apart from the
    message, so that a caller collecting problems can sort this one with the rest."""

    def __init__(self, problem: Problem, more: list[Problem] | None = None) -> None:
        super().__init__(str(problem), [str(p) for p in more or ()])
        self.problem = problem


class YMap(dict[str, Any]):
    """A YAML mapping that knows the line of itself and of each key (1-based).

    ``sources`` keeps the text as written of each plain value that YAML did not
    read as text (``NO``, ``0755``, ``12:30``), so that a message can quote what
    the user wrote rather than what YAML made of it. The top-level mapping of a
    file also carries ``load_problems``: the duplicate and non-text keys found
    anywhere in the file, which :meth:`Fields.done` reports with the rest.
    """

    line: int = 0
    key_lines: dict[str, int]
    sources: dict[str, str]
    load_problems: list[tuple[int, str]]

    def line_of(self, key: str) -> int:
        return int(getattr(self, "key_lines", {}).get(key, self.line))

    def source_of(self, key: str) -> str | None:
        return getattr(self, "sources", {}).get(key)


class YList(list[Any]):
    line: int = 0
    item_lines: list[int]
    sources: dict[int, str]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line

    def source_of(self, index: int) -> str | None:
        return getattr(self, "sources", {}).get(index)


def load(path: Path, text: str | None = None) -> Any:
    """Parse one YAML file; a file that cannot be read or parsed raises YamlError.

    Duplicate and non-text keys do not stop the reading: they are kept on the
    top-level mapping (``load_problems``) and reported by :meth:`Fields.done`,
    together with every other problem of the file.
    """
    from .yamlparse import parse  # PyYAML is imported only when a file is read

    return parse(path, text)


MAX_DEPTH = 100


def describe(value: Any, source: str | None = None, *, text_expected: bool = True) -> str:
    """How a value reads in a message; ``source`` is the value as written in the file.

    Where text was expected, the message says how to make YAML read it as text.
    """
    if isinstance(value, bool):
        word = str(value).lower()
        if not text_expected:
            return source or word
        if source and source != word:
            return f'{source} (YAML reads {source} as {word}; quote it: "{source}")'
        return f"{word} (YAML reads yes/no/on/off as booleans; quote it)"
    if isinstance(value, (int, float)):
        if not text_expected:
            return f"the number {source or value}"
        if source and source != str(value):
            return f'{source} (YAML reads {source} as the number {value}; quote it: "{source}")'
        return f"the number {value} (quote it if it is text)"
    if isinstance(value, (date, datetime)):
        written = source or value.isoformat()
        return f"the date {written} (quote it if it is text)" if text_expected else written
    if isinstance(value, (YMap, dict)):
        return "a mapping"
    if isinstance(value, (YList, list)):
        return "a list"
    if value is None:
        return "empty"
    return repr(value)


def _position(problem: Problem) -> tuple[str, int]:
    if problem.line is None:
        # A problem of a whole file (it cannot be read) sorts by its whole text, so that
        # the reported order stays what users and scripts have seen so far.
        return (str(problem), 0)
    return (str(problem.path), problem.line)


class Problems:
    """Collects problems of one or more files; written as ``file:line: message`` only
    when they are reported, all at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: Path | str, line: int | None, message: str) -> None:
        self.items.append(Problem(path, line, message))

    def sorted(self) -> list[Problem]:
        """The problems by file name, then by line: the order in which to fix them."""
        return sorted(self.items, key=_position)

    def raise_if_any(self, summary: str) -> None:
        if self.items:
            raise ValidationError(
                summary.format(n=len(self.items)), [str(p) for p in self.sorted()]
            )

    def __bool__(self) -> bool:
        return bool(self.items)


_KINDS = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    YMap: "a mapping",
    YList: "a list",
}


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = (kind,) if isinstance(kind, type) else kind
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(_KINDS.get(k, k.__name__) for k in kinds)


class Fields:
    """Typed, checked reads from one YAML mapping; unknown keys reported by :meth:`done`."""

    def __init__(self, mapping: YMap, path: Path | str, problems: Problems, where: str) -> None:
        self.map = mapping
        self.path = path
        self.problems = problems
        self.where = where
        self.seen: set[str] = set()
        self.handled: set[str] = set()

    def line(self, key: str | None = None) -> int:
        return self.map.line_of(key) if key else self.map.line

    def problem(self, key: str | None, message: str) -> None:
        self.problems.add(self.path, self.line(key), f"{self.where}: {message}")

    def describe(self, key: str, *, text_expected: bool = True) -> str:
        """The value of ``key`` for a message, as the user wrote it."""
        return describe(self.map.get(key), self.map.source_of(key), text_expected=text_expected)

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
            if required and key in self.map:
                self.problem(key, f"'{key}' is empty; it needs a value")
            elif required:
                self.problem(None, f"missing required key '{key}'")
            return default
        value = self.map[key]
        kinds = (kind,) if isinstance(kind, type) else kind
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            written = self.describe(key, text_expected=str in kinds)
            self.problem(key, f"'{key}' must be {_kind_name(kind)}, not {written}")
            return default
        if convert is not None:
            try:
                return convert(value)
            except ValueError as exc:
                self.problem(key, f"'{key}': {exc}")
                return default
        return value

    def ignore(self, key: str) -> None:
        """``key`` has been dealt with (reported, say) but is not one to suggest."""
        self.handled.add(key)

    def done(self) -> None:
        """Report the keys nobody asked for and, on a file's top level, its key problems."""
        for line, message in getattr(self.map, "load_problems", ()):
            self.problems.add(self.path, line, message)
        self.map.load_problems = []
        allowed = sorted(self.seen - self.handled)
        for key in self.map:
            if key not in self.seen and key not in self.handled:
                from difflib import get_close_matches

                close = get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.problem(key, f"unknown key '{key}' ({hint}allowed: {', '.join(allowed)})")


def playbook_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files under ``paths`` (files or folders), each once, folders in name order."""
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            found = [path]
        else:
            raise ValidationError(f"{path}: no such playbook file or folder")
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files
