"""funnelctl snooze TASK... --days N | --until WHEN"""

from __future__ import annotations

from typing import Annotated

import typer

from ..dates import shift
from ..errors import UsageError
from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TodayOption, option_due, session
from .task import DUE_HELP
from .worked import TaskRefsArg, snooze_sentence, task_ids, tell


def snooze_(
    tasks: TaskRefsArg,
    days: Annotated[
        int | None, typer.Option(min=1, help="Push it back this many days from today.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help=f"Push it to this day: {DUE_HELP}")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Push tasks back (t12 t13 ...: all or none): --days N or --until WHEN."""
    from ..activities import snooze

    if (days is None) == (until is None):
        raise UsageError("Give exactly one of --days N or --until WHEN.")
    ids = task_ids(tasks)
    with session(home, today) as s:
        if until is not None:  # the forms task add --due takes: 2026-12-03, 3d, fri
            target = option_due("--until", until, s.today)
        else:
            assert days is not None
            target = shift(s.today, days)
        worked = snooze(s.store, ids, s.today, target)
    tell(worked, fmt, TASK_COLUMNS, snooze_sentence(s.today))
