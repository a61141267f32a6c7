"""funnelctl at-risk"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from .. import output
from ..output import OutputFormat
from .common import FormatOption, HomeOption, LimitOption, TodayOption, session


def at_risk(
    everyone: Annotated[
        bool,
        typer.Option(
            "--all", help="Every active customer, not only those at risk or with an opportunity."
        ),
    ] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Score everyone now, even when today's run already did.")
    ] = False,
    limit: LimitOption = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Health scores with their reasons and trend: customers at risk first, and opportunities.

    After today's `funnelctl run` this reads the scores it kept; before it (or with
    --live) every active customer is scored now.
    """
    from ..health import at_risk_report

    with session(home, today) as s:
        rows = at_risk_report(
            s.store, s.library(), s.workspace.settings, s.today, everyone=everyone, live=live
        )[:limit]

    def style(row: Mapping[str, Any]) -> str | None:
        return "bold red" if row["at_risk"] else None

    screen = output.screen_rows(limit)
    if fmt == "table":  # a person's screenful: the first reasons, one a line; a pipe: all
        join = "\n".join if screen is not None else "; ".join
        for row in rows:
            row["reasons"] = join(row["reasons"][:3] if screen is not None else row["reasons"])
            row["opportunities"] = join(row["opportunities"])

    output.render(
        rows,
        fmt,
        ["customer", "owner", "score", "trend", "reasons", "opportunities"],
        title=f"Health on {s.today}",
        style=style,
        empty="Nobody is at risk and no opportunity is open.",
        stream=True,
        screen=screen,
        keep=("customer", "owner"),
    )
