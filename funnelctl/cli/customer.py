"""funnelctl customer add | edit | list | show | delete | merge"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .. import output
from ..customers import (
    KINDS,
    Cleaner,
    add_customer,
    customer_card,
    delete_customer,
    edit_customer,
    find_customer,
    is_folded,
    merge_customers,
    parse_assignments,
)
from ..errors import UsageError
from ..output import OutputFormat
from ..store import customers
from .common import CustomerArg, FormatOption, HomeOption, TodayOption, new_app, session

app = new_app("Add, edit, list, show, delete and merge customers.", name="customer")

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
AddTags = Annotated[
    list[str] | None,
    typer.Option("--add-tag", help="Add a tag, keeping the others (repeatable)."),
]
RemoveTags = Annotated[
    list[str] | None,
    typer.Option("--remove-tag", help="Remove a tag if the customer has it (repeatable)."),
]

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


def _tag_names(option: str, raw: list[str] | None) -> list[str]:
    """The tags given to ``option``, cleaned as everywhere (``a,b`` is two tags)."""
    names: list[str] = []
    for value in raw or ():
        cleaned = Cleaner().clean("tags", value)
        if not cleaned:
            raise UsageError(f"{option} needs a tag name.")
        names.extend(cleaned)
    return names


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
    add_tag: AddTags = None,
    remove_tag: RemoveTags = None,
    no_email: Annotated[
        bool | None,
        typer.Option(
            "--no-email/--allow-email",
            help="Send the customer no more email (as when they answer 'unsubscribe'), or "
            "allow it again.",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change fields, custom fields and tags.

    Custom fields with --set key=value; tags one by one with --add-tag and --remove-tag
    (applied after --tag, which replaces them all). A new --email frees the emails held
    because the old address bounced, and names those that bounced (outbox requeue sends
    one to the new address).
    """
    bounced: list[str] = []
    with session(home, today) as s:
        values = _values(locals())
        added = _tag_names("--add-tag", add_tag)
        removed = _tag_names("--remove-tag", remove_tag)
        if not values and not added and not removed and no_email is None:
            raise UsageError(
                "Nothing to change: give at least one option such as --owner or --set."
            )
        row = edit_customer(
            s.store,
            customer,
            values,
            s.today,
            add_tags=added,
            remove_tags=removed,
            do_not_email=no_email,
        )
        if values.get("email"):
            from ..mail import bounced_refs

            bounced = bounced_refs(s.store, row["id"])
    output.render_object(row, fmt, title="Customer")
    if bounced:
        output.message(
            f"{', '.join(bounced)} bounced at the old address: 'funnelctl outbox requeue "
            f"{bounced[-1]}' sends it to the new one."
        )


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
                funnel = f.id
                if stage:
                    stage = f.stage(stage).id  # by id or title, in any case
            elif stage:  # the stage of whichever funnel has one so named
                named = [f.stage(stage).id for f in library.funnels.values() if f.has_stage(stage)]
                stage = named[0] if named else stage
        rows = customers.listing(
            s.store, funnel=funnel, stage=stage, owner=owner, tag=tag, limit=limit
        )
        output.render(
            rows,
            fmt,
            LIST_COLUMNS,
            title="Customers",
            empty="No customers match.",
            screen=output.screen_rows(limit),
            stream=True,
            keep=("id", "email", "owner"),
            optional=("tags", "mrr", "plan", "company"),
        )


@app.command("show")
def show(
    customer: CustomerArg,
    all_: Annotated[
        bool,
        typer.Option(
            "--all", help="Also the timeline's actions skipped because their condition was false."
        ),
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show the customer card and timeline.

    The card: contact, owner, funnels and stages, health with its reasons, open tasks
    (t12) and queued emails (e7). Then the whole timeline: moves, tasks, touchpoints,
    emails, actions. JSON has every line of the timeline; CSV is the timeline alone.
    """
    with session(home, today) as s:
        card = customer_card(s.store, customer, s.today, s.library(), s.workspace.settings)
    if fmt == "json":
        output.render_object(card, fmt)
        return
    lines = card["timeline"]
    if fmt == "csv":
        output.render(lines, fmt, ["on", "kind", "what", "who"])
        return
    shown = lines if all_ else [line for line in lines if not is_folded(line)]
    output.render_card({**card, "timeline": shown}, folded=len(lines) - len(shown))


def _at_a_terminal() -> bool:
    """Whether someone can be asked: standard input is a terminal."""
    return sys.stdin.isatty()


def _counted(counts: dict[str, int]) -> dict[str, int]:
    """The kinds with a count, labelled for people, in KINDS order."""
    return {KINDS[name][1]: n for name, n in counts.items() if n}


@app.command("delete")
def delete(
    customer: CustomerArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when not at a terminal).")
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Erase a person and everything about them.

    For a data protection request: every enrollment, move, task, email, touchpoint,
    ticket, signal, score and timeline line.

    One transaction: all of it, or on any error nothing. Backups made before keep them.
    """
    with session(home, today) as s:
        label = find_customer(s.store, customer).label
        if not yes:
            if not _at_a_terminal():
                raise UsageError(
                    f"Deleting {label} erases them for good, and there is no terminal to ask "
                    "on: add --yes to confirm."
                )
            if not typer.confirm(
                f"Delete {label} and everything about them?", default=False, err=True
            ):
                output.message("Nothing was deleted.")
                raise typer.Exit(1)
        result = delete_customer(s.store, customer)
    if fmt == "table":
        summary = {"customer": 1, **_counted(result["deleted"])}
        output.render_summary(f"Deleted {label} and everything about them", summary)
    else:
        output.render_object(result, fmt)


@app.command("merge")
def merge(
    keep: Annotated[
        str,
        typer.Argument(help="The customer kept (email, external id or #id).", show_default=False),
    ],
    other: Annotated[
        str,
        typer.Argument(
            help="The duplicate: its history moves to KEEP, then it is deleted.",
            show_default=False,
        ),
    ],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Merge a duplicate into the customer kept.

    Enrollments with their history, tasks, emails, touchpoints, tickets, signals,
    health and timeline move over; the kept
    customer's empty fields are filled from the duplicate (where both have a value, the
    kept one's stays), tags are united; then the duplicate is deleted. One transaction.

    Refused, with nothing changed, when both are active in the same funnel.
    """
    with session(home, today) as s:
        result = merge_customers(s.store, keep, other, s.today)
    if fmt == "table":
        summary: dict[str, Any] = dict(_counted(result["moved"]))  # what moved over
        summary["fields filled"] = result["filled"] or "none"
        summary["tags now"] = result["tags"]
        output.render_summary(f"Merged {result['merged']} into {result['customer']}", summary)
    else:
        output.render_object(result, fmt)
