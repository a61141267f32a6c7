"""undo: put back what the last done, snooze or drop changed, every item of it or none.

The command's steps (store/undo.py) say what each item was before and what the command
left. An item changed since by anything else (a task done after its snooze, a follow-up
already worked on, an email requeued after its drop) is not overwritten: the undo is
refused by name and nothing changes. An undone command stays undone: undo goes back one
command, once, and never redoes.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import refs
from .activities import NOTHING_CHANGED, Worked, email_title, worked_email, worked_task
from .errors import FunnelError
from .store import Store, events, outbox, touchpoints
from .store import activities as tasks
from .store import undo as undo_log
from .store.activities import Task
from .store.undo import UndoStep

# A partner's email about a follow-up may still be taken back while it waits in these.
_UNSENT = ("queued", "skipped", "superseded")


def undo(store: Store, today: str) -> list[Worked]:
    """Revert the last done, snooze or drop; the items as they are now, each ``row`` with
    ``undone`` (the verb taken back) and ``removed`` (the follow-up task taken away)."""
    with store.write():
        steps = undo_log.last_command(store)
        if not steps:
            raise FunnelError(
                "Nothing to undo: no done, snooze or drop has been made in this book."
            )
        if steps[0].undone_on is not None:
            raise FunnelError(
                f"Nothing to undo: the last done, snooze or drop ({_command(steps)}) is undone "
                "already, and undo goes back one command only."
            )
        problems = [problem for step in steps if (problem := _problem(store, step))]
        if problems:
            raise FunnelError(f"{problems[0]}; {NOTHING_CHANGED}", problems[1:])
        worked = [_put_back(store, step, today) for step in steps]
        undo_log.mark_undone(store, steps[0].command_id, today)
    return worked


def _ref(step: UndoStep) -> str:
    if step.email_id is not None:
        return refs.ref("email", step.email_id)
    assert step.task_id is not None
    return refs.ref("task", step.task_id)


def _command(steps: Sequence[UndoStep]) -> str:
    return f"{steps[0].verb} {', '.join(_ref(step) for step in steps)}"


# -- may it be put back? ---------------------------------------------------------------------


def _problem(store: Store, step: UndoStep) -> str | None:
    """Why ``step`` cannot be undone (the item changed since), or None."""
    cannot = f"Cannot undo {step.verb} {_ref(step)}"
    if step.email_id is not None:
        email = outbox.get(store, step.email_id)
        if email is None:
            return f"{cannot}: {_ref(step)} no longer exists"
        if email.status != "skipped" or email.reason != step.value_after:
            return f"{cannot}: {_ref(step)} {email_title(email)} is {email.status} now, not as the drop left it"
        return None
    assert step.task_id is not None
    task = tasks.get(store, step.task_id)
    if task is None:
        return f"{cannot}: {_ref(step)} no longer exists"
    if not _as_left(task, step):
        state = f"due {task.due_on}" if task.status == "open" else task.status
        return f"{cannot}: {_ref(step)} {task.title} is {state} now, not as the {step.verb} left it"
    if step.follow_up_id is not None:
        follow = tasks.get(store, step.follow_up_id)
        trouble = _follow_up_trouble(store, follow) if follow else None
        if follow and trouble:
            return f"{cannot}: its follow-up {refs.ref('task', follow.id)} {follow.title} {trouble}"
    return None


def _as_left(task: Task, step: UndoStep) -> bool:
    """Whether the task is still as the step's command left it."""
    if step.verb == "snooze":
        return task.status == "open" and task.due_on == step.value_after
    status = "done" if step.verb == "done" else "dropped"
    return (
        task.status == status and task.closed_on == step.acted_on and task.note == step.value_after
    )


def _follow_up_trouble(store: Store, follow: Task) -> str | None:
    """What was done with a follow-up that keeps it from being taken back, or None."""
    if follow.status != "open":
        return f"is {follow.status} now (on {follow.closed_on})"
    if follow.due_on != follow.first_due_on:
        return f"was snoozed to {follow.due_on}"
    if follow.escalated_on is not None:
        return f"was escalated on {follow.escalated_on}"
    if follow.note is not None or tasks.has_children(store, follow.id):
        return "has been worked on"
    told = outbox.telling_partner(store, follow.id)
    if told is not None and told.status not in _UNSENT:
        return f"went to the partner already (email {refs.ref('email', told.id)} is {told.status})"
    return None


# -- putting back -----------------------------------------------------------------------------------


def _put_back(store: Store, step: UndoStep, today: str) -> Worked:
    ref = _ref(step)
    if step.email_id is not None:
        email = outbox.get(store, step.email_id)
        assert email is not None
        outbox.unskip(store, step.email_id, step.value_before)
        events.add(
            store, email.customer_id, today, "email", f"Undone: drop {ref} {email_title(email)}"
        )
        return worked_email(store, step.email_id, undone=step.verb, removed=None)
    assert step.task_id is not None
    task = tasks.get(store, step.task_id)
    assert task is not None
    summary = f"Undone: {step.verb} {ref} {task.title}"
    removed = None
    if step.verb == "snooze":
        assert step.value_before is not None
        tasks.reschedule(store, task.id, step.value_before)
        summary += f", due {step.value_before} again"
    else:
        tasks.reopen(store, task.id, step.value_before)
        if step.follow_up_id is not None and _remove_follow_up(store, step.follow_up_id):
            removed = refs.ref("task", step.follow_up_id)
            summary += f"; follow-up {removed} removed"
        if step.touchpoint_id is not None and touchpoints.remove(store, step.touchpoint_id):
            summary += "; its touchpoint removed"
    events.add(store, task.customer_id, today, "task", summary)
    return worked_task(store, task.id, undone=step.verb, removed=removed, next=None)


def _remove_follow_up(store: Store, task_id: int) -> bool:
    """Take back a follow-up nobody worked on, and the partner's email about it that has
    not gone. False when it is gone already."""
    if tasks.get(store, task_id) is None:
        return False
    told = outbox.telling_partner(store, task_id)
    if told is not None and told.status == "queued":
        outbox.supersede(store, told.id, "its task was taken back by undo")
    removed = tasks.remove_untouched(store, task_id)
    assert removed, f"follow-up t{task_id} was checked untouched"
    return True
