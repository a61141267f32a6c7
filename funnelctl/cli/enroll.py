"""funnelctl enroll CUSTOMER FUNNEL"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import CustomerArg, FormatOption, HomeOption, TodayOption, session, who


def enroll(
    customer: CustomerArg,
    funnel: Annotated[str, typer.Argument(help="Funnel id.", show_default=False)],
    stage: Annotated[
        str | None,
        typer.Option(help="Start at this stage, by id or title in any case (default: the first)."),
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Put a customer in a funnel and run the stage's entry actions."""
    from ..engine import enroll_customer

    with session(home, today) as s:
        result = enroll_customer(
            s.store,
            s.library(),
            s.workspace.settings,
            customer,
            funnel,
            stage_id=stage,
            today=s.today,
            by=who(),
        )
    output.render_object(result, fmt, title="Enrolled")
