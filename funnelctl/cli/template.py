"""funnelctl template render TEMPLATE --customer C"""

from __future__ import annotations

from typing import Annotated

import typer

from .common import HomeOption, TodayOption, new_app, resolve_now, session

app = new_app("Preview email templates.", name="template")


@app.command("render")
def render_(
    template: Annotated[
        str, typer.Argument(help="Template name, e.g. welcome.", show_default=False)
    ],
    customer: Annotated[
        str, typer.Option(help="Render for this customer (email, external id or #id).")
    ],
    home: HomeOption = None,
    today: TodayOption = None,
) -> None:
    """Print the exact message TEMPLATE would make for a customer (headers, text, HTML)."""
    from ..mail import preview

    with session(home, today) as s:
        text = preview(
            s.store,
            s.library(),
            s.workspace.settings,
            s.workspace.templates_dir,
            template,
            customer,
            s.today,
            resolve_now(s.today, s.workspace),
        )
    typer.echo(text, nl=False)
