"""What ``undo`` needs: the steps of the last done, snooze or drop, one per item it changed.

Only the last command is kept: undo goes back one command, once, so a new command
replaces the steps of the one before. Each step holds the one value the command changed
(a due date, a note, an email's reason) as it found it and as it left it, so that undo can
tell whether anything changed the item since, and put it back exactly.
"""

from __future__ import annotations

import dataclasses

from .db import Store, insert_row
from .record import Record

VERBS = ("done", "snooze", "drop")


@dataclasses.dataclass(frozen=True)
class UndoStep(Record):
    id: int
    command_id: int
    verb: str  # done, snooze or drop
    task_id: int | None
    email_id: int | None  # drop eN: the queued email it skipped
    acted_on: str
    value_before: str | None  # snooze: due date; done, drop: note; drop eN: reason
    value_after: str | None
    follow_up_id: int | None  # done: the task its then: created
    undone_on: str | None
    touchpoint_id: int | None = None  # done: the touchpoint it logged (a call, a meeting)


def begin(store: Store) -> int:
    """A new command's id; the steps of the command before it are forgotten."""
    command_id = int(store.scalar("SELECT coalesce(max(command_id), 0) + 1 FROM undo_steps"))
    store.conn.execute("DELETE FROM undo_steps")
    return command_id


def record(
    store: Store,
    command_id: int,
    verb: str,
    *,
    acted_on: str,
    task_id: int | None = None,
    email_id: int | None = None,
    value_before: str | None = None,
    value_after: str | None = None,
    follow_up_id: int | None = None,
    touchpoint_id: int | None = None,
) -> None:
    assert verb in VERBS and (task_id is None) != (email_id is None)
    insert_row(
        store,
        "undo_steps",
        {
            "command_id": command_id,
            "verb": verb,
            "task_id": task_id,
            "email_id": email_id,
            "acted_on": acted_on,
            "value_before": value_before,
            "value_after": value_after,
            "follow_up_id": follow_up_id,
            "touchpoint_id": touchpoint_id,
        },
    )


def last_command(store: Store) -> list[UndoStep]:
    """The steps of the last command, in the order it took them (none: nothing recorded)."""
    return [
        UndoStep.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM undo_steps WHERE command_id = "
            "(SELECT max(command_id) FROM undo_steps) ORDER BY id"
        )
    ]


def mark_undone(store: Store, command_id: int, on: str) -> None:
    store.conn.execute("UPDATE undo_steps SET undone_on = ? WHERE command_id = ?", [on, command_id])
