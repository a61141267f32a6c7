"""funnelctl run: the daily tick"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .. import output
from ..errors import EXIT_FAILED, FunnelError
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session


def run(
    no_inbox: Annotated[
        bool,
        typer.Option("--no-inbox", help="Do not read the inbox first (funnelctl.yaml inbox:)."),
    ] = False,
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
    """The daily tick: time-based moves and escalations, caught up for missed days; idempotent.

    With an inbox in funnelctl.yaml, its new mail is read first (as 'funnelctl inbox'),
    so that replies stop what waits for them before the tick; a mailbox that cannot be
    read is reported (exit 1) and the tick runs all the same.
    """
    from ..engine import run_tick

    failed = None
    with session(home, today) as s:
        settings = s.workspace.settings
        read = None
        if settings.inbox is not None and not no_inbox:
            from ..inbox import read_inbox

            try:
                read = read_inbox(
                    s.store, s.library(), settings, today=s.today, environ=dict(os.environ)
                )
            except FunnelError as exc:
                failed = exc
        result = run_tick(s.store, s.library(), settings, s.today, rescore=rescore)
        if read is not None:  # flat, for the table and CSV as for JSON
            result |= {f"inbox_{key}": value for key, value in read.summary().items()}
    output.render_object(result, fmt, title=f"Run for {s.today}")
    if failed is not None:
        output.error(f"The inbox was not read: {failed.message}")
        raise typer.Exit(EXIT_FAILED)
