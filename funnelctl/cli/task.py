"""funnelctl task add CUSTOMER TITLE --due WHEN"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

import typer

from .. import output
from ..dates import WEEKDAYS, relative
from ..output import OutputFormat
from .common import (
    CustomerArg,
    FormatOption,
    FunnelOption,
    HomeOption,
    TodayOption,
    new_app,
    option_due,
    session,
)

app = new_app("Tasks planned by hand: the next step with a customer.", name="task")

DUE_HELP = "2026-12-03, 3d, 2w, today, tomorrow, or a weekday (thu: the next Thursday)."
OwnerOption = Annotated[
    str | None,
    typer.Option(
        help="A team member, or partner:ID (the partner is told by email). "
        "Default: the enrollment's owner, else the customer's.",
        show_default=False,
    ),
]


@app.command("add")
def add(
    customer: CustomerArg,
    title: Annotated[str, typer.Argument(help="What to do, in a line.", show_default=False)],
    due: Annotated[str, typer.Option(metavar="WHEN", help=DUE_HELP, show_default=False)],
    owner: OwnerOption = None,
    channel: Annotated[
        str | None, typer.Option(help="phone, email, meeting, in-person, …", show_default=False)
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="The details, for the owner.", show_default=False)
    ] = None,
    funnel: FunnelOption = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Plan a next step by hand: a task due on a day, in the customer's current funnel.

    It is listed by 'funnelctl due' and is the customer's next step, as a playbook's
    tasks are. A customer with no active enrollment gets a task of their own.
    """
    from ..activities import NextStep, add_task

    with session(home, today) as s:
        step = NextStep(
            title=title,
            due_on=option_due("--due", due, s.today),
            owner=owner,
            channel=channel,
            description=description,
            funnel=funnel,
        )
        task = add_task(s.store, s.library(), s.workspace.settings, customer, step, today=s.today)
    show_planned(task, fmt, s.today)


def show_planned(task: Mapping[str, Any], fmt: OutputFormat, today: str) -> None:
    """A task planned by hand: one sentence for a person, its record for a script."""
    if fmt != OutputFormat.table:
        output.render_object(task, fmt)
        return
    output.line(planned(task, today))


def planned(task: Mapping[str, Any], today: str) -> str:
    """``Planned t12 for ana@x.example (after-sales, deployment): "Call back", due in 3d
    (Thu 2026-03-05), owner ana.``"""
    where = f"{task['funnel']}, {task['stage']}" if task["funnel"] else "no active funnel"
    weekday = WEEKDAYS[date.fromisoformat(task["due_on"]).weekday()][:3].capitalize()
    owner = task["owner"]
    who = f"owner {owner}" if owner else "no owner"
    if owner and owner.startswith("partner:"):
        who += " (told by email)"
    return (
        f'Planned {task["ref"]} for {task["customer"]} ({where}): "{task["title"]}", '
        f"due {relative(task['due_on'], today)} ({weekday} {task['due_on']}), {who}."
    )
