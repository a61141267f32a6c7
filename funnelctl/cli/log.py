"""funnelctl log CUSTOMER"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import CustomerArg, FormatOption, HomeOption, TodayOption, option_date, session, who


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
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Log a touchpoint. An inbound one drops the tasks and emails waiting for a reply."""
    from ..activities import log_touchpoint

    with session(home, today) as s:
        day = option_date("--on", on) if on else s.today
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
        )
    output.render_object(result, fmt, title="Logged")
