"""funnelctl help [COMMAND [SUBCOMMAND]]: a command's --help, by name."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from .. import output
from ..errors import EXIT_USAGE


def help_(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The command (and subcommand) to explain.", show_default=False),
    ] = None,
) -> None:
    """Show a command's help: funnelctl help due, funnelctl help customer add."""
    parent: Any = ctx.find_root()
    target: Any = parent.command
    path: list[str] = []
    for name in command or []:
        found = target.get_command(parent, name) if isinstance(target, TyperGroup) else None
        if found is None:
            _unknown(parent, target, [*path, name])
        path.append(name)
        parent = found.make_context(name, [], parent=parent, resilient_parsing=True)
        target = found
    typer.echo(target.get_help(parent))  # what --help prints, as click prints it


def _unknown(ctx: Any, group: Any, path: list[str]) -> NoReturn:
    shown = " ".join(path)
    if isinstance(group, TyperGroup):
        where = f"{' '.join(path[:-1])} " if len(path) > 1 else ""
        names = ", ".join(sorted(group.list_commands(ctx)))
        output.error(f"No command '{shown}'; the {where}commands are: {names}.")
    else:
        known = " ".join(path[:-1])
        output.error(f"'{known}' has no subcommands; see: funnelctl help {known}")
    raise typer.Exit(EXIT_USAGE)
