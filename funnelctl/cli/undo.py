"""funnelctl undo"""

from __future__ import annotations

from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session
from .worked import tell, undo_sentence

COLUMNS = ["ref", "customer", "undone", "removed", "status", "due_on", "note"]


def undo(
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Take back the last done, snooze or drop (every item it changed), once.

    A done task opens again and the follow-up it started goes, unless someone worked on
    that follow-up; a snoozed task is due when it was; a dropped task opens again, a
    dropped email is queued again. Nothing changed since is ever overwritten.
    """
    from ..undo import undo as undo_last

    with session(home, today) as s:
        worked = undo_last(s.store, s.today)
    tell(worked, fmt, COLUMNS, undo_sentence(s.today))
