"""Touchpoints (each logged interaction: channel, direction, day, summary) and help-desk
tickets (for response and resolution times)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .db import Store, insert_row, update_row
from .record import Record


@dataclasses.dataclass(frozen=True)
class Touchpoint(Record):
    id: int
    customer_id: int
    channel: str
    direction: str  # inbound (the customer spoke) or outbound
    happened_on: str
    summary: str
    by: str | None
    created_on: str


def of_customer(store: Store, customer_id: int) -> list[Touchpoint]:
    return [
        Touchpoint.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM touchpoints WHERE customer_id = ? ORDER BY id", [customer_id]
        )
    ]


def add(
    store: Store,
    *,
    customer_id: int,
    channel: str,
    direction: str,
    happened_on: str,
    summary: str,
    by: str | None,
    today: str,
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO touchpoints (customer_id, channel, direction, happened_on, summary, by, "
        "created_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [customer_id, channel, direction, happened_on, summary, by, today],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def remove(store: Store, touchpoint_id: int) -> bool:
    """Take back one touchpoint (undo of the done that logged it); False if it is gone."""
    return bool(
        store.conn.execute("DELETE FROM touchpoints WHERE id = ?", [touchpoint_id]).rowcount
    )


def last_touches(
    store: Store, customer_id: int, until: str | None
) -> tuple[str | None, str | None]:
    """(the last touchpoint's day, the last inbound one's) up to ``until`` (None: any)."""
    row = store.conn.execute(
        "SELECT max(happened_on), max(CASE WHEN direction = 'inbound' THEN happened_on END) "
        "FROM touchpoints WHERE customer_id = ? AND (? IS NULL OR happened_on <= ?)",
        [customer_id, until, until],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


# -- tickets ---------------------------------------------------------------------------------


def ticket_id_of(store: Store, ticket_id: str) -> int | None:
    row = store.conn.execute("SELECT id FROM tickets WHERE ticket_id = ?", [ticket_id]).fetchone()
    return None if row is None else int(row[0])


def insert_ticket(store: Store, values: Mapping[str, Any]) -> int:
    return insert_row(store, "tickets", values)


def update_ticket(store: Store, row_id: int, values: Mapping[str, Any]) -> None:
    update_row(store, "tickets", row_id, values)


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> dict[str, int]:
    return {
        table: store.conn.execute(
            f"DELETE FROM {table} WHERE customer_id = ?", [customer_id]
        ).rowcount
        for table in ("touchpoints", "tickets")
    }


def move_to_customer(store: Store, from_id: int, to_id: int) -> dict[str, int]:
    return {
        table: store.conn.execute(
            f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
        ).rowcount
        for table in ("touchpoints", "tickets")
    }
