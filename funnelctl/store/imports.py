"""What an import keeps while it reads a file: the keys already seen (email, external id),
in a temporary table rather than in Python, so that memory stays flat at any size."""

from __future__ import annotations

import sqlite3

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
