"""The customer's timeline: one line for every automatic action, email fate, task change
and edit, done or failed, so that a customer's whole story can be read back."""

from __future__ import annotations

import dataclasses

from .db import Store
from .record import Record


@dataclasses.dataclass(frozen=True)
class Event(Record):
    id: int
    customer_id: int
    happened_on: str
    kind: str
    summary: str
    ok: bool
    source: str | None

    BOOLEANS = ("ok",)


def add(
    store: Store,
    customer_id: int,
    happened_on: str,
    kind: str,
    summary: str,
    *,
    ok: bool = True,
    source: str | None = None,
) -> None:
    store.conn.execute(
        "INSERT INTO events (customer_id, happened_on, kind, summary, ok, source) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [customer_id, happened_on, kind, summary, int(ok), source],
    )


def of_customer(store: Store, customer_id: int) -> list[Event]:
    return [
        Event.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM events WHERE customer_id = ? ORDER BY happened_on, id", [customer_id]
        )
    ]


def of_customer_on(store: Store, customer_id: int, day: str) -> list[Event]:
    """The customer's timeline lines dated ``day``."""
    return [
        Event.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM events WHERE customer_id = ? AND happened_on = ? ORDER BY id",
            [customer_id, day],
        )
    ]


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> int:
    return store.conn.execute("DELETE FROM events WHERE customer_id = ?", [customer_id]).rowcount


def move_to_customer(store: Store, from_id: int, to_id: int) -> int:
    return store.conn.execute(
        "UPDATE events SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
