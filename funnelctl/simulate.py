"""A day-by-day preview of what a playbook does to a new customer.

It runs the real engine on a throwaway in-memory database, so the preview is
exactly what the workspace would do, and the workspace itself is never touched.
The simulated consultant does every task on the day it is due (so ``then:``
follow-ups appear) and makes the manual moves given as STAGE@DAY.
"""

from __future__ import annotations

from typing import Any

from .activities import DueQuery, complete_task, due_items
from .dates import shift
from .engine import Engine
from .errors import UsageError
from .playbooks import Library
from .store import Store, customers, enrollments, outbox, touchpoints
from .store import activities as tasks
from .workspace import Settings

SAMPLE_EMAIL = "new.customer@example.com"


def parse_moves(text: str | None) -> dict[int, list[str]]:
    moves: dict[int, list[str]] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        stage, sep, day = part.partition("@")
        if not sep or not day.isdigit() or not stage:
            raise UsageError(f"--moves: {part!r} must look like STAGE@DAY, e.g. deployment@3")
        moves.setdefault(int(day), []).append(stage)
    return moves


def simulate(
    library: Library,
    settings: Settings,
    funnel_id: str,
    *,
    start: str,
    days: int,
    moves: dict[int, list[str]],
) -> list[dict[str, Any]]:
    funnel = library.funnel(funnel_id)
    for stages in moves.values():
        for stage in stages:
            funnel.stage(stage)
    store = Store.memory()
    plan: list[dict[str, Any]] = []

    def note(day: int, kind: str, what: str, owner: str | None = None) -> None:
        plan.append(
            {"day": day, "date": shift(start, day), "kind": kind, "what": what, "owner": owner}
        )

    try:
        owner = settings.team[0] if settings.team else "you"
        with store.write():
            cid = customers.insert(
                store,
                {
                    "email": SAMPLE_EMAIL,
                    "name": "New Customer",
                    "owner": owner,
                    "signed_on": start,
                    "language": "en",
                },
                start,
            )
            customer = customers.get(store, cid)
            assert customer is not None
            Engine(store, library, settings, start, "simulate").enroll(customer, funnel, on=start)
        seen_alerts: set[tuple[str, str, str]] = set()
        for day in range(days + 1):
            date = shift(start, day)
            with store.write():
                engine = Engine(store, library, settings, date, "simulate")
                for stage in moves.get(day, []):
                    enrollment = enrollments.active_in_funnel(store, funnel.id)
                    if enrollment is not None and enrollment["stage"] != stage:
                        engine.move(enrollment, funnel, stage)
                engine.tick()
                for h in enrollments.history_on(store, date):
                    if h["kind"] == "enroll":
                        note(day, "enroll", f"enters {h['funnel']} at {h['to_stage']}")
                    elif h["kind"] == "move":
                        why = f" ({h['note']})" if h["note"] else ""
                        note(
                            day, "move", f"{h['funnel']}: {h['from_stage']} -> {h['to_stage']}{why}"
                        )
                    else:
                        note(day, h["kind"], f"{h['funnel']} closed as {h['kind']}")
                for item in due_items(store, library, DueQuery(today=date)):
                    if item["kind"] == "task" and item["due_on"] == date:
                        note(day, "task", item["title"], item["owner"])
                    elif item["kind"] == "email" and item["due_on"] == date:
                        template = outbox.template_of(store, item["id"])
                        note(day, "email", f"send {template!r}", item["owner"])
                    elif item["kind"] == "stagnation":
                        key = (item["funnel"], item["stage"], item.get("alert", ""))
                        if key not in seen_alerts:
                            seen_alerts.add(key)
                            note(
                                day,
                                "alert",
                                f"{item['funnel']}/{item['stage']}: {item['title']}",
                                item["owner"],
                            )
                # The simulated consultant does the day's work: tasks done, emails sent, and
                # the contact logged (so health sees an attentive consultant, not silence).
                worked = 0
                for task in tasks.open_due_by(store, date):
                    complete_task(store, settings, task, date, "done on time (simulated)")
                    worked += 1
                worked += outbox.deliver_due_in_simulation(store, date, sent_at=date)
                if worked:
                    touchpoints.add(
                        store,
                        customer_id=cid,
                        channel="email",
                        direction="outbound",
                        happened_on=date,
                        summary="simulated contact",
                        by=None,
                        today=date,
                    )
    finally:
        store.close()
    return plan
