"""Activities: tasks and their owners, the daily list, done / snooze / drop,
touchpoints (a reply drops what asked for it) and escalations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .context import build_context
from .dates import shift
from .errors import FunnelError, NotFound, UsageError
from .playbooks import CHANNELS, Library, TaskAction
from .store import Row, Store, customers, enrollments, events, outbox, touchpoints
from .store import activities as tasks
from .store.activities import Task
from .store.customers import Customer
from .workspace import Settings

DIRECTIONS = ("inbound", "outbound")


# -- owners ---------------------------------------------------------------------------------


class Assigner:
    """Resolves an owner spec (customer-owner, round-robin, least-busy, a name, partner:x)."""

    def __init__(self, store: Store, team: Sequence[str]) -> None:
        self.store = store
        self.team = tuple(team)
        self._load: dict[str, int] | None = None

    def resolve(self, spec: str, default: str | None) -> str | None:
        if spec == "customer-owner":
            return default
        if spec == "round-robin":
            if not self.team:
                return default
            turn = int(self.store.get_meta("round_robin") or 0)
            self.store.set_meta("round_robin", str(turn + 1))
            return self.team[turn % len(self.team)]
        if spec == "least-busy":
            if not self.team:
                return default
            if self._load is None:
                counts = tasks.open_load(self.store, self.team)
                self._load = {member: counts.get(member, 0) for member in self.team}
            return min(self.team, key=lambda member: (self._load or {})[member])
        return spec

    def took_task(self, owner: str | None) -> None:
        if self._load is not None and owner in self._load:
            self._load[owner] += 1


# -- tasks ---------------------------------------------------------------------------------


# A task's ``then:`` follow-up is kept with the task (``then_spec``) until the task is
# done, possibly for months, across upgrades of funnelctl. So it is stored in a shape of
# its own, versioned and limited to what creating the follow-up needs, never as the
# playbook's dataclass (whose fields may be renamed, and which carries the playbook's
# path on this machine). Version 1; store/migrations.py m006 rewrote the rows written
# before it. A new shape gets a new version, a migration, and a branch here.
SPEC_VERSION = 1
_SPEC_FIELDS = (
    "title",
    "owner",
    "channel",
    "sourcing",
    "description",
    "drop_if",
    "escalate_after",
    "escalate_to",
)


def task_spec(task: TaskAction) -> str:
    return json.dumps({"version": SPEC_VERSION, **_spec_body(task)}, sort_keys=True)


def _spec_body(task: TaskAction) -> dict[str, Any]:
    body: dict[str, Any] = {name: getattr(task, name) for name in _SPEC_FIELDS}
    body["due_days"] = task.due
    body["then"] = _spec_body(task.then) if task.then else None
    return body


def task_from_spec(text: str) -> TaskAction:
    data = json.loads(text)
    if data.get("version") != SPEC_VERSION:
        raise FunnelError(
            f"A task's follow-up was stored in shape {data.get('version')!r}, which this "
            f"funnelctl does not know (it writes shape {SPEC_VERSION}); upgrade funnelctl."
        )
    return _task_from_body(data)


def _task_from_body(body: dict[str, Any]) -> TaskAction:
    then = body.get("then")
    return TaskAction(
        **{name: body[name] for name in _SPEC_FIELDS},
        due=body["due_days"],
        then=_task_from_body(then) if then else None,
    )


def create_task(
    store: Store,
    task: TaskAction,
    *,
    settings: Settings,
    customer_id: int,
    enrollment_id: int | None,
    visit_id: int | None,
    owner: str | None,
    base_date: str,
    action_key: str | None,
    source: str | None,
    today: str,
    parent_id: int | None = None,
    kind: str = "task",
    partner_told_on: str | None = None,
) -> int:
    """Create one task. A partner's task also queues the email that tells them, dated
    ``partner_told_on`` (default the day the task starts): a task of a historical
    import is never mailed months late, as ``max_late_days`` says of every email."""
    due = shift(base_date, task.due)
    task_id = tasks.insert(
        store,
        {
            "customer_id": customer_id,
            "enrollment_id": enrollment_id,
            "visit_id": visit_id,
            "parent_id": parent_id,
            "kind": kind,
            "title": task.title,
            "description": task.description,
            "owner": owner,
            "channel": task.channel,
            "sourcing": task.sourcing,
            "due_on": due,
            "first_due_on": due,
            "source": source,
            "action_key": action_key,
            "drop_if": task.drop_if,
            "escalate_after": task.escalate_after,
            "escalate_to": task.escalate_to,
            "then_spec": task_spec(task.then) if task.then else None,
            "created_on": today,
            "cancel_on_exit": int(task.cancel_on_exit),
        },
    )
    if owner and owner.startswith("partner:"):
        on = partner_told_on or base_date
        tell_partner(store, settings, task_id, customer_id, enrollment_id, owner, on, today)
    return task_id


def tell_partner(
    store: Store,
    settings: Settings,
    task_id: int,
    customer_id: int,
    enrollment_id: int | None,
    owner: str,
    on: str,
    today: str,
) -> None:
    """Queue the email that hands task ``task_id`` to the partner ``owner`` (partner:id):
    once per task (its key), on ``on``, tied to no stage visit (the task stays owed when
    the customer moves on). If the task is closed before it goes, it is superseded."""
    from . import mail  # mail renders through the context, which reads the playbooks

    mail.queue_email(
        store,
        settings,
        customer_id=customer_id,
        enrollment_id=enrollment_id,
        visit_id=None,
        template=mail.PARTNER_TEMPLATE,
        scheduled_on=on,
        stop_on_reply=False,
        action_key=f"partner:{task_id}",
        today=today,
        partner=owner.removeprefix("partner:"),
        task_id=task_id,
    )


def create_child_task(
    store: Store,
    parent: Task,
    task: TaskAction,
    *,
    settings: Settings,
    owner: str | None,
    base_date: str,
    action_key: str,
    today: str,
    kind: str = "task",
    partner_told_on: str | None = None,
) -> int:
    """A task that follows from another (its then: follow-up, its escalation), in its place."""
    return create_task(
        store,
        task,
        settings=settings,
        customer_id=parent.customer_id,
        enrollment_id=parent.enrollment_id,
        visit_id=parent.visit_id,
        owner=owner,
        base_date=base_date,
        action_key=action_key,
        source=parent.source,
        today=today,
        parent_id=parent.id,
        kind=kind,
        partner_told_on=partner_told_on,
    )


def get_task(store: Store, task_id: int) -> Task:
    task = tasks.get(store, task_id)
    if task is None:
        raise NotFound(f"No task #{task_id} (see 'funnelctl due').")
    return task


def _open_task(store: Store, task_id: int) -> Task:
    task = get_task(store, task_id)
    if task.status != "open":
        raise FunnelError(f"Task #{task_id} is already {task.status} (on {task.closed_on}).")
    return task


def complete(store: Store, settings: Settings, task_id: int, today: str, note: str | None) -> Row:
    """Mark a task done; its ``then:`` follow-up starts now, due counted from today."""
    with store.write():
        complete_task(store, settings, _open_task(store, task_id), today, note)
    return get_task(store, task_id).as_dict()


def complete_task(
    store: Store, settings: Settings, task: Task, today: str, note: str | None
) -> None:
    """The work of :func:`complete`, inside the caller's transaction."""
    task_id = task.id
    tasks.close(store, task_id, "done", today, note)
    events.add(
        store,
        task.customer_id,
        today,
        "task",
        f"Done: #{task_id} {task.title}" + (f" ({note})" if note else ""),
    )
    if not task.then_spec:
        return
    follow = task_from_spec(task.then_spec)
    enrollment = enrollments.get(store, task.enrollment_id) if task.enrollment_id else None
    customer_owner = customers.owner_of(store, task.customer_id)
    default = (enrollment.owner if enrollment else None) or customer_owner
    owner = Assigner(store, settings.team).resolve(follow.owner or "customer-owner", default)
    new_id = create_child_task(
        store,
        task,
        follow,
        settings=settings,
        owner=owner,
        base_date=today,
        action_key=f"then:{task_id}",
        today=today,
    )
    events.add(
        store,
        task.customer_id,
        today,
        "action",
        f"Task #{new_id} {follow.title!r} created, due {shift(today, follow.due)} (after #{task_id})",
        source=task.source,
    )


def snooze(store: Store, task_id: int, today: str, until: str) -> Row:
    if until <= today:
        raise UsageError(f"Snooze to a day after today ({today}), not {until}.")
    with store.write():
        task = _open_task(store, task_id)
        tasks.reschedule(store, task_id, until)
        events.add(
            store,
            task.customer_id,
            today,
            "task",
            f"Snoozed: #{task_id} {task.title} until {until}",
        )
    return get_task(store, task_id).as_dict()


def drop(store: Store, task_id: int, today: str, reason: str) -> Row:
    with store.write():
        task = _open_task(store, task_id)
        tasks.close(store, task_id, "dropped", today, reason)
        events.add(
            store, task.customer_id, today, "task", f"Dropped: #{task_id} {task.title} ({reason})"
        )
    return get_task(store, task_id).as_dict()


def drop_for_enrollment(store: Store, enrollment_id: int, today: str, reason: str) -> None:
    tasks.drop_for_enrollment(store, enrollment_id, today, reason)
    outbox.skip_for_enrollment(store, enrollment_id, reason)


# -- touchpoints -------------------------------------------------------------------------------


def log_touchpoint(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    *,
    channel: str,
    direction: str,
    summary: str,
    on: str,
    today: str,
    by: str | None,
) -> dict[str, Any]:
    """Record an interaction; an inbound one drops what asked for a reply."""
    if channel not in CHANNELS:
        raise UsageError(f"--channel {channel!r} must be one of {', '.join(CHANNELS)}")
    if direction not in DIRECTIONS:
        raise UsageError("--direction must be inbound or outbound")
    if on > today:
        raise UsageError(f"--on {on} is after today ({today}).")
    with store.write():
        customer = customers.find(store, ref)
        touch_id = touchpoints.add(
            store,
            customer_id=customer.id,
            channel=channel,
            direction=direction,
            happened_on=on,
            summary=summary,
            by=by,
            today=today,
        )
        skipped = dropped = 0
        if direction == "inbound":
            # only emails of stage visits that began by the day of the reply
            skipped = outbox.skip_waiting_for_reply(store, customer.id, on, "the customer replied")
            if skipped:
                events.add(
                    store,
                    customer.id,
                    today,
                    "email",
                    f"{skipped} queued email(s) not sent: the customer replied",
                )
        dropped = apply_drop_rules(store, library, settings, customer, today)
    return {
        "touchpoint": touch_id,
        "customer": customer.email,
        "emails_skipped": skipped,
        "tasks_dropped": dropped,
    }


def apply_drop_rules(
    store: Store, library: Library, settings: Settings, customer: Customer, today: str
) -> int:
    """Drop the customer's open tasks whose ``drop_if`` is now true."""
    from .sandbox import TemplateError, evaluate  # Jinja loads only when a rule is read

    dropped = 0
    for task in tasks.droppable(store, customer.id):
        assert task.drop_if is not None
        enrollment = enrollments.get(store, task.enrollment_id) if task.enrollment_id else None
        funnel = library.funnels.get(enrollment.funnel) if enrollment else None
        stage = (
            next((s for s in funnel.stages if s.id == enrollment.stage), None)
            if funnel and enrollment
            else None
        )
        context = build_context(
            store, settings, customer, today, funnel=funnel, stage=stage, enrollment=enrollment
        )
        try:
            if not evaluate(task.drop_if, context):
                continue
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            events.add(
                store, customer.id, today, "task", f"drop_if of #{task.id} failed: {exc}", ok=False
            )
            continue
        tasks.close(store, task.id, "dropped", today, f"dropped: {task.drop_if}")
        events.add(
            store,
            customer.id,
            today,
            "task",
            f"Dropped: #{task.id} {task.title} ({task.drop_if})",
        )
        dropped += 1
    return dropped


# -- escalations ---------------------------------------------------------------------------------


def escalate_overdue(store: Store, library: Library, settings: Settings, today: str) -> int:
    """Create, once, an escalation task for every task overdue by its escalate_after."""
    count = 0
    for task in tasks.to_escalate(store, today):
        assert task.escalate_after is not None and task.escalate_to is not None
        at = shift(task.due_on, task.escalate_after)
        if at > today:
            continue
        target = task.escalate_to
        label = target
        if target.startswith("partner:"):
            partner = library.partners.get(target.removeprefix("partner:"))
            label = f"{partner.name} <{partner.email}>" if partner else target
        escalation = TaskAction(
            title=f"Escalated: {task.title} (#{task.id}, overdue since {task.due_on})",
            description=f"Escalated to {label} after {task.escalate_after} days overdue.",
            channel=task.channel,
            sourcing="outsourced" if target.startswith("partner:") else "internal",
        )
        new_id = create_child_task(
            store,
            task,
            escalation,
            settings=settings,
            owner=target,
            base_date=at,
            action_key=f"escalate:{task.id}",
            today=today,
            kind="escalation",
            partner_told_on=today,  # the escalation happens now, even when the run was late
        )
        tasks.mark_escalated(store, task.id, at)
        events.add(
            store,
            task.customer_id,
            at,
            "action",
            f"Task #{task.id} escalated to {label} as #{new_id}",
            source=task.source,
        )
        count += 1
    return count
