"""funnelctl due"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from .. import output
from ..output import OutputFormat
from .common import HomeOption, TodayOption, formats, session

COLUMNS = ["kind", "id", "customer", "funnel", "stage", "title", "due_on", "days_overdue", "owner"]


def _urgency(item: Mapping[str, Any]) -> str | None:
    if item["kind"] == "stagnation":
        return "magenta"
    if item["days_overdue"] > 0:
        return "bold red"
    if item["days_overdue"] == 0:
        return "yellow"
    return "dim"


def due(
    owner: Annotated[str | None, typer.Option(help="Only this owner's items.")] = None,
    days: Annotated[
        int, typer.Option(min=0, help="Also show what is coming in the next N days.")
    ] = 0,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            click_type=formats(*OutputFormat),
            help="table for people, json or csv for scripts, ics for a calendar.",
        ),
    ] = OutputFormat.table,
) -> None:
    """What needs doing: overdue and due tasks, stagnation alerts, at-risk customers, upcoming.

    --format ics writes every open task as an all-day event on its due date instead.
    """
    from ..activities import DueQuery, due_items

    if fmt == OutputFormat.ics:
        from ..reports import calendar_tasks

        with session(home, today) as s:
            output.write_calendar(calendar_tasks(s.store, owner=owner))
        return
    with session(home, today) as s, s.store.read():
        items = list(
            due_items(s.store, s.library(), DueQuery(today=s.today, days=days, owner=owner))
        )
        headers = {"days_overdue": "late", "due_on": "due"}
        if fmt != OutputFormat.table:
            output.render(items, fmt, COLUMNS, headers=headers)
            return
        # on a terminal, what partners hold is a list of its own, after the consultant's
        mine = [i for i in items if i["kind"] != "partner"]
        waiting = [i for i in items if i["kind"] == "partner"]
        if mine or not waiting:
            output.render(
                mine,
                fmt,
                COLUMNS,
                title=f"Due on {s.today}",
                style=_urgency,
                headers=headers,
                empty=f"Nothing due on {s.today}.",
            )
        if waiting:
            output.render(
                waiting, fmt, COLUMNS, title="Waiting on partners", style=_urgency, headers=headers
            )
