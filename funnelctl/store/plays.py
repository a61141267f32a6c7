"""Play starts: every time a play began for a customer, why, and under which key its
actions were claimed. A play's cooldown counts from the customer's last start of it,
and when a health episode ends its plays are found again here."""

from __future__ import annotations

import dataclasses

from .db import Store
from .record import Record


@dataclasses.dataclass(frozen=True)
class PlayStart(Record):
    id: int
    customer_id: int
    play: str
    started_on: str
    source: str  # health, stage or hand
    episode_id: int | None
    action_key: str  # the prefix of the keys its actions were claimed under


def record(
    store: Store,
    *,
    customer_id: int,
    play: str,
    started_on: str,
    source: str,
    episode_id: int | None,
    action_key: str,
) -> None:
    store.conn.execute(
        "INSERT INTO play_starts (customer_id, play, started_on, source, episode_id, "
        "action_key) VALUES (?, ?, ?, ?, ?, ?)",
        [customer_id, play, started_on, source, episode_id, action_key],
    )


def last_start(store: Store, customer_id: int, play: str, by: str) -> str | None:
    """The day the customer's latest start of ``play`` up to ``by``, or None."""
    row = store.conn.execute(
        "SELECT max(started_on) FROM play_starts WHERE customer_id = ? AND play = ? "
        "AND started_on <= ?",
        [customer_id, play, by],
    ).fetchone()
    return None if row is None else row[0]


def last_starts(store: Store, customer_ids: list[int], by: str) -> dict[tuple[int, str], str]:
    """:func:`last_start` of every play of each of ``customer_ids``, read at once:
    (customer_id, play) -> day."""
    found: dict[tuple[int, str], str] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for customer_id, play, day in store.conn.execute(
            "SELECT customer_id, play, max(started_on) FROM play_starts "
            f"WHERE customer_id IN ({marks}) AND started_on <= ? GROUP BY customer_id, play",
            [*chunk, by],
        ):
            found[(customer_id, play)] = day
    return found


def of_episode(store: Store, episode_id: int) -> list[PlayStart]:
    return [
        PlayStart.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM play_starts WHERE episode_id = ? ORDER BY id", [episode_id]
        )
    ]


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> int:
    return store.conn.execute(
        "DELETE FROM play_starts WHERE customer_id = ?", [customer_id]
    ).rowcount


def move_to_customer(store: Store, from_id: int, to_id: int) -> int:
    """``from_id``'s play starts count for ``to_id``'s cooldowns from now on."""
    return store.conn.execute(
        "UPDATE play_starts SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
