"""Activities: tasks, calls, meetings and escalations, each with a due date and an owner,
and the playbook action they came from. Open until done or dropped."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .db import Store, insert_row
from .record import Record


@dataclasses.dataclass(frozen=True)
class Task(Record):
    id: int
    customer_id: int
    enrollment_id: int | None
    visit_id: int | None
    parent_id: int | None
    kind: str  # task, call, meeting or escalation
    title: str
    description: str | None
    owner: str | None
    channel: str | None
    sourcing: str  # internal, outsourced or automated
    due_on: str
    first_due_on: str
    status: str  # open, done or dropped
    closed_on: str | None
    note: str | None
    source: str | None  # the playbook action it came from
    action_key: str | None
    drop_if: str | None
    escalate_after: int | None
    escalate_to: str | None
    escalated_on: str | None
    then_spec: str | None  # the task to start when this one is done (see activities.py)
    created_on: str
    cancel_on_exit: bool = False  # dropped when its stage visit ends

    BOOLEANS = ("cancel_on_exit",)


def _many(store: Store, sql: str, params: Sequence[Any] = ()) -> list[Task]:
    return [Task.from_row(row) for row in store.conn.execute(sql, params)]


def get(store: Store, task_id: int) -> Task | None:
    row = store.conn.execute("SELECT * FROM activities WHERE id = ?", [task_id]).fetchone()
    return Task.from_row(row) if row else None


def of_customer(store: Store, customer_id: int) -> list[Task]:
    return _many(store, "SELECT * FROM activities WHERE customer_id = ? ORDER BY id", [customer_id])


def droppable(store: Store, customer_id: int) -> list[Task]:
    """The customer's open tasks that carry a ``drop_if`` condition."""
    return _many(
        store,
        "SELECT * FROM activities WHERE customer_id = ? AND status = 'open' "
        "AND drop_if IS NOT NULL ORDER BY id",
        [customer_id],
    )


def to_escalate(store: Store, today: str) -> list[Task]:
    """Open tasks with an escalation rule, overdue and not escalated yet."""
    return _many(
        store,
        "SELECT * FROM activities WHERE status = 'open' AND escalate_after IS NOT NULL "
        "AND escalated_on IS NULL AND due_on < ? ORDER BY due_on, id",
        [today],
    )


def open_due_by(store: Store, day: str) -> list[Task]:
    return _many(
        store, "SELECT * FROM activities WHERE status = 'open' AND due_on <= ? ORDER BY id", [day]
    )


def open_load(store: Store, owners: Sequence[str]) -> dict[str, int]:
    """How many open tasks each of ``owners`` has."""
    marks = ",".join("?" for _ in owners)
    return {
        row[0]: row[1]
        for row in store.conn.execute(
            f"SELECT owner, count(*) FROM activities WHERE status = 'open' AND owner IN ({marks}) "
            "GROUP BY owner",
            list(owners),
        )
    }


def insert(store: Store, values: Mapping[str, Any]) -> int:
    """A new open task; ``values`` are its columns (see :class:`Task`)."""
    unknown = set(values) - Task.field_names()
    assert not unknown, unknown
    return insert_row(store, "activities", values)


def close(store: Store, task_id: int, status: str, on: str, note: str | None) -> None:
    """open -> done or dropped."""
    assert status in ("done", "dropped")
    store.conn.execute(
        "UPDATE activities SET status = ?, closed_on = ?, note = ? WHERE id = ?",
        [status, on, note, task_id],
    )


def reopen(store: Store, task_id: int, note: str | None) -> None:
    """done or dropped -> open, with the note it had before (an undo)."""
    store.conn.execute(
        "UPDATE activities SET status = 'open', closed_on = NULL, note = ? "
        "WHERE id = ? AND status IN ('done', 'dropped')",
        [note, task_id],
    )


def has_children(store: Store, task_id: int) -> bool:
    """Whether another task follows from this one (its follow-up, its escalation); found
    through activities_parent."""
    return bool(
        store.conn.execute(
            "SELECT 1 FROM activities WHERE parent_id = ? LIMIT 1", [task_id]
        ).fetchone()
    )


def remove_untouched(store: Store, task_id: int) -> bool:
    """Delete an open task nobody worked on (never snoozed, escalated or noted, nothing
    following from it): a follow-up whose cause an undo took back. False when it is not
    such a task any more."""
    return (
        store.conn.execute(
            "DELETE FROM activities WHERE id = ? AND status = 'open' AND due_on = first_due_on "
            "AND escalated_on IS NULL AND note IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM activities AS c WHERE c.parent_id = activities.id)",
            [task_id],
        ).rowcount
        == 1
    )


def reschedule(store: Store, task_id: int, due_on: str, on: str | None = None) -> None:
    """A new due date; ``on``, the day of the change, is what calendar apps see as the
    event's last change (an undo, which does not pass it, sets it through undone_on)."""
    store.conn.execute(
        "UPDATE activities SET due_on = ?, changed_on = coalesce(?, changed_on) WHERE id = ?",
        [due_on, on, task_id],
    )


def mark_escalated(store: Store, task_id: int, on: str) -> None:
    store.conn.execute("UPDATE activities SET escalated_on = ? WHERE id = ?", [on, task_id])


def drop_on_exit(store: Store, enrollment_id: int, visit_id: int, on: str, reason: str) -> int:
    """Drop the open tasks of a stage visit that ended and that ask to be (cancel_on_exit).
    The visit's enrollment finds them by index: by ``visit_id`` alone SQLite would read
    every open task of the book, once per customer moved."""
    return store.conn.execute(
        "UPDATE activities SET status = 'dropped', closed_on = ?, note = ? "
        "WHERE enrollment_id = ? AND status = 'open' AND visit_id = ? AND cancel_on_exit = 1",
        [on, reason, enrollment_id, visit_id],
    ).rowcount


def note_open_keyed(store: Store, prefix: str, note: str) -> int:
    """Write ``note`` on the open tasks an action claimed under ``prefix`` created (a play
    whose health episode has ended: the work may still be worth doing, but its reason
    is gone)."""
    return store.conn.execute(
        "UPDATE activities SET note = ? WHERE status = 'open' "
        "AND substr(action_key, 1, length(?)) = ?",
        [note, prefix, prefix],
    ).rowcount


def drop_for_enrollment(store: Store, enrollment_id: int, on: str, reason: str) -> int:
    return store.conn.execute(
        "UPDATE activities SET status = 'dropped', closed_on = ?, note = ? "
        "WHERE enrollment_id = ? AND status = 'open'",
        [on, reason, enrollment_id],
    ).rowcount


# -- the demo book: a consultant who kept up with the work ------------------------------------


def done_in_demo(store: Store, enrollment_id: int, since: str, until: str) -> None:
    """The open tasks of an enrollment due by ``until`` were done (no earlier than
    ``since``, the day its stage began): the consultant did the work of the stage left."""
    store.conn.execute(
        "UPDATE activities SET status = 'done', closed_on = max(due_on, ?) "
        "WHERE enrollment_id = ? AND status = 'open' AND due_on <= ?",
        [since, enrollment_id, until],
    )


def all_done_before_in_demo(store: Store, day: str) -> None:
    """Every open task due before ``day`` was done on its day."""
    store.conn.execute(
        "UPDATE activities SET status = 'done', closed_on = due_on "
        "WHERE status = 'open' AND due_on < ?",
        [day],
    )


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> int:
    """Erase the customer's tasks (follow-ups and their parents go together)."""
    return store.conn.execute(
        "DELETE FROM activities WHERE customer_id = ?", [customer_id]
    ).rowcount


def move_to_customer(store: Store, from_id: int, to_id: int) -> int:
    return store.conn.execute(
        "UPDATE activities SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
