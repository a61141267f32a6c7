"""funnelctl report | ticket import"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .. import output
from ..dates import parse_date
from ..errors import UsageError
from ..outfiles import check_target, written
from ..output import OutputFormat
from .common import ForceOption, FormatOption, HomeOption, TodayOption, new_app, session

tickets = new_app("Help-desk tickets, for response and resolution times.", name="ticket")

STAGE_COLUMNS = [
    "funnel",
    "stage",
    "customers",
    "bar",
    "entered",
    "conversion",
    "median_days",
    "p90_days",
    "stagnating",
    "channels",
]


def _date(option: str, value: str | None) -> str | None:
    try:
        return parse_date(value).isoformat() if value else None
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


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
        period = default_period(s.today, _date("--since", since), _date("--until", until))
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
    rows = [
        {**stage, "funnel": f["funnel"], "channels": stage["touchpoints"]}
        for f in data["funnels"]
        for stage in f["stages"]
    ]
    if fmt == OutputFormat.json:
        output.render_object(data, fmt)
        return
    if fmt == OutputFormat.csv:
        output.render(rows, fmt, [c for c in STAGE_COLUMNS if c != "bar"])
        return
    _tables(data)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _tables(data: dict[str, Any]) -> None:
    period = data["period"]
    for f in data["funnels"]:
        peak = max((s["customers"] for s in f["stages"]), default=0)
        rows = [
            {
                "stage": s["stage"],
                "now": s["customers"],
                "": output.bar(s["customers"], peak, 24),
                "entered": s["entered"],
                "converted": _pct(s["conversion"]),
                "median d": s["median_days"],
                "p90 d": s["p90_days"],
                "stagnating": s["stagnating"] or "",
                "touchpoints": "GAP: none"
                if s["gap"]
                else ", ".join(f"{c} {n}" for c, n in sorted(s["touchpoints"].items())),
            }
            for s in f["stages"]
        ]
        churn = "" if f["churn_rate"] is None else f", churn rate {_pct(f['churn_rate'])}"
        output.render(
            rows,
            "table",
            list(rows[0]) if rows else ["stage"],
            title=f"{f['title']}: {f['active']} active; won {f['won']}, lost {f['lost']}, churned {f['churned']}{churn} ({period['since']} to {period['until']})",
        )
    sat, sup, trends = data["satisfaction"], data["support"], data["trends"]
    summary = {
        "NPS": f"{sat['nps'] if sat['nps'] is not None else '–'} ({sat['nps_answers']} answers)  {output.sparkline([t['nps'] for t in trends])}",
        "CSAT": f"{sat['csat'] if sat['csat'] is not None else '–'} ({sat['csat_answers']} answers)",
        "churned per month": output.sparkline([t["churned"] for t in trends]) or "–",
        "response (days, median)": sup["response_days_median"]
        if sup["response_days_median"] is not None
        else "–",
        "tickets": sup["tickets"],
        "first response (h, median)": sup["first_response_hours_median"] or "–",
        "resolution (h, median / p90)": f"{sup['resolution_hours_median'] or '–'} / {sup['resolution_hours_p90'] or '–'}",
        "open backlog": sup["backlog"],
    }
    output.render_object(summary, "table", title="Satisfaction and support")
    output.render(
        data["owners"],
        "table",
        ["owner", "done_on_time", "done_late", "overdue", "median_days_late"],
        title="Owners",
    )
    weeks = sorted({r["week"] for r in data["workload"]})
    load: dict[str, dict[str, int]] = {}
    for r in data["workload"]:
        load.setdefault(r["owner"], {})[r["week"]] = r["tasks"] + r["emails"]
    workload = [
        {
            "owner": owner,
            **{week[5:]: per.get(week, 0) for week in weeks},
            "trend": output.sparkline([per.get(w, 0) for w in weeks]),
        }
        for owner, per in sorted(load.items())
    ]
    output.render(
        workload,
        "table",
        ["owner", *[w[5:] for w in weeks], "trend"],
        title="Workload: tasks + emails per week",
    )


@tickets.command("import")
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
