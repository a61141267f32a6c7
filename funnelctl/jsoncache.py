"""What funnelctl keeps in a workspace's ``.cache`` to start faster: checked results
(the playbooks, their outline, the settings) as JSON, under a key made of everything
they came from (cache_key).

A cache is read back only into frozen dataclasses and named tuples named in an
allow-list: a file someone else put there can describe a value, never run code. A cache that cannot be
read, or was made from other inputs, is ignored (the caller checks the files again);
one that cannot be written only costs that check next time. Files are owner-only, like
the database.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def dataclasses_of(namespace: Mapping[str, object]) -> dict[str, type[Any]]:
    """The dataclasses defined in a module's namespace (``vars(module)``), by name."""
    import dataclasses

    return {
        name: value
        for name, value in namespace.items()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    }


def cache_key(parts: Iterable[bytes]) -> str:
    """The key of a value made from ``parts``: the parts themselves, each after its length
    (so that no two lists of parts give one key), bytes kept as they are (latin-1).

    Comparing the inputs as they were with the inputs as they are is exact, where a digest
    is only almost so, and cheaper: the inputs are small (the settings or the playbooks,
    and the code that checks them), while hashlib loads OpenSSL, which costs every start
    more than reading this copy back.
    """
    return "".join(f"\0{len(part)}\0{part.decode('latin-1')}" for part in parts)


def read(path: Path, key: str, classes: Mapping[str, type[Any]]) -> Any:
    """The value cached at ``path`` under ``key``, or None (missing, damaged, stale)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") != key:
            return None
        return _decode(stored["value"], classes)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, damaged, or of another shape: rebuilt silently


def write(path: Path, key: str, value: Any) -> None:
    """Best effort: a cache that cannot be written (a read-only workspace, a full disk)
    only means the files are checked again next time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "value": _encode(value)}, f)
        os.replace(tmp, path)
    except (OSError, TypeError):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _encode(value: Any) -> Any:
    import dataclasses  # when a cache is written; reading one back needs none of it

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": type(value).__name__, "fields": fields}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        fields = {name: _encode(getattr(value, name)) for name in value._fields}
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


def _decode(value: Any, classes: Mapping[str, type[Any]]) -> Any:
    if isinstance(value, list):
        return [_decode(v, classes) for v in value]
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(_decode(v, classes) for v in value["tuple"])
    if "dict" in value:
        return {k: _decode(v, classes) for k, v in value["dict"].items()}
    cls = classes[value["class"]]  # KeyError for anything else: not a cache of ours
    return cls(**{k: _decode(v, classes) for k, v in value["fields"].items()})
