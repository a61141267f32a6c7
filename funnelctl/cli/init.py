"""funnelctl init [DIR] [--demo]"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..playbooks import load_library
from ..store import Store
from ..workspace import init_workspace, local_zone, undone_on_failure, user_data_dir
from .common import HomeOption, TodayOption, resolve_today


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Folder for the new workspace (default: --home, else the user's data folder)."
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Also load a sample book with back-dated history.")
    ] = False,
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Create a workspace: funnelctl.yaml, the shipped playbooks and templates, the database."""
    from ..sample import DEMO_CAPACITY, DEMO_TEAM, load_demo

    root = directory or home or user_data_dir()
    if today:
        resolve_today(today, None)  # a bad --today stops before anything is written
    with undone_on_failure(root):
        workspace = init_workspace(
            root,
            team=DEMO_TEAM if demo else (),
            capacity=DEMO_CAPACITY if demo else None,
            sender="Ana Lima <ana@example.com>" if demo else "",
            timezone=local_zone(os.environ),  # "today" is the consultant's, not UTC's
        )
        day = resolve_today(today, workspace)
        store = Store.open(workspace.db_path, create=True)
        try:
            if demo:
                library = load_library(
                    [workspace.playbooks_dir],
                    templates_dir=workspace.templates_dir,
                    team=DEMO_TEAM,
                )
                with store.write():
                    counts = load_demo(store, library, workspace.settings, day)
                output.message(
                    f"Loaded the demo book: {counts['customers']} customers, "
                    f"{counts['touchpoints']} touchpoints, {counts['signals']} signals."
                )
        finally:
            store.close()
    output.message(f"Created a funnelctl workspace in {workspace.root}.")
    output.message(f"Next: cd {workspace.root} && funnelctl playbook list")
