"""The command line: the only package that imports typer. One module per command or group."""

from __future__ import annotations

from . import backup, customer, export, import_, init, playbook
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
app.command("backup")(backup.backup)


def main() -> None:
    app(prog_name="funnelctl")
