"""funnelctl move CUSTOMER STAGE"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import CustomerArg, FormatOption, FunnelOption, HomeOption, TodayOption, session, who


def move(
    customer: CustomerArg,
    stage: Annotated[
        str,
        typer.Argument(
            help="The stage to move to: its id or its title, any case.", show_default=False
        ),
    ],
    funnel: FunnelOption = None,
    note: Annotated[str | None, typer.Option(help="Why: kept in the stage history.")] = None,
    reopen: Annotated[
        bool, typer.Option("--reopen", help="Reopen a won, lost or churned enrollment at STAGE.")
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Move a customer to a stage (forwards or backwards) and run its entry actions."""
    from ..engine import move_customer

    with session(home, today) as s:
        result = move_customer(
            s.store,
            s.library(),
            s.workspace.settings,
            customer,
            stage,
            funnel_id=funnel,
            note=note,
            reopen=reopen,
            today=s.today,
            by=who(),
        )
    output.render_object(result, fmt, title="Moved")
