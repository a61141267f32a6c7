"""funnelctl done TASK"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TaskArg, TodayOption, session


def done(
    task: TaskArg,
    note: Annotated[str | None, typer.Option(help="What happened.")] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Mark a task done; its follow-up task (then:) starts now."""
    from ..activities import complete

    with session(home, today) as s:
        row = complete(s.store, s.workspace.settings, task, s.today, note)
    output.render([row], fmt, TASK_COLUMNS)
