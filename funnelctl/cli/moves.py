"""funnelctl enroll | move | won | lost | churn"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, session, who

Customer = Annotated[str, typer.Argument(help="Email, external id or #id.", show_default=False)]
FunnelOpt = Annotated[
    str | None, typer.Option("--funnel", help="Which funnel, when the customer is in several.")
]


def enroll(
    customer: Customer,
    funnel: Annotated[str, typer.Argument(help="Funnel id.", show_default=False)],
    stage: Annotated[
        str | None, typer.Option(help="Start at this stage (default: the first).")
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


def move(
    customer: Customer,
    stage: Annotated[str, typer.Argument(help="The stage to move to.", show_default=False)],
    funnel: FunnelOpt = None,
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


def _closer(status: str, doc: str) -> Callable[..., None]:
    def command(
        customer: Customer,
        funnel: FunnelOpt = None,
        reason: Annotated[str | None, typer.Option(help="Why: kept in the stage history.")] = None,
        home: HomeOption = None,
        today: TodayOption = None,
        fmt: FormatOption = OutputFormat.table,
    ) -> None:
        from ..engine import close_customer

        with session(home, today) as s:
            result = close_customer(
                s.store,
                s.library(),
                s.workspace.settings,
                customer,
                status,
                funnel_id=funnel,
                reason=reason,
                today=s.today,
                by=who(),
            )
        output.render_object(result, fmt, title=status.capitalize())

    command.__doc__ = doc
    return command


won = _closer("won", "Close the customer's enrollment as won.")
lost = _closer("lost", "Close the customer's enrollment as lost (open tasks are dropped).")
churn = _closer("churned", "Close the customer's enrollment as churned (open tasks are dropped).")
