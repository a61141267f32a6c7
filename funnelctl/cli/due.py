"""funnelctl due: the morning list, as an agenda that fits the terminal.

On a terminal: sections with counts, one line per item (reference, customer, what,
when), the first screenful of each section, a summary and the verbs to use next.
References and email addresses are never cut; the title is shortened first. In a
pipe: tab-separated rows, uncut (or the agenda at ``COLUMNS`` when it is set).
``--format json|csv`` for scripts.
"""

# No `from __future__ import annotations` here: Typer reads a command's annotations as it
# builds the command, on every run, and annotations kept as strings would be parsed and
# evaluated again each time (twice: by inspect.signature and by typing.get_type_hints).

import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import typer

from .. import output
from ..errors import UsageError
from ..output import OutputFormat
from .common import AlarmOption, HomeOption, Session, TodayOption, formats, option_time, session

# The documented keys, then what the agenda adds (CSV columns; JSON has every key).
COLUMNS = [
    "kind",
    "id",
    "customer",
    "funnel",
    "stage",
    "title",
    "due_on",
    "days_overdue",
    "owner",
    "ref",
    "section",
    "reasons",
]
WIDE = 120  # from here on, a line also shows the stage and the owner
WIDER = 140  # and the customer's name beside the email, while the title stays readable
READABLE = 30  # the title's width below which the extra columns are not shown
THIN = 20  # the title's width that no single long address takes away from every row
COLOURS = {
    "overdue": "red",
    "today": "yellow",
    "attention": "magenta",
    "coming": "dim",
    "waiting": "cyan",
}


def due(
    owner: Annotated[str | None, typer.Option(help="Only this owner's items.")] = None,
    days: Annotated[
        int, typer.Option(min=0, help="Also show what is coming in the next N days.")
    ] = 0,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="At most N items per section (any format)."),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="Every item (a terminal shows a screenful per section)."),
    ] = False,
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
    alarm: AlarmOption = None,
) -> None:
    """What needs doing: overdue, today, needs attention, coming up (--days N).

    --format ics writes every open task as an all-day event on its due date instead
    (and the tasks closed in the last 14 days as cancelled events); --alarm 9:00 adds
    a reminder at 9:00 on the due day.
    """
    from ..agenda import DueQuery, due_items
    from ..dates import days_between

    if fmt == OutputFormat.ics:
        from ..reports import calendar_tasks, workspace_id

        with session(home, today) as s, s.store.read():
            reminder = option_time("--alarm", alarm) if alarm is not None else None
            _check_owner(s, owner)
            output.write_calendar(
                calendar_tasks(s.store, today=s.today, owner=owner),
                workspace_id=workspace_id(s.store),
                name=s.workspace.root.name,
                alarm=reminder,
            )
        return
    with session(home, today) as s, s.store.read():
        if alarm is not None:
            raise UsageError("--alarm goes with --format ics (a reminder in the calendar).")
        _check_owner(s, owner)
        query = DueQuery(
            today=s.today,
            days=days,
            owner=owner,
            max_late_days=s.workspace.settings.send.max_late_days,
        )
        items = due_items(s.store, s.outline(), query)
        last_run = s.store.get_meta("last_run")
        stale_run = None
        if last_run is not None and days_between(last_run, s.today) > 1:
            stale_run = (
                f"The daily run last ran {days_between(last_run, s.today)} days ago "
                f"({last_run}): run 'funnelctl run' first; this list is incomplete."
            )
        if fmt != OutputFormat.table:
            if stale_run:
                output.message(stale_run)
            output.render(_capped(items, limit), fmt, COLUMNS)
            return
        width = _width()
        if width is None:  # a pipe: plain rows, uncut
            if stale_run:
                output.message(stale_run)
            _write_rows(_capped(items, limit), s.today)
            return
        # a screenful per section on a terminal; the agenda at COLUMNS in a pipe is whole
        agenda = list(items)
        per_section = limit
        if per_section is None and not show_all and output.screen_rows(None) is not None:
            per_section = _screenful(agenda, s.today, width, stale_run)
        _write_agenda(agenda, s.today, width, per_section, stale_run)


def _check_owner(s: Session, owner: str | None) -> None:
    """--owner names a team member or a partner (partner:ID) of the playbooks, with a "did
    you mean" for a typo; a workspace without a team has nothing to check a name against."""
    team = s.workspace.settings.team
    if owner is not None and owner not in team and (team or owner.startswith("partner:")):
        from ..activities import check_owner

        check_owner(owner, s.library(), s.workspace.settings)


def _capped(items: Iterable[dict[str, Any]], limit: int | None) -> Iterable[dict[str, Any]]:
    if limit is None:
        yield from items
        return
    seen: dict[str, int] = {}
    for item in items:
        seen[item["section"]] = seen.get(item["section"], 0) + 1
        if seen[item["section"]] <= limit:
            yield item


# -- what an item says -----------------------------------------------------------------------


def _what(item: Mapping[str, Any]) -> str:
    reasons = "; ".join(item["reasons"])
    if not reasons:
        return str(item["title"])
    if item["kind"] == "stagnation":  # its title only names the reasons that follow
        return reasons[:1].upper() + reasons[1:]
    return (
        f"{item['title']}: {reasons}"
        if item["section"] == "attention"
        else (f"{item['title']} [{reasons}]")
    )


def _when(item: Mapping[str, Any], today: str) -> str:
    from ..dates import relative

    if item["kind"] == "at-risk":  # since the episode began
        days = item["days_overdue"]
        return "new" if days <= 0 else f"for {days}d"
    return relative(item["due_on"], today)  # a stuck visit: since its limit was reached


def _where(item: Mapping[str, Any]) -> str:
    return "/".join(filter(None, (item["funnel"], item["stage"])))


# -- in a pipe -------------------------------------------------------------------------------


def _write_rows(items: Iterable[dict[str, Any]], today: str) -> None:
    """One tab-separated line per item: section, ref, customer, what, when, due date,
    funnel, stage, owner. Nothing is cut; tabs and line breaks in values are spaces."""
    out = sys.stdout
    for item in items:
        fields = (
            item["section"],
            item["ref"] or "",
            item["customer"] or "",
            _what(item),
            _when(item, today),
            item["due_on"] or "",
            item["funnel"] or "",
            item["stage"] or "",
            item["owner"] or "",
        )
        out.write("\t".join(output.plain_cell(f) for f in fields) + "\n")


# -- on a terminal ---------------------------------------------------------------------------


def _width() -> int | None:
    """The agenda's width: the terminal's, or COLUMNS in a pipe; None for plain rows."""
    if output.screen_rows(None) is not None:  # a terminal
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def _screenful(
    items: Sequence[Mapping[str, Any]], today: str, width: int, stale_run: str | None
) -> int:
    """How many items per section fill the screen: the most for which the sections shown,
    each with its title, its items' lines (one a row, or more on a narrow terminal) and its
    "… and N more" line, fit the terminal's lines less the warning of a run behind, the
    summary, the Next: line and the prompt's."""
    by_section = _by_section(items)
    room = shutil.get_terminal_size().lines - 2  # the prompt's line, the blank one
    room -= output.rows_taken(_summary(by_section), width) + output.rows_taken(_hint(items), width)
    if stale_run:
        room -= output.rows_taken(stale_run, width) + 1
    sections = [section for section in by_section.values() if section]

    def lines(shown: int) -> int:
        """The lines drawn with ``shown`` items a section, laid out as _write_agenda
        lays out exactly those (one a row, more for a long address or a narrow screen)."""
        visible = [section[:shown] for section in sections]
        layout = _Layout([item for items in visible for item in items], today, width)
        return sum(
            1
            + sum(output.rows_taken("".join(layout.line(item)), width) for item in items)
            + (len(section) > shown)
            for section, items in zip(sections, visible, strict=True)
        )

    # never more than the room: a book's agenda of thousands is not laid out for a screen
    most = min(max(map(len, sections), default=1), max(room, 1))
    shown = 1
    while shown < most and lines(shown + 1) <= room:
        shown += 1
    return shown


class _Layout:
    """Column widths for the lines shown: references and customers whole, the title
    gets what is left; a wide terminal adds the stage and the owner while the title
    keeps room to be read."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], today: str, width: int) -> None:
        self.today, self.named = today, False
        self.ref = max((len(r["ref"] or "-") for r in rows), default=1)
        self.when = max((len(_when(r, today)) for r in rows), default=1)
        widths = [output.cell_width(self.who(r)) for r in rows] or [1]
        room = width - (2 + self.ref + 2 + 2 + 2 + self.when)
        # a few addresses far wider than the others (a client's procurement alias) take
        # a line of their own rather than the titles of every row; when many would, the
        # titles give way instead, as on a narrow terminal
        fitting = [w for w in widths if room - w >= THIN]
        few = len(widths) - len(fitting) <= max(1, len(widths) // 4)
        self.customer = max(fitting) if fitting and few else max(widths)
        fixed = width - room + self.customer
        self.where = self.owner = 0
        if width >= WIDE:
            where = min(max((len(_where(r)) for r in rows), default=0), 30)
            owner = min(max((output.cell_width(r["owner"] or "") for r in rows), default=0), 12)
            if width - fixed - where - owner - 4 >= READABLE:
                self.where, self.owner = where, owner
                fixed += (where + 2 if where else 0) + (owner + 2 if owner else 0)
        if width >= WIDER:
            self.named = True
            named = max((output.cell_width(self.who(r)) for r in rows), default=1)
            if width - fixed - (named - self.customer) >= READABLE:
                fixed += named - self.customer
                self.customer = named
            else:
                self.named = False
        self.title = max(12, width - fixed)

    def who(self, row: Mapping[str, Any]) -> str:
        customer = row["customer"] or ""
        if self.named and row.get("name") and row["name"] != customer:
            return f"{output.cut_to(row['name'], 24)} <{customer}>"
        return customer

    def line(self, row: Mapping[str, Any]) -> tuple[str, str]:
        """The line without its date, and the date (coloured apart)."""
        lead, who = "  " + (row["ref"] or "-").ljust(self.ref), self.who(row)
        if output.cell_width(who) > self.customer:  # whole on its own line, the rest below
            lead, who = f"{lead}  {who}\n" + " " * len(lead), ""
        parts = [
            lead,
            _pad(who, self.customer),
            _pad(output.cut_to(_what(row), self.title), self.title),
        ]
        if self.where:
            parts.append(_pad(output.cut_to(_where(row), self.where), self.where))
        if self.owner:
            parts.append(_pad(output.cut_to(row["owner"] or "", self.owner), self.owner))
        return "  ".join(parts) + "  ", _when(row, self.today).rjust(self.when)


def _pad(text: str, width: int) -> str:
    """``text`` filled with spaces to ``width`` cells."""
    return text + " " * (width - output.cell_width(text))


def _write_agenda(
    items: list[dict[str, Any]],
    today: str,
    width: int,
    per_section: int | None,
    stale_run: str | None,
) -> None:
    from ..agenda import SECTION_TITLES, SECTIONS

    parts: list[tuple[str, str | None]] = []
    if stale_run:
        parts.append((stale_run + "\n\n", "bold red"))
    by_section = _by_section(items)
    shown = [row for rows in by_section.values() for row in rows[: per_section or len(rows)]]
    layout = _Layout(shown, today, width)
    for name in SECTIONS:
        rows = by_section[name]
        if not rows:
            continue
        parts.append((f"{SECTION_TITLES[name]} ({len(rows)})\n", "bold"))
        visible = rows[: per_section or len(rows)]
        for row in visible:
            body, when = layout.line(row)
            parts += [(body, None), (when + "\n", COLOURS[name])]
        if len(visible) < len(rows):
            parts.append((f"  … and {len(rows) - len(visible)} more (due --all)\n", "dim"))
    if not items:
        parts.append((f"Nothing due on {today}.\n", None))
    else:
        parts += [("\n" + _summary(by_section) + "\n", None), (_hint(shown) + "\n", "dim")]
    output.write_styled(parts)


def _by_section(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The items of each section, in the agenda's order of sections (all of them)."""
    from ..agenda import SECTIONS

    by_section: dict[str, list[Mapping[str, Any]]] = {name: [] for name in SECTIONS}
    for item in items:
        by_section[item["section"]].append(item)
    return by_section


def _summary(by_section: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    words = {
        "overdue": "overdue",
        "today": "today",
        "attention": "need attention",
        "coming": "coming up",
        "waiting": "waiting on partners",
    }
    return " · ".join(f"{len(rows)} {words[name]}" for name, rows in by_section.items() if rows)


def _hint(shown: Sequence[Mapping[str, Any]]) -> str:
    """What to type next, with a task on the screen when there is one (never a made-up
    ref: t1 may be done, or someone else's)."""
    task = next((i["ref"] for i in shown if i["kind"] == "task"), None)
    if task is None:
        return 'Next: customer show CUSTOMER · log CUSTOMER "what" --channel phone'
    return f'Next: done {task} · snooze {task} --days 2 · task add CUSTOMER "what" --due 3d'
