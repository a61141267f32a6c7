"""What an import keeps while it reads a file, and the set-based import's SQL.

The row-by-row import keeps the keys already seen (email, external id) in a temporary
table rather than in Python, so that memory stays flat at any size.

The set-based import (``funnelctl/bulkimport.py``) streams the whole file into the
temporary table ``import_rows`` (one row per line, the cleaned values and the reasons a
row is bad), checks it with SQL, then writes each table with one ``INSERT … SELECT`` or
one batched ``executemany`` instead of a few statements per row. Ids are given in the
order of the file's lines, so that every table ends up exactly as the row-by-row
import leaves it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from .customers import COLUMNS as CUSTOMER_COLUMNS
from .db import Store


def start_seen(store: Store) -> None:
    store.conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_seen (key TEXT PRIMARY KEY, line INTEGER)"
    )
    store.conn.execute("DELETE FROM temp.import_seen")


def seen_before(store: Store, key: str, line: int) -> int | None:
    """Remember ``key`` for ``line``; if the file already had it, the first line it was on."""
    try:
        store.conn.execute("INSERT INTO temp.import_seen (key, line) VALUES (?, ?)", [key, line])
        return None
    except sqlite3.IntegrityError:
        row = store.conn.execute(
            "SELECT line FROM temp.import_seen WHERE key = ?", [key]
        ).fetchone()
        return int(row[0])


def end_seen(store: Store) -> None:
    store.conn.execute("DROP TABLE temp.import_seen")


# -- the set-based import ------------------------------------------------------------------

# What the staging pass writes for each line: the raw identifiers (for the duplicate check,
# as the row import compares them), the reasons found in Python, the customer's columns as
# stored (NULL: not in the row), and the placement (funnel, stage id, entered on).
STAGED = (
    "line",
    "k_email",
    "k_external_id",
    "err_clean",
    "err_owner",
    "err_place",
    *CUSTOMER_COLUMNS,
    "funnel",
    "stage",
    "entered",
)
# Filled by SQL: the reason a row is a duplicate, has no key, or takes another customer's
# identifier; the customer it updates; and the ids it gets.
_COMPUTED = ("err_dup", "err_key", "err_ident", "existing", "cid", "eid", "vid")
_NO_ERROR = "err_dup IS NULL AND err_clean IS NULL AND err_owner IS NULL"


def start_staging(store: Store) -> None:
    """The temporary tables of a set-based import, empty. Columns have no type, so that
    values keep the Python type the cleaning gave them (REAL mrr, INTEGER seats)."""
    columns = ", ".join(name for name in (*STAGED[1:], *_COMPUTED))
    store.conn.execute("DROP TABLE IF EXISTS temp.import_rows")
    store.conn.execute(f"CREATE TEMP TABLE import_rows (line INTEGER PRIMARY KEY, {columns})")
    store.conn.execute("DROP TABLE IF EXISTS temp.import_events")
    store.conn.execute(
        "CREATE TEMP TABLE import_events (line INTEGER, seq INTEGER, customer_id, "
        "happened_on, kind, summary, ok, source, PRIMARY KEY (line, seq))"
    )


def end_staging(store: Store) -> None:
    """Drop the staging tables; after a failure too, which this must never hide (they
    go with the connection anyway)."""
    with suppress(sqlite3.Error):
        store.conn.execute("DROP TABLE IF EXISTS temp.import_rows")
        store.conn.execute("DROP TABLE IF EXISTS temp.import_events")


def stage(store: Store, rows: Iterable[Sequence[Any]]) -> None:
    """Add staged lines (values in the order of STAGED)."""
    marks = ", ".join("?" for _ in STAGED)
    store.conn.executemany(
        f"INSERT INTO temp.import_rows ({', '.join(STAGED)}) VALUES ({marks})", rows
    )


def duplicates(store: Store, kind: str) -> list[tuple[int, str, int]]:
    """(line, key, first line) of each row whose ``kind`` (email or external_id) an earlier
    row of the file already gave, as the row import finds them: a row that was already a
    duplicate by an identifier left of this one never reached (nor remembered) this one."""
    column = f"k_{kind}"
    return [
        (int(line), str(key), int(first))
        for line, key, first in store.conn.execute(
            f"SELECT line, {column}, first FROM (SELECT line, {column}, "
            f"min(line) OVER (PARTITION BY {column}) AS first FROM temp.import_rows "
            f"WHERE {column} IS NOT NULL AND err_dup IS NULL) WHERE first < line ORDER BY line"
        )
    ]


def set_reasons(store: Store, column: str, reasons: Iterable[tuple[str, int]]) -> None:
    """Set ``column`` (err_dup, err_ident) to a reason for the lines given."""
    assert column in ("err_dup", "err_ident")
    store.conn.executemany(f"UPDATE temp.import_rows SET {column} = ? WHERE line = ?", reasons)


def match_existing(store: Store, key: str) -> None:
    """The stored customer each row updates: by ``key``, else by the other identifier;
    a row with neither is bad (``err_key``)."""
    assert key in ("email", "external_id")
    store.conn.execute(
        "UPDATE temp.import_rows SET existing = CASE "
        f"WHEN {key} IS NOT NULL "
        f"THEN (SELECT c.id FROM customers c WHERE c.{key} = import_rows.{key}) "
        "WHEN email IS NOT NULL "
        "THEN (SELECT c.id FROM customers c WHERE c.email = import_rows.email) "
        "WHEN external_id IS NOT NULL "
        "THEN (SELECT c.id FROM customers c WHERE c.external_id = import_rows.external_id) END, "
        f"err_key = CASE WHEN email IS NULL AND external_id IS NULL THEN 'the {key} is empty' END "
        f"WHERE {_NO_ERROR}"
    )


def taken_identifiers(store: Store) -> Iterator[tuple[int, str, str, int, str | None, str | None]]:
    """(line, column, value, holder id, holder email, holder external id) of each row whose
    email or external id another stored customer holds, email first, in the file's order."""
    for column in ("email", "external_id"):
        same = (
            "lower(e.email) = lower(s.email)"
            if column == "email"
            else "e.external_id = s.external_id"
        )
        yield from store.conn.execute(
            f"SELECT s.line, '{column}', s.{column}, h.id, h.email, h.external_id "
            f"FROM temp.import_rows s JOIN customers h ON h.{column} = s.{column} "
            "LEFT JOIN customers e ON e.id = s.existing "
            f"WHERE s.{column} IS NOT NULL AND s.err_key IS NULL AND s.err_ident IS NULL "
            f"AND {_NO_ERROR.replace('err_', 's.err_')} "
            f"AND NOT coalesce({same}, 0) AND (e.id IS NULL OR h.id != e.id) ORDER BY s.line"
        )


def rows_interact(store: Store) -> bool:
    """Whether a row's outcome may depend on an earlier row's: one changes a stored
    customer's email or external id (which frees the old one), or two rows update the
    same customer. The row import then decides, one row at a time."""
    changed = store.conn.execute(
        "SELECT 1 FROM temp.import_rows s JOIN customers e ON e.id = s.existing "
        "WHERE (s.email IS NOT NULL AND e.email IS NOT NULL AND lower(e.email) != lower(s.email)) "
        "OR (s.external_id IS NOT NULL AND e.external_id IS NOT NULL "
        "AND e.external_id != s.external_id) LIMIT 1"
    ).fetchone()
    twice = store.conn.execute(
        "SELECT 1 FROM temp.import_rows WHERE existing IS NOT NULL "
        "GROUP BY existing HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    return bool(changed or twice)


def bad_rows(store: Store, limit: int) -> tuple[int, list[tuple[int, str]]]:
    """How many rows are bad, and the first ``limit`` (line, reason), each row's first
    reason in the order the row import checks them."""
    reason = "coalesce(err_dup, err_clean, err_owner, err_key, err_ident, err_place)"
    count = store.conn.execute(
        f"SELECT count(*) FROM temp.import_rows WHERE {reason} IS NOT NULL"
    ).fetchone()[0]
    listed = store.conn.execute(
        f"SELECT line, {reason} FROM temp.import_rows WHERE {reason} IS NOT NULL "
        "ORDER BY line LIMIT ?",
        [limit],
    ).fetchall()
    return int(count), [(int(line), str(text)) for line, text in listed]


_ENROLLS = (
    "funnel IS NOT NULL AND (existing IS NULL OR NOT EXISTS (SELECT 1 FROM enrollments n "
    "WHERE n.customer_id = existing AND n.funnel = import_rows.funnel))"
)


def entry_stages(store: Store) -> list[tuple[str, str]]:
    """The (funnel, stage) pairs the import enrolls customers at."""
    return [
        (str(f), str(s))
        for f, s in store.conn.execute(
            f"SELECT DISTINCT funnel, stage FROM temp.import_rows WHERE {_ENROLLS}"
        )
    ]


def counts(store: Store) -> tuple[int, int, int]:
    """(new customers, customers without an email after the import, enrollments)."""
    row = store.conn.execute(
        "SELECT sum(existing IS NULL), sum(email IS NULL AND (existing IS NULL OR "
        "(SELECT c.email FROM customers c WHERE c.id = existing) IS NULL)), "
        f"sum(CASE WHEN {_ENROLLS} THEN 1 ELSE 0 END) FROM temp.import_rows"
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def next_id(store: Store, table: str) -> int:
    """The id SQLite gives the next row of ``table`` (none of ours is AUTOINCREMENT)."""
    return int(store.conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0])


def insert_customers(store: Store, today: str, source: str) -> None:
    """The new customers, ids in the file's order, each with its "Imported" line."""
    base = next_id(store, "customers")
    store.conn.execute("UPDATE temp.import_rows SET cid = existing WHERE existing IS NOT NULL")
    store.conn.execute(
        "UPDATE temp.import_rows SET cid = ? + n FROM (SELECT line AS l, "
        "row_number() OVER (ORDER BY line) - 1 AS n FROM temp.import_rows "
        "WHERE existing IS NULL) WHERE line = l",
        [base],
    )
    defaults = {"name": "''", "tags": "'[]'", "fields": "'{}'"}
    values = ", ".join(
        f"coalesce({c}, {defaults[c]})" if c in defaults else c for c in CUSTOMER_COLUMNS
    )
    store.conn.execute(
        f"INSERT INTO customers (id, {', '.join(CUSTOMER_COLUMNS)}, created_on, updated_on) "
        f"SELECT cid, {values}, ?, ? FROM temp.import_rows WHERE existing IS NULL ORDER BY line",
        [today, today],
    )
    store.conn.execute(
        "INSERT INTO temp.import_events SELECT line, 0, cid, ?, 'customer', "
        "'Imported from ' || ? || ' line ' || line, 1, NULL "
        "FROM temp.import_rows WHERE existing IS NULL",
        [today, source],
    )


def updates(store: Store) -> Iterator[sqlite3.Row]:
    """Each row of a stored customer, with the stored customer (``c_*`` columns)."""
    stored = ", ".join(
        f"c.{c} AS c_{c}" for c in ("id", *CUSTOMER_COLUMNS, "created_on", "updated_on")
    )
    return iter(
        store.conn.execute(
            f"SELECT s.*, {stored} FROM temp.import_rows s JOIN customers c ON c.id = s.existing "
            "ORDER BY s.line"
        )
    )


def add_events(store: Store, rows: Iterable[Sequence[Any]]) -> None:
    """Timeline lines (line, seq, customer_id, happened_on, kind, summary, ok, source),
    written to the timeline in the file's order by :func:`insert_events`."""
    store.conn.executemany("INSERT INTO temp.import_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def insert_events(store: Store) -> None:
    store.conn.execute(
        "INSERT INTO events (customer_id, happened_on, kind, summary, ok, source) "
        "SELECT customer_id, happened_on, kind, summary, ok, source FROM temp.import_events "
        "ORDER BY line, seq"
    )


def insert_enrollments(store: Store, by: str, note: str) -> None:
    """Enroll the rows new to their funnel: the enrollment and its first stage visit,
    ids in the file's order; the owner is the customer's."""
    enrollment, visit = next_id(store, "enrollments"), next_id(store, "stage_history")
    store.conn.execute(
        "UPDATE temp.import_rows SET eid = ? + n, vid = ? + n FROM (SELECT line AS l, "
        f"row_number() OVER (ORDER BY line) - 1 AS n FROM temp.import_rows WHERE {_ENROLLS}) "
        "WHERE line = l",
        [enrollment, visit],
    )
    store.conn.execute(
        "INSERT INTO enrollments (id, customer_id, funnel, stage, entered_on, visit_id, status, "
        "owner, started_on) SELECT s.eid, s.cid, s.funnel, s.stage, s.entered, s.vid, 'active', "
        "c.owner, s.entered FROM temp.import_rows s JOIN customers c ON c.id = s.cid "
        "WHERE s.eid IS NOT NULL ORDER BY s.line"
    )
    store.conn.execute(
        "INSERT INTO stage_history (id, enrollment_id, customer_id, funnel, kind, from_stage, "
        "to_stage, moved_on, by, note) SELECT vid, eid, cid, funnel, 'enroll', NULL, stage, "
        "entered, ?, ? FROM temp.import_rows WHERE eid IS NOT NULL ORDER BY line",
        [by, note],
    )


def enrolled(store: Store) -> Iterator[sqlite3.Row]:
    """Each enrolled row with its customer as stored now (``c_*``), in the file's order."""
    stored = ", ".join(f"c.{c}" for c in ("id", *CUSTOMER_COLUMNS, "created_on", "updated_on"))
    return iter(
        store.conn.execute(
            f"SELECT s.line, s.eid, s.vid, s.funnel, s.stage, s.entered, {stored} "
            "FROM temp.import_rows s JOIN customers c ON c.id = s.cid "
            "WHERE s.eid IS NOT NULL ORDER BY s.line"
        )
    )


# The columns the entry actions write, in the order the rows are given.
TASK_COLUMNS = (
    "id",
    "customer_id",
    "enrollment_id",
    "visit_id",
    "parent_id",
    "kind",
    "title",
    "description",
    "owner",
    "channel",
    "sourcing",
    "due_on",
    "first_due_on",
    "source",
    "action_key",
    "drop_if",
    "escalate_after",
    "escalate_to",
    "then_spec",
    "created_on",
    "cancel_on_exit",
)
EMAIL_COLUMNS = (
    "id",
    "customer_id",
    "enrollment_id",
    "visit_id",
    "template",
    "action_key",
    "message_id",
    "scheduled_on",
    "stop_on_reply",
    "status",
    "reason",
    "queued_on",
    "partner",
    "task_id",
)
RUN_COLUMNS = ("action_key", "customer_id", "enrollment_id", "ran_on", "outcome")


def insert_many(
    store: Store, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Rows of the entry actions, given in the order the row import writes them."""
    assert table in ("activities", "outbox", "action_runs")
    marks = ", ".join("?" for _ in columns)
    store.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def set_owners(
    store: Store,
    enrollments: Iterable[tuple[str | None, int]],
    customers: Iterable[tuple[str | None, str, int]],
) -> None:
    """The owners the entry actions gave: (owner, enrollment id), (owner, today, customer id)."""
    store.conn.executemany("UPDATE enrollments SET owner = ? WHERE id = ?", enrollments)
    store.conn.executemany("UPDATE customers SET owner = ?, updated_on = ? WHERE id = ?", customers)
