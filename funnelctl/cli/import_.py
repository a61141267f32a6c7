"""funnelctl import FILE.csv"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..outfiles import check_target
from ..output import OutputFormat
from .common import ForceOption, FormatOption, HomeOption, TodayOption, session


def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="The CSV or .xlsx file (header on line 1), or - for standard input.",
            show_default=False,
        ),
    ],
    key: Annotated[
        str, typer.Option(help="Match existing customers on email or external_id.")
    ] = "email",
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a column: 'E-mail Address=email' (repeatable)."),
    ] = None,
    funnel: Annotated[str | None, typer.Option(help="Enroll customers new to this funnel.")] = None,
    stage: Annotated[
        str | None, typer.Option(help="At this stage, by id or title (default: the first).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count everything; write nothing.")
    ] = False,
    no_actions: Annotated[
        bool, typer.Option("--no-actions", help="Enroll without running entry actions.")
    ] = False,
    skip_bad: Annotated[
        Path | None,
        typer.Option(
            "--skip-bad",
            metavar="FILE",
            help="Import the good rows; write the bad ones, with a reason column, to FILE.",
        ),
    ] = None,
    force: ForceOption = False,
    encoding: Annotated[
        str | None, typer.Option(help="File encoding, e.g. latin-1 (default: UTF-8 or by BOM).")
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="',' ';' or a tab (default: guessed from the header).")
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(
            "--date-format", help="strptime format of dates, e.g. %d/%m/%Y (default ISO)."
        ),
    ] = None,
    decimal: Annotated[
        str | None,
        typer.Option(
            help="Decimal mark of amounts (mrr): '.' or ',' (default: ',' in ';' files, else '.')."
        ),
    ] = None,
    sheet: Annotated[
        str | None, typer.Option(help="The sheet of an .xlsx workbook (default: the first).")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Upsert customers from a CSV file or an .xlsx workbook: all rows or none."""
    from ..importing import ImportOptions, import_customers, parse_mapping

    options = ImportOptions(
        key=key,
        mapping=parse_mapping(map_ or []),
        funnel=funnel,
        stage=stage,
        dry_run=dry_run,
        run_actions=not no_actions,
        encoding=encoding,
        delimiter="\t" if delimiter in ("\\t", "tab") else delimiter,
        date_format=date_format,
        skip_bad=skip_bad,
        decimal=decimal,
        sheet=sheet,
    )
    name = STDIN if str(file) == "-" else str(file)
    with (
        session(home, today) as s,
        _readable(file) as path,
        output.progress(
            f"Importing {path.name if name != STDIN else name}", total=_rows_about(path)
        ) as bar,
    ):
        if skip_bad is not None:
            check_target(skip_bad, s.workspace, force=force, what="the rejected rows")
        result = import_customers(
            s.store,
            s.library,
            path,
            options,
            s.today,
            on_row=bar.update,
            settings=s.workspace.settings,
            on_columns=(lambda columns: _show_columns(name, columns)) if dry_run else None,
            name=name,
        )
    output.render_object(result.summary(), fmt, title="Import")
    for note in result.notes:
        output.message(note)
    if result.custom_columns and not dry_run:  # a dry run listed every column's target
        output.message(
            f"Kept as custom fields: {', '.join(result.custom_columns)} (to read one as "
            f"funnelctl's name, company or email: --map '{result.custom_columns[0]}=name')."
        )
    if dry_run:
        output.message("Dry run: nothing was written.")
    if result.rejected and skip_bad:
        written = "would be written" if dry_run else "written"
        output.message(f"{result.rejected} bad row(s) {written} to {skip_bad}:")
        for problem in result.bad.located(name):
            output.message(f"  {problem}")
        if not (result.inserted or result.updated or result.unchanged):
            # every row refused (a client's export in a new date format, say): a script
            # must not read that as success
            output.error(
                f"No row of {name} would be imported: all {result.rejected} would be refused."
                if dry_run
                else f"No row of {name} was imported: all {result.rejected} were refused; "
                f"fix them in {skip_bad} and import that file."
            )
            raise typer.Exit(1)


STDIN = "<stdin>"


@contextmanager
def _readable(file: Path) -> Iterator[Path]:
    """The file to read: ``-`` is standard input, copied to a private temporary file
    (in chunks: memory stays flat) because a bad file is read again to find its line."""
    if str(file) != "-":
        yield file
        return
    with tempfile.NamedTemporaryFile(prefix="funnelctl-stdin-", suffix=".csv") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 16)
        copy.flush()
        yield Path(copy.name)


def _show_columns(file: str, columns: list[tuple[str, str]]) -> None:
    output.message(f"Columns of {file}:")
    for column, target in columns:
        output.message(f"  {column} -> {target}")


def _rows_about(path: Path) -> int | None:
    """About how many rows a text file holds (its lines less the header), for the progress
    bar's time left; None for a workbook, or when it cannot be read (the import says why)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return None
    try:
        with path.open("rb") as stream:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    except OSError:
        return None
    return max(lines - 1, 0)
