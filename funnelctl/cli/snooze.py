"""funnelctl snooze TASK --days N | --until DATE"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..dates import shift
from ..errors import UsageError
from ..output import OutputFormat
from .common import (
    TASK_COLUMNS,
    FormatOption,
    HomeOption,
    TaskArg,
    TodayOption,
    option_date,
    session,
)


def snooze_(
    task: TaskArg,
    days: Annotated[
        int | None, typer.Option(min=1, help="Push it back this many days from today.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Push it to this day.")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Push a task back: --days N or --until DATE."""
    from ..activities import snooze

    if (days is None) == (until is None):
        raise UsageError("Give exactly one of --days N or --until YYYY-MM-DD.")
    with session(home, today) as s:
        if until is not None:
            target = option_date("--until", until)
        else:
            assert days is not None
            target = shift(s.today, days)
        row = snooze(s.store, task, s.today, target)
    output.render([row], fmt, TASK_COLUMNS)
