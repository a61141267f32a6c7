"""funnelctl export TABLE"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from .. import output
from ..errors import UsageError
from ..exporting import EXPORT_TABLES, export_json_rows, export_rows
from ..outfiles import check_target, written
from ..output import OutputFormat
from .common import AlarmOption, ForceOption, HomeOption, TodayOption, formats, option_time, session

ExportTable = Enum("ExportTable", {t: t for t in EXPORT_TABLES}, type=str)  # type: ignore[misc]


def export(
    table: Annotated[ExportTable, typer.Argument(help="What to export.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Argument(help="Write to this file (the same as --output).", show_default=False),
    ] = None,
    # Files for other programs, so no table. `export calendar` writes iCalendar whatever
    # --format says, and no other table can be one, so ics is not offered either.
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", click_type=formats(OutputFormat.csv, OutputFormat.json)),
    ] = OutputFormat.csv,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    force: ForceOption = False,
    alarm: AlarmOption = None,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Export customers, activities, history, outbox, touchpoints or signals as CSV or JSON,
    or the open tasks as an iCalendar file (calendar).

    The calendar also holds the tasks closed in the last 14 days, as cancelled events;
    --alarm 9:00 adds a reminder at 9:00 on each open task's due day.

    CSV cells that start with = + - @ are prefixed with ' so spreadsheets never run them.
    A file is written owner-only, and only whole; an existing one only with --force.
    """
    out = out or file
    calendar = table.value == "calendar"
    with session(home, today) as s, s.store.read():
        if alarm is not None and not calendar:
            raise UsageError("--alarm goes with export calendar (a reminder in the calendar).")
        reminder = option_time("--alarm", alarm) if alarm is not None else None
        if out:
            check_target(out, s.workspace, force=force)
        stdout: IO[Any] = sys.stdout.buffer if calendar else sys.stdout
        with written(out, binary=calendar) if out else nullcontext(stdout) as stream:
            if calendar:
                from ..reports import calendar_tasks, workspace_id

                output.write_calendar(
                    calendar_tasks(s.store, today=s.today),
                    stream,
                    workspace_id=workspace_id(s.store),
                    name=s.workspace.root.name,
                    alarm=reminder,
                )
            elif fmt == OutputFormat.json:
                count = output.write_json_rows(export_json_rows(s.store, table.value), stream)
            else:
                columns, rows = export_rows(s.store, table.value)
                count = output.write_csv(rows, columns, stream)
    if out:
        output.message(
            f"Exported the open tasks to {out}."
            if calendar
            else f"Exported {count} {table.value} row(s) to {out}."
        )
