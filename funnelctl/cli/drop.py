"""funnelctl drop TASK --reason WHY"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TaskArg, TodayOption, session


def drop_(
    task: TaskArg,
    reason: Annotated[str, typer.Option(help="Why it is no longer needed.")],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Drop a task that is no longer needed."""
    from ..activities import drop

    with session(home, today) as s:
        row = drop(s.store, task, s.today, reason)
    output.render([row], fmt, TASK_COLUMNS)
