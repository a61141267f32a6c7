"""funnelctl drop ITEM... --reason WHY"""

from __future__ import annotations

from typing import Annotated

import typer

from ..output import OutputFormat
from .common import TASK_COLUMNS, FormatOption, HomeOption, TodayOption, session
from .worked import drop_sentence, items, tell


def drop_(
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="ITEM...",
            help="t12 (or 12) a task, e7 a queued email, as 'funnelctl due' shows them; "
            "several at once: all of them or none.",
            show_default=False,
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why it is no longer needed.")],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Drop tasks no longer needed, or skip queued emails no longer wanted (e7)."""
    from ..activities import drop

    wanted = items(refs)
    with session(home, today) as s:
        worked = drop(s.store, wanted, s.today, reason)
    tell(worked, fmt, TASK_COLUMNS, drop_sentence)
