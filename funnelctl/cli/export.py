"""funnelctl export TABLE"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..errors import FunnelError
from ..importing import EXPORT_TABLES, export_json_rows, export_rows
from .common import HomeOption, TodayOption, session

ExportTable = Enum("ExportTable", {t: t for t in EXPORT_TABLES}, type=str)  # type: ignore[misc]


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


def export(
    table: Annotated[ExportTable, typer.Argument(help="What to export.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Argument(help="Write to this file (the same as --output).", show_default=False),
    ] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.csv,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Export customers, activities, history, outbox, touchpoints or signals as CSV or JSON,
    or the open tasks as an iCalendar file (calendar).

    CSV cells that start with = + - @ are prefixed with ' so spreadsheets never run them.
    """
    out = out or file
    if table.value == "calendar":
        from ..reports import calendar

        with session(home, today) as s:
            data = calendar(s.store)
        if out:
            try:
                out.write_bytes(data)
            except OSError as exc:
                raise FunnelError(f"Cannot write {out}: {exc.strerror}.") from None
            output.message(f"Exported the open tasks to {out}.")
        else:
            sys.stdout.buffer.write(data)
        return
    with session(home, today) as s, s.store.read():
        try:
            stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
        except OSError as exc:
            raise FunnelError(f"Cannot write {out}: {exc.strerror}.") from None
        try:
            if fmt == "json":
                count = output.write_json_rows(export_json_rows(s.store, table.value), stream)
            else:
                columns, rows = export_rows(s.store, table.value)
                count = output.write_csv(rows, columns, stream)
        finally:
            if out:
                stream.close()
    if out:
        output.message(f"Exported {count} {table.value} row(s) to {out}.")
