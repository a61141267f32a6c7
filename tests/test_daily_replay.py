"""The shipped after-sales funnel replayed day by day for 120 days.

A consultant who does every task on the day it is due, logs the contact, lets
`send` deliver the emails, and moves the customer by hand through the first
three steps (demand analysis -> contact on day 1, -> deployment on day 4,
-> 30-day follow-up on day 10). Every morning `run` ticks and `due` must list
exactly what the playbook schedules for that day, and nothing else.
"""

from __future__ import annotations

from datetime import date, timedelta

from funnelctl.activities import complete_task, log_touchpoint
from funnelctl.agenda import DueQuery, due_items
from funnelctl.cli.common import workspace_library
from funnelctl.engine import Engine, run_tick
from funnelctl.outline import outline
from funnelctl.store import Store, enrollments
from funnelctl.store.activities import open_due_by
from funnelctl.workspace import open_workspace

START = date(2026, 3, 2)
MOVES = {1: "customer-contact", 4: "deployment", 10: "follow-up-30"}

# What `due` shows each morning (kind, title); days not listed show nothing.
EXPECTED = {
    0: [("task", "Analyze customer demand")],
    1: [("email", "Email 'welcome' to send")],
    3: [("task", "Call the customer")],
    4: [("task", "Fill customer needs")],
    # deployment has no further step once its task is done: the list says so
    **{d: [("stagnation", "No next step")] for d in range(5, 10)},
    10: [("email", "Email 'follow-up-30' to send")],
    # day 40: the automatic move to the 60-day follow-up, and the 30-day task falls due
    40: [
        ("task", "Contact after another 30 days"),
        ("email", "Email 'follow-up-60' to send"),
    ],
    70: [
        ("task", "Contact after another 30 days (90 days in total)"),
        ("email", "Email 'follow-up-90' to send"),
    ],
    # day 100: approved -> won, and the relationship funnel starts
    100: [("email", "Email 'relationship-welcome' to send")],
    107: [("task", "Agree goals for the next quarter")],
}


def test_after_sales_replayed_day_by_day(run, workspace):
    assert (
        run(
            "customer",
            "add",
            "c@example.com",
            "--name",
            "Carla Reis",
            "--owner",
            "ana",
            "--signed-on",
            START.isoformat(),
        ).exit_code
        == 0
    )
    assert (
        run("enroll", "c@example.com", "after-sales", "--today", START.isoformat()).exit_code == 0
    )
    ws = open_workspace(workspace, workspace)
    library = workspace_library(ws)
    store = Store.open(ws.db_path)
    seen: dict[int, list[tuple[str, str]]] = {}
    try:
        for day in range(0, 121):
            today = (START + timedelta(days=day)).isoformat()
            if day in MOVES:
                with store.write():
                    enrollment = enrollments.active_in_funnel(store, "after-sales")
                    assert enrollment is not None
                    Engine(store, library, ws.settings, today).move(
                        enrollment, library.funnel("after-sales"), MOVES[day]
                    )
            run_tick(store, library, ws.settings, today)
            items = list(due_items(store, outline(library), DueQuery(today=today)))
            if items:
                seen[day] = [(i["kind"], i["title"]) for i in items]
            assert all(i["days_overdue"] == 0 for i in items if i["kind"] != "stagnation"), (
                day,
                items,
            )
            # The day's work: tasks done and logged, emails delivered.
            with store.write():
                for task in open_due_by(store, today):
                    complete_task(store, ws.settings, task, today, None)
                store.conn.execute(
                    "UPDATE outbox SET status = 'sent', sent_at = ? "
                    "WHERE status = 'queued' AND scheduled_on <= ?",
                    [today, today],
                )
            if any(kind == "task" for kind, _ in seen.get(day, [])):
                log_touchpoint(
                    store,
                    library,
                    ws.settings,
                    "c@example.com",
                    channel="phone",
                    direction="outbound",
                    summary="call",
                    on=today,
                    today=today,
                    by="ana",
                )
    finally:
        store.close()
    # (day 114 moves the customer to steady: its check-in is six weeks out, past day 120)
    assert {d: sorted(v) for d, v in seen.items()} == {d: sorted(v) for d, v in EXPECTED.items()}
    # The 60- and 90-day contacts happened although nothing was wrong at 30 days.
    assert 40 in seen and 70 in seen
