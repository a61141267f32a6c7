"""Reading YAML with line numbers: the PyYAML half of yamlfile, imported only when a
file is actually read (a command that finds everything it needs in the caches never
loads PyYAML). Use :func:`funnelctl.yamlfile.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .yamlfile import MAX_DEPTH, Problem, YamlError, YList, YMap, describe

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _source(node: yaml.Node) -> str | None:
    """The text as written of a plain scalar that YAML reads as something other than text."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _STR_TAG:
        return None
    if node.style in (None, ""):  # plain: libyaml says "" where the Python parser says None
        return str(node.value)
    return None


class _Loader(yaml.SafeLoader):
    """A SafeLoader that collects key problems instead of stopping at the first one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_problems: list[tuple[int, str]] = []


# libyaml's parser when PyYAML was built with it (the wheels are): the same safe
# constructors, about ten times faster, which every command feels at startup. Its
# syntax errors are terser, so a file it rejects is read again by _Loader for the message.
_CBase: Any = getattr(yaml, "CSafeLoader", None)


class _FastLoader(_CBase or yaml.SafeLoader):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_problems: list[tuple[int, str]] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YMap:
    result = YMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.sources = {}
    written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)
    # flatten_mapping puts the entries of `<<: *anchor` first; the keys written in the
    # mapping itself override those, as YAML says, and only they can be duplicates.
    merged = len(node.value) - written
    own: set[str] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            as_written = _source(key_node) or str(key)
            read_as = str(key).lower() if isinstance(key, bool) else describe(key).split(" (")[0]
            loader.key_problems.append(
                (
                    line,
                    f"the key {as_written} must be text, but YAML reads it as {read_as}; "
                    f'quote it: "{as_written}"',
                )
            )
            continue
        if index >= merged:
            if key in own:
                loader.key_problems.append(
                    (line, f"duplicate key {key!r} (first on line {result.key_lines[key]})")
                )
                continue
            own.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        source = _source(value_node)
        if source is None:
            result.sources.pop(key, None)
        else:
            result.sources[key] = source
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.sources = {}
    for index, child in enumerate(node.value):
        source = _source(child)
        if source is not None:
            result.sources[index] = source
    return result


for _loader in (_Loader, _FastLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

_HINTS = {
    "mapping values are not allowed here": "quote text that contains ': '",
    "found character '\\t'": "indent with spaces, not tabs",
    "could not determine a constructor": "funnelctl reads plain YAML, without tags",
}


def _syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> YamlError:
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    context, start = exc.context, exc.context_mark
    if exc.problem and context and start and start.line + 1 != line:
        started = start.line + 1
        if "end of stream" in problem or "<stream end>" in problem:
            # An unclosed quote or bracket: the file ended while YAML still looked for
            # its end, so the place to fix is where it started.
            problem = f"{problem} on line {line} {context} that starts here"
            line = started
        else:
            problem = f"{problem} ({context} that starts on line {started})"
    for text, hint in _HINTS.items():
        if text in problem:
            problem = f"{problem} ({hint})"
    return YamlError(Problem(path, line, problem))


def parse(path: Path, text: str | None = None) -> Any:
    """Parse one YAML file; a file that cannot be read or parsed raises YamlError.

    Duplicate and non-text keys do not stop the reading: they are kept on the
    top-level mapping (``load_problems``) and reported by :meth:`Fields.done`,
    together with every other problem of the file.
    """
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
        loader: Any
        try:
            loader = _FastLoader(text)
            data = loader.get_single_data()
        except yaml.MarkedYAMLError:
            loader = _Loader(text)  # the pure-Python parser explains syntax errors better
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except OSError as exc:
        raise YamlError(Problem(path, None, f"cannot read: {exc.strerror}")) from None
    except UnicodeDecodeError:
        raise YamlError(Problem(path, None, "is not UTF-8 text")) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(path, exc) from None
    except yaml.YAMLError as exc:
        raise YamlError(Problem(path, None, f"invalid YAML: {exc}")) from None
    except RecursionError:
        assert text is not None  # reading the file cannot recurse
        raise YamlError(
            Problem(
                path,
                _too_deep_line(text),
                f"lists or mappings are nested more than {MAX_DEPTH} levels deep here; "
                "a playbook or settings file needs only a few",
            )
        ) from None
    key_problems = sorted(loader.key_problems)
    if key_problems:
        if not isinstance(data, YMap):
            located = [Problem(path, line, message) for line, message in key_problems]
            raise YamlError(located[0], located[1:])
        data.load_problems = key_problems
    return data


def _too_deep_line(text: str) -> int:
    """The line where nesting first goes past MAX_DEPTH (the events parser does not recurse)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(event.start_mark.line) + 1 if event.start_mark else 1
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return 1
