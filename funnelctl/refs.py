"""References the user types to act on an item: ``t12`` for task 12, ``e7`` for email 7.

Tasks and emails are numbered apart, so a bare number is ambiguous on a list that
shows both; the letter makes a reference impossible to mistake. A bare number keeps
meaning a task where a task is expected (scripts written before the letters), and an
email where only an email can be meant (``outbox``).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import UsageError

KINDS = {"t": "task", "e": "email"}
LETTER = {kind: letter for letter, kind in KINDS.items()}


class Ref(NamedTuple):
    kind: str  # task or email
    id: int

    def __str__(self) -> str:
        return f"{LETTER[self.kind]}{self.id}"


def ref(kind: str, item_id: int) -> str:
    """How an item is written for the user: ``t12``, ``e7``."""
    return str(Ref(kind, item_id))


def parse(text: str, *, bare: str = "task") -> Ref:
    """``t12``, ``e7``, or a bare number meaning ``bare``; UsageError otherwise."""
    value = text.strip().lower()
    kind = bare
    if value[:1] in KINDS:
        kind, value = KINDS[value[0]], value[1:]
    if not value.isdigit():
        raise UsageError(
            f"{text!r} is not a reference: write t12 for a task or e7 for an email "
            "(see 'funnelctl due')."
        )
    return Ref(kind, int(value))


def expect(text: str, kind: str) -> int:
    """The id of a reference that must be a ``kind``: an email's where a task is meant
    is refused by name, never taken for the task of the same number."""
    found = parse(text, bare=kind)
    if found.kind != kind:
        verb = "a task (t12)" if kind == "task" else "an email (e7)"
        raise UsageError(f"{text!r} is {found.kind} {found}; this command takes {verb}.")
    return found.id
