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
code. It is owner-only, like the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import playbooks
from .playbooks import Library, load_library, playbook_files

CACHE_NAME = "library.json"
# The dataclasses a cached library may hold, by name: nothing else is ever built.
_CLASSES: dict[str, type[Any]] = {
    name: value
    for name, value in vars(playbooks).items()
    if isinstance(value, type) and dataclasses.is_dataclass(value)
}


def cached_library(
    playbooks_dir: Path, templates_dir: Path, team: Sequence[str], cache_dir: Path
) -> Library:
    files = [*playbook_files([playbooks_dir]), *sorted(templates_dir.glob("*.txt"))]
    key = _fingerprint(files, team)
    path = cache_dir / CACHE_NAME
    cached = _read(path, key) if key else None
    if cached is not None:
        return cached
    library = load_library([playbooks_dir], templates_dir=templates_dir, team=team)
    if key:
        _write(path, key, library)
    return library


def _fingerprint(files: Sequence[Path], team: Sequence[str]) -> str | None:
    """A digest of everything the checked library depends on; None when a file cannot be
    read (the library is then loaded, and its problem reported, every time)."""
    digest = hashlib.sha256(",".join(team).encode())
    digest.update(Path(playbooks.__file__).read_bytes())  # the rules that check them
    for path in files:
        try:
            content = path.read_bytes()
        except OSError:
            return None
        digest.update(f"\0{path}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def _read(path: Path, key: str) -> Library | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") != key:
            return None
        library = _decode(stored["library"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, damaged, or of another shape: rebuilt silently
    return library if isinstance(library, Library) else None


def _write(path: Path, key: str, library: Library) -> None:
    """Best effort: a cache that cannot be written (a read-only workspace, a full disk)
    only means the playbooks are read again next time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "library": _encode(library)}, f)
        os.replace(tmp, path)
    except (OSError, TypeError):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": type(value).__name__, "fields": fields}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if "dict" in value:
        return {k: _decode(v) for k, v in value["dict"].items()}
    cls = _CLASSES[value["class"]]  # KeyError for anything else: not a cache of ours
    return cls(**{k: _decode(v) for k, v in value["fields"].items()})
