"""What the store hands out: frozen records, one class per kind of row.

A record is typed (mypy sees a misspelt field) and immutable (a change goes through
the store, never through a row someone holds). ``as_dict`` gives the plain mapping that
JSON and CSV output want.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")
_FIELD_NAMES: dict[type, frozenset[str]] = {}


@dataclasses.dataclass(frozen=True)
class Record:
    # Columns stored as 0/1 that the record shows as booleans.
    BOOLEANS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_row(cls: type[R], row: sqlite3.Row | Mapping[str, Any]) -> R:
        """The record of one row; columns the record does not know are left out."""
        names = cls.field_names()
        # sqlite3.Row iterates over its values, in the order of keys(): zipped, no column
        # is looked up by name (a bulk read makes tens of thousands of records)
        pairs = zip(row.keys(), row, strict=True) if isinstance(row, sqlite3.Row) else row.items()
        values = {name: value for name, value in pairs if name in names}
        for name in cls.BOOLEANS:
            if name in values and values[name] is not None:
                values[name] = bool(values[name])
        return cls(**values)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        # read for every row a store hands out: worked out once per class
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        return names

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
