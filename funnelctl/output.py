"""The one place that writes results: Rich tables, JSON, CSV, iCalendar, and messages.

Data goes to stdout; messages, warnings and progress to stderr. Colour and
progress bars only when stdout is a terminal and NO_COLOR is not set.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from functools import lru_cache, partial
from typing import IO, TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:  # rich is imported when something is drawn: JSON and CSV never need it
    from rich.console import Console

# What a spreadsheet program reads as the start of a formula (a cell it would run).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OutputFormat(str, Enum):
    """Every format funnelctl writes results in. Each command's --format accepts the
    ones that make sense for what it prints (ics only for the calendar feed)."""

    table = "table"
    json = "json"
    csv = "csv"
    ics = "ics"


def interactive() -> bool:
    """True when a person is watching: stdout is a terminal and NO_COLOR is unset."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@lru_cache(maxsize=1)
def _console_class() -> type[Console]:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich exits 1 here; the reader going away (`| head`) is not a failure, and the
            # command line turns a BrokenPipeError into exit 0 in one place.
            self.quiet = True
            raise BrokenPipeError

    return _Console


def _console(stream: TextIO) -> Console:
    terminal = stream.isatty()
    return _console_class()(
        file=stream,
        no_color=bool(os.environ.get("NO_COLOR")) or not terminal,
        highlight=False,
        soft_wrap=False,
        width=None if terminal else 200,
        force_terminal=False if not terminal else None,
    )


def stdout_console() -> Console:
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


def message(text: str) -> None:
    """A line for the person (stderr), never mixed into the data on stdout, never wrapped."""
    from rich.text import Text

    stderr_console().print(Text(text), soft_wrap=True)


def line(text: str) -> None:
    """A result that is one sentence for a person (a table would be one row): on stdout,
    never wrapped, never read as markup."""
    from rich.text import Text

    stdout_console().print(Text(text), soft_wrap=True)


def error(text: str, details: Sequence[str] = (), limit: int = 50) -> None:
    from rich.text import Text

    console = stderr_console()
    console.print(Text("Error: ", style="bold red") + Text(text), soft_wrap=True)
    for line in details[:limit]:
        console.print(Text("  " + line), soft_wrap=True)
    if len(details) > limit:
        console.print(Text(f"  … and {len(details) - limit} more"), soft_wrap=True)


def json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def neutralise(value: Any) -> Any:
    """Keep spreadsheet programs from running a cell as a formula."""
    # A value already starting with ' is escaped too, so that the import (which strips
    # one leading ' before = + - @) gives back exactly what was stored.
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_START):
        return "'" + value
    return value


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def csv_cell(value: Any) -> Any:
    kind = type(value)
    # the cells of a large export are numbers, None and plain text: those first
    if value is None or kind is int or kind is float:
        return value
    if kind is str:
        return "'" + value if value.lstrip("'").startswith(FORMULA_START) else value
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return neutralise(value)


def write_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], stream: IO[str]) -> int:
    import csv  # for CSV only: JSON and tables never need it

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    write, cell = writer.writerow, csv_cell
    for row in rows:
        write([cell(row.get(c)) for c in columns])
        count += 1
    return count


def write_json_rows(rows: Iterable[Mapping[str, Any]], stream: IO[str]) -> int:
    """A JSON array written row by row, so a large export keeps memory flat."""
    count = 0
    # one encoder for every row: json.dumps with options makes a new one per call
    encode = json.JSONEncoder(ensure_ascii=False, default=json_default).encode
    stream.write("[")
    for row in rows:
        stream.write("\n  " if count == 0 else ",\n  ")
        stream.write(encode(row))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count


def render(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[str],
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    style: Callable[[Mapping[str, Any]], str | None] | None = None,
    empty: str = "Nothing to show.",
    keep: Sequence[str] = (),
    compact: bool = False,
    stream: bool = False,
    screen: int | None = None,
    optional: Sequence[str] = (),
) -> int:
    """Write rows to stdout as a table, JSON (every key) or CSV (``columns``).

    A long list (``stream``) in a pipe is plain rows as they come: a header line, then
    one tab-separated line per row, nothing cut, in flat memory. Otherwise the table is
    drawn with Rich, which measures every row before printing the first: on a terminal
    ``screen`` rows at most, then a line saying how many more there are and how to see
    them.

    ``keep``: columns never cut or wrapped (what the user types next: an owner, an id);
    the others give way. ``optional``: columns a screenful leaves out, in that order,
    while its rows would not fit the terminal on one line each. ``compact``: no borders
    and one space between columns, for tables of many small numbers (weeks) that must
    fit 80 columns.
    """
    if fmt == "json":
        return write_json_rows(rows, sys.stdout)
    if fmt == "csv":
        return write_csv(rows, columns, sys.stdout)
    if stream and not _terminal():
        return _plain_rows(rows, columns, headers, empty)
    from rich.table import Table  # drawn for a person only: scripts never pay for rich
    from rich.text import Text

    rows = iter(rows)
    more = 0
    if screen is not None:
        shown = list(itertools.islice(rows, screen))
        more = sum(1 for _ in rows)  # counted, not drawn
        rows = iter(shown)

    table = Table(title=Text(title) if title else None, show_lines=False, header_style="bold")
    if compact:
        table.box, table.pad_edge, table.collapse_padding = None, False, True
    rows = list(rows)  # the table holds them all anyway, to measure its columns
    if screen is not None:  # a screenful for a person: a column empty in all of it is noise
        columns = [c for c in columns if any(cell_text(row.get(c)) for row in rows)] or columns
        columns = _fitting(columns, rows, optional, keep, headers)
    # a screenful is counted in rows: each takes one line, what gives way is cut short
    cut: Literal["ellipsis"] | None = "ellipsis" if screen is not None else None
    folds = _folding(columns, rows, keep, headers)
    if folds is not None and screen is not None:  # a folded row takes more than one line
        fitting = _folded_screen(rows, columns, folds, screen, headers)
        more += len(rows) - len(fitting)
        rows = fitting
    cells = [
        [
            Text(cell_text(row.get(c)), overflow="fold")
            if c == folds
            else Text(cell_text(row.get(c)), no_wrap=bool(cut) or None, overflow=cut)
            for c in columns
        ]
        for row in rows
    ]
    for index, column in enumerate(columns):
        widest = max((cell.cell_len for row in cells for cell in row[index : index + 1]), default=0)
        whole = column in keep and column != folds
        table.add_column(
            (headers or {}).get(column, column.replace("_", " ")),
            no_wrap=whole,
            min_width=widest if whole else None,
        )
    count = 0
    for row, line in zip(rows, cells, strict=True):
        table.add_row(*line, style=style(row) if style else None)
        count += 1
    if count:
        stdout_console().print(table)
    else:
        message(empty)
    if more:
        message(f"{more} more not shown: --limit N shows N, a pipe (| less) or --format csv all.")
    return count + more


def _fitting(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    optional: Sequence[str],
    keep: Sequence[str],
    headers: Mapping[str, str] | None,
) -> list[str]:
    """``columns`` less the optional ones it takes for the rows to fit the terminal; when
    the kept ones (an id, an email) still leave too little room, the others too, from
    the right, so that what must be typed is never cut."""
    width = partial(_width, rows=rows, headers=headers)
    shown = list(columns)
    limit = stdout_console().width
    for column in optional:
        if sum(map(width, shown)) + 1 <= limit:
            break
        if column in shown:
            shown.remove(column)
    room = limit - 1 - sum(width(c) for c in shown if c in keep)
    for column in [c for c in reversed(shown) if c not in keep]:
        others = [c for c in shown if c not in keep]
        if room >= 11 * len(others):  # each of the rest keeps about 8 characters
            break
        shown.remove(column)
    return shown


def _width(
    column: str, rows: Sequence[Mapping[str, Any]], headers: Mapping[str, str] | None
) -> int:
    """The cells ``column`` takes on one line, its padding and border included."""
    name = (headers or {}).get(column, column.replace("_", " "))
    return max([cell_width(name), *(cell_width(cell_text(r.get(column))) for r in rows)]) + 3


def _folding(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    keep: Sequence[str],
    headers: Mapping[str, str] | None,
) -> str | None:
    """The kept column that folds onto more lines, whole, when the kept ones alone are
    wider than the terminal (an address as wide as the screen): the widest, so that the
    others (an id) stay on one line. Otherwise None: no kept column is cut or wrapped."""
    kept = [c for c in columns if c in keep]
    widths = {c: _width(c, rows, headers) for c in kept}
    if sum(widths.values()) + 1 <= stdout_console().width:
        return None
    return max(kept, key=widths.__getitem__)


def _folded_screen(
    rows: list[Mapping[str, Any]],
    columns: Sequence[str],
    folds: str,
    screen: int,
    headers: Mapping[str, str] | None,
) -> list[Mapping[str, Any]]:
    """The first of ``rows`` whose lines fill ``screen`` at most, the cells of ``folds``
    folded into the room the other columns leave it (as Rich gives it: the terminal
    less their widths, its own padding and the borders)."""
    others = sum(_width(c, rows, headers) for c in columns if c != folds)
    room = max(stdout_console().width - 1 - 3 - others, 1)
    taken = 0
    shown: list[Mapping[str, Any]] = []
    for row in rows:
        taken += -(-max(cell_width(cell_text(row.get(folds))), 1) // room)
        if taken > screen and shown:
            break
        shown.append(row)
    return shown


def _terminal() -> bool:
    """Whether stdout is a terminal (a person reads it), whatever NO_COLOR says."""
    return sys.stdout.isatty()


def screen_rows(limit: int | None) -> int | None:
    """How many rows a long list draws for a person, on a terminal: --limit's, else a
    screenful (the rest are counted and named); None in a pipe (every row)."""
    if not _terminal():
        return None
    if limit is not None:
        return limit
    import shutil

    return max(10, shutil.get_terminal_size().lines - 8)


def _plain_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Mapping[str, str] | None,
    empty: str,
) -> int:
    """A table for a pipe: a header line, then a tab-separated line per row, written as
    the rows come (tabs and line breaks inside a value become spaces)."""
    out = sys.stdout
    count = 0
    for row in rows:
        if not count:
            names = [(headers or {}).get(c, c.replace("_", " ")) for c in columns]
            out.write("\t".join(names) + "\n")
        out.write("\t".join(plain_cell(row.get(c)) for c in columns) + "\n")
        count += 1
    if not count:
        message(empty)
    return count


def plain_cell(value: Any) -> str:
    """A value on one line of plain text: its words joined by single spaces."""
    return " ".join(cell_text(value).split())


def write_styled(parts: Iterable[tuple[str, str | None]]) -> None:
    """Write text pieces, each with its style (None: plain), laid out by the caller:
    nothing is wrapped or cut, and styles show only on a terminal without NO_COLOR."""
    if not interactive():  # no styles to show: plain text, at the speed of a write
        sys.stdout.write("".join(piece for piece, _ in parts))
        return
    from rich.text import Text

    text = Text()
    for piece, style in parts:
        text.append(piece, style=style)
    stdout_console().print(text, end="", soft_wrap=True, overflow="ignore", crop=False)


def sentences(lines: Iterable[str]) -> None:
    """What a command did to a few items, told in sentences: its table format, for people
    (scripts ask for JSON or CSV). Plain text on stdout, never wrapped."""
    sys.stdout.write("".join(line + "\n" for line in lines))


def render_object(obj: Mapping[str, Any], fmt: str, *, title: str | None = None) -> None:
    """One record (a summary): JSON object, a one-row CSV, or a two-column table."""
    if fmt == "json":
        sys.stdout.write(json.dumps(obj, default=json_default, ensure_ascii=False, indent=2) + "\n")
        return
    if fmt == "csv":
        write_csv([obj], list(obj), sys.stdout)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in obj.items():
        table.add_row(Text(key.replace("_", " ")), Text(cell_text(value)))
    stdout_console().print(table)


def write_calendar(
    tasks: Iterable[Mapping[str, Any]],
    stream: IO[bytes] | None = None,
    *,
    workspace_id: str,
    name: str,
    alarm: time | None = None,
) -> int:
    """Tasks as all-day events on their due dates: an iCalendar file, written to
    ``stream`` (default stdout). Returns the number of events.

    Everything in an event comes from the task's row (DTSTAMP is the task's creation
    day, LAST-MODIFIED the day its date or state last changed, SEQUENCE how often it
    did), so the same book always gives the same file and calendar apps see stable
    UIDs across refreshes. The UID carries the workspace's random id, so two
    workspaces' feeds never overwrite each other's events. Closed tasks are CANCELLED
    (a VEVENT has no "completed"), with "Done:" or "Dropped:" before the summary for
    the apps that still show cancelled events. ``alarm``: a reminder at that time of
    the due day on every open task.
    """
    from icalendar import Alarm, Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//funnelctl//follow-ups//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"funnelctl: {name}")
    count = 0
    for row in tasks:
        event = Event()
        closed = row["status"] != "open"
        event.add("uid", f"task-{row['id']}-{workspace_id}@funnelctl")
        event.add("dtstamp", datetime.fromisoformat(row["created_on"]))
        event.add("last-modified", _utc_day(row["changed_on"] or row["created_on"]))
        event.add("sequence", row["revision"])
        event.add("status", "CANCELLED" if closed else "CONFIRMED")
        event.add("dtstart", date.fromisoformat(row["due_on"]))
        event.add("dtend", date.fromisoformat(row["due_on"]) + timedelta(days=1))
        who = row["name"] or row["customer"]
        summary = f"{row['title']} ({who})"
        event.add("summary", f"{row['status'].capitalize()}: {summary}" if closed else summary)
        details = []
        if closed:
            details.append(
                f"{row['status'].capitalize()} on {row['closed_on']}"
                + (f": {row['note']}" if row["note"] else "")
            )
        details.append(
            f"Customer: {row['customer']}" + (f", {row['company']}" if row["company"] else "")
        )
        if row["funnel"]:
            details.append(f"Funnel: {row['funnel']} / {row['stage']}")
        if row["owner"]:
            details.append(f"Owner: {row['owner']}")
        if row["channel"]:
            details.append(f"Channel: {row['channel']}")
        if row["description"]:
            details.append(row["description"].strip())
        if not closed:
            details.append(f"Done? funnelctl done {row['id']}")
        event.add("description", "\n".join(details))
        if row["owner"]:
            event.add("categories", [row["owner"]])
        if alarm is not None and not closed:
            # Relative to the start of the all-day event: midnight of the due day, in
            # whatever zone the calendar app shows it.
            reminder = Alarm()
            reminder.add("action", "DISPLAY")
            reminder.add("description", summary)
            reminder.add("trigger", timedelta(hours=alarm.hour, minutes=alarm.minute))
            event.add_component(reminder)
        cal.add_component(event)
        count += 1
    (stream or sys.stdout.buffer).write(bytes(cal.to_ical()))
    return count


def _utc_day(day: str) -> datetime:
    """An ISO day (or date-time) as a UTC date-time, as LAST-MODIFIED must be."""
    moment = datetime.fromisoformat(day)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- the funnel report ---------------------------------------------------------------------------

# CSV: one row per funnel stage, for spreadsheets.
REPORT_COLUMNS = [
    "funnel",
    "stage",
    "customers",
    "entered",
    "conversion",
    "median_days",
    "p90_days",
    "stagnating",
    "channels",
]


def render_report(data: Mapping[str, Any], fmt: str) -> None:
    """The funnel report (reports.build_report): JSON as built, CSV one row per stage,
    or a table per funnel and the summaries for people."""
    if fmt == OutputFormat.json:
        render_object(data, fmt)
        return
    if fmt == OutputFormat.csv:
        render(_stage_rows(data), fmt, REPORT_COLUMNS)
        return
    _report_tables(data)


# The report's sections as CSV files (report -f csv --out DIR), named as in its JSON.
REPORT_SECTIONS = (
    "funnels",
    "stages",
    "kpis",
    "satisfaction",
    "support",
    "owners",
    "workload",
    "trends",
    "weekly",
    "at_risk",
    "projection",
)


def report_sections(data: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every section of the report as rows: a funnel's scalars, one row per stage (as the
    CSV on stdout), the one-row summaries, and the lists as they are in the JSON."""
    funnels = [
        {k: v for k, v in f.items() if not isinstance(v, (list, dict))} for f in data["funnels"]
    ]
    return {
        "funnels": funnels,
        "stages": _stage_rows(data),
        "satisfaction": [dict(data["satisfaction"])],
        "support": [dict(data["support"])],
        "owners": list(data["owners"]),
        "workload": list(data["workload"]),
        "trends": list(data["trends"]),
        "weekly": list(data["weekly"]),
        "kpis": list(data["kpis"]),
        "at_risk": list(data["at_risk"]),
        # one row per owner and week; the verdict is in the JSON and the table
        "projection": list(data["projection"]["rows"]),
    }


def _stage_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per stage of every funnel: the CSV of `report -f csv`."""
    return [
        {**stage, "funnel": f["funnel"], "channels": stage["touchpoints"]}
        for f in data["funnels"]
        for stage in f["stages"]
    ]


def section_columns(name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if name == "stages":
        return REPORT_COLUMNS
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _report_tables(data: Mapping[str, Any]) -> None:
    period = data["period"]
    for f in data["funnels"]:
        peak = max((s["customers"] for s in f["stages"]), default=0)
        rows = [
            {
                "stage": s["stage"],
                "now": s["customers"],
                "": bar(s["customers"], peak, 24),
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
        render(
            rows,
            "table",
            list(rows[0]) if rows else ["stage"],
            title=f"{f['title']}: {f['active']} active; won {f['won']}, lost {f['lost']}, churned {f['churned']}{churn} ({period['since']} to {period['until']})",
        )
    sat, sup, trends = data["satisfaction"], data["support"], data["trends"]
    summary = {
        "NPS": f"{sat['nps'] if sat['nps'] is not None else '–'} ({sat['nps_answers']} answers)  {sparkline([t['nps'] for t in trends])}",
        "CSAT": f"{sat['csat'] if sat['csat'] is not None else '–'} ({sat['csat_answers']} answers)",
        "churned per month": sparkline([t["churned"] for t in trends]) or "–",
        "response (days, median)": sup["response_days_median"]
        if sup["response_days_median"] is not None
        else "–",
        "tickets": sup["tickets"],
        "first response (h, median)": sup["first_response_hours_median"] or "–",
        "resolution (h, median / p90)": f"{sup['resolution_hours_median'] or '–'} / {sup['resolution_hours_p90'] or '–'}",
        "open backlog": sup["backlog"],
    }
    render_object(summary, "table", title="Satisfaction and support")
    render(
        data["owners"],
        "table",
        ["owner", "done_on_time", "done_late", "overdue", "median_days_late"],
        title="Owners",
        keep=("owner",),
    )
    weeks = sorted({r["week"] for r in data["workload"]})
    load: dict[str, dict[str, int]] = {}
    for r in data["workload"]:
        load.setdefault(r["owner"], {})[r["week"]] = r["tasks"] + r["emails"]
    workload = [
        {
            "owner": owner,
            **{week[5:]: per.get(week, 0) for week in weeks},
            "trend": sparkline([per.get(w, 0) for w in weeks]),
        }
        for owner, per in sorted(load.items())
    ]
    render(
        workload,
        "table",
        ["owner", *[w[5:] for w in weeks], "trend"],
        title="Workload: tasks + emails per week",
        keep=("owner",),
        compact=True,
    )
    _projection_table(data["projection"])


def _projection_table(projection: Mapping[str, Any]) -> None:
    """Projected tasks per owner and week (numbered from the week holding today) and the
    capacity; the verdict, every owner's, is the title (so the table fits 80 columns)."""
    weeks = sorted({r["week"] for r in projection["rows"]})
    rows = [
        {
            "owner": m["owner"],
            "capacity": "–" if m["capacity"] is None else m["capacity"],
            **{str(r["week"]): r["tasks"] for r in projection["rows"] if r["owner"] == m["owner"]},
        }
        for m in projection["members"]
    ]
    render(
        rows,
        "table",
        ["owner", "capacity", *map(str, weeks)],
        title=f"Tasks per week ahead: {projection['summary']}",
        keep=("owner",),
        compact=True,
    )


# -- drawing helpers --------------------------------------------------------------------------------

SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float, peak: float, width: int = 30) -> str:
    """A horizontal bar of block characters, ``value`` out of ``peak``."""
    if peak <= 0 or value <= 0:
        return ""
    eighths = round(width * 8 * value / peak)
    return "█" * (eighths // 8) + ("" if eighths % 8 == 0 else "▏▎▍▌▋▊▉"[eighths % 8 - 1])


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled between the smallest and largest; blank for none."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1
    return "".join(
        " "
        if v is None
        else SPARKS[min(len(SPARKS) - 1, int((v - low) / span * (len(SPARKS) - 1)))]
        for v in values
    )


class Progress:
    """A progress bar on stderr for a person at a terminal; silent in a pipe."""

    def __init__(self, description: str, total: int | None) -> None:
        self._bar: Any = None
        if interactive() and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            # rows done of the total, the rate, and the time left
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rows"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._task = self._bar.add_task(description, total=total, rate="")

    def advance(self, amount: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=amount)

    def update(self, completed: int) -> None:
        if self._bar is not None:
            speed = self._bar.tasks[0].speed
            rate = f"{speed:,.0f}/s" if speed else ""
            self._bar.update(self._task, completed=completed, rate=rate)


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Progress]:
    bar = Progress(description, total)
    if bar._bar is None:
        yield bar
        return
    with bar._bar:
        yield bar


# -- text for a person: the customer card, summaries ---------------------------------------------


def text_width() -> int:
    """The columns a person reads in: COLUMNS when set, else the terminal's, else 80 (a
    pipe, a file); never fewer than 40."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    else:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 80
    return max(width, 40)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken between words only: a word
    longer than a line (an email, an address, a reference) stands whole on its own."""
    from rich.cells import cell_len

    lines: list[str] = []
    current = ""
    for word in text.split():
        joined = f"{current} {word}" if current else word
        if current and cell_len(joined) > width:
            lines.append(current)
            current = word
        else:
            current = joined
    return [*lines, current]


def cell_width(text: str) -> int:
    """The terminal cells ``text`` takes: a CJK character takes two."""
    from rich.cells import cell_len

    return cell_len(text)


def cut_to(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut short with "…"."""
    if cell_width(text) <= width:
        return text
    from rich.cells import set_cell_size

    return set_cell_size(text, max(width - 1, 0)) + "…"


def rows_taken(text: str, width: int) -> int:
    """How many rows of a terminal ``width`` cells wide the lines of ``text`` take: a line
    wider than that (a long email, wide characters) takes more than one."""
    from rich.cells import cell_len

    return sum(max(1, -(-cell_len(line) // width)) for line in text.splitlines())


class _Lines:
    """Lines of plain text with an optional style each (dropped in a pipe)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[tuple[str, str | None]] = []

    def add(self, text: str = "", style: str | None = None) -> None:
        self.lines.append((text, style))

    def hanging(self, lead: str, text: str, style: str | None = None) -> None:
        """``lead`` then ``text`` wrapped to the width, its next lines under its start."""
        from rich.cells import cell_len

        indent = cell_len(lead)
        parts = wrap(text, max(self.width - indent, 20))
        self.add(lead + parts[0], style)
        for part in parts[1:]:
            self.add(" " * indent + part, style)

    def table(self, rows: Sequence[Sequence[str]], style: str | None = None) -> None:
        """Rows whose cells but the last are padded to a column; the last one wraps."""
        from rich.cells import cell_len

        if not rows:
            return
        widths = [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            lead = "  " + "".join(
                cell + " " * (w - cell_len(cell)) + "  "
                for cell, w in zip(row[:-1], widths, strict=True)
            )
            self.hanging(lead, row[-1], style)

    def print(self) -> None:
        from rich.text import Text

        console = stdout_console()
        for text, style in self.lines:
            console.print(Text(text, style=style or ""), soft_wrap=True)


def render_summary(title: str, items: Mapping[str, Any]) -> None:
    """A title, then one aligned ``label  value`` line per item (the result of an erasure
    or a merge), for a person."""
    out = _Lines(text_width())
    out.add(title + ":", "bold")
    out.table([[label, cell_text(value)] for label, value in items.items()])
    out.print()


def render_card(card: Mapping[str, Any], *, folded: int) -> None:
    """The customer card (customers.customer_card) for a person: who they are, their
    funnels, health, open tasks and queued emails, then the timeline (``folded`` lines
    left out of it). Laid out for the terminal's width; plain text in a pipe."""
    out = _Lines(text_width())
    title = card.get("name") or card.get("email") or card.get("external_id") or ""
    out.add(f"{title} (#{card['id']})", "bold")
    fields: list[list[str]] = [
        [label, cell_text(card.get(key)) or "–"]
        for label, key in (
            ("company", "company"),
            ("email", "email"),
            ("phone", "phone"),
            ("external id", "external_id"),
            ("owner", "owner"),
        )
    ]
    account = ", ".join(
        text
        for text, value in (
            (f"{card.get('plan')} plan", card.get("plan")),
            (f"mrr {cell_text(card.get('mrr'))}", card.get("mrr") is not None),
            (f"{card.get('seats')} seats", card.get("seats") is not None),
            (f"signed {card.get('signed_on')}", card.get("signed_on")),
            (f"language {card.get('language')}", card.get("language")),
        )
        if value
    )
    mail = "; ".join(
        text
        for text, shown in (
            ("no more email (they asked)", card.get("do_not_email")),
            (
                f"address bounced: {card.get('email_undeliverable')}",
                card.get("email_undeliverable"),
            ),
        )
        if shown
    )
    for label, value in (
        ("mail", mail),
        ("account", account),
        ("tags", cell_text(card.get("tags"))),
        ("fields", cell_text(card.get("fields"))),
    ):
        if value:
            fields.append([label, value])
    out.table(fields)
    _card_funnels(out, card["enrollments"])
    _card_health(out, card["health"])
    _card_section(
        out,
        "Open tasks",
        [[t["ref"], t["due"], t["title"]] for t in card["open_tasks"]],
    )
    _card_section(
        out,
        "Queued emails",
        [[e["ref"], e["scheduled_on"], e["when"], _email_what(e)] for e in card["queued_emails"]],
    )
    lines = card["timeline"]
    _card_section(
        out,
        "Timeline",
        [
            [line["on"], line["kind"], line["what"] + (f" · {line['who']}" if line["who"] else "")]
            for line in lines
        ],
    )
    if folded:
        what = "action" if folded == 1 else "actions"
        out.add(f"  {folded} skipped {what} folded away (condition false); --all shows them", "dim")
    out.print()


def _email_what(email: Mapping[str, Any]) -> str:
    partner = email.get("partner")
    return str(email["template"]) + (f" to partner {partner}" if partner else "")


def _card_section(out: _Lines, heading: str, rows: Sequence[Sequence[str]]) -> None:
    out.add()
    if not rows:
        out.add(f"{heading}: none", "bold")
        return
    out.add(heading, "bold")
    out.table(rows)


def _card_funnels(out: _Lines, enrollments: Sequence[Mapping[str, Any]]) -> None:
    rows = []
    for e in enrollments:
        stage = f"{e['stage_title']} ({e['stage']})" if e["stage_title"] else e["stage"]
        if e["status"] == "active":
            days = e["days_in_stage"]
            state = "active, entered today" if days == 0 else f"active, {days}d in stage"
        else:
            state = f"{e['status']} on {e['closed_on']}"
            if e["close_reason"]:
                state += f" ({e['close_reason']})"
        rows.append([e["funnel"], f"{stage}: {state}"])
    _card_section(out, "Funnels", rows)


def _card_health(out: _Lines, health: Mapping[str, Any] | None) -> None:
    out.add()
    if health is None:
        out.add("Health: no health model", "bold")
        return
    if health["score"] is None:
        out.add("Health: no score yet (no measure has a value)", "bold")
        return
    verdict = f"Health: {health['score']:g}"
    if health["at_risk"]:
        verdict += f", at risk (below {health['at_risk_below']:g})"
    out.add(verdict, "bold red" if health["at_risk"] else "bold")
    for reason in health["reasons"]:
        out.hanging("  - ", reason)
    for opportunity in health["opportunities"]:
        out.hanging("  + ", f"opportunity: {opportunity}")
