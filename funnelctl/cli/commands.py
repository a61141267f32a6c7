"""The funnelctl command: every command and group, put together.

Each command lives in the module named after it (``at-risk`` in at_risk.py,
``import`` in import_.py); won, lost and churn share close.py.

A command's module is imported only when that command runs (or its help is asked
for): ``funnelctl due`` never pays for what ``import`` or ``send`` need. COMMANDS
says where each one lives and the line ``funnelctl --help`` shows for it, so that
listing them imports none (tests/test_startup.py checks the lines against the
commands' own help).
"""

# No `from __future__ import annotations` here: Typer reads a command's annotations as it
# builds the command, on every run, and annotations kept as strings would be parsed and
# evaluated again each time (twice: by inspect.signature and by typing.get_type_hints).

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand

from .common import FunnelGroup, HomeOption, TodayOption, new_app


class Entry(NamedTuple):
    module: str  # in funnelctl.cli
    attribute: str  # the command's function, or the group's Typer app
    summary: str  # the first sentence of its help: the line `funnelctl --help` shows


# In the order --help lists them (typer's: the commands, then the groups).
COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "init",
        "init",
        "Create a workspace: funnelctl.yaml, the shipped playbooks and templates, the database.",
    ),
    "import": Entry(
        "import_",
        "import_",
        "Upsert customers from a CSV file or an .xlsx workbook: all rows or none.",
    ),
    "export": Entry(
        "export",
        "export",
        "Export customers, activities, history, outbox, touchpoints or signals as CSV or "
        "JSON, or the open tasks as an iCalendar file (calendar).",
    ),
    "enroll": Entry(
        "enroll", "enroll", "Put a customer in a funnel and run the stage's entry actions."
    ),
    "move": Entry(
        "move",
        "move",
        "Move a customer to a stage (forwards or backwards) and run its entry actions.",
    ),
    "won": Entry("close", "won", "Close the customer's enrollment as won."),
    "lost": Entry(
        "close", "lost", "Close the customer's enrollment as lost (open tasks are dropped)."
    ),
    "churn": Entry(
        "close", "churn", "Close the customer's enrollment as churned (open tasks are dropped)."
    ),
    "due": Entry(
        "due", "due", "What needs doing: overdue, today, needs attention, coming up (--days N)."
    ),
    "done": Entry(
        "done",
        "done",
        "Mark tasks done (t12 t13 ...: all or none); each one's follow-up task (then:) starts now.",
    ),
    "snooze": Entry(
        "snooze",
        "snooze_",
        "Push tasks back (t12 t13 ...: all or none): --days N or --until WHEN.",
    ),
    "drop": Entry(
        "drop",
        "drop_",
        "Drop tasks no longer needed, or skip queued emails no longer wanted (e7).",
    ),
    "undo": Entry(
        "undo", "undo", "Take back the last done, snooze or drop (every item it changed), once."
    ),
    "log": Entry("log", "log", "Log a touchpoint."),
    "signal": Entry(
        "signal", "signal", "Record a signal: funnelctl signal CUSTOMER METRIC VALUE [--at DATE]."
    ),
    "at-risk": Entry(
        "at_risk",
        "at_risk",
        "Health scores with their reasons and trend: customers at risk first, and opportunities.",
    ),
    "run": Entry(
        "run",
        "run",
        "The daily tick: time-based moves and escalations, caught up for missed days; idempotent.",
    ),
    "send": Entry(
        "send", "send_", "Deliver the queued emails that are due, inside the send window."
    ),
    "inbox": Entry(
        "inbox",
        "inbox",
        "Read new mail since the last run: replies, automatic answers, bounces, unsubscribes.",
    ),
    "report": Entry(
        "report",
        "report",
        "Funnel counts, conversion, time in stage, churn, NPS/CSAT, support times, owners, "
        "workload.",
    ),
    "backup": Entry(
        "backup",
        "backup",
        "Write a consistent copy of the database, even while another command writes.",
    ),
    "help": Entry(
        "help", "help_", "Show a command's help: funnelctl help due, funnelctl help customer add."
    ),
    "playbook": Entry(
        "playbook", "app", "List, show and validate the funnels in the workspace's playbooks."
    ),
    "play": Entry("play", "app", "The customer-journey plays: list them, start one by hand."),
    "customer": Entry("customer", "app", "Add, edit, list, show, delete and merge customers."),
    "task": Entry("task", "app", "Tasks planned by hand: the next step with a customer."),
    "outbox": Entry("outbox", "app", "The emails the playbooks scheduled, and their fate."),
    "template": Entry("template", "app", "Preview email templates."),
    "ticket": Entry("ticket", "app", "Help-desk tickets, for response and resolution times."),
}


def load_command(name: str) -> Any:  # a click Command (typer vendors click)
    """The command ``name`` as click runs it, its module imported now."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(f"{__package__}.{entry.module}"), entry.attribute)
    if isinstance(target, typer.Typer):  # a group: built as add_typer would build it
        return typer.main.get_group(target)
    # One command alone in a Typer app is that command, built as app.command() builds it.
    single = typer.Typer(rich_markup_mode=None, add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class _Commands(MutableMapping[str, Any]):
    """The root group's commands by name: each one built the first time it is looked up."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = load_command(name)
        return self._built[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in COMMANDS or name in self._built else default

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(name not in COMMANDS for name in self._built)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built


class LazyGroup(FunnelGroup):
    """The root group (click's "lazily loading subcommands" pattern): a command is
    built, and its module imported, when it is looked up by name; listing the names
    and their help lines (``funnelctl --help``) imports none."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The commands and their help lines, cut to the width as click cuts them."""
        names = [name for name in self.list_commands(ctx) if name in COMMANDS]
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name, TyperCommand(name=name, help=COMMANDS[name].summary).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = new_app(
    "funnelctl runs a customer-success funnel from the terminal: YAML playbooks, "
    "a local SQLite store, Jinja follow-up emails.",
    cls=LazyGroup,
)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"funnelctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _everywhere(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print funnelctl's version and exit.",
        ),
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """--home and --today given here are carried to the command (common.FunnelGroup)."""
