"""funnelctl run: the daily tick"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session


def run(
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore",
            help="Score every active customer, not only those whose health may have changed.",
        ),
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The daily tick: time-based moves and escalations, caught up for missed days; idempotent."""
    from ..engine import run_tick

    with session(home, today) as s:
        result = run_tick(s.store, s.library(), s.workspace.settings, s.today, rescore=rescore)
    output.render_object(result, fmt, title=f"Run for {s.today}")
