"""funnelctl playbook list | show | plays | validate"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import output
from ..errors import WorkspaceError
from ..output import OutputFormat
from ..playbooks import Library, describe_action, describe_cadence, load_library
from ..workspace import open_workspace
from .common import (
    FormatOption,
    HomeOption,
    TodayOption,
    new_app,
    resolve_today,
    workspace_library,
)

app = new_app("List, show and validate the funnels in the workspace's playbooks.", name="playbook")


def _library(home: Path | None) -> Library:
    return workspace_library(open_workspace(home, Path(os.getcwd())))


@app.command("list")
def list_(
    home: HomeOption = None, today: TodayOption = None, fmt: FormatOption = OutputFormat.table
) -> None:
    """List the funnels: id, title, stages and how many automatic actions they hold."""
    library = _library(home)
    rows = [
        {
            "funnel": f.id,
            "title": f.title,
            "stages": [s.id for s in f.stages],
            "actions": sum(len(s.on_enter) for s in f.stages),
            "file": f.where.path,
        }
        for f in library.funnels.values()
    ]
    output.render(rows, fmt, ["funnel", "title", "stages", "actions"], title="Funnels")


@app.command("show")
def show(
    funnel: Annotated[str, typer.Argument(help="Funnel id, as in 'funnelctl playbook list'.")],
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show a funnel as a journey map: each stage's touchpoints, owner, alerts and actions."""
    f = _library(home).funnel(funnel)
    rows = [
        {
            "stage": s.id,
            "title": s.title,
            "owner": s.owner,
            "touchpoints": list(s.touchpoints),
            "stagnant_after": s.stagnant_after,
            "quiet_after": s.quiet_after,
            "advance_after": s.advance_after,
            "advance_when": s.advance_when,
            "actions": [describe_action(a) for a in s.on_enter],
        }
        for s in f.stages
    ]
    if fmt == "table":
        for row in rows:
            row["alerts"] = ", ".join(
                f"{label} {row[key]}d"
                for key, label in (
                    ("stagnant_after", "stagnant"),
                    ("quiet_after", "quiet"),
                    ("advance_after", "advance"),
                )
                if row[key] is not None
            ) + (f" once {row['advance_when']}" if row["advance_when"] else "")
            row["actions"] = "\n".join(row["actions"] or [])  # type: ignore[arg-type]
        moves = "backward moves allowed" if f.allow_backward else "forward only"
        output.render(
            rows,
            fmt,
            ["stage", "owner", "touchpoints", "alerts", "actions"],
            title=f"{f.title} ({f.id}; {moves})",
        )
    else:
        output.render(rows, fmt, list(rows[0]) if rows else ["stage"])


@app.command("plays")
def plays(
    home: HomeOption = None, today: TodayOption = None, fmt: FormatOption = OutputFormat.table
) -> None:
    """List the customer-journey plays: what, when, who, channel and sourcing."""
    library = _library(home)
    rows: list[dict[str, Any]] = [
        {
            "play": p.id,
            "what": p.title,
            "sourcing": p.sourcing,
            "trigger": p.trigger,
            "cadence": describe_cadence(p),
            "cooldown": p.cooldown,
            "unless_at_risk": p.unless_at_risk,
            "actions": [describe_action(a) for a in p.actions],
        }
        for p in library.plays.values()
    ]
    if fmt == "table":
        for row in rows:
            row["trigger"] = "\n".join(filter(None, [row["trigger"], row["cadence"]]))
            row["actions"] = "\n".join(row["actions"] or [])
    output.render(rows, fmt, ["play", "what", "sourcing", "trigger", "actions"], title="Plays")


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or folders (default: the workspace's playbooks/)."),
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Check playbooks; every problem is reported as file:line: message (exit 1 if any)."""
    try:
        workspace = open_workspace(home, Path(os.getcwd()))
    except WorkspaceError:
        if not paths:
            raise
        workspace = None
    targets = list(paths or [workspace.playbooks_dir])  # type: ignore[union-attr]
    references: list[Path] = []
    if workspace is not None:
        templates, team = workspace.templates_dir, workspace.settings.team
        # a draft's references may point at the workspace's other playbooks
        references = [workspace.playbooks_dir] if paths else []
    else:
        first = targets[0] if targets[0].is_dir() else targets[0].parent
        templates, team = first.parent / "templates", None
    from ..errors import ValidationError
    from ..mail import check_templates
    from ..workspace import Settings

    template_problems: list[str] = []
    if templates.is_dir():
        settings = workspace.settings if workspace else Settings()
        template_problems = check_templates(templates, settings)
    try:
        library = load_library(
            targets,
            templates_dir=templates if workspace is not None or templates.is_dir() else None,
            team=team,
            references=references if workspace is not None else [],
        )
    except ValidationError as exc:
        if template_problems:
            exc.details += template_problems
            exc.message = f"The playbooks and templates have {len(exc.details)} problem(s)"
        raise
    if template_problems:
        raise ValidationError(
            f"The templates have {len(template_problems)} problem(s)", template_problems
        )
    output.message(
        f"OK: {len(library.files)} file(s), {len(library.funnels)} funnel(s), "
        f"{len(library.plays)} play(s), {len(library.partners)} partner(s)."
    )
    problem = workspace.settings.sender_problem() if workspace is not None else None
    if problem:
        output.message(f"Warning: {problem}; send refuses smtp and sendmail until then.")


@app.command("simulate")
def simulate_(
    funnel: Annotated[str, typer.Argument(help="Funnel id.", show_default=False)],
    days: Annotated[int, typer.Option(min=0, max=3650, help="How many days to play.")] = 120,
    moves: Annotated[
        str | None,
        typer.Option(help="Manual moves as STAGE@DAY,... e.g. customer-contact@1,deployment@4."),
    ] = None,
    signals: Annotated[
        str | None,
        typer.Option(
            help="Health signals as METRIC=VALUE@DAY,... e.g. nps=3@80,nps=10@130: shows "
            "when plays start or wait and when a gated advance holds.",
        ),
    ] = None,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Preview day by day what a new customer of FUNNEL would get; the database is not touched."""
    from ..simulate import parse_moves, parse_signals, simulate

    workspace = open_workspace(home, Path(os.getcwd()))
    plan = simulate(
        workspace_library(workspace),
        workspace.settings,
        funnel,
        start=resolve_today(today, workspace),
        days=days,
        moves=parse_moves(moves),
        signals=parse_signals(signals),
    )
    output.render(plan, fmt, ["day", "date", "kind", "what", "owner"], title=f"Simulated {funnel}")
