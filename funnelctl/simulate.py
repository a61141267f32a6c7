"""A day-by-day preview of what a playbook does to a new customer.

It runs the real engine on a throwaway in-memory database, so the preview is
exactly what the workspace would do, and the workspace itself is never touched.
The simulated consultant does every task on the day it is due (so ``then:``
follow-ups appear) and makes the manual moves given as STAGE@DAY.
"""

from __future__ import annotations

from typing import Any

from .activities import complete_task
from .agenda import DueQuery, due_items
from .dates import days_between, shift
from .engine import Engine
from .errors import UsageError
from .outline import outline
from .playbooks import Funnel, Library
from .store import Store, customers, enrollments, events, health, outbox, touchpoints
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


def parse_signals(text: str | None) -> dict[int, list[tuple[str, float]]]:
    from .health import check_metric, parse_value

    found: dict[int, list[tuple[str, float]]] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        measure, sep, day = part.partition("@")
        metric, eq, value = measure.partition("=")
        try:
            if not sep or not eq or not day.isdigit():
                raise ValueError("it must look like METRIC=VALUE@DAY, e.g. nps=3@80")
            found.setdefault(int(day), []).append((check_metric(metric), parse_value(value)))
        except ValueError as exc:
            raise UsageError(f"--signals: {part!r}: {exc}") from None
    return found


def simulate(
    library: Library,
    settings: Settings,
    funnel_id: str,
    *,
    start: str,
    days: int,
    moves: dict[int, list[str]],
    signals: dict[int, list[tuple[str, float]]] | None = None,
) -> list[dict[str, Any]]:
    funnel = library.funnel(funnel_id)
    for stages in moves.values():
        for stage in stages:
            funnel.stage(stage)
    run = _Simulation(Store.memory(), library, settings, funnel, start)
    try:
        run.sign_up()
        for day in range(days + 1):
            run.live(day, moves.get(day, []), (signals or {}).get(day, []))
    finally:
        run.store.close()
    return run.plan


class _Simulation:
    """One new customer in a throwaway book, lived day by day by the real engine."""

    def __init__(
        self, store: Store, library: Library, settings: Settings, funnel: Funnel, start: str
    ) -> None:
        self.store, self.library, self.settings, self.funnel = store, library, settings, funnel
        self.outline = outline(library)  # what the morning list reads of the playbooks
        self.start = start
        self.plan: list[dict[str, Any]] = []
        self.seen_alerts: set[tuple[str, str, str]] = set()
        self.customer_id = 0

    def note(self, day: int, kind: str, what: str, owner: str | None = None) -> None:
        self.plan.append(
            {"day": day, "date": shift(self.start, day), "kind": kind, "what": what, "owner": owner}
        )

    def sign_up(self) -> None:
        owner = self.settings.team[0] if self.settings.team else "you"
        with self.store.write():
            self.customer_id = customers.insert(
                self.store,
                {
                    "email": SAMPLE_EMAIL,
                    "name": "New Customer",
                    "owner": owner,
                    "signed_on": self.start,
                    "language": "en",
                },
                self.start,
            )
            customer = customers.get(self.store, self.customer_id)
            assert customer is not None
            engine = Engine(self.store, self.library, self.settings, self.start, "simulate")
            engine.enroll(customer, self.funnel, on=self.start)

    def live(self, day: int, moves: list[str], measured: list[tuple[str, float]]) -> None:
        date = shift(self.start, day)
        with self.store.write():
            for metric, value in measured:
                health.add_signal(
                    self.store,
                    customer_id=self.customer_id,
                    metric=metric,
                    value=value,
                    measured_on=date,
                    source="simulate",
                    today=date,
                )
                self.note(day, "signal", f"{metric} = {value:g}")
            engine = Engine(self.store, self.library, self.settings, date, "simulate")
            for stage in moves:
                enrollment = enrollments.active_in_funnel(self.store, self.funnel.id)
                if enrollment is not None and enrollment.stage != stage:
                    engine.move(enrollment, self.funnel, stage)
            engine.tick()
            self.note_history(day, date)
            self.note_plays(day, date)
            self.note_list(day, date)
            self.work(date)

    def note_history(self, day: int, date: str) -> None:
        for h in enrollments.history_on(self.store, date):
            if h.kind == "enroll":
                self.note(day, "enroll", f"enters {h.funnel} at {h.to_stage}")
            elif h.kind == "move":
                why = f" ({h.note})" if h.note else ""
                self.note(day, "move", f"{h.funnel}: {h.from_stage} -> {h.to_stage}{why}")
            else:
                self.note(day, h.kind, f"{h.funnel} closed as {h.kind}")

    def note_plays(self, day: int, date: str) -> None:
        """Health verdicts and play starts of the day, and the plays that waited."""
        for event in events.of_customer_on(self.store, self.customer_id, date):
            if event.kind == "health":
                self.note(day, "health", event.summary)
            elif event.summary.startswith("Play "):
                self.note(day, "play", event.summary)

    def note_list(self, day: int, date: str) -> None:
        """What the morning list shows that day: the work due, and each alert once."""
        for item in due_items(self.store, self.outline, DueQuery(today=date)):
            if item["kind"] == "task" and item["due_on"] == date:
                self.note(day, "task", item["title"], item["owner"])
            elif item["kind"] == "email" and item["due_on"] == date:
                template = outbox.template_of(self.store, item["id"])
                self.note(day, "email", f"send {template!r}", item["owner"])
            elif item["kind"] == "stagnation":
                key = (item["funnel"], item["stage"], item.get("alert", ""))
                if key not in self.seen_alerts:
                    self.seen_alerts.add(key)
                    what = f"{item['funnel']}/{item['stage']}: {item['title']}"
                    self.note(day, "alert", what, item["owner"])

    def work(self, date: str) -> None:
        """The simulated consultant does the day's work: tasks done, emails sent, and the
        contact logged (so health sees an attentive consultant, not silence)."""
        worked = 0
        for task in tasks.open_due_by(self.store, date):
            complete_task(self.store, self.settings, task, date, "done on time (simulated)")
            worked += 1
        worked += outbox.deliver_due_in_simulation(self.store, date, sent_at=date)
        if worked:
            touchpoints.add(
                self.store,
                customer_id=self.customer_id,
                channel="email",
                direction="outbound",
                happened_on=date,
                summary="simulated contact",
                by=None,
                today=date,
            )


# -- replay: the tasks one stage visit makes, for the report's workload projection -----------

# The owner of the replayed customer: a name no team member can have, so that a task the
# playbook gives to "the customer's owner" can be told from one it gives to a named person.
REPLAY_OWNER = "(owner)"


def replay_tasks(
    library: Library,
    settings: Settings,
    funnel_id: str,
    stage_id: str,
    *,
    start: str,
    days: int,
    moves: dict[int, list[str]],
) -> list[tuple[int, int, str | None]]:
    """Every task the real engine makes for a customer who enters ``stage_id`` on day 0
    and lives ``days`` days (timed moves, plays, ``then:`` follow-ups, and the manual
    ``moves``), each as (day made, day due, owner); owner None is the customer's owner.

    The consultant does each task on its due day, as in :func:`simulate`; nothing is
    noted for people, so a long replay stays cheap."""
    funnel = library.funnel(funnel_id)
    store = Store.memory()
    try:
        with store.write():
            customer_id = customers.insert(
                store,
                {"email": SAMPLE_EMAIL, "name": "New Customer", "owner": REPLAY_OWNER,
                 "signed_on": start, "language": "en"},
                start,
            )  # fmt: skip
            customer = customers.get(store, customer_id)
            assert customer is not None
            Engine(store, library, settings, start, "simulate").enroll(
                customer, funnel, stage_id, on=start
            )
        made: list[tuple[int, int, str | None]] = []
        seen = 0
        for day in range(days + 1):
            date = shift(start, day)
            with store.write():
                engine = Engine(store, library, settings, date, "simulate")
                for stage in moves.get(day, []):
                    enrollment = enrollments.active_in_funnel(store, funnel.id)
                    if enrollment is not None and enrollment.stage != stage:
                        engine.move(enrollment, funnel, stage)
                engine.tick()
                worked = 0
                for task in tasks.open_due_by(store, date):
                    complete_task(store, settings, task, date, "done on time (replay)")
                    worked += 1
                if worked + outbox.deliver_due_in_simulation(store, date, sent_at=date):
                    touchpoints.add(store, customer_id=customer_id, channel="email",
                                    direction="outbound", happened_on=date,
                                    summary="simulated contact", by=None, today=date)  # fmt: skip
                # what the day made: the engine's tasks and the follow-ups of the work done
                for task_id, due_on, owner in store.conn.execute(
                    "SELECT id, due_on, owner FROM activities WHERE id > ? ORDER BY id", [seen]
                ):
                    seen = task_id
                    made.append((day, days_between(start, due_on), _owner(owner)))
        return made
    finally:
        store.close()


def _owner(owner: str | None) -> str | None:
    return None if owner == REPLAY_OWNER else owner
