"""The SQLite store: the only package that holds SQL (and imports sqlite3).

- ``db``: opening the database, transactions, errors, backup, meta values.
- ``migrations``: the schema, as append-only steps.
- one module per aggregate, each owning every statement on its tables and returning
  frozen, typed records.
"""

from __future__ import annotations

from .customers import COLUMNS as CUSTOMER_COLUMNS
from .customers import decode as decode_customer
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
