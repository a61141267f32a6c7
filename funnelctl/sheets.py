"""Tables that are not CSV: an Excel workbook (.xlsx) read directly, and the files people
export by mistake (.xls, .numbers, a ZIP, a PDF), recognised by their first bytes and
refused with how to export them as CSV.

A workbook's sheet is streamed row by row (openpyxl's read-only mode); its rows are
numbered as Excel numbers them, the header being row 1, so that problems read
``file.xlsx:ROW: what`` like a CSV's lines.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from .csvfile import open_csv
from .errors import UsageError, ValidationError

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls), old Word and the like
_PDF = b"%PDF"


class Table(Protocol):
    """What an import reads: a header and rows, each with its line (or row) number."""

    path: Path
    header: list[str]
    delimiter: str
    name: str
    decimal_known: bool  # False when the decimal mark of amounts is a guess (a CSV's)

    def rows(self) -> Iterator[tuple[int, list[str]]]: ...

    def close(self) -> None: ...


def _cell_text(value: Any, decimal: str = ".") -> str:
    """A cell as text, dates in ISO, numbers in plain digits with the import's decimal
    mark (so that a number cell is never read as ambiguous: 1.125 is 1.125)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(timespec="minutes")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{Decimal(repr(value)):f}".replace(".", decimal)
    return str(value)


@dataclass
class SheetFile:
    """One sheet of an .xlsx workbook, read like a CSV file."""

    path: Path
    header: list[str]
    name: str
    workbook: Any
    values: Iterator[tuple[Any, ...]]
    decimal: str = "."  # the mark number cells are written with: the import's
    delimiter: str = ","
    decimal_known: bool = True  # amounts are number cells, or text read with --decimal (or .)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.header)
        for number, row in enumerate(self.values, start=2):
            cells = [_cell_text(v, self.decimal) for v in row]
            while len(cells) > width and not cells[-1].strip():
                cells.pop()
            yield number, cells + [""] * (width - len(cells))

    def close(self) -> None:
        self.workbook.close()


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _is_numbers(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.startswith("Index/") and n.endswith(".iwa") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _not_a_table(path: Path, name: str, head: bytes) -> str | None:
    """Why the file, by its first bytes, is neither CSV nor .xlsx; None when it may be CSV."""
    if head.startswith(_OLE2):
        return (
            "is an Excel 97-2003 workbook (.xls), not CSV: open it in Excel and save it "
            "as .xlsx or as 'CSV UTF-8 (Comma delimited)'"
        )
    if head.startswith(_ZIP) and (path.suffix.lower() == ".numbers" or _is_numbers(path)):
        return "is a Numbers document: in Numbers choose File > Export To > CSV… and import that"
    if head.startswith(_ZIP):
        return "is a ZIP archive, not CSV: unzip it and import the CSV file inside"
    if head.startswith(_PDF):
        return (
            "is a PDF, not CSV: export the data as CSV from the program that made it "
            "(a PDF's tables cannot be read reliably)"
        )
    return None


def _open_xlsx(path: Path, name: str, sheet: str | None, decimal: str | None) -> SheetFile:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a damaged workbook fails in many ways: one sentence for all
        raise ValidationError(f"{name}: cannot read the workbook: {exc}") from None
    try:
        if sheet is not None:
            if sheet not in workbook.sheetnames:
                raise UsageError(
                    f"{name} has no sheet {sheet!r} (its sheets: {', '.join(workbook.sheetnames)})"
                )
            worksheet = workbook[sheet]
        else:
            worksheet = workbook.worksheets[0]
        values = worksheet.iter_rows(values_only=True)
        first = next(values, None)
        header = [_cell_text(v).strip() for v in first or ()]
        while header and not header[-1]:
            header.pop()
        if not header:
            raise ValidationError(
                f"{name}:1: the sheet {worksheet.title!r} is empty; row 1 must be the header"
            )
    except BaseException:
        workbook.close()
        raise
    return SheetFile(path, header, name, workbook, values, decimal or ".")


def open_table(
    path: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    name: str | None = None,
    sheet: str | None = None,
    decimal: str | None = None,
) -> Table:
    """A CSV file or an .xlsx workbook's sheet (``sheet``, else the first), by content;
    ``decimal`` is the --decimal mark, with which a sheet writes its number cells."""
    shown = name or str(path)
    if not path.is_file():
        raise ValidationError(f"{shown}: no such file")
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ValidationError(f"{shown}: cannot read the file: {exc.strerror}") from None
    if head.startswith(_ZIP) and _is_xlsx(path):
        return _open_xlsx(path, shown, sheet, decimal)
    problem = _not_a_table(path, shown, head)
    if problem is not None:
        raise ValidationError(f"{shown} {problem}")
    if sheet is not None:
        raise UsageError(f"--sheet is for .xlsx workbooks; {shown} is not one")
    return open_csv(path, encoding, delimiter, shown)
