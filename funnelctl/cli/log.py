"""funnelctl log CUSTOMER SUMMARY [--next TITLE --due WHEN]"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..dates import shift
from ..errors import UsageError
from ..output import OutputFormat
from .common import (
    CustomerArg,
    FormatOption,
    HomeOption,
    TodayOption,
    option_date,
    option_due,
    session,
    who,
)
from .task import DUE_HELP, OwnerOption, show_planned


def log(
    customer: CustomerArg,
    summary: Annotated[
        str, typer.Argument(help="What happened, in a sentence.", show_default=False)
    ],
    channel: Annotated[str, typer.Option(help="phone, email, chat, meeting, in-person, …")],
    direction: Annotated[
        str, typer.Option(help="inbound (the customer reached us) or outbound.")
    ] = "outbound",
    on: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="When (default today).")
    ] = None,
    next_: Annotated[
        str | None,
        typer.Option("--next", metavar="TITLE", help="Plan the next step too, as 'task add' does."),
    ] = None,
    due: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN", help=f"When the next step is due: {DUE_HELP} Default tomorrow."
        ),
    ] = None,
    owner: OwnerOption = None,
    funnel: Annotated[
        str | None,
        typer.Option(help="The next step's funnel, when the customer is in several."),
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Log a touchpoint. An inbound one drops the tasks and emails waiting for a reply.

    With --next, plan the next step in the same go: both are kept, or neither.
    """
    from ..activities import NextStep, log_touchpoint

    if next_ is None and (due, owner, funnel) != (None, None, None):
        raise UsageError(
            "--due, --owner and --funnel describe the next step: give it with --next TITLE."
        )
    with session(home, today) as s:
        day = option_date("--on", on) if on else s.today
        step = None
        if next_ is not None:
            due_on = option_due("--due", due, s.today) if due else shift(s.today, 1)
            step = NextStep(next_, due_on, owner=owner, funnel=funnel)
        result = log_touchpoint(
            s.store,
            s.library(),
            s.workspace.settings,
            customer,
            channel=channel,
            direction=direction,
            summary=summary,
            on=day,
            today=s.today,
            by=who(),
            next_step=step,
        )
    planned = result.pop("next_step", None) if fmt == OutputFormat.table else None
    output.render_object(result, fmt, title="Logged")
    if planned is not None:
        show_planned(planned, fmt, s.today)
