"""funnelctl export TABLE"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..importing import EXPORT_TABLES, export_json_rows, export_rows
from ..outfiles import check_target, written
from ..output import OutputFormat
from .common import ForceOption, HomeOption, TodayOption, formats, session

ExportTable = Enum("ExportTable", {t: t for t in EXPORT_TABLES}, type=str)  # type: ignore[misc]


def export(
    table: Annotated[ExportTable, typer.Argument(help="What to export.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Argument(help="Write to this file (the same as --output).", show_default=False),
    ] = None,
    # Files for other programs: no table. The calendar is always iCalendar, whatever
    # --format says, so ics is not offered here (`export calendar` needs no option).
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", click_type=formats(OutputFormat.csv, OutputFormat.json)),
    ] = OutputFormat.csv,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    force: ForceOption = False,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Export customers, activities, history, outbox, touchpoints or signals as CSV or JSON,
    or the open tasks as an iCalendar file (calendar).

    CSV cells that start with = + - @ are prefixed with ' so spreadsheets never run them.
    A file is written owner-only, and only whole; an existing one only with --force.
    """
    out = out or file
    if table.value == "calendar":
        from ..reports import calendar

        with session(home, today) as s:
            if out:
                check_target(out, s.workspace, force=force)
            data = calendar(s.store)
        if out:
            with written(out, binary=True) as stream:
                stream.write(data)
            output.message(f"Exported the open tasks to {out}.")
        else:
            sys.stdout.buffer.write(data)
        return
    with session(home, today) as s, s.store.read():
        if out:
            check_target(out, s.workspace, force=force)
        with written(out) if out else nullcontext(sys.stdout) as stream:
            if fmt == OutputFormat.json:
                count = output.write_json_rows(export_json_rows(s.store, table.value), stream)
            else:
                columns, rows = export_rows(s.store, table.value)
                count = output.write_csv(rows, columns, stream)
    if out:
        output.message(f"Exported {count} {table.value} row(s) to {out}.")
