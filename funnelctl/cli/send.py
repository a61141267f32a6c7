"""funnelctl send"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer

from .. import output
from ..errors import EXIT_FAILED
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, resolve_now, session


def send_(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go out, to whom; change nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Send at most N emails this run.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for another send to finish before giving up."),
    ] = 10.0,
    retry_uncertain: Annotated[
        bool,
        typer.Option(
            "--retry-uncertain", help="Resend emails whose fate is unknown (same Message-ID)."
        ),
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Deliver the queued emails that are due, inside the send window. Safe under cron.

    Exits 1 when an email failed or is uncertain (so cron mails you), 75 when another
    send holds the workspace.
    """
    from ..sending import SendOptions, send

    with session(home, today) as s:
        report = send(
            s.store,
            s.library(),
            s.workspace,
            today=s.today,
            now=resolve_now(s.today, s.workspace),
            clock=lambda: datetime.now(s.workspace.settings.zone),
            options=SendOptions(dry_run, limit, wait, retry_uncertain),
            environ=dict(os.environ),
        )
    if dry_run:
        columns = ["ref", "template", "scheduled_on", "recipients", "subject"]
        output.render(
            report.planned,
            fmt,
            ["id", *columns] if fmt == OutputFormat.csv else columns,  # scripts read the id
            title="Would send (dry run)",
            empty="Nothing would be sent now.",
            stream=True,  # a big outbox: plain rows in a pipe, a screenful on a terminal
            screen=output.screen_rows(limit),
            keep=("ref", "recipients"),
        )
    else:
        output.render_object(report.summary(), fmt, title="Send")
    if report.outside_window:
        window = "Outside the send window (funnelctl.yaml send.window)"
        if not dry_run:
            output.message(f"{window}: nothing was sent.")
        elif report.planned:  # the 8 a.m. look at what goes out at nine
            output.message(f"{window}: these wait until it opens.")
        else:
            output.message(f"{window}.")
    for problem in report.problems:
        output.message(problem)
    if not dry_run and not report.ok:
        raise typer.Exit(EXIT_FAILED)
