"""What done, snooze, drop and undo share: the references they take (several at once)
and how they tell what they did, one sentence per item naming it and its customer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from .. import output
from ..dates import relative
from ..errors import UsageError
from ..refs import Ref, expect, parse

if TYPE_CHECKING:
    from ..activities import Worked

TaskRefsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="TASK...",
        help="t12 (or 12) as 'funnelctl due' shows it; several at once: all of them or none.",
        show_default=False,
    ),
]


def task_ids(texts: Sequence[str]) -> list[int]:
    """The tasks the references name: an email's (e7) is refused by name, never taken
    for the task of its number."""
    return [found.id for found in _once([Ref("task", expect(text, "task")) for text in texts])]


def items(texts: Sequence[str]) -> list[Ref]:
    """Tasks and emails: t12 or 12 a task, e7 an email."""
    return _once([parse(text, bare="task") for text in texts])


def _once(found: list[Ref]) -> list[Ref]:
    for at, item in enumerate(found):
        if item in found[:at]:
            raise UsageError(f"{item} is given twice; nothing was changed.")
    return found


def tell(
    worked: Sequence[Worked],
    fmt: str,
    columns: Sequence[str],
    sentence: Callable[[Worked], list[str]],
) -> None:
    """JSON and CSV: the items' rows; for people: each item's sentence."""
    if fmt == "table":
        output.sentences(line for item in worked for line in sentence(item))
    else:
        output.render([item.row for item in worked], fmt, columns)


def named(item: Worked) -> str:
    """``t13 Hold the kick-off meeting (ana@client.example)``"""
    return f"{item.ref} {item.title} ({item.customer})"


def done_sentence(today: str) -> Callable[[Worked], list[str]]:
    def sentence(item: Worked) -> list[str]:
        lines = [f"Done: {named(item)}"]
        follow = item.follow_up
        if follow is not None:
            due = relative(follow.due_on, today)
            lines.append(f"  next: {item.row['next']} {follow.title}, due {due}")
        return lines

    return sentence


def snooze_sentence(today: str) -> Callable[[Worked], list[str]]:
    def sentence(item: Worked) -> list[str]:
        return [f"Snoozed: {named(item)}, now due {relative(item.row['due_on'], today)}"]

    return sentence


def drop_sentence(item: Worked) -> list[str]:
    unsent = ", it will not be sent" if item.ref.startswith("e") else ""
    return [f"Dropped: {named(item)}{unsent}"]


def undo_sentence(today: str) -> Callable[[Worked], list[str]]:
    def sentence(item: Worked) -> list[str]:
        row = item.row
        if item.ref.startswith("e"):
            now = "queued again"
        elif row["undone"] == "snooze":
            now = f"due {relative(row['due_on'], today)} again"
        else:
            now = "open again"
            if row["removed"]:
                now += f", follow-up {row['removed']} removed"
        return [f"Undone: {row['undone']} {named(item)}: {now}"]

    return sentence
