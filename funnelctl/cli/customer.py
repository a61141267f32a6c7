"""funnelctl customer add | edit | list | show"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import output
from ..customers import Cleaner, add_customer, edit_customer, parse_assignments, timeline
from ..errors import UsageError
from ..output import OutputFormat
from ..store import customers
from .common import CustomerArg, FormatOption, HomeOption, TodayOption, new_app, session

app = new_app("Add, edit, list and show customers.", name="customer")

Name = Annotated[str | None, typer.Option(help="Full name.")]
Company = Annotated[str | None, typer.Option(help="Company.")]
Owner = Annotated[str | None, typer.Option(help="The consultant who owns the customer.")]
Plan = Annotated[str | None, typer.Option(help="Plan signed.")]
Mrr = Annotated[str | None, typer.Option(help="Monthly recurring revenue, e.g. 1200.50.")]
Seats = Annotated[str | None, typer.Option(help="Seats bought.")]
SignedOn = Annotated[str | None, typer.Option("--signed-on", help="Date signed, YYYY-MM-DD.")]
Language = Annotated[str | None, typer.Option(help="Language code for emails, e.g. en or pt.")]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", help="A tag (repeat for more); replaces the tags.")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="field=value for any field or custom field (repeatable); an empty value clears it.",
    ),
]
ExternalId = Annotated[str | None, typer.Option("--external-id", help="Id in another system.")]

LIST_COLUMNS = ["id", "email", "name", "company", "owner", "plan", "mrr", "tags", "enrollments"]


# The field options add and edit share: option parameter -> customer field.
FIELD_OPTIONS = {
    "email": "email",
    "name": "name",
    "company": "company",
    "owner": "owner",
    "plan": "plan",
    "mrr": "mrr",
    "seats": "seats",
    "signed_on": "signed_on",
    "language": "language",
    "tag": "tags",
    "external_id": "external_id",
}


def _values(options: dict[str, Any]) -> dict[str, Any]:
    """The customer values given on the command line (the field options and --set)."""
    cleaner = Cleaner()
    values = parse_assignments(list(options.get("set_") or []), cleaner)
    for option, key in FIELD_OPTIONS.items():
        raw = options.get(option)
        if raw is None:
            continue
        if key == "tags":
            values["tags"] = sorted(set(raw))
            continue
        try:
            values[key] = cleaner.clean(key, raw)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return values


@app.command("add")
def add(
    email: Annotated[str | None, typer.Argument(help="The customer's email (their key).")] = None,
    name: Name = None,
    company: Company = None,
    owner: Owner = None,
    plan: Plan = None,
    mrr: Mrr = None,
    seats: Seats = None,
    signed_on: SignedOn = None,
    language: Language = None,
    tag: Tags = None,
    external_id: ExternalId = None,
    set_: Sets = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Add a customer (keyed by email, or by --external-id)."""
    with session(home, today) as s:
        values = _values(locals())
        row = add_customer(s.store, values, s.today)
    output.render_object(row, fmt, title="Customer added")


@app.command("edit")
def edit(
    customer: CustomerArg,
    email: Annotated[str | None, typer.Option(help="New email.")] = None,
    name: Name = None,
    company: Company = None,
    owner: Owner = None,
    plan: Plan = None,
    mrr: Mrr = None,
    seats: Seats = None,
    signed_on: SignedOn = None,
    language: Language = None,
    tag: Tags = None,
    external_id: ExternalId = None,
    set_: Sets = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change a customer's fields; custom fields with --set key=value."""
    with session(home, today) as s:
        values = _values(locals())
        if not values:
            raise UsageError(
                "Nothing to change: give at least one option such as --owner or --set."
            )
        row = edit_customer(s.store, customer, values, s.today)
    output.render_object(row, fmt, title="Customer")


@app.command("list")
def list_(
    funnel: Annotated[
        str | None, typer.Option(help="Only customers active in this funnel.")
    ] = None,
    stage: Annotated[str | None, typer.Option(help="Only customers at this stage.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner's customers.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only customers with this tag.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List customers, with their active funnel:stage enrollments."""
    with session(home, today) as s:
        if funnel or stage:
            library = s.library()
            if funnel:
                f = library.funnel(funnel)
                if stage:
                    f.stage(stage)
        rows = customers.listing(
            s.store, funnel=funnel, stage=stage, owner=owner, tag=tag, limit=limit
        )
        output.render(rows, fmt, LIST_COLUMNS, title="Customers", empty="No customers match.")


@app.command("show")
def show(
    customer: CustomerArg,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show a customer and their whole timeline: moves, tasks, touchpoints, emails, actions."""
    with session(home, today) as s:
        row, lines = timeline(s.store, customer)
    if fmt == "json":
        output.render_object({**row, "timeline": lines}, fmt)
        return
    if fmt == "table":
        output.render_object(row, fmt, title=row.get("name") or row.get("email"))
    output.render(
        lines, fmt, ["on", "kind", "what", "who"], title="Timeline", empty="No history yet."
    )
