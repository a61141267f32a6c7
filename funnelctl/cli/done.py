"""funnelctl done TASK..."""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TodayOption, session
from .worked import TaskRefsArg, done_sentence, task_ids, tell


def done(
    tasks: TaskRefsArg,
    note: Annotated[str | None, typer.Option(help="What happened.")] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Mark tasks done (t12 t13 ...: all or none); each one's follow-up task (then:)
    starts now. 'funnelctl undo' takes it back."""
    from ..activities import complete

    ids = task_ids(tasks)
    with session(home, today) as s:
        worked = complete(s.store, s.workspace.settings, ids, s.today, note)
    tell(worked, fmt, TASK_COLUMNS, done_sentence(s.today))
