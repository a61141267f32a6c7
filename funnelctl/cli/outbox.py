"""funnelctl outbox list | template render"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from ..store import OUTBOX_STATUSES
from .common import FormatOption, HomeOption, TodayOption, new_app, resolve_now, session

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
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List the outbox, oldest first."""
    from ..errors import UsageError

    if status and status not in OUTBOX_STATUSES:
        raise UsageError(f"--status must be one of {', '.join(OUTBOX_STATUSES)}")
    with session(home, today) as s:
        rows = s.store.outbox(status)
        output.render(rows, fmt, COLUMNS, title="Outbox", empty="The outbox is empty.")


@app.command("resolve")
def resolve_(
    email: Annotated[
        int, typer.Argument(help="The email's id (funnelctl outbox list).", show_default=False)
    ],
    sent: Annotated[bool, typer.Option("--sent", help="It did arrive: mark it sent.")] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Queue it again, same Message-ID.")
    ] = False,
    skip: Annotated[bool, typer.Option("--skip", help="Give up on it.")] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Settle an uncertain or failed email after checking the recipient's mailbox."""
    from ..errors import UsageError
    from ..mail import resolve

    chosen = [name for name, flag in (("sent", sent), ("resend", resend), ("skip", skip)) if flag]
    if len(chosen) != 1:
        raise UsageError("Give exactly one of --sent, --resend or --skip.")
    with session(home, today) as s:
        now = resolve_now(s.today, s.workspace).isoformat(timespec="seconds")
        row = resolve(s.store, email, chosen[0], s.today, now)
    output.render([row], fmt, ["id", "template", "status", "reason", "sent_at", "message_id"])


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
    from ..mail import preview

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
