"""What every command shares: the workspace, today, the output format, error handling.

This is the only place (with the other cli modules) that knows about typer, and
the only place that reads the clock: the core is always given ``today``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from typer._types import TyperChoice
from typer.core import TyperGroup
from typer.exceptions import TyperException

from .. import output
from ..dates import parse_date, parse_due
from ..errors import FunnelError, InternalError, UsageError, os_problem
from ..output import OutputFormat
from ..store import Store, faults
from ..workspace import Workspace, open_workspace

if TYPE_CHECKING:  # loaded with the playbook cache, by the commands that read playbooks
    from ..outline import Outline
    from ..playbooks import Library

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="FUNNELCTL_HOME",
        help="Workspace folder (default: the nearest parent with funnelctl.yaml, "
        "else the user's data folder).",
        show_default=False,
    ),
]
TodayOption = Annotated[
    str | None,
    typer.Option(
        "--today",
        envvar="FUNNELCTL_TODAY",
        metavar="YYYY-MM-DD",
        help="Act as if today were this date (default: today in the workspace's time zone).",
        show_default=False,
    ),
]

ForceOption = Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")]

CustomerArg = Annotated[str, typer.Argument(help="Email, external id or #id.", show_default=False)]
FunnelOption = Annotated[
    str | None, typer.Option("--funnel", help="Which funnel, when the customer is in several.")
]
TaskArg = Annotated[
    int, typer.Argument(help="The task id shown by 'funnelctl due'.", show_default=False)
]
# done, snooze, drop (CSV): the task's columns, then its reference, customer and follow-up
TASK_COLUMNS = ["id", "title", "status", "due_on", "owner", "note", "ref", "customer", "next"]


def formats(*allowed: OutputFormat) -> TyperChoice[str]:
    """The --format values one command accepts, out of the one OutputFormat.

    TyperChoice is the type typer itself makes for an Enum option: --help lists only
    these values, and any other is refused as typer refuses every bad choice (a usage
    error naming the accepted values, exit 2). Any case is accepted (``-f JSON``).
    """
    return TyperChoice([f.value for f in allowed], case_sensitive=False)


FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        click_type=formats(OutputFormat.table, OutputFormat.json, OutputFormat.csv),
        help="table for people, json or csv for scripts.",
    ),
]
LimitOption = Annotated[
    int | None, typer.Option(min=1, help="At most this many rows (a long list, cut short).")
]


# Options every command that opens the workspace takes, accepted before the command too.
GLOBAL_OPTIONS = ("--home", "--today")
HELP_OPTIONS = ["-h", "--help"]


class FunnelGroup(TyperGroup):
    """Turns funnelctl's own errors into one 'Error: ...' line and an exit code.

    It also carries ``--home`` and ``--today`` given before a command name to after it
    (``funnelctl --home demo due`` is ``funnelctl due --home demo``): placed right after
    the name, they come before whatever the user typed there, so a value given after the
    command wins (the last value of an option is the one kept), and, being on the command
    line, either beats FUNNELCTL_HOME and FUNNELCTL_TODAY.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            args = self._carry_global_options(ctx, args)
        return super().parse_args(ctx, args)

    def _carry_global_options(self, ctx: Any, args: list[str]) -> list[str]:
        carried: list[tuple[str, str]] = []
        kept: list[str] = []
        rest = list(args)
        while rest:
            token = rest[0]
            name, eq, value = token.partition("=")
            if name in GLOBAL_OPTIONS and (eq or len(rest) > 1):
                carried.append((name, value if eq else rest[1]))
                rest = rest[1:] if eq else rest[2:]
            elif token.startswith("-") and token != "--":
                kept.append(token)  # the group's own flags (--version, --help)
                rest = rest[1:]
            else:
                break
        if not carried or not rest or rest[0] == "--":
            return args  # no command follows: the group's own options take them
        command = self.get_command(ctx, rest[0])
        if command is None:
            return args  # click says the command does not exist
        takes = (
            set(GLOBAL_OPTIONS)
            if isinstance(command, TyperGroup)
            else {o for p in command.params for o in getattr(p, "opts", ())}
        )
        moved = [part for name, value in carried if name in takes for part in (name, value)]
        return [*kept, rest[0], *moved, *rest[1:]]

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except FunnelError as exc:
            return self._fail(exc)
        except BrokenPipeError:
            # The reader went away (`funnelctl export customers | head -1`): not a failure.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            output.error("Interrupted; nothing half-done was kept.")
            raise typer.Exit(130) from None
        # What the world throws past the core's own checks: still one sentence, no traceback.
        except OSError as exc:
            return self._fail(os_problem(exc, "finish the command"))
        except RecursionError:
            return self._fail(FunnelError("The input is nested too deeply to be read."))
        except UnicodeError as exc:
            return self._fail(FunnelError(f"A text could not be read or written: {exc}."))
        except (typer.Exit, typer.Abort, TyperException):
            raise  # typer's own ways to end, usage errors among them
        except Exception as exc:
            if os.environ.get("FUNNELCTL_DEBUG"):
                raise
            return self._fail(
                InternalError(
                    f"funnelctl stopped on an unexpected {type(exc).__name__}: {exc}. This is "
                    "a bug, or a file of the workspace was changed by another program; run "
                    "again with FUNNELCTL_DEBUG=1 to see where, and please report it."
                )
            )

    @staticmethod
    def _fail(exc: FunnelError) -> Any:
        output.error(exc.message, exc.details)
        raise typer.Exit(exc.exit_code) from None


def new_app(
    help_text: str, name: str | None = None, cls: type[FunnelGroup] = FunnelGroup
) -> typer.Typer:
    return typer.Typer(
        name=name,
        help=help_text,
        cls=cls,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=name is None,
        rich_markup_mode=None,
        context_settings={"help_option_names": HELP_OPTIONS},
    )


def who() -> str | None:
    """Who is at the keyboard, for the stage history: FUNNELCTL_USER, else the login name."""
    import getpass

    try:
        return os.environ.get("FUNNELCTL_USER") or getpass.getuser()
    except (KeyError, OSError):
        return None


def option_date(option: str, value: str) -> str:
    """The ISO date ``value`` given to ``option`` means; anything else is a usage error
    that names the option."""
    try:
        return parse_date(value).isoformat()
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def option_time(option: str, value: str) -> time:
    """The time of day HH:MM (00:00 to 23:59) given to ``option``; anything else is a
    usage error that names the option."""
    hours, sep, minutes = value.partition(":")
    if (
        sep
        and hours.isdigit()
        and minutes.isdigit()
        and len(minutes) == 2
        and 1 <= len(hours) <= 2
        and int(hours) < 24
        and int(minutes) < 60
    ):
        return time(int(hours), int(minutes))
    raise UsageError(f"{option}: {value!r} is not a time of day; give HH:MM, like 9:00.")


AlarmOption = Annotated[
    str | None,
    typer.Option(
        "--alarm",
        help="Add a reminder at this time (HH:MM) on each open task's due day.",
        show_default=False,
    ),
]


def option_due(option: str, value: str, today: str) -> str:
    """The ISO day a due date given to ``option`` means (dates.parse_due: 2026-12-03, 3d,
    2w, today, tomorrow, thu); anything else is a usage error that names the option."""
    try:
        return parse_due(value, today)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def resolve_today(today: str | None, workspace: Workspace | None) -> str:
    if today:
        return option_date("--today", today)
    zone = workspace.settings.zone if workspace else None
    return datetime.now(zone).date().isoformat() if zone else date.today().isoformat()


def resolve_now(today: str, workspace: Workspace) -> datetime:
    """The moment, in the workspace's zone, for send windows and Date headers.

    FUNNELCTL_NOW (an ISO date and time) replays a moment exactly; otherwise it is
    the clock's time of day on ``today``.
    """
    zone = workspace.settings.zone
    fixed = os.environ.get("FUNNELCTL_NOW")
    if fixed:
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            raise UsageError(f"FUNNELCTL_NOW {fixed!r} is not an ISO date and time") from None
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    clock = datetime.now(zone)
    return datetime.combine(date.fromisoformat(today), clock.timetz())


class Session(NamedTuple):
    workspace: Workspace
    store: Store
    today: str

    def library(self) -> Library:
        return workspace_library(self.workspace)

    def outline(self) -> Outline:
        """The little of the playbooks that the morning list reads (outline.py)."""
        from ..playbook_cache import cached_outline

        w = self.workspace
        return cached_outline(w.playbooks_dir, w.templates_dir, w.settings.team, w.cache_dir)


def workspace_library(workspace: Workspace) -> Library:
    """The workspace's checked playbooks, from the cache while no file has changed."""
    from ..playbook_cache import cached_library

    return cached_library(
        workspace.playbooks_dir,
        workspace.templates_dir,
        workspace.settings.team,
        workspace.cache_dir,
    )


@contextmanager
def session(home: Path | None, today: str | None) -> Iterator[Session]:
    """The workspace, its open database and today's date, for one command."""
    workspace = open_workspace(home, Path(os.getcwd()))
    day = resolve_today(today, workspace)
    with faults(workspace.db_path):
        store = Store.open(workspace.db_path)
        try:
            yield Session(workspace, store, day)
        finally:
            store.close()
