"""The SQLite store: the only package that holds SQL (and imports sqlite3).

- ``db``: opening the database, transactions, errors, backup, meta values.
- ``migrations``: the schema, as append-only steps.
- one module per aggregate, each owning every statement on its tables and returning
  frozen, typed records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .db import (
    BUSY_TIMEOUT_MS,
    OUTBOX_STATUSES,
    SCHEMA_VERSION,
    DatabaseDamaged,
    Row,
    Store,
    faults,
    restore_hint,
)

if TYPE_CHECKING:
    from .customers import COLUMNS as CUSTOMER_COLUMNS
    from .customers import decode as decode_customer

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CUSTOMER_COLUMNS",
    "OUTBOX_STATUSES",
    "SCHEMA_VERSION",
    "DatabaseDamaged",
    "Row",
    "Store",
    "decode_customer",
    "faults",
    "restore_hint",
]


def __getattr__(name: str) -> Any:
    """The customers' columns and decoder, imported on first use: a command that reads
    no customer record (due) never builds the Customer record class."""
    if name in ("CUSTOMER_COLUMNS", "decode_customer"):
        from . import customers

        return customers.COLUMNS if name == "CUSTOMER_COLUMNS" else customers.decode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
