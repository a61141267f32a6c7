"""The funnelctl command: every command and group, put together.

Each command lives in the module named after it (``at-risk`` in at_risk.py,
``import`` in import_.py); won, lost and churn share close.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import (
    at_risk,
    backup,
    close,
    customer,
    done,
    drop,
    due,
    enroll,
    export,
    help,
    import_,
    init,
    log,
    move,
    outbox,
    play,
    playbook,
    report,
    run,
    send,
    signal,
    snooze,
    task,
    template,
    ticket,
    undo,
)
from .common import HomeOption, TodayOption, new_app

app = new_app(
    "funnelctl runs a customer-success funnel from the terminal: YAML playbooks, "
    "a local SQLite store, Jinja follow-up emails."
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


app.command("init")(init.init)
app.add_typer(playbook.app)
app.add_typer(play.app)
app.add_typer(customer.app)
app.command("import")(import_.import_)
app.command("export")(export.export)
app.command("enroll")(enroll.enroll)
app.command("move")(move.move)
app.command("won")(close.won)
app.command("lost")(close.lost)
app.command("churn")(close.churn)
app.command("due")(due.due)
app.command("done")(done.done)
app.command("snooze")(snooze.snooze_)
app.command("drop")(drop.drop_)
app.command("undo")(undo.undo)
app.command("log")(log.log)
app.add_typer(task.app)
app.command("signal")(signal.signal)
app.command("at-risk")(at_risk.at_risk)
app.command("run")(run.run)
app.command("send")(send.send_)
app.add_typer(outbox.app)
app.add_typer(template.app)
app.command("report")(report.report)
app.add_typer(ticket.app)
app.command("backup")(backup.backup)
app.command("help")(help.help_)
