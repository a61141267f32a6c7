"""funnelctl won | lost | churn CUSTOMER: close an enrollment"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import CustomerArg, FormatOption, FunnelOption, HomeOption, TodayOption, session, who


def _closer(status: str, doc: str) -> Callable[..., None]:
    def command(
        customer: CustomerArg,
        funnel: FunnelOption = None,
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
