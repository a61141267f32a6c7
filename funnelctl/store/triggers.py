"""Triggers lifted for a block: the stage history's guards for an erase or a merge, and
the row triggers for a bulk write (an import's rows, a run's plays).

Five triggers run once for each row inserted: the mark that a customer needs scoring
again (``health_dirty``) for a new customer, enrollment or task, and the enrollment's
count of next steps for a task or an email. Each costs a statement per row; on a one-row
INSERT it also makes SQLite guard the statement with a statement journal (a temporary
file, written page by page: about twenty writes a task). A write of thousands of rows
does their work with one statement each at the end instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .db import Store
from .imports import next_id

_ROW_TRIGGERS = (
    "customers_health_insert",
    "enrollments_health_insert",
    "activities_health_insert",
    "activities_steps_insert",
    "outbox_steps_insert",
)
_MARKED = (("customers", "id"), ("enrollments", "customer_id"), ("activities", "customer_id"))


@contextmanager
def lifted(store: Store, names: Sequence[str]) -> Iterator[None]:
    """The triggers ``names`` dropped for the block, and written back after it.

    Only inside a write transaction: no other connection ever sees them gone, and a
    failure rolls the lifting back with the rest. They come back exactly as they were
    written (their own SQL, read from the schema), those the block did not put back.
    """
    assert store.conn.in_transaction, "triggers are lifted only inside a write"
    marks = ", ".join("?" for _ in names)
    triggers = store.conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks}) "
        "ORDER BY name",
        list(names),
    ).fetchall()
    for name, _ in triggers:
        store.conn.execute(f"DROP TRIGGER {name}")
    try:
        yield
    finally:
        if store.conn.in_transaction:  # else SQLite already rolled it all back
            present = {
                row[0]
                for row in store.conn.execute(
                    f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
                    list(names),
                )
            }
            for name, sql in triggers:
                if name not in present:
                    store.conn.execute(sql)


@contextmanager
def row_triggers_at_once(store: Store) -> Iterator[None]:
    """Customers, enrollments, tasks and emails inserted in the block mark their customers
    for the next health run (``health_dirty``) and update their enrollments'
    ``next_steps`` with one statement each at the end, instead of trigger runs per row:
    the marks and counts come out exactly as the triggers would leave them, provided no
    task or email inserted in the block changes its status within it (updates keep their
    triggers, which would count that change against a count not yet made). Only inside a
    write transaction (:func:`lifted`).
    """
    assert store.conn.in_transaction, "the row triggers are lifted only inside a write"
    first = {table: next_id(store, table) for table in ("activities", "outbox")}
    first.update((table, next_id(store, table)) for table, _ in _MARKED)
    with lifted(store, _ROW_TRIGGERS):
        yield
        store.conn.execute(
            "UPDATE enrollments SET next_steps = next_steps + s.n FROM (SELECT enrollment_id "
            "AS e, count(*) AS n FROM (SELECT enrollment_id FROM activities WHERE id >= ? "
            "AND status = 'open' UNION ALL SELECT enrollment_id FROM outbox WHERE id >= ? "
            "AND status = 'queued') WHERE enrollment_id IS NOT NULL GROUP BY enrollment_id) s "
            "WHERE enrollments.id = s.e",
            [first["activities"], first["outbox"]],
        )
        for table, column in _MARKED:
            store.conn.execute(
                "INSERT OR IGNORE INTO health_dirty (customer_id, source) "
                f"SELECT {column}, '{table}' FROM {table} WHERE id >= ?",
                [first[table]],
            )
