"""funnelctl outbox list | resolve"""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from ..refs import ref
from ..store import OUTBOX_STATUSES, outbox
from .common import (
    FormatOption,
    HomeOption,
    LimitOption,
    TodayOption,
    new_app,
    resolve_now,
    session,
)

app = new_app("The emails the playbooks scheduled, and their fate.", name="outbox")

COLUMNS = [
    "id",
    "ref",  # what outbox resolve / requeue and drop take: e7
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
    limit: LimitOption = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List the outbox, oldest first."""
    from ..errors import UsageError

    if status and status not in OUTBOX_STATUSES:
        raise UsageError(f"--status must be one of {', '.join(OUTBOX_STATUSES)}")
    with session(home, today) as s:
        rows = (
            {**row, "ref": ref("email", row["id"])}
            for row in outbox.listing(s.store, outbox.Status(status) if status else None)
        )
        shown = itertools.islice(rows, limit) if limit else rows
        output.render(
            shown,
            fmt,
            COLUMNS,
            title="Outbox",
            empty="The outbox is empty.",
            screen=output.screen_rows(limit),
            stream=True,
            keep=("ref", "customer", "status"),
            optional=("message_id", "sent_at", "reason", "id"),
        )


@app.command("resolve")
def resolve_(
    email: Annotated[
        str,
        typer.Argument(
            help="The email's reference, e12 or 12 (funnelctl outbox list).", show_default=False
        ),
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
    from ..refs import expect

    email_id = expect(email, "email")
    chosen = [name for name, flag in (("sent", sent), ("resend", resend), ("skip", skip)) if flag]
    if len(chosen) != 1:
        raise UsageError("Give exactly one of --sent, --resend or --skip.")
    with session(home, today) as s:
        now = resolve_now(s.today, s.workspace).isoformat(timespec="seconds")
        row = resolve(s.store, email_id, chosen[0], s.today, now)
    output.render([row], fmt, ["id", "template", "status", "reason", "sent_at", "message_id"])


@app.command("requeue")
def requeue_(
    email: Annotated[
        str,
        typer.Argument(
            help="The email's reference, e12 or 12 (funnelctl outbox list).", show_default=False
        ),
    ],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Queue a skipped or superseded email again, to go out today.

    A stale email, one whose stage the customer left, or one passed over by a catch-up is
    never sent by itself; this is how to send it all the same. A queued email already
    too late to go (due lists it as "will be skipped as stale") is moved to today; one
    that bounced goes to the customer's address now (after customer edit --email).
    """
    from ..mail import requeue
    from ..refs import expect

    with session(home, today) as s:
        row = requeue(s.store, expect(email, "email"), s.today)
    output.render([row], fmt, ["id", "template", "status", "scheduled_on", "reason"])
