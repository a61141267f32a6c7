"""funnelctl play list | run PLAY CUSTOMER"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import output
from ..output import OutputFormat
from .common import CustomerArg, FormatOption, HomeOption, TodayOption, new_app, session, who
from .playbook import plays

app = new_app("The customer-journey plays: list them, start one by hand.", name="play")
app.command("list", help="List the plays: what, when, who, channel and sourcing.")(plays)


@app.command("run")
def run_(
    play: Annotated[str, typer.Argument(help="The play's id (funnelctl play list).")],
    customer: CustomerArg,
    home: HomeOption = None,
    today: TodayOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Start a play for a customer now: an escalation, a hand-off to a partner, a rescue.

    Its tasks and emails attach to the customer's current enrollment, dated today; asking
    again the same day does nothing.
    """
    from ..engine import play_customer

    with session(home, today) as s:
        result = play_customer(
            s.store,
            s.library(),
            s.workspace.settings,
            customer,
            play,
            today=s.today,
            by=who(),
        )
    output.render_object(result, fmt, title=f"Play {play}")
