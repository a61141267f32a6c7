"""funnelctl signal CUSTOMER METRIC VALUE | signal import FILE.csv"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..errors import UsageError
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, option_date, session


def signal(
    customer: Annotated[
        str, typer.Argument(help="Email, external id or #id; or 'import' to read a CSV file.")
    ],
    metric: Annotated[
        str,
        typer.Argument(
            help="Metric (nps, csat, logins, seats_used, tickets, …); after 'import': the CSV file."
        ),
    ],
    value: Annotated[str | None, typer.Argument(help="The number.")] = None,
    at: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="When it was measured (default today).")
    ] = None,
    date_format: Annotated[
        str | None, typer.Option("--date-format", help="strptime format of the CSV's dates.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="The CSV's encoding (default UTF-8 or by BOM).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the CSV; write nothing.")
    ] = False,
    new_metric: Annotated[
        bool,
        typer.Option(
            "--new-metric",
            help="Record a metric that no health measure or report reads (yet).",
        ),
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Record a signal: funnelctl signal CUSTOMER METRIC VALUE [--at DATE].

    The metric must be one that the health model or the report reads (--new-metric for
    another); nps is 0 to 10, csat 1 to 5, logins, tickets and seats_used 0 or more.

    Or import many: funnelctl signal import FILE.csv, in long format (customer, metric,
    value, date) or wide (customer, date, one column per metric). All rows or none.
    """
    from ..health import record_signal
    from ..importing import import_signals

    with session(home, today) as s:
        if customer == "import" and value is None:
            result = import_signals(
                s.store,
                Path(metric),
                s.today,
                encoding=encoding,
                date_format=date_format,
                dry_run=dry_run,
            )
            output.render_object(result, fmt, title="Signals imported")
            return
        if value is None:
            raise UsageError("Give CUSTOMER METRIC VALUE, or: funnelctl signal import FILE.csv")
        on = option_date("--at", at) if at else s.today
        output.render_object(
            record_signal(
                s.store,
                customer,
                metric,
                value,
                on,
                s.today,
                library=s.library(),
                new_metric=new_metric,
            ),
            fmt,
            title="Signal",
        )
