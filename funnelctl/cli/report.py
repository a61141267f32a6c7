"""funnelctl report"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..errors import UsageError
from ..outfiles import check_target, written
from ..output import OutputFormat
from .common import ForceOption, FormatOption, HomeOption, TodayOption, option_date, session


def report(
    funnel: Annotated[str | None, typer.Option(help="Only this funnel.")] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="YYYY-MM-DD", help="Start of the period (default: 90 days back)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="End of the period (default: today).")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", metavar="FILE", help="Also write a self-contained HTML page with charts."
        ),
    ] = None,
    force: ForceOption = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Funnel counts, conversion, time in stage, churn, NPS/CSAT, support times, owners, workload."""
    from ..reports import build_report, default_period

    with session(home, today) as s:
        if html is not None:
            check_target(html, s.workspace, force=force, what="the report")
        period = default_period(
            s.today,
            option_date("--since", since) if since else None,
            option_date("--until", until) if until else None,
        )
        if period.since > period.until:
            raise UsageError(f"--since {period.since} is after --until {period.until}.")
        data = build_report(
            s.store, s.library(), s.today, funnel=funnel, since=period.since, until=period.until
        )
    if html is not None:
        from ..htmlreport import render_html

        with written(html) as stream:
            stream.write(render_html(data))
        output.message(f"Wrote {html}.")
    output.render_report(data, fmt)
