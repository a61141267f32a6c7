"""The workspace's playbooks, checked once and then read from a cache.

Reading and checking every playbook (YAML, then every condition compiled by Jinja)
costs more than most commands' own work, and the playbooks change rarely. So the
checked library is kept in ``.cache/library.json`` in the workspace, under a key made of
the contents of every file it was read from (playbooks and templates, by name), the
team, and funnelctl's own playbook code. Any change, a cache that cannot be read, or one
written by another version is rebuilt silently; a library with problems is never
cached, so they are reported on every command until fixed.

The cache is JSON, read back only into the playbooks' own frozen dataclasses (by name,
from an allow-list): a file someone else put there can describe a library, never run
code (jsoncache). It is owner-only, like the database. A cache hit imports neither
PyYAML nor Jinja.

Beside it, ``.cache/outline.json`` holds the library's outline (outline.py), under the
same key: what `funnelctl due` reads, without loading the playbooks' classes at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import jsoncache
from .outline import CLASSES as OUTLINE_CLASSES
from .outline import Outline, outline
from .yamlfile import playbook_files

if TYPE_CHECKING:  # imported when the library itself is read: an outline needs none of it
    from .playbooks import Library

CACHE_NAME = "library.json"
OUTLINE_NAME = "outline.json"
# The code that reads and checks the playbooks (and makes their outline): a change to it is
# a change of what is cached.
_RULES = ("playbooks.py", "yamlfile.py", "yamlparse.py", "outline.py")


def cached_library(
    playbooks_dir: Path, templates_dir: Path, team: Sequence[str], cache_dir: Path
) -> Library:
    key = _key(_files(playbooks_dir, templates_dir), team)
    return _library(key, playbooks_dir, templates_dir, team, cache_dir)


def cached_outline(
    playbooks_dir: Path, templates_dir: Path, team: Sequence[str], cache_dir: Path
) -> Outline:
    """The outline of the checked library (outline.py), cached under the library's key:
    read back, it builds no playbook object. The library is read (from its own cache, else
    from the files, and its problems reported) only when the outline must be made again."""
    key = _key(_files(playbooks_dir, templates_dir), team)
    path = cache_dir / OUTLINE_NAME
    cached = jsoncache.read(path, key, OUTLINE_CLASSES) if key else None
    if isinstance(cached, Outline):
        return cached
    made = outline(_library(key, playbooks_dir, templates_dir, team, cache_dir))
    if key:
        jsoncache.write(path, key, made)
    return made


def _files(playbooks_dir: Path, templates_dir: Path) -> list[Path]:
    return [*playbook_files([playbooks_dir]), *sorted(templates_dir.glob("*.txt"))]


def _library(
    key: str | None,
    playbooks_dir: Path,
    templates_dir: Path,
    team: Sequence[str],
    cache_dir: Path,
) -> Library:
    from . import playbooks

    path = cache_dir / CACHE_NAME
    # The dataclasses a cached library may hold, by name: nothing else is ever built.
    classes = jsoncache.dataclasses_of(vars(playbooks))
    cached = jsoncache.read(path, key, classes) if key else None
    if isinstance(cached, playbooks.Library):
        return cached
    library = playbooks.load_library([playbooks_dir], templates_dir=templates_dir, team=team)
    if key:
        jsoncache.write(path, key, library)
    return library


def _key(files: Sequence[Path], team: Sequence[str]) -> str | None:
    """The cache key of everything the checked library depends on; None when a file cannot be
    read (the library is then loaded, and its problem reported, every time)."""
    try:
        contents = [(path, path.read_bytes()) for path in files]
    except OSError:
        return None

    def parts() -> Iterator[bytes]:
        yield ",".join(team).encode()
        for rules in _RULES:
            yield Path(__file__).with_name(rules).read_bytes()
        for path, content in contents:
            yield str(path).encode()
            yield content

    return jsoncache.cache_key(parts())
