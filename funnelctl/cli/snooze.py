"""funnelctl snooze TASK... --days N | --until DATE"""

from __future__ import annotations

from typing import Annotated

import typer

from ..dates import shift
from ..errors import UsageError
from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TodayOption, option_date, session
from .worked import TaskRefsArg, snooze_sentence, task_ids, tell


def snooze_(
    tasks: TaskRefsArg,
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
    """Push tasks back (t12 t13 ...: all or none): --days N or --until DATE."""
    from ..activities import snooze

    if (days is None) == (until is None):
        raise UsageError("Give exactly one of --days N or --until YYYY-MM-DD.")
    ids = task_ids(tasks)
    with session(home, today) as s:
        if until is not None:
            target = option_date("--until", until)
        else:
            assert days is not None
            target = shift(s.today, days)
        worked = snooze(s.store, ids, s.today, target)
    tell(worked, fmt, TASK_COLUMNS, snooze_sentence(s.today))
