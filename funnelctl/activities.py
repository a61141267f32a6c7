"""Activities: tasks and their owners, done / snooze / drop, next steps by hand,
touchpoints (a reply drops what asked for it) and escalations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import refs
from .context import build_context
from .dates import days_between, shift
from .errors import FunnelError, NotFound, UsageError
from .playbooks import CHANNELS, Library, TaskAction
from .store import Row, Store, customers, enrollments, events, outbox, touchpoints
from .store import activities as tasks
from .store import undo as undo_log
from .store.activities import Task
from .store.customers import Customer
from .store.enrollments import Enrollment
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
        raise NotFound(f"No task {refs.ref('task', task_id)} (see 'funnelctl due').")
    return task


# -- done, snooze, drop: several references at once, all or none -------------------------------


@dataclass(frozen=True)
class Worked:
    """One item a verb (done, snooze, drop, undo) changed. ``row`` is what scripts get: the
    item's columns with ``ref``, ``customer`` and ``next`` (the follow-up's ref or None);
    the rest is what a person is told."""

    ref: str
    title: str
    customer: str
    row: Row
    follow_up: Task | None = None


NOTHING_CHANGED = "nothing was changed."


def customer_label(store: Store, customer_id: int) -> str:
    customer = customers.get(store, customer_id)
    return customer.label if customer else f"#{customer_id}"


def email_title(email: outbox.OutboxEmail) -> str:
    return f"Email {email.template!r}"


def worked_task(
    store: Store, task_id: int, follow_up_id: int | None = None, **extra: Any
) -> Worked:
    """The task as it is now, told the way every verb tells it."""
    task = get_task(store, task_id)
    follow = tasks.get(store, follow_up_id) if follow_up_id is not None else None
    who = customer_label(store, task.customer_id)
    ref = refs.ref("task", task_id)
    row = {**task.as_dict(), "ref": ref, "customer": who, **extra}
    row.setdefault("next", refs.ref("task", follow.id) if follow else None)
    return Worked(ref, task.title, who, row, follow)


def worked_email(store: Store, email_id: int, **extra: Any) -> Worked:
    email = outbox.get(store, email_id)
    assert email is not None
    who = customer_label(store, email.customer_id)
    ref = refs.ref("email", email_id)
    title = email_title(email)
    row = {**email.as_dict(), "title": title, "ref": ref, "customer": who, **extra}
    row.setdefault("next", None)
    return Worked(ref, title, who, row)


def _open_task(store: Store, task_id: int) -> Task:
    """The open task ``task_id``; an unknown or closed one is refused by its ref."""
    ref = refs.ref("task", task_id)
    task = tasks.get(store, task_id)
    if task is None:
        raise NotFound(f"No task {ref} (see 'funnelctl due'); {NOTHING_CHANGED}")
    if task.status != "open":
        raise FunnelError(
            f"{ref} {task.title} ({customer_label(store, task.customer_id)}) is already "
            f"{task.status} (on {task.closed_on}); {NOTHING_CHANGED}"
        )
    return task


def _queued_email(store: Store, email_id: int) -> outbox.OutboxEmail:
    """The queued email ``email_id``, the only kind drop skips; any other is refused by
    its ref, with the way to settle it where there is one."""
    ref = refs.ref("email", email_id)
    email = outbox.get(store, email_id)
    if email is None:
        raise NotFound(f"No email {ref} (see 'funnelctl outbox list'); {NOTHING_CHANGED}")
    if email.status == outbox.Status.QUEUED:
        return email
    what = f"{ref} {email_title(email)} ({customer_label(store, email.customer_id)})"
    if email.status in ("failed", "uncertain"):
        why = f"is {email.status}: settle it with 'funnelctl outbox resolve {ref} --skip'"
    elif email.status in ("sent", "skipped", "superseded"):
        why = f"is already {email.status}"
    else:
        why = f"is {email.status}: only a queued email can be dropped"
    raise FunnelError(f"{what} {why}; {NOTHING_CHANGED}")


def complete(
    store: Store, settings: Settings, task_ids: Sequence[int], today: str, note: str | None
) -> list[Worked]:
    """Mark tasks done, all or none; each one's ``then:`` follow-up starts now, due
    counted from today. What undo needs is kept."""
    with store.write():
        command = undo_log.begin(store)
        done = []
        for task_id in task_ids:
            task = _open_task(store, task_id)
            follow_id = complete_task(store, settings, task, today, note)
            undo_log.record(
                store,
                command,
                "done",
                acted_on=today,
                task_id=task_id,
                value_before=task.note,
                value_after=note,
                follow_up_id=follow_id,
                touchpoint_id=_contact_made(store, task, today),
            )
            done.append((task_id, follow_id))
        return [worked_task(store, task_id, follow_id) for task_id, follow_id in done]


# Channels on which doing a task means the customer was contacted: the quiet alerts and
# the health model's days since the last touchpoint see a consultant who calls every week.
CONTACT_CHANNELS = frozenset(("email", "phone", "meeting", "in-person", "chat", "success-review"))


def _contact_made(store: Store, task: Task, today: str) -> int | None:
    """A task done by hand on a contact channel is an outbound touchpoint on it, dated the
    day it was done; its id, or None for work that reached nobody (a check of usage)."""
    if task.channel not in CONTACT_CHANNELS:
        return None
    return touchpoints.add(
        store,
        customer_id=task.customer_id,
        channel=task.channel,
        direction="outbound",
        happened_on=today,
        summary=f"Done: {refs.ref('task', task.id)} {task.title}",
        by="funnelctl done",
        today=today,
    )


def complete_task(
    store: Store, settings: Settings, task: Task, today: str, note: str | None
) -> int | None:
    """The work of :func:`complete`, inside the caller's transaction; the id of the
    follow-up task it created, if any."""
    task_id = task.id
    ref = refs.ref("task", task_id)
    tasks.close(store, task_id, "done", today, note)
    events.add(
        store,
        task.customer_id,
        today,
        "task",
        f"Done: {ref} {task.title}" + (f" ({note})" if note else ""),
    )
    if not task.then_spec:
        return None
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
        f"Task {refs.ref('task', new_id)} {follow.title!r} created, due "
        f"{shift(today, follow.due)} (after {ref})",
        source=task.source,
    )
    return new_id


def snooze(store: Store, task_ids: Sequence[int], today: str, until: str) -> list[Worked]:
    """Push tasks back to ``until``, all or none. ``until`` may be today: an overdue task
    the consultant will do today leaves the overdue list for today's."""
    if until < today:
        raise UsageError(f"Snooze to today ({today}) or a later day, not {until}.")
    with store.write():
        command = undo_log.begin(store)
        for task_id in task_ids:
            task = _open_task(store, task_id)
            tasks.reschedule(store, task_id, until, on=today)
            events.add(
                store,
                task.customer_id,
                today,
                "task",
                f"Snoozed: {refs.ref('task', task_id)} {task.title} until {until}",
            )
            undo_log.record(
                store,
                command,
                "snooze",
                acted_on=today,
                task_id=task_id,
                value_before=task.due_on,
                value_after=until,
            )
        return [worked_task(store, task_id) for task_id in task_ids]


def drop(store: Store, items: Sequence[refs.Ref], today: str, reason: str) -> list[Worked]:
    """Drop tasks no longer needed, and skip queued emails no longer wanted (``e7``: an
    email's reference only ever reaches the email), all or none."""
    with store.write():
        command = undo_log.begin(store)
        for item in items:
            if item.kind == "email":
                _skip_email(store, command, item.id, today, reason)
                continue
            task = _open_task(store, item.id)
            tasks.close(store, item.id, "dropped", today, reason)
            events.add(
                store, task.customer_id, today, "task", f"Dropped: {item} {task.title} ({reason})"
            )
            undo_log.record(
                store,
                command,
                "drop",
                acted_on=today,
                task_id=item.id,
                value_before=task.note,
                value_after=reason,
            )
        return [
            worked_email(store, item.id) if item.kind == "email" else worked_task(store, item.id)
            for item in items
        ]


def _skip_email(store: Store, command: int, email_id: int, today: str, reason: str) -> None:
    email = _queued_email(store, email_id)
    skipped = f"dropped by hand: {reason}"
    outbox.skip(store, email_id, skipped)
    events.add(
        store,
        email.customer_id,
        today,
        "email",
        f"Dropped: {refs.ref('email', email_id)} {email_title(email)} ({reason})",
    )
    undo_log.record(
        store,
        command,
        "drop",
        acted_on=today,
        email_id=email_id,
        value_before=email.reason,
        value_after=skipped,
    )


def drop_for_enrollment(store: Store, enrollment_id: int, today: str, reason: str) -> None:
    tasks.drop_for_enrollment(store, enrollment_id, today, reason)
    outbox.skip_for_enrollment(store, enrollment_id, reason)


# -- next steps planned by hand ---------------------------------------------------------------


@dataclass(frozen=True)
class NextStep:
    """A task planned by hand (``task add``, ``log --next``): due on a day, not after a delay.

    ``owner`` None is the enrollment's owner, else the customer's; ``funnel`` None is the
    customer's one active enrollment, or none at all when they have none (the task is the
    customer's alone)."""

    title: str
    due_on: str
    owner: str | None = None
    channel: str | None = None
    description: str | None = None
    funnel: str | None = None


def check_next_step(step: NextStep, library: Library, settings: Settings, today: str) -> NextStep:
    """``step`` with its title trimmed, or a UsageError for what cannot be planned: all
    of it checked before anything is written."""
    title = step.title.strip()
    if not title:
        raise UsageError("The task needs a title.")
    if any(char in title for char in "\r\n"):
        raise UsageError("A task's title is one line; put the details in --description.")
    if step.due_on < today:
        raise UsageError(
            f"--due {step.due_on} is in the past (today is {today}): plan a next step for "
            "today or later."
        )
    if step.channel is not None and step.channel not in CHANNELS:
        raise UsageError(
            f"--channel {step.channel!r} must be one of {', '.join(CHANNELS)}"
            + _did_you_mean(step.channel, CHANNELS)
        )
    if step.owner is not None:
        check_owner(step.owner, library, settings)
    return replace(step, title=title)


def check_owner(
    owner: str, library: Library, settings: Settings, *, label: str = "--owner"
) -> None:
    """An owner given by hand is a team member or ``partner:ID`` of a partner in the
    playbooks; anything else is a UsageError that says what was probably meant.

    ``label`` names where the owner was given (``--owner``; ``owner`` for a CSV cell).
    """
    partners = sorted(library.partners)
    if owner.startswith("partner:"):
        partner = owner.removeprefix("partner:")
        if partner in library.partners:
            return
        from difflib import get_close_matches

        close = get_close_matches(partner, partners, n=1)
        raise UsageError(
            f"{label} {owner!r}: no partner {partner!r} in the playbooks "
            f"(partners: {', '.join(partners) or 'none'})"
            + (f"; did you mean 'partner:{close[0]}'?" if close else ".")
        )
    if owner in settings.team:
        return
    if not settings.team:
        raise UsageError(
            f"{label} {owner!r}: funnelctl.yaml has no team; list the people who take tasks "
            "under team: there."
        )
    hint = _did_you_mean(owner, settings.team) or (
        "; give a team member, or partner:ID for a partner "
        f"({', '.join(partners) or 'none in the playbooks'})."
    )
    raise UsageError(
        f"{label} {owner!r} is not in the team of funnelctl.yaml ({', '.join(settings.team)})"
        + hint
    )


def _did_you_mean(value: str, choices: Sequence[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(value, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def add_task(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    step: NextStep,
    *,
    today: str,
) -> dict[str, Any]:
    """Plan a next step by hand for the customer ``ref``: one transaction."""
    step = check_next_step(step, library, settings, today)
    with store.write():
        customer = customers.find(store, ref)
        return plan_next_step(store, library, settings, customer, step, today=today)


def plan_next_step(
    store: Store,
    library: Library,
    settings: Settings,
    customer: Customer,
    step: NextStep,
    *,
    today: str,
) -> dict[str, Any]:
    """Create the task ``step`` (checked by :func:`check_next_step`) inside the caller's
    transaction, in the customer's enrollment; a partner who owns it is told by email.
    It counts as the enrollment's next step as any playbook task does."""
    enrollment = _enrollment_for(store, library, customer, step.funnel)
    owner = step.owner or (enrollment.owner if enrollment else None) or customer.owner
    partner = bool(owner and owner.startswith("partner:"))
    action = TaskAction(
        title=step.title,
        due=days_between(today, step.due_on),
        owner=owner,
        channel=step.channel,
        sourcing="outsourced" if partner else "internal",
        description=step.description,
    )
    task_id = create_task(
        store,
        action,
        settings=settings,
        customer_id=customer.id,
        enrollment_id=enrollment.id if enrollment else None,
        visit_id=enrollment.visit_id if enrollment else None,
        owner=owner,
        base_date=today,  # a partner is told today, however far ahead the task is due
        action_key=None,
        source="hand",
        today=today,
    )
    reference = refs.ref("task", task_id)
    events.add(
        store,
        customer.id,
        today,
        "task",
        f"Planned by hand: {reference} {step.title!r} for {owner or 'nobody'}, due {step.due_on}",
    )
    return {
        "id": task_id,
        "ref": reference,
        "customer": customer.label,
        "title": step.title,
        "due_on": step.due_on,
        "owner": owner,
        "channel": step.channel,
        "funnel": enrollment.funnel if enrollment else None,
        "stage": enrollment.stage if enrollment else None,
    }


def _enrollment_for(
    store: Store, library: Library, customer: Customer, funnel_id: str | None
) -> Enrollment | None:
    """The active enrollment a task planned by hand belongs to: the one in ``funnel_id``,
    else the customer's only one (several: say which), else none."""
    if funnel_id is not None:
        funnel = library.funnel(funnel_id)
        found = enrollments.active_in(store, customer.id, funnel.id)
        if found is None:
            mine = [e for e in enrollments.of_customer(store, customer.id) if e.funnel == funnel.id]
            why = f" (it is {mine[-1].status})" if mine else ""
            raise FunnelError(
                f"{customer.label} has no active enrollment in {funnel.id}{why}; leave out "
                "--funnel to plan the task for the customer alone."
            )
        return found
    if not enrollments.active_of_customer(store, customer.id):
        return None
    from .engine import pick_enrollment  # the engine builds on this module

    enrollment, _ = pick_enrollment(store, library, customer, funnel_id=None)
    return enrollment


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
    next_step: NextStep | None = None,
) -> dict[str, Any]:
    """Record an interaction; an inbound one drops what asked for a reply. With
    ``next_step``, plan it in the same transaction: both are kept, or neither."""
    if channel not in CHANNELS:
        raise UsageError(f"--channel {channel!r} must be one of {', '.join(CHANNELS)}")
    if direction not in DIRECTIONS:
        raise UsageError("--direction must be inbound or outbound")
    if on > today:
        raise UsageError(f"--on {on} is after today ({today}).")
    if next_step is not None:
        next_step = check_next_step(next_step, library, settings, today)
    with store.write():
        customer = customers.find(store, ref)
        touch_id, skipped, dropped = record_touchpoint(
            store,
            library,
            settings,
            customer,
            channel=channel,
            direction=direction,
            summary=summary,
            on=on,
            today=today,
            by=by,
        )
        planned = (
            plan_next_step(store, library, settings, customer, next_step, today=today)
            if next_step is not None
            else None
        )
    return {
        "touchpoint": touch_id,
        "customer": customer.email,
        "emails_skipped": skipped,
        "tasks_dropped": dropped,
        **({"next_step": planned} if planned is not None else {}),
    }


def record_touchpoint(
    store: Store,
    library: Library,
    settings: Settings,
    customer: Customer,
    *,
    channel: str,
    direction: str,
    summary: str,
    on: str,
    today: str,
    by: str | None,
) -> tuple[int, int, int]:
    """The touchpoint and what it settles: an inbound one skips the queued emails that
    wait for a reply, and the drop rules run. The caller holds the write transaction
    (`log`, the demo book). Returns the touchpoint's id, emails skipped, tasks dropped."""
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
    skipped = 0
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
    return touch_id, skipped, dropped


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
                store, customer.id, today, "task", f"drop_if of t{task.id} failed: {exc}", ok=False
            )
            continue
        tasks.close(store, task.id, "dropped", today, f"dropped: {task.drop_if}")
        events.add(
            store,
            customer.id,
            today,
            "task",
            f"Dropped: t{task.id} {task.title} ({task.drop_if})",
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
            title=f"Escalated: {task.title} (t{task.id}, overdue since {task.due_on})",
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
            f"Task t{task.id} escalated to {label} as t{new_id}",
            source=task.source,
        )
        count += 1
    return count
