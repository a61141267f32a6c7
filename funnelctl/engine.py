"""The funnel engine: enroll, move, close and reopen; entry actions; the daily tick.

Every change of stage lands in the stage history (never rewritten). Entry
actions run once per stage visit: each is claimed in ``action_runs`` under a
key made of the enrollment, the visit (the history row of the entry) and the
action's place in the playbook, so re-running a command never repeats one,
while re-entering a stage later (a new visit) runs them again.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from typing import Any, Generic, TypeVar

from . import activities, mail
from .context import Lazy, build_context
from .dates import days_between, shift
from .errors import FunnelError, NotFound, UsageError
from .playbooks import (
    Action,
    AssignAction,
    CloseAction,
    EmailAction,
    EnrollAction,
    Funnel,
    Library,
    Play,
    PlayAction,
    Stage,
    TaskAction,
    describe_action,
    owned_by,
)
from .sandbox import Evaluator, TemplateError, undeclared_names
from .store import Store, customers, enrollments, events, outbox
from .store import activities as tasks
from .store import plays as play_starts
from .store.customers import Customer
from .store.enrollments import Enrollment
from .workspace import Settings

CLOSED = ("won", "lost", "churned")
TICK_BY = "funnelctl run"  # who the stage history says made the daily tick's moves


class ConditionError(FunnelError):
    """A playbook condition that cannot be evaluated for this customer: that action fails
    (a line in the timeline), the others still run."""


# What evaluating a user's expression can raise: Jinja's own errors (an undefined name, a
# blocked attribute) and Python's for an operation on the customer's data (``None < 1000``,
# a division by zero, a range too large).
CONDITION_ERRORS = (TemplateError, TypeError, ValueError, KeyError, ArithmeticError)


def customer_label(customer: Customer) -> str:
    return customer.label


# -- records: the stage history -------------------------------------------------------------
# The record_* functions write the stage history and the enrollment only; they never run an
# action. The Engine methods of the same verbs call them and then run the entry actions.


def record_enrollment(
    store: Store,
    customer: Customer,
    funnel: Funnel,
    *,
    stage_id: str | None,
    on: str,
    by: str | None = None,
    note: str | None = None,
) -> int:
    """Put ``customer`` in ``funnel`` at ``stage_id`` (default the first stage) as of ``on``.

    Records only (no actions). The caller holds the write transaction. Returns the enrollment id.
    """
    stage = funnel.stage(stage_id) if stage_id else funnel.stages[0]
    if enrollments.active_in(store, customer.id, funnel.id):
        raise FunnelError(f"Customer {customer.label} is already in funnel {funnel.id!r}.")
    enrollment_id = enrollments.insert(
        store,
        customer_id=customer.id,
        funnel=funnel.id,
        stage=stage.id,
        on=on,
        owner=customer.owner,
    )
    visit_id = enrollments.add_history(
        store,
        enrollment_id=enrollment_id,
        customer_id=customer.id,
        funnel=funnel.id,
        kind="enroll",
        from_stage=None,
        to_stage=stage.id,
        moved_on=on,
        by=by,
        note=note,
    )
    enrollments.set_visit(store, enrollment_id, visit_id)
    return enrollment_id


def record_move(
    store: Store,
    enrollment: Enrollment,
    funnel: Funnel,
    to_stage: str,
    *,
    on: str,
    by: str | None = None,
    note: str | None = None,
) -> int:
    """Move an active enrollment to ``to_stage`` (either direction, as the funnel allows).

    Records only. Returns the new stage visit's history id.
    """
    target = funnel.stage(to_stage)
    if enrollment.status != "active":
        raise FunnelError(
            f"The {funnel.id} enrollment is {enrollment.status}; reopen it with --reopen."
        )
    current = enrollment.stage
    if current == target.id:
        raise FunnelError(f"Already at stage {target.id!r} of {funnel.id}.")
    known = {s.id for s in funnel.stages}
    # A stage renamed or removed from the playbook: the customer can still be moved out.
    step = funnel.index(target.id) - funnel.index(current) if current in known else 1
    if step < 0 and not funnel.allow_backward:
        raise FunnelError(
            f"Funnel {funnel.id} does not allow moving back from {current} to {target.id}."
        )
    if step > 1 and not funnel.allow_skip:
        nxt = funnel.next_stage(current)
        raise FunnelError(
            f"Funnel {funnel.id} does not allow skipping stages: from {current} the next is "
            f"{nxt.id if nxt else 'none'}."
        )
    if on < enrollment.entered_on:
        raise FunnelError(
            f"Cannot move on {on}: the customer entered {current} on {enrollment.entered_on}."
        )
    visit_id = enrollments.add_history(
        store,
        enrollment_id=enrollment.id,
        customer_id=enrollment.customer_id,
        funnel=funnel.id,
        kind="move",
        from_stage=current,
        to_stage=target.id,
        moved_on=on,
        by=by,
        note=note,
    )
    enrollments.enter_stage(store, enrollment.id, target.id, on, visit_id)
    return visit_id


def leave_visit(store: Store, enrollment: Enrollment, on: str) -> int:
    """The stage visit ``enrollment`` was in has ended: its queued emails will not be sent
    (superseded), and its open tasks that ask for it are dropped; the others stay (a
    promised call is still owed). Returns how many emails were superseded."""
    if enrollment.visit_id is None:
        return 0
    why = f"left {enrollment.stage} on {on}"
    superseded = outbox.supersede_visit(store, enrollment.visit_id, why)
    if superseded:
        events.add(
            store,
            enrollment.customer_id,
            on,
            "email",
            f"{superseded} queued email(s) of {enrollment.stage} superseded: {why}",
        )
    dropped = tasks.drop_on_exit(store, enrollment.id, enrollment.visit_id, on, why)
    if dropped:
        events.add(store, enrollment.customer_id, on, "task", f"{dropped} task(s) dropped: {why}")
    return superseded


def record_close(
    store: Store,
    enrollment: Enrollment,
    status: str,
    *,
    on: str,
    by: str | None = None,
    reason: str | None = None,
) -> None:
    """Close an active enrollment as won, lost or churned; lost and churned drop what was open."""
    assert status in CLOSED
    if on < enrollment.entered_on:
        raise FunnelError(
            f"Cannot close on {on}: the customer entered {enrollment.stage} on "
            f"{enrollment.entered_on}."
        )
    if enrollment.status != "active":
        raise FunnelError(f"The {enrollment.funnel} enrollment is already {enrollment.status}.")
    enrollments.add_history(
        store,
        enrollment_id=enrollment.id,
        customer_id=enrollment.customer_id,
        funnel=enrollment.funnel,
        kind=status,
        from_stage=enrollment.stage,
        to_stage=enrollment.stage,
        moved_on=on,
        by=by,
        note=reason,
    )
    enrollments.close(store, enrollment.id, status, on, reason)
    if status != "won":
        activities.drop_for_enrollment(store, enrollment.id, on, f"enrollment {status}")


def record_reopen(
    store: Store,
    enrollment: Enrollment,
    funnel: Funnel,
    stage_id: str,
    *,
    on: str,
    by: str | None,
    note: str | None,
) -> int:
    """Reopen a closed enrollment at ``stage_id``: a new stage visit."""
    if enrollment.status == "active":
        raise FunnelError(f"The {funnel.id} enrollment is not closed; move it without --reopen.")
    if enrollment.closed_on and on < enrollment.closed_on:
        raise FunnelError(
            f"Cannot reopen on {on}: the enrollment was closed on {enrollment.closed_on}."
        )
    if enrollments.active_in(store, enrollment.customer_id, funnel.id):
        raise FunnelError(f"The customer already has an active {funnel.id} enrollment.")
    stage = funnel.stage(stage_id)
    visit_id = enrollments.add_history(
        store,
        enrollment_id=enrollment.id,
        customer_id=enrollment.customer_id,
        funnel=funnel.id,
        kind="reopen",
        from_stage=enrollment.stage,
        to_stage=stage.id,
        moved_on=on,
        by=by,
        note=note,
    )
    enrollments.reopen(store, enrollment.id, stage.id, on, visit_id)
    return visit_id


@dataclass(frozen=True)
class Step:
    """One claimed action about to run: for whom, in which enrollment and stage visit,
    dated which day, claimed under which key, and where it stands in the playbook."""

    customer: Customer
    enrollment: Enrollment
    funnel: Funnel
    stage: Stage
    on: str
    key: str
    where: str

    @property
    def default_owner(self) -> str | None:
        return self.enrollment.owner or self.customer.owner


A = TypeVar("A", bound=Action)


@dataclass(frozen=True)
class Runner(Generic[A]):
    """How the engine runs one action type: ``run`` returns the outcome kept in action_runs."""

    run: Callable[[Engine, A, Step], str]
    changes: bool  # may change the enrollment or the customer


# -- the engine: records plus entry actions ----------------------------------------------------


@dataclass
class Engine:
    """Moves with their consequences. Every method runs inside the caller's transaction."""

    store: Store
    library: Library
    settings: Settings
    today: str
    by: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # The daily tick catching up on days it did not run: the emails of a back-dated stage
    # entry go out today (late, not lost) instead of being skipped as stale.
    catching_up: bool = False

    def __post_init__(self) -> None:
        self.assigner = activities.Assigner(self.store, self.settings.team)
        # the last start of each play of some customers, read at once (know_play_starts)
        self._starts: dict[tuple[int, str], str] = {}
        self._starts_of: set[int] = set()
        # a play started for thousands of customers in one run: its tasks' owner rules
        # and one Jinja context for its conditions are made once, not per customer
        self._owned: dict[tuple[int, str], tuple[TaskAction, TaskAction]] = {}
        self._evaluator: Evaluator | None = Evaluator({})

    def know_play_starts(self, customer_ids: list[int] | None) -> None:
        """Read the last starts of every play of ``customer_ids`` in one query, for the
        daily run about to start plays for many of them (None: forget them). A start
        recorded meanwhile updates them; a start dated another day reads the table."""
        self._starts_of = set(customer_ids or ())
        self._starts = (
            play_starts.last_starts(self.store, customer_ids, self.today) if customer_ids else {}
        )

    def _last_start(self, customer_id: int, play_id: str, on: str) -> str | None:
        if on == self.today and customer_id in self._starts_of:
            return self._starts.get((customer_id, play_id))
        return play_starts.last_start(self.store, customer_id, play_id, on)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _enrollment(self, enrollment_id: int) -> Enrollment:
        enrollment = enrollments.get(self.store, enrollment_id)
        assert enrollment is not None
        return enrollment

    def enroll(
        self,
        customer: Customer,
        funnel: Funnel,
        stage_id: str | None = None,
        *,
        on: str | None = None,
        note: str | None = None,
        run_actions: bool = True,
    ) -> Enrollment:
        day = on or self.today
        enrollment_id = record_enrollment(
            self.store, customer, funnel, stage_id=stage_id, on=day, by=self.by, note=note
        )
        enrollment = self._enrollment(enrollment_id)
        self._count("enrolled")
        if run_actions:
            if enrollment.stage != funnel.stages[0].id and not customer.owner:
                self._owner_by_stage_rule(customer, enrollment, funnel.stage(enrollment.stage))
                enrollment = self._enrollment(enrollment_id)
            self.run_entry(enrollment, funnel)
        return self._enrollment(enrollment_id)

    def _owner_by_stage_rule(
        self, customer: Customer, enrollment: Enrollment, stage: Stage
    ) -> None:
        """A customer who joins mid-funnel (an import, ``enroll --stage``) without an owner
        never passed the stage that assigns one: they get one by the stage's owner rule,
        and when that rule is the customer's owner (there is none), from the team in turn."""
        rule = stage.owner
        if rule == "customer-owner" or rule.startswith("partner:"):
            rule = "round-robin"
        owner = self.assigner.resolve(rule, None)
        if owner is None:
            return  # no team: nobody to give the customer to
        enrollments.set_owner(self.store, enrollment.id, owner)
        customers.update(self.store, customer.id, {"owner": owner}, self.today)
        events.add(
            self.store,
            customer.id,
            enrollment.entered_on,
            "action",
            f"Assigned to {owner} (joined {enrollment.funnel} at {stage.id} without an owner)",
        )

    def move(
        self,
        enrollment: Enrollment,
        funnel: Funnel,
        to_stage: str,
        *,
        on: str | None = None,
        note: str | None = None,
        by: str | None = None,
    ) -> Enrollment:
        """Move and run the new stage's entry actions; ``by`` overrides the engine's own."""
        day = on or self.today
        record_move(self.store, enrollment, funnel, to_stage, on=day, by=by or self.by, note=note)
        superseded = leave_visit(self.store, enrollment, day)
        if superseded:
            self.counts["superseded"] = self.counts.get("superseded", 0) + superseded
        moved = self._enrollment(enrollment.id)
        self._count("moved")
        self.run_entry(moved, funnel)
        return self._enrollment(enrollment.id)

    def reopen(
        self,
        enrollment: Enrollment,
        funnel: Funnel,
        stage_id: str | None,
        *,
        note: str | None = None,
    ) -> Enrollment:
        record_reopen(
            self.store,
            enrollment,
            funnel,
            stage_id or enrollment.stage,
            on=self.today,
            by=self.by,
            note=note,
        )
        # what a won enrollment still had queued belongs to the visit it closed in
        leave_visit(self.store, enrollment, self.today)
        reopened = self._enrollment(enrollment.id)
        self.run_entry(reopened, funnel)
        return self._enrollment(enrollment.id)

    def close(
        self,
        enrollment: Enrollment,
        status: str,
        *,
        reason: str | None = None,
        on: str | None = None,
    ) -> Enrollment:
        record_close(self.store, enrollment, status, on=on or self.today, by=self.by, reason=reason)
        return self._enrollment(enrollment.id)

    # -- entry actions ----------------------------------------------------------------------

    def run_entry(self, enrollment: Enrollment, funnel: Funnel) -> None:
        """Run the on_enter actions of the enrollment's current stage visit, dated its entry."""
        stage = funnel.stage(enrollment.stage)
        prefix = f"{enrollment.id}:{enrollment.visit_id}"
        self._run(enrollment, funnel, stage, stage.on_enter, prefix, f"{funnel.id}/{stage.id}")

    def run_play(
        self,
        customer: Customer,
        play_id: str,
        *,
        key: str,
        source: str,
        episode_id: int | None = None,
        opportunity: bool = False,
        at_risk: bool | None = None,
        current: Enrollment | None = None,
    ) -> bool:
        """Start a play for a customer, dated today, once per ``key``, in their current
        enrollment: a health trigger (``source`` "health", with its episode) or a start
        by hand ("hand"). Its emails and tasks belong to no stage visit: leaving the stage
        does not end a rescue. Returns whether it started.

        ``current``: the customer's current enrollment, when the caller has read it (and
        ``customer``) since anything last changed either: neither is read again."""
        enrollment = current or enrollments.current(self.store, customer.id)
        if enrollment is None:
            return False
        funnel = self.library.funnel(enrollment.funnel)
        return self._begin_play(
            customer,
            replace(enrollment, visit_id=None),
            funnel,
            funnel.stage(enrollment.stage),
            self.library.plays[play_id],
            key=key,
            on=self.today,
            source=source,
            episode_id=episode_id,
            opportunity=opportunity,
            at_risk=at_risk,  # health has just scored the customer: no second scoring
            known=current is not None,
        )

    def _begin_play(
        self,
        customer: Customer,
        enrollment: Enrollment,
        funnel: Funnel,
        stage: Stage,
        play: Play,
        *,
        key: str,
        on: str,
        source: str,
        episode_id: int | None = None,
        opportunity: bool = False,
        at_risk: bool | None = None,
        where: str | None = None,
        known: bool = False,
    ) -> bool:
        """Run a play's actions under ``key`` unless its cadence says no: an automatic
        start (not by hand) waits out the play's cooldown since the customer's last start,
        and a play held while the customer is at risk does not start then. Each start is
        recorded; a refusal is a line in the timeline. ``known``: ``customer`` and
        ``enrollment`` are as they are now (run_play's ``current``)."""
        if source != "hand":
            why = self._play_held(customer, play, on, opportunity=opportunity, at_risk=at_risk)
            if why:
                events.add(
                    self.store,
                    customer.id,
                    on,
                    "action",
                    f"Play {play.id!r} not started: {why}",
                    source=f"play {play.id}",
                )
                self._count("plays_held")
                return False
        play_starts.record(
            self.store,
            customer_id=customer.id,
            play=play.id,
            started_on=on,
            source=source,
            episode_id=episode_id,
            action_key=key,
        )
        if customer.id in self._starts_of and on <= self.today:
            last = self._starts.get((customer.id, play.id))
            self._starts[(customer.id, play.id)] = max(on, last) if last else on
        events.add(
            self.store,
            customer.id,
            on,
            "action",
            f"Play {play.id!r} started: {play.title}",
            source=where or f"play {play.id}",
        )
        self._run(
            enrollment,
            funnel,
            stage,
            play.actions,
            key,
            f"play {play.id}",
            on=on,
            customer=customer if known else None,
        )
        return True

    def _play_held(
        self, customer: Customer, play: Play, on: str, *, opportunity: bool, at_risk: bool | None
    ) -> str | None:
        """Why an automatic start of ``play`` on ``on`` must not happen, or None."""
        last = self._last_start(customer.id, play.id, on)
        if last is not None and days_between(last, on) < play.cooldown:
            return f"it started on {last}, inside its cooldown of {play.cooldown} days"
        if play.held_when_at_risk(opportunity=opportunity):
            if at_risk is None:
                from .health import at_risk_now  # the health model reads the engine's tables

                # the verdict of today: the start is decided now, even when dated back
                at_risk = at_risk_now(self.store, self.library, self.settings, customer, self.today)
            if at_risk:
                return "the customer is at risk (unless_at_risk)"
        return None

    def _run(
        self,
        enrollment: Enrollment,
        funnel: Funnel,
        stage: Stage,
        actions: Sequence[Action],
        prefix: str,
        source: str,
        *,
        on: str | None = None,
        customer: Customer | None = None,
    ) -> None:
        """Claim and run ``actions``; what they create belongs to ``enrollment.visit_id``
        (None for a play started by health or by hand: leaving the stage does not end it).
        ``customer``: the customer as they are now, ``enrollment`` too (the caller has
        just read both): neither is read again before an action changes them."""
        # re-read only after an action that may change them
        current: Enrollment | None = enrollment if customer is not None else None
        day = on or enrollment.entered_on  # stage actions count from the visit's entry
        for index, action in enumerate(actions):
            key = f"{prefix}:{index}"
            if not enrollments.claim_action(
                self.store, key, enrollment.customer_id, enrollment.id, self.today
            ):
                continue  # this action already ran for this stage visit
            if current is None or customer is None:
                current = self._enrollment(enrollment.id)
                if enrollment.visit_id is None:
                    current = replace(current, visit_id=None)
                customer = customers.get(self.store, current.customer_id)
                assert customer is not None
            runner = RUNNERS[type(action)]
            step = Step(customer, current, funnel, stage, day, key, f"{source} #{index + 1}")
            outcome = self._attempt(action, runner, step)
            enrollments.action_outcome(self.store, key, outcome)
            if runner.changes:
                current = customer = None

    def _attempt(self, action: Action, runner: Runner[Any], step: Step) -> str:
        """Run one claimed action unless its condition is false. A FunnelError (the user's
        data or playbook) fails that action with a line in the timeline; anything else is a
        bug and propagates. Returns the outcome kept in action_runs."""
        try:
            if action.when and not self._condition(action.when, step):
                outcome = f"skipped ({describe_action(action)}): condition is false"
                self._note(step, outcome.capitalize())
                return outcome
            return runner.run(self, action, step)
        except FunnelError as exc:
            reason = exc.message or str(exc)
            self._note(step, f"{describe_action(action)}: {reason}", ok=False)
            self._count("failed")
            return f"failed: {reason}"

    def _note(self, step: Step, text: str, *, ok: bool = True) -> None:
        """A line in the customer's timeline about the action of ``step``, dated its day."""
        events.add(self.store, step.customer.id, step.on, "action", text, ok=ok, source=step.where)

    def _condition(self, expression: str, step: Step) -> bool:
        # only the names the expression reads: a play started for thousands of customers
        # at once evaluates its conditions for each (one that does not parse fails below)
        try:
            names: frozenset[str] | None = undeclared_names(expression)
        except TemplateError:
            names = None
        context = build_context(
            self.store,
            self.settings,
            step.customer,
            self.today,
            funnel=step.funnel,
            stage=step.stage,
            enrollment=step.enrollment,
            names=names,
        )
        if "health" in expression:
            from .health import verdict_now  # the health model reads the engine's tables

            # scored now: the gate of an advance or a stage's condition must not act on
            # yesterday's verdict (the run keeps today's snapshot after the moves)
            context["health"] = Lazy(
                {},
                lambda: verdict_now(
                    self.store, self.library, self.settings, step.customer, self.today
                ),
                "health",
            )
        # the engine's evaluator, unless a condition is being evaluated already (reading
        # `health` scores the customer now, which might come back here)
        evaluator, self._evaluator = self._evaluator or Evaluator({}), None
        try:
            evaluator.reset(context)
            return bool(evaluator(expression))
        except CONDITION_ERRORS as exc:
            raise ConditionError(getattr(exc, "message", None) or str(exc)) from exc
        finally:
            self._evaluator = evaluator

    # -- one method per action type (RUNNERS, below the class, maps each type to its method) --

    def _create_task(self, action: TaskAction, step: Step) -> str:
        # a task that names no owner follows its stage's rule (a play's: the stage the
        # customer is in), and so do its then: follow-ups
        action = self._owned_by(action, step.stage.owner)
        assert action.owner is not None
        owner = self.assigner.resolve(action.owner, step.default_owner)
        task_id = activities.create_task(
            self.store,
            action,
            settings=self.settings,
            customer_id=step.customer.id,
            enrollment_id=step.enrollment.id,
            visit_id=step.enrollment.visit_id,
            owner=owner,
            base_date=step.on,
            action_key=step.key,
            source=step.where,
            today=self.today,
            # catching up, a partner's task is told today: late, not lost (as emails)
            partner_told_on=self.today if self.catching_up else step.on,
        )
        self.assigner.took_task(owner)
        due = shift(step.on, action.due)
        self._note(step, f"Task t{task_id} {action.title!r} for {owner or 'nobody'}, due {due}")
        self._count("tasks")
        return f"task #{task_id}"

    def _owned_by(self, action: TaskAction, owner: str) -> TaskAction:
        """owned_by, made once per task action and owner rule."""
        found = self._owned.get((id(action), owner))
        if found is None or found[0] is not action:
            found = self._owned[(id(action), owner)] = (action, owned_by(action, owner))
        return found[1]

    def _queue_email(self, action: EmailAction, step: Step) -> str:
        scheduled = shift(step.on, action.delay)
        due = scheduled
        if self.catching_up and scheduled < self.today:
            scheduled = self.today
            self._count("caught_up")
        outbox_id, status, reason = mail.queue_email(
            self.store,
            self.settings,
            customer_id=step.customer.id,
            enrollment_id=step.enrollment.id,
            visit_id=step.enrollment.visit_id,
            template=action.template,
            scheduled_on=scheduled,
            stop_on_reply=action.stop_on_reply,
            action_key=step.key,
            today=self.today,
        )
        late = f" (due {due}; caught up)" if due != scheduled else ""
        self._note(
            step,
            f"Email {action.template!r} queued for {scheduled}{late}"
            if status == "queued"
            else f"Email {action.template!r} skipped: {reason}",
        )
        self._count("emails" if status == "queued" else "emails_skipped")
        return f"email #{outbox_id} {status}"

    def _close(self, action: CloseAction, step: Step) -> str:
        record_close(
            self.store,
            step.enrollment,
            action.status,
            on=step.on,
            by="playbook",
            reason=action.reason,
        )
        self._note(step, f"Marked {action.status} in {step.funnel.id}")
        return action.status

    def _enroll_elsewhere(self, action: EnrollAction, step: Step) -> str:
        target = self.library.funnel(action.funnel)
        if enrollments.active_in(self.store, step.customer.id, target.id):
            self._note(step, f"Already in {target.id}; not enrolled again")
            return "already enrolled"
        new_id = record_enrollment(
            self.store,
            step.customer,
            target,
            stage_id=action.stage,
            on=step.on,
            by="playbook",
            note=f"from {step.funnel.id}",
        )
        self._note(step, f"Enrolled in {target.id}")
        self._count("enrolled")
        self.run_entry(self._enrollment(new_id), target)
        return f"enrolled #{new_id}"

    def _assign(self, action: AssignAction, step: Step) -> str:
        owner = self.assigner.resolve(action.strategy, step.default_owner)
        enrollments.set_owner(self.store, step.enrollment.id, owner)
        if owner and not step.customer.owner:
            customers.update(self.store, step.customer.id, {"owner": owner}, self.today)
        self._note(step, f"Assigned to {owner or 'nobody (the team is empty)'}")
        return f"assigned {owner}"

    def _start_play(self, action: PlayAction, step: Step) -> str:
        play = self.library.plays[action.play]
        started = self._begin_play(
            step.customer,
            step.enrollment,
            step.funnel,
            step.stage,
            play,
            key=f"{step.key}:play",
            on=step.on,
            source="stage" if step.enrollment.visit_id is not None else "play",
            where=step.where,
        )
        return "ran play" if started else "held"

    # -- the daily tick ------------------------------------------------------------------------

    def tick(self, *, rescore: bool = False) -> dict[str, int]:
        """Time-based moves (caught up, each dated when it was due), escalations, health.

        When the tick has not run for days, a customer may pass through several stages in
        one run: each move is dated when it was due, the emails of every stage left on the
        way are superseded with it, and those of the stage the customer is in now go out
        today (``catching_up``). A gated advance reads the customer's health as it is now
        (``_condition``), not yesterday's snapshot.
        """
        self.catching_up = True
        try:
            self._advance()
        finally:
            self.catching_up = False
        escalated = activities.escalate_overdue(self.store, self.library, self.settings, self.today)
        if escalated:
            self.counts["escalated"] = self.counts.get("escalated", 0) + escalated
        from .health import run_health

        for key, value in run_health(
            self.store, self.library, self.settings, self.today, self, rescore=rescore
        ).items():
            self.counts[key] = self.counts.get(key, 0) + value
        return self.counts

    def _advance(self) -> None:
        moved = True
        while moved:
            moved = False
            for funnel in self.library.funnels.values():
                for stage in funnel.stages:
                    nxt = funnel.next_stage(stage.id)
                    if stage.advance_after is None or nxt is None:
                        continue
                    cutoff = shift(self.today, -stage.advance_after)
                    for due in enrollments.due_to_advance(self.store, funnel.id, stage.id, cutoff):
                        moved |= self._advance_one(due, funnel, stage, nxt)

    def _advance_one(self, due: Enrollment, funnel: Funnel, stage: Stage, nxt: Stage) -> bool:
        """Move ``due`` on to ``nxt``, dated when it was due, unless the stage's gate
        (``advance_when``) is shut: then a "ready for the next stage?" task asks the owner,
        once per stage visit, and the customer moves (dated today) on the first run that
        finds the gate open. Returns whether the customer moved."""
        assert stage.advance_after is not None
        gate_key = f"{due.id}:{due.visit_id}:gate"
        on = shift(due.entered_on, stage.advance_after)
        note = f"automatic after {stage.advance_after} days in {stage.id}"
        if stage.advance_when:
            held = self._gate_shut(due, funnel, stage)
            if held is not None:
                self._ask_to_advance(due, funnel, stage, nxt, gate_key, held)
                return False
            if enrollments.claimed(self.store, gate_key):
                on = self.today  # it was held: the move happens now, not when it was due
            note += f", once {stage.advance_when}"
        self.move(due, funnel, nxt.id, on=on, note=note, by=TICK_BY)
        return True

    def _gate_shut(self, due: Enrollment, funnel: Funnel, stage: Stage) -> str | None:
        """Why the stage's gate holds ``due`` back today, or None when it is open."""
        assert stage.advance_when is not None
        customer = customers.get(self.store, due.customer_id)
        assert customer is not None
        step = Step(customer, due, funnel, stage, self.today, "", f"{funnel.id}/{stage.id}")
        try:
            if self._condition(stage.advance_when, step):
                return None
            return f"{stage.advance_when} does not hold"
        except ConditionError as exc:
            return f"{stage.advance_when} cannot be evaluated: {exc.message or exc}"

    def _ask_to_advance(
        self, due: Enrollment, funnel: Funnel, stage: Stage, nxt: Stage, key: str, why: str
    ) -> None:
        if not enrollments.claim_action(self.store, key, due.customer_id, due.id, self.today):
            return  # already asked in this stage visit
        customer = customers.get(self.store, due.customer_id)
        assert customer is not None
        ask = TaskAction(
            title=f"Ready for {nxt.title}?",
            owner=stage.owner,
            description=(
                f"{stage.advance_after} days in {stage.title}, but the daily run did not move "
                f"the customer on: {why}. Move them with `funnelctl move {shlex.quote(customer.label)} "
                f"{nxt.id}` when they are ready; the run does it by itself once the "
                "condition holds."
            ),
            cancel_on_exit=True,
        )
        step = Step(customer, due, funnel, stage, self.today, key, f"{funnel.id}/{stage.id} gate")
        outcome = self._create_task(ask, step)
        enrollments.action_outcome(self.store, key, outcome)
        self._count("held")


# The runner of each action type. The playbooks' ACTION_KINDS (read, check, describe) have
# the same keys; ``changes`` marks the actions that may change the enrollment or the
# customer, which are then read again before the next action runs.
RUNNERS: dict[type[Any], Runner[Any]] = {
    TaskAction: Runner(Engine._create_task, changes=False),
    EmailAction: Runner(Engine._queue_email, changes=False),
    CloseAction: Runner(Engine._close, changes=True),
    EnrollAction: Runner(Engine._enroll_elsewhere, changes=True),
    AssignAction: Runner(Engine._assign, changes=True),
    PlayAction: Runner(Engine._start_play, changes=True),
}


# -- finding the enrollment a command means ----------------------------------------------------


def pick_enrollment(
    store: Store,
    library: Library,
    customer: Customer,
    *,
    funnel_id: str | None,
    stage_id: str | None = None,
    closed: bool = False,
) -> tuple[Enrollment, Funnel]:
    """The one enrollment a command is about; asks for --funnel when it is ambiguous."""
    rows = enrollments.of_customer(store, customer.id)
    label = customer_label(customer)
    if funnel_id:
        funnel = library.funnel(funnel_id)
        mine = [r for r in rows if r.funnel == funnel.id]
        active = [r for r in mine if r.status == "active"]
        if active:
            return active[-1], funnel
        if closed and mine:
            return mine[-1], funnel
        if mine:
            raise FunnelError(
                f"{label}'s {funnel.id} enrollment is {mine[-1].status}; use --reopen to move it."
            )
        raise NotFound(f"{label} is not in funnel {funnel.id!r}; enroll them first.")
    candidates = (
        [r for r in rows if r.status == "active"]
        if not closed
        else [r for r in rows if r.status in CLOSED]
    )
    if stage_id:
        known = [r for r in candidates if r.funnel in library.funnels]
        candidates = [r for r in known if library.funnels[r.funnel].has_stage(stage_id)]
        if known and not candidates:  # a typo, most likely: say what the stages are
            stages = list(
                dict.fromkeys(s.id for r in known for s in library.funnels[r.funnel].stages)
            )
            close = get_close_matches(stage_id, stages, n=1)
            theirs = sorted({r.funnel for r in known})
            whose = (
                f"funnels ({', '.join(theirs)}) have"
                if len(theirs) > 1
                else (f"funnel ({theirs[0]}) has")
            )
            raise NotFound(
                f"{label}'s {whose} no stage {stage_id!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (stages: {', '.join(stages)})."
            )
    funnels = sorted({r.funnel for r in candidates})
    if not candidates:
        what = "closed" if closed else "active"
        where = f" with a stage {stage_id!r}" if stage_id else ""
        raise NotFound(f"{label} has no {what} enrollment{where}.")
    if len(funnels) > 1:
        raise UsageError(
            f"{label} is in several funnels ({', '.join(funnels)}); say which with --funnel."
        )
    return candidates[-1], library.funnel(funnels[0])


# -- one call per command, each one transaction --------------------------------------------------


def summary(store: Store, enrollment: Enrollment, counts: dict[str, int]) -> dict[str, object]:
    customer = customers.get(store, enrollment.customer_id)
    assert customer is not None
    return {
        "customer": customer_label(customer),
        "funnel": enrollment.funnel,
        "stage": enrollment.stage,
        "status": enrollment.status,
        "since": enrollment.entered_on,
        "owner": enrollment.owner,
        "tasks": counts.get("tasks", 0),
        "emails": counts.get("emails", 0),
        "failed_actions": counts.get("failed", 0),
    }


def enroll_customer(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    funnel_id: str,
    *,
    stage_id: str | None,
    today: str,
    by: str | None,
) -> dict[str, object]:
    funnel = library.funnel(funnel_id)
    if stage_id:
        stage_id = funnel.stage(stage_id).id  # given by id or by title
    with store.write():
        customer = customers.find(store, ref)
        engine = Engine(store, library, settings, today, by)
        enrollment = engine.enroll(customer, funnel, stage_id)
        return summary(store, enrollment, engine.counts)


def move_customer(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    stage_id: str,
    *,
    funnel_id: str | None,
    note: str | None,
    reopen: bool,
    today: str,
    by: str | None,
) -> dict[str, object]:
    with store.write():
        customer = customers.find(store, ref)
        enrollment, funnel = pick_enrollment(
            store, library, customer, funnel_id=funnel_id, stage_id=stage_id, closed=reopen
        )
        stage_id = funnel.stage(stage_id).id  # given by id or by title
        engine = Engine(store, library, settings, today, by)
        if reopen:
            moved = engine.reopen(enrollment, funnel, stage_id, note=note)
        else:
            moved = engine.move(enrollment, funnel, stage_id, note=note)
        return summary(store, moved, engine.counts)


def close_customer(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    status: str,
    *,
    funnel_id: str | None,
    reason: str | None,
    today: str,
    by: str | None,
) -> dict[str, object]:
    with store.write():
        customer = customers.find(store, ref)
        enrollment, _ = pick_enrollment(store, library, customer, funnel_id=funnel_id)
        engine = Engine(store, library, settings, today, by)
        closed = engine.close(enrollment, status, reason=reason)
        return summary(store, closed, engine.counts)


def play_customer(
    store: Store,
    library: Library,
    settings: Settings,
    ref: str,
    play_id: str,
    *,
    today: str,
    by: str | None,
) -> dict[str, object]:
    """Start a play by hand for a customer, in their current enrollment, dated today.

    Started once a day at most: asking again the same day changes nothing (a play's
    tasks and emails are not doubled by a second keystroke).
    """
    if play_id not in library.plays:
        names = ", ".join(sorted(library.plays)) or "none"
        raise NotFound(f"No play {play_id!r} in the playbooks (plays: {names}).")
    with store.write():
        customer = customers.find(store, ref)
        current = enrollments.current(store, customer.id)
        if current is None:
            raise FunnelError(
                f"{customer.label} has no active enrollment for the play to attach to; "
                "enroll them first."
            )
        key = f"hand:{play_id}:{today}"
        if enrollments.ran_any(store, key):
            raise FunnelError(
                f"Play {play_id!r} was already started for {customer.label} today; "
                "nothing was done again."
            )
        engine = Engine(store, library, settings, today, by)
        engine.run_play(customer, play_id, key=key, source="hand")
        return summary(store, engine._enrollment(current.id), engine.counts)


def run_tick(
    store: Store, library: Library, settings: Settings, today: str, *, rescore: bool = False
) -> dict[str, int]:
    """The daily tick, one transaction: run twice the same day, the second changes nothing.

    Health scores only the customers whose result may have changed; ``rescore`` scores
    everyone (the same result, at the cost of the whole book)."""
    with store.write():
        engine = Engine(store, library, settings, today, TICK_BY)
        counts = engine.tick(rescore=rescore)
        last = store.get_meta("last_run")
        if last is None or last < today:
            store.set_meta("last_run", today)
    return {
        "moved": counts.get("moved", 0),
        "tasks": counts.get("tasks", 0),
        "emails": counts.get("emails", 0),
        "emails_skipped": counts.get("emails_skipped", 0),
        "escalated": counts.get("escalated", 0),
        "failed_actions": counts.get("failed", 0),
        # a run after days without one: emails of the stage each customer is in now go out
        # today, late; those of the stages passed through on the way are superseded
        "caught_up": counts.get("caught_up", 0),
        "superseded": counts.get("superseded", 0),
        "scored": counts.get("scored", 0),
        "at_risk": counts.get("at_risk", 0),
        "plays": counts.get("plays", 0),
    }
