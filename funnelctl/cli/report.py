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
            "--html",
            metavar="FILE",
            help="Also write a self-contained HTML page for your client: figures, charts, "
            "customers at risk, sustain or scale.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="With -f csv: one CSV per section of the JSON (funnels, stages, kpis, "
            "satisfaction, support, owners, workload, trends, weekly, at_risk, projection) "
            "in DIR.",
        ),
    ] = None,
    weeks: Annotated[
        int,
        typer.Option(
            "--weeks",
            metavar="N",
            min=1,
            max=52,
            help="Weeks of workload to project against each team member's capacity.",
        ),
    ] = 12,
    force: ForceOption = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Funnel counts, conversion, time in stage, churn, NPS/CSAT, support times, owners, workload.

    The workload ahead is projected for --weeks weeks and judged against each team
    member's capacity (tasks a week, in funnelctl.yaml): sustain or scale.
    """
    from ..reports import build_report, default_period

    if out is not None and fmt != OutputFormat.csv:
        raise UsageError("--out writes one CSV per section: use it with --format csv.")
    with session(home, today) as s:
        if html is not None:
            check_target(html, s.workspace, force=force, what="the report")
        if out is not None:
            _make_folder(out)
            for name in output.REPORT_SECTIONS:
                check_target(out / f"{name}.csv", s.workspace, force=force, what="the report")
        period = default_period(
            s.today,
            option_date("--since", since) if since else None,
            option_date("--until", until) if until else None,
        )
        if period.since > period.until:
            raise UsageError(f"--since {period.since} is after --until {period.until}.")
        data = build_report(
            s.store,
            s.library(),
            s.today,
            funnel=funnel,
            since=period.since,
            until=period.until,
            settings=s.workspace.settings,
            weeks=weeks,
        )
    if html is not None:
        from ..htmlreport import render_html

        with written(html) as stream:
            stream.write(render_html(data, s.workspace.root.name))
        output.message(f"Wrote {html}.")
    if out is not None:
        _write_sections(data, out)
        return
    output.render_report(data, fmt)
    if fmt == OutputFormat.csv:
        output.message("The stage rows; every section, one CSV each: --out DIR.")


def _make_folder(folder: Path) -> None:
    from ..errors import os_problem

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_problem(exc, f"create {folder}") from None


def _write_sections(data: dict[str, object], folder: Path) -> None:
    """One CSV per section of the report, each written whole or not at all."""
    sections = output.report_sections(data)
    for name, rows in sections.items():
        with written(folder / f"{name}.csv") as stream:
            output.write_csv(rows, output.section_columns(name, rows), stream)
    output.message(f"Wrote {', '.join(f'{n}.csv' for n in sections)} to {folder}.")
