"""The funnelctl command: every command and group, put together."""

from __future__ import annotations

from . import (
    backup,
    customer,
    due,
    export,
    health,
    import_,
    init,
    log,
    moves,
    outbox,
    playbook,
    report,
    run,
    send,
    tasks,
)
from .common import new_app

app = new_app(
    "funnelctl runs a customer-success funnel from the terminal: YAML playbooks, "
    "a local SQLite store, Jinja follow-up emails."
)
app.command("init")(init.init)
app.add_typer(playbook.app)
app.add_typer(customer.app)
app.command("import")(import_.import_)
app.command("export")(export.export)
app.command("enroll")(moves.enroll)
app.command("move")(moves.move)
app.command("won")(moves.won)
app.command("lost")(moves.lost)
app.command("churn")(moves.churn)
app.command("due")(due.due)
app.command("done")(tasks.done)
app.command("snooze")(tasks.snooze_)
app.command("drop")(tasks.drop_)
app.command("log")(log.log)
app.command("signal")(health.signal)
app.command("at-risk")(health.at_risk)
app.command("run")(run.run)
app.command("send")(send.send_)
app.add_typer(outbox.app)
app.add_typer(outbox.templates)
app.command("report")(report.report)
app.add_typer(report.tickets)
app.command("backup")(backup.backup)
