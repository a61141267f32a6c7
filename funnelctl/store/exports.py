"""Whole tables for `funnelctl export`, each row with its customer's email."""

from __future__ import annotations

from collections.abc import Iterator

from .db import Row, Store, dicts

TABLES = ("activities", "stage_history", "outbox", "touchpoints", "signals", "tickets")


def columns(store: Store, table: str) -> list[str]:
    """The table's columns, from the schema: an empty table still gets its header."""
    assert table in TABLES
    return [row[1] for row in store.conn.execute(f"PRAGMA table_info({table})")]


def rows(store: Store, table: str) -> Iterator[Row]:
    assert table in TABLES
    return dicts(
        store.conn.execute(
            f"SELECT c.email AS customer, t.* FROM {table} t "
            "JOIN customers c ON c.id = t.customer_id ORDER BY t.id"
        )
    )
