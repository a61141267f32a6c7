"""funnelctl outbox list | template render"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..mail import OUTBOX_STATUSES, preview
from .common import Format, FormatOption, HomeOption, TodayOption, new_app, resolve_now, session

app = new_app("The emails the playbooks scheduled, and their fate.", name="outbox")
templates = new_app("Preview email templates.", name="template")

COLUMNS = [
    "id",
    "customer",
    "template",
    "scheduled_on",
    "status",
    "reason",
    "sent_at",
    "message_id",
]


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(OUTBOX_STATUSES)}.")
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List the outbox, oldest first."""
    from ..errors import UsageError

    if status and status not in OUTBOX_STATUSES:
        raise UsageError(f"--status must be one of {', '.join(OUTBOX_STATUSES)}")
    with session(home, today) as s:
        rows = s.store.outbox(status)
        output.render(rows, fmt, COLUMNS, title="Outbox", empty="The outbox is empty.")


@templates.command("render")
def render_(
    template: Annotated[
        str, typer.Argument(help="Template name, e.g. welcome.", show_default=False)
    ],
    customer: Annotated[
        str, typer.Option(help="Render for this customer (email, external id or #id).")
    ],
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Print the exact message TEMPLATE would make for a customer (headers, text, HTML)."""
    with session(home, today) as s:
        text = preview(
            s.store,
            s.library(),
            s.workspace.settings,
            s.workspace.templates_dir,
            template,
            customer,
            s.today,
            resolve_now(s.today, s.workspace),
        )
    typer.echo(text, nl=False)
