"""funnelctl ticket import FILE.csv"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import FormatOption, HomeOption, TodayOption, new_app, session

app = new_app("Help-desk tickets, for response and resolution times.", name="ticket")


@app.command("import")
def import_tickets(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with id, customer, opened_at, first_response_at, resolved_at, csat."
        ),
    ],
    encoding: Annotated[
        str | None, typer.Option(help="File encoding (default UTF-8 or by BOM).")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Upsert help-desk tickets by id: all rows or none."""
    from ..importing import import_tickets as run_import

    with session(home, today) as s:
        result = run_import(s.store, file, s.today, encoding=encoding)
    output.render_object(result, fmt, title="Tickets")
