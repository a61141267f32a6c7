"""What `funnelctl export` reads: each exportable table's columns and rows.

Rows are streamed from the store (output.py writes them as CSV or JSON). The
customers' CSV columns are the ones the import reads back, so an export loads into
another workspace unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

from .customers import FIELDS
from .importing import IMPORT_FIELDS
from .store import Row, Store, customers, exports

EXPORT_TABLES = (
    "customers",
    "activities",
    "history",
    "outbox",
    "touchpoints",
    "signals",
    "tickets",
    "calendar",
)


def customer_export_columns(store: Store) -> list[str]:
    custom = customers.custom_field_names(store)
    return [*FIELDS, *[c for c in custom if c not in IMPORT_FIELDS]]


def export_rows(store: Store, table: str) -> tuple[list[str], Iterator[Row]]:
    """Columns and a row iterator for one exportable table."""
    if table == "customers":
        columns = customer_export_columns(store)

        def flat() -> Iterator[Row]:
            # Only the exported fields: a custom field may be called like a stored column
            # that is not exported (id, created_on), and its column must show the custom
            # value, blank when a customer has none.
            for row in customers.listing(store):
                custom = {k: v for k, v in row["fields"].items() if k not in IMPORT_FIELDS}
                yield {**{k: row[k] for k in FIELDS}, **custom}

        return columns, flat()
    name = "stage_history" if table == "history" else table
    # From the schema, not from a first row: an empty table still gets its header.
    return ["customer", *exports.columns(store, name)], exports.rows(store, name)


def export_json_rows(store: Store, table: str) -> Iterator[Row]:
    if table == "customers":
        return customers.listing(store)
    return exports.rows(store, "stage_history" if table == "history" else table)
