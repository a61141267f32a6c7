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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from . import jsoncache, playbooks
from .playbooks import Library, load_library, playbook_files

CACHE_NAME = "library.json"
# The dataclasses a cached library may hold, by name: nothing else is ever built.
_CLASSES = jsoncache.dataclasses_of(vars(playbooks))


def cached_library(
    playbooks_dir: Path, templates_dir: Path, team: Sequence[str], cache_dir: Path
) -> Library:
    files = [*playbook_files([playbooks_dir]), *sorted(templates_dir.glob("*.txt"))]
    key = _fingerprint(files, team)
    path = cache_dir / CACHE_NAME
    cached = jsoncache.read(path, key, _CLASSES) if key else None
    if isinstance(cached, Library):
        return cached
    library = load_library([playbooks_dir], templates_dir=templates_dir, team=team)
    if key:
        jsoncache.write(path, key, library)
    return library


def _fingerprint(files: Sequence[Path], team: Sequence[str]) -> str | None:
    """A digest of everything the checked library depends on; None when a file cannot be
    read (the library is then loaded, and its problem reported, every time)."""
    try:
        contents = [(path, path.read_bytes()) for path in files]
    except OSError:
        return None

    def parts() -> Iterator[bytes]:
        yield ",".join(team).encode()
        yield Path(playbooks.__file__).read_bytes()  # the rules that check them,
        for reader in ("yamlfile.py", "yamlparse.py"):  # and the reader (lines, sources)
            yield (Path(playbooks.__file__).with_name(reader)).read_bytes()
        for path, content in contents:
            yield str(path).encode()
            yield content

    return jsoncache.fingerprint(parts())
