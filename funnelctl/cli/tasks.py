"""funnelctl done | snooze | drop: working the daily list"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..dates import parse_date, shift
from ..errors import UsageError
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session

TaskId = Annotated[
    int, typer.Argument(help="The task id shown by 'funnelctl due'.", show_default=False)
]
COLUMNS = ["id", "title", "status", "due_on", "owner", "note"]


def done(
    task: TaskId,
    note: Annotated[str | None, typer.Option(help="What happened.")] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Mark a task done; its follow-up task (then:) starts now."""
    from ..activities import complete

    with session(home, today) as s:
        row = complete(s.store, s.workspace.settings, task, s.today, note)
    output.render([row], fmt, COLUMNS)


def snooze_(
    task: TaskId,
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
            try:
                target = parse_date(until).isoformat()
            except ValueError as exc:
                raise UsageError(f"--until: {exc}") from None
        else:
            assert days is not None
            target = shift(s.today, days)
        row = snooze(s.store, task, s.today, target)
    output.render([row], fmt, COLUMNS)


def drop_(
    task: TaskId,
    reason: Annotated[str, typer.Option(help="Why it is no longer needed.")],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Drop a task that is no longer needed."""
    from ..activities import drop

    with session(home, today) as s:
        row = drop(s.store, task, s.today, reason)
    output.render([row], fmt, COLUMNS)
