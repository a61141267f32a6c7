"""funnelctl backup FILE"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import output
from ..outfiles import refuse_own_file
from .common import HomeOption, TodayOption, session


def backup(
    file: Annotated[Path, typer.Argument(help="The new backup file (must not exist).")],
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Write a consistent copy of the database, even while another command writes."""
    with session(home, today) as s:
        refuse_own_file(file, s.workspace)
        s.store.backup(file)
    output.message(f"Backed up {s.workspace.db_path} to {file}.")
