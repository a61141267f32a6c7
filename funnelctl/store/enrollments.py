"""Enrollments (a customer in one funnel, at one stage, since a date), their stage
history (every move, never rewritten) and the action claims of each stage visit.

**The current enrollment** of a customer is the active one created last (the highest
id): the funnel they most recently joined or re-joined. Plays attach to it, the health
model reads its stage, and a template previews against it. :func:`current` is that
rule, and the only place it is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .db import Store
from .record import Record
from .triggers import lifted

CLOSED = ("won", "lost", "churned")


@dataclasses.dataclass(frozen=True)
class Enrollment(Record):
    id: int
    customer_id: int
    funnel: str
    stage: str
    entered_on: str  # when the current stage was entered
    visit_id: int | None  # the stage history row of that entry
    status: str  # active, won, lost or churned
    owner: str | None
    started_on: str
    closed_on: str | None
    close_reason: str | None
    next_steps: int  # open tasks + queued emails, kept by triggers

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclasses.dataclass(frozen=True)
class HistoryEntry(Record):
    """One change of stage: enroll, move, won, lost, churned or reopen."""

    id: int
    enrollment_id: int
    customer_id: int
    funnel: str
    kind: str
    from_stage: str | None
    to_stage: str
    moved_on: str
    by: str | None
    note: str | None


def _one(store: Store, sql: str, params: Sequence[Any]) -> Enrollment | None:
    row = store.conn.execute(sql, params).fetchone()
    return Enrollment.from_row(row) if row else None


def _many(store: Store, sql: str, params: Sequence[Any] = ()) -> list[Enrollment]:
    return [Enrollment.from_row(row) for row in store.conn.execute(sql, params)]


def get(store: Store, enrollment_id: int) -> Enrollment | None:
    return _one(store, "SELECT * FROM enrollments WHERE id = ?", [enrollment_id])


def current(store: Store, customer_id: int) -> Enrollment | None:
    """The customer's current enrollment: the active one created last (module docstring)."""
    return _one(
        store,
        "SELECT * FROM enrollments WHERE customer_id = ? AND status = 'active' "
        "ORDER BY id DESC LIMIT 1",
        [customer_id],
    )


def current_of(store: Store, customer_ids: Sequence[int]) -> dict[int, Enrollment]:
    """The current enrollment of each of ``customer_ids`` that has one, a few hundred
    customers a query."""
    found: dict[int, Enrollment] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for enrollment in _many(
            store,
            f"SELECT * FROM enrollments WHERE customer_id IN ({marks}) AND status = 'active' "
            "ORDER BY id",
            chunk,
        ):
            found[enrollment.customer_id] = enrollment  # the one created last stays
    return found


def active_in(store: Store, customer_id: int, funnel: str) -> Enrollment | None:
    """The customer's active enrollment in ``funnel`` (there is at most one)."""
    return _one(
        store,
        "SELECT * FROM enrollments WHERE customer_id = ? AND funnel = ? AND status = 'active'",
        [customer_id, funnel],
    )


def of_customer(store: Store, customer_id: int) -> list[Enrollment]:
    """All of the customer's enrollments, oldest first."""
    return _many(
        store, "SELECT * FROM enrollments WHERE customer_id = ? ORDER BY id", [customer_id]
    )


def active_of_customer(store: Store, customer_id: int) -> list[Enrollment]:
    return _many(
        store,
        "SELECT * FROM enrollments WHERE customer_id = ? AND status = 'active' ORDER BY id",
        [customer_id],
    )


def ever_in(store: Store, customer_id: int, funnel: str) -> bool:
    """Whether the customer was ever in ``funnel``, active or closed."""
    return bool(
        store.conn.execute(
            "SELECT 1 FROM enrollments WHERE customer_id = ? AND funnel = ? LIMIT 1",
            [customer_id, funnel],
        ).fetchone()
    )


def latest_in(store: Store, customer_id: int, funnel: str) -> Enrollment | None:
    """The customer's newest enrollment in ``funnel``, whatever its status."""
    return _one(
        store,
        "SELECT * FROM enrollments WHERE customer_id = ? AND funnel = ? ORDER BY id DESC LIMIT 1",
        [customer_id, funnel],
    )


def active(store: Store) -> Iterator[Enrollment]:
    for row in store.conn.execute("SELECT * FROM enrollments WHERE status = 'active' ORDER BY id"):
        yield Enrollment.from_row(row)


def active_in_funnel(store: Store, funnel: str) -> Enrollment | None:
    """One active enrollment of ``funnel`` (a simulation has one customer)."""
    return _one(store, "SELECT * FROM enrollments WHERE funnel = ? AND status = 'active'", [funnel])


def due_to_advance(store: Store, funnel: str, stage: str, entered_by: str) -> list[Enrollment]:
    """Active enrollments of ``funnel`` at ``stage`` that entered it by ``entered_by``."""
    return _many(
        store,
        "SELECT * FROM enrollments WHERE funnel = ? AND stage = ? AND status = 'active' "
        "AND entered_on <= ? ORDER BY id",
        [funnel, stage, entered_by],
    )


def stage_of_visit(store: Store, visit_id: int) -> str | None:
    """The stage a stage visit (a history row) entered."""
    row = store.conn.execute(
        "SELECT to_stage FROM stage_history WHERE id = ?", [visit_id]
    ).fetchone()
    return None if row is None else str(row[0])


def history_of(store: Store, customer_id: int) -> list[HistoryEntry]:
    return [
        HistoryEntry.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM stage_history WHERE customer_id = ? ORDER BY moved_on, id",
            [customer_id],
        )
    ]


def history_on(store: Store, day: str) -> list[HistoryEntry]:
    return [
        HistoryEntry.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM stage_history WHERE moved_on = ? ORDER BY id", [day]
        )
    ]


# -- writing ----------------------------------------------------------------------------------


def insert(
    store: Store, *, customer_id: int, funnel: str, stage: str, on: str, owner: str | None
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO enrollments (customer_id, funnel, stage, entered_on, status, owner, "
        "started_on) VALUES (?, ?, ?, ?, 'active', ?, ?)",
        [customer_id, funnel, stage, on, owner, on],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def add_history(
    store: Store,
    *,
    enrollment_id: int,
    customer_id: int,
    funnel: str,
    kind: str,
    from_stage: str | None,
    to_stage: str,
    moved_on: str,
    by: str | None,
    note: str | None,
) -> int:
    """A new line of the stage history (never changed afterwards); returns its id."""
    cursor = store.conn.execute(
        "INSERT INTO stage_history (enrollment_id, customer_id, funnel, kind, from_stage, "
        "to_stage, moved_on, by, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [enrollment_id, customer_id, funnel, kind, from_stage, to_stage, moved_on, by, note],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def enter_stage(store: Store, enrollment_id: int, stage: str, on: str, visit_id: int) -> None:
    store.conn.execute(
        "UPDATE enrollments SET stage = ?, entered_on = ?, visit_id = ? WHERE id = ?",
        [stage, on, visit_id, enrollment_id],
    )


def set_visit(store: Store, enrollment_id: int, visit_id: int) -> None:
    store.conn.execute(
        "UPDATE enrollments SET visit_id = ? WHERE id = ?", [visit_id, enrollment_id]
    )


def close(store: Store, enrollment_id: int, status: str, on: str, reason: str | None) -> None:
    assert status in CLOSED
    store.conn.execute(
        "UPDATE enrollments SET status = ?, closed_on = ?, close_reason = ? WHERE id = ?",
        [status, on, reason, enrollment_id],
    )


def reopen(store: Store, enrollment_id: int, stage: str, on: str, visit_id: int) -> None:
    store.conn.execute(
        "UPDATE enrollments SET status = 'active', closed_on = NULL, close_reason = NULL, "
        "stage = ?, entered_on = ?, visit_id = ? WHERE id = ?",
        [stage, on, visit_id, enrollment_id],
    )


def set_owner(store: Store, enrollment_id: int, owner: str | None) -> None:
    store.conn.execute("UPDATE enrollments SET owner = ? WHERE id = ?", [owner, enrollment_id])


def set_owner_of_active(
    store: Store, customer_id: int, owner: str | None, previous: str | None
) -> None:
    """The customer's owner changed: active enrollments that followed the old owner follow."""
    store.conn.execute(
        "UPDATE enrollments SET owner = ? WHERE customer_id = ? AND status = 'active' "
        "AND (owner IS NULL OR owner = ?)",
        [owner, customer_id, previous],
    )


# -- action claims: once per stage visit -------------------------------------------------------


def claim_action(store: Store, key: str, customer_id: int, enrollment_id: int, on: str) -> bool:
    """Claim the action ``key`` (enrollment:visit:path); False when it already ran."""
    return bool(
        store.conn.execute(
            "INSERT OR IGNORE INTO action_runs (action_key, customer_id, enrollment_id, ran_on, "
            "outcome) VALUES (?, ?, ?, ?, 'running')",
            [key, customer_id, enrollment_id, on],
        ).rowcount
    )


def action_outcome(store: Store, key: str, outcome: str) -> None:
    store.conn.execute("UPDATE action_runs SET outcome = ? WHERE action_key = ?", [outcome, key])


def claimed(store: Store, key: str) -> bool:
    """Whether the action ``key`` was claimed (it ran, or is running)."""
    return bool(
        store.conn.execute("SELECT 1 FROM action_runs WHERE action_key = ?", [key]).fetchone()
    )


def ran_any(store: Store, key: str) -> bool:
    """Whether any action claimed under ``key`` (a play's key, before each action's
    ``:place``) ran already: the keys from ``key:`` up to ``key;`` (';' follows ':')."""
    return bool(
        store.conn.execute(
            "SELECT 1 FROM action_runs WHERE action_key >= ? AND action_key < ? LIMIT 1",
            [f"{key}:", f"{key};"],
        ).fetchone()
    )


# -- erasing a person, merging two records of one ------------------------------------------------

# The triggers that keep the stage history from ever being rewritten (migrations.py).
_HISTORY_GUARDS = ("stage_history_no_update", "stage_history_no_delete")


def _history_unguarded(store: Store) -> AbstractContextManager[None]:
    """The stage history without its guards, for the two rewrites it must allow: erasing
    a person on request (the law) and moving a duplicate's history to the record kept.
    Only inside a write transaction (triggers.lifted)."""
    return lifted(store, _HISTORY_GUARDS)


def delete_of_customer(store: Store, customer_id: int) -> dict[str, int]:
    """Erase the customer's enrollments, their stage history and action claims (after
    their tasks and emails, which point at the enrollments)."""
    counts = {
        "action_runs": store.conn.execute(
            "DELETE FROM action_runs WHERE customer_id = ?", [customer_id]
        ).rowcount
    }
    with _history_unguarded(store):
        counts["stage_history"] = store.conn.execute(
            "DELETE FROM stage_history WHERE customer_id = ?", [customer_id]
        ).rowcount
    counts["enrollments"] = store.conn.execute(
        "DELETE FROM enrollments WHERE customer_id = ?", [customer_id]
    ).rowcount
    return counts


def shared_active_funnels(store: Store, one: int, other: int) -> list[str]:
    """The funnels both customers are active in (one active enrollment per funnel each)."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT a.funnel FROM enrollments a JOIN enrollments b ON b.funnel = a.funnel "
            "WHERE a.customer_id = ? AND b.customer_id = ? AND a.status = 'active' "
            "AND b.status = 'active' ORDER BY a.funnel",
            [one, other],
        )
    ]


def move_to_customer(store: Store, from_id: int, to_id: int) -> dict[str, int]:
    """Give customer ``from_id``'s enrollments, with their stage history and action claims,
    to ``to_id``. The caller has checked :func:`shared_active_funnels` (the unique index
    would refuse two active enrollments in one funnel)."""
    counts = {
        "enrollments": store.conn.execute(
            "UPDATE enrollments SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
        ).rowcount
    }
    with _history_unguarded(store):
        counts["stage_history"] = store.conn.execute(
            "UPDATE stage_history SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
        ).rowcount
    counts["action_runs"] = store.conn.execute(
        "UPDATE action_runs SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
    return counts
