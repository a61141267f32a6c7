"""The workspace's playbooks, checked once and then read from a cache.

Reading and checking every playbook (YAML, then every condition compiled by Jinja)
costs more than most commands' own work, and the playbooks change rarely. So the
checked library is kept in ``.cache/library.pickle`` in the workspace, under a key made
of every file it was read from (playbooks and templates: name, size, modification
time), the team, and funnelctl's version. Any change, a cache that cannot be read, or
one written by another version is rebuilt silently; a library with problems is never
cached, so they are reported on every command until fixed.

The cache is owner-only, like the database; it holds nothing the playbooks do not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .playbooks import Library, load_library, playbook_files

CACHE_NAME = "library.pickle"


def cached_library(
    playbooks_dir: Path, templates_dir: Path, team: Sequence[str], cache_dir: Path
) -> Library:
    key = _fingerprint(playbooks_dir, templates_dir, team)
    path = cache_dir / CACHE_NAME
    cached = _read(path, key)
    if cached is not None:
        return cached
    library = load_library([playbooks_dir], templates_dir=templates_dir, team=team)
    _write(path, key, library)
    return library


def _fingerprint(playbooks_dir: Path, templates_dir: Path, team: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{__version__}\0{','.join(team)}".encode())
    files = [*playbook_files([playbooks_dir]), *sorted(templates_dir.glob("*.txt"))]
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _read(path: Path, key: str) -> Library | None:
    try:
        with path.open("rb") as f:
            stored = pickle.load(f)
    except Exception:  # missing, damaged, or from another version: rebuilt silently
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    library = stored.get("library")
    return library if isinstance(library, Library) else None


def _write(path: Path, key: str, library: Library) -> None:
    """Best effort: a cache that cannot be written (a read-only workspace, a full disk)
    only means the playbooks are read again next time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"key": key, "library": library}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError):
        with contextlib.suppress(OSError):
            tmp.unlink()
