"""The set-based customer import: the same results as the row-by-row import, in bulk.

The file is read once into a temporary table (``store/imports.py``), in batches, so that
memory stays flat. SQL then finds what the row import finds one row at a time: the
duplicates in the file, the customer each row updates, the emails and external ids that
another customer holds. Each bad row keeps the message and the line the row import
gives it. With no bad row, each table is written at once, ids in the order of the file:
the new customers (one ``INSERT … SELECT``), the enrollments and their stage visits
(one each), then the entry actions of each enrollment, planned in one pass over the
enrolled rows (owners in turn, the least busy, conditions evaluated once per distinct
input) and written in batches; the timeline last, in the file's order.

The row-by-row import (``importing.py`` with ``engine.py``) stays the reference, and
the import falls back to it, before writing anything, when:

- ``--skip-bad`` is given (the rejects file gets each bad row's cells as it is read);
- a row changes a stored customer's email or external id, or two rows update the same
  customer: a later row's outcome then depends on an earlier row's;
- a stage the import enrolls customers at has an entry action other than a task, an
  email or an assignment (close, enroll elsewhere, a play: they move or re-enroll the
  customer), or a ``when:`` that reads what the import itself may change or what lives
  outside the row (``health``, ``signals``, ``customer.replied``, touchpoints, or
  ``customer`` as a whole).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import mail
from .activities import task_spec
from .context import build_context
from .dates import days_between, shift
from .errors import FunnelError
from .playbooks import (
    Action,
    AssignAction,
    EmailAction,
    Funnel,
    Library,
    Stage,
    TaskAction,
    describe_action,
    owned_by,
)
from .sandbox import environment, evaluate
from .store import Store, customers, imports, triggers
from .store import activities as tasks
from .store.customers import Customer
from .store.enrollments import Enrollment
from .workspace import Settings

if TYPE_CHECKING:
    from .importing import BadRows, ImportResult, _Importer
    from .sheets import Table

BATCH = 2000  # rows per executemany: a few MB at most, whatever the file's size
_COVERED = (TaskAction, EmailAction, AssignAction)
# What a condition may read for its value to depend only on the row: the customer's own
# values, and what follows from the owner, the stage and its dates.
_CUSTOMER_VALUES = frozenset(
    ("id", "first_name", *(c for c in customers.COLUMNS), "created_on", "updated_on")
)
_OUTSIDE = frozenset(("health", "signals"))
_NOTHING = [None] * len(customers.COLUMNS)  # the staged columns of a row that is bad


def import_set_based(
    importer: _Importer,
    csvfile: Table,
    targets: Sequence[str | None],
    on_row: Any = None,
) -> ImportResult | None:
    """Import ``csvfile`` into ``importer.store`` in bulk, inside the caller's transaction;
    None (and nothing written) when the file needs the row import (module docstring).
    With bad rows, the result lists them and nothing is written either."""
    from .importing import MAX_LISTED, each_row

    store = importer.store
    imports.start_staging(store)
    try:
        stager = _Stager(importer, targets)
        bad = each_row(csvfile, stager.add, on_row=on_row)
        stager.flush()
        _check(store, importer.options.key, targets)
        if imports.rows_interact(store) or not _covered(importer):
            return None
        result = importer.result
        count, listed = imports.bad_rows(store, MAX_LISTED)
        result.bad = _merged(bad, count, listed, MAX_LISTED)
        if result.bad.count:
            return result
        _apply(importer)
        result.set_based = True
        return result
    finally:
        imports.end_staging(store)


class _Stager:
    """The staging pass: each row cleaned as the row import cleans it, kept with the
    first reason it is bad (if any), in batches."""

    def __init__(self, importer: _Importer, targets: Sequence[str | None]) -> None:
        from .importing import IDENTIFIERS, RowError, _restore

        self.importer = importer
        self.targets = targets
        self.identifiers = [(i, t) for i, t in enumerate(targets) if t in IDENTIFIERS]
        self.restore = _restore
        self.row_error = RowError
        self.batch: list[tuple[Any, ...]] = []

    def add(self, line: int, cells: list[str]) -> None:
        keys: dict[str, str | None] = {"email": None, "external_id": None}
        for index, target in self.identifiers:
            value = cells[index].strip()
            if value[:1] == "'":
                value = self.restore(value).strip()
            if value:
                keys[str(target)] = value.lower() if target == "email" else value
        errors: list[str | None] = [None, None, None]
        row: list[Any] = _NOTHING
        place: tuple[Funnel, str | None, str] | None = None
        try:
            values = self.importer.row_values(self.targets, cells)
        except self.row_error as exc:
            errors[0] = str(exc)
        else:
            try:
                self.importer.check_owner(values)
            except self.row_error as exc:
                errors[1] = str(exc)
            try:
                place = self.importer.placement(values)  # takes funnel, stage, entered_on out
            except self.row_error as exc:
                errors[2] = str(exc)
            row = customers.encoded_columns(values)
        funnel = stage = entered = None
        if place is not None:
            found, stage_id, entered = place
            funnel = found.id
            stage = found.stage(stage_id).id if stage_id else found.stages[0].id
        self.batch.append(
            (
                line,
                keys["email"],
                keys["external_id"],
                *errors,
                *row,
                funnel,
                stage,
                entered,
            )
        )
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        imports.stage(self.importer.store, self.batch)
        self.batch = []


def _check(store: Store, key: str, targets: Sequence[str | None]) -> None:
    """The checks that need the whole file or the book: duplicates (identifiers in the
    order of their columns), the customer each row updates, identifiers already taken."""
    for kind in [t for t in targets if t in ("email", "external_id")]:
        imports.set_reasons(
            store,
            "err_dup",
            [
                (f"{kind} {value!r} is already on line {first} of this file", line)
                for line, value, first in imports.duplicates(store, str(kind))
            ],
        )
    imports.match_existing(store, key)
    taken: dict[int, str] = {}
    for line, column, value, holder, email, external_id in imports.taken_identifiers(store):
        label = email or external_id or f"#{holder}"
        taken.setdefault(
            line, f"{column} {value!r} already belongs to customer #{holder} ({label})"
        )
    imports.set_reasons(store, "err_ident", [(reason, line) for line, reason in taken.items()])


def _merged(bad: BadRows, count: int, listed: list[tuple[int, str]], limit: int) -> BadRows:
    """The rows each_row rejected (their width, a footer) with those SQL found, by line."""
    from .importing import BadRows

    merged = BadRows(count=bad.count + count, footer=bad.footer)
    merged.listed = sorted([*bad.listed, *listed])[:limit]
    return merged


def _covered(importer: _Importer) -> bool:
    """Whether the entry actions of every stage the import enrolls at can run in bulk."""
    if importer.settings is None or not importer.options.run_actions:
        return True
    stages = imports.entry_stages(importer.store)
    library = importer.playbooks.get() if stages else None
    for funnel_id, stage_id in stages:
        assert library is not None
        for action in library.funnel(funnel_id).stage(stage_id).on_enter:
            if not isinstance(action, _COVERED):
                return False
            if action.when and condition_inputs(action.when) is None:
                return False
    return True


def condition_inputs(expression: str) -> tuple[str, ...] | None:
    """What a ``when:`` reads (``customer.owner``, ``days_in_stage``…), or None when it
    reads something the row alone does not decide (module docstring)."""
    return _inputs(expression)


_INPUTS: dict[str, tuple[str, ...] | None] = {}


def _inputs(expression: str) -> tuple[str, ...] | None:
    if expression in _INPUTS:
        return _INPUTS[expression]
    from jinja2 import nodes

    found: set[str] | None = set()
    try:
        tree = environment().parse("{{ " + expression + " }}")
    except Exception:  # noqa: BLE001 (an expression that does not parse: the row engine says so)
        found = None
    else:
        under: set[int] = set()
        for node in tree.find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == "customer":
                under.add(id(node.node))
                if node.attr not in _CUSTOMER_VALUES:
                    found = None
                    break
                assert found is not None
                found.add(f"customer.{node.attr}")
        if found is not None:
            for name in tree.find_all(nodes.Name):
                if name.name in _OUTSIDE or (name.name == "customer" and id(name) not in under):
                    found = None
                    break
                if name.name != "customer":
                    found.add(name.name)
    _INPUTS[expression] = None if found is None else tuple(sorted(found))
    return _INPUTS[expression]


# -- writing --------------------------------------------------------------------------------


def _apply(importer: _Importer) -> None:
    from .importing import BY

    store, result, today = importer.store, importer.result, importer.today
    new, result.without_email, result.enrolled = imports.counts(store)
    with triggers.row_triggers_at_once(store):
        imports.insert_customers(store, today, importer.source)
        result.inserted = new
        _update(importer)
        imports.insert_enrollments(store, BY, f"imported from {importer.source}")
        if result.enrolled and importer.settings is not None and importer.options.run_actions:
            _Entry(store, importer.playbooks.get(), importer.settings, today).run()
    imports.insert_events(store)


def _update(importer: _Importer) -> None:
    """The rows of stored customers: what changed, as the row import compares it."""
    from .customers import changes_for

    store, result = importer.store, importer.result
    lines = []
    stored_columns = ("id", *customers.COLUMNS, "created_on", "updated_on")
    for row in imports.updates(store):
        existing = Customer.from_row({c: row[f"c_{c}"] for c in stored_columns})
        values: dict[str, Any] = {c: row[c] for c in customers.COLUMNS if row[c] is not None}
        for column in ("tags", "fields"):
            if column in values:
                values[column] = json.loads(values[column])
        changes = changes_for(existing.as_dict(), values)
        if not changes:
            result.unchanged += 1
            continue
        customers.update(store, existing.id, changes, importer.today)
        summary = f"Updated from {importer.source} line {row['line']}: {', '.join(sorted(changes))}"
        lines.append((row["line"], 0, existing.id, importer.today, "customer", summary, 1, None))
        result.updated += 1
    imports.add_events(store, lines)


@dataclass(slots=True)
class _Visit:
    """One enrolled row while its entry actions are planned: the customer as the row
    import would read them back after each action."""

    line: int
    customer: dict[str, Any]
    enrollment_id: int
    visit_id: int
    funnel: Funnel
    stage: Stage
    on: str
    owner: str | None  # the enrollment's
    seq: int = 1  # the row's next timeline line (0 is the customer's own)
    owner_changed: bool = False
    customer_changed: bool = False

    @property
    def default_owner(self) -> str | None:
        return self.owner or self.customer["owner"]


class _Entry:
    """The entry actions of every enrolled row, decided in the file's order (turns of the
    round-robin and the least-busy counts carry from row to row, as in one Engine) and
    written in batches."""

    def __init__(self, store: Store, library: Library, settings: Settings, today: str) -> None:
        self.store, self.library, self.settings, self.today = store, library, settings, today
        self.team = tuple(settings.team)
        self.turn = int(store.get_meta("round_robin") or 0)
        self.turned = False
        # open tasks per member before the import; the import's own are added as made
        self.load = tasks.open_load(store, self.team) if self.team else {}
        self.task_id = imports.next_id(store, "activities")
        self.email_id = imports.next_id(store, "outbox")
        self.cache: dict[tuple[Any, ...], tuple[bool, str | None]] = {}
        self.described: dict[int, str] = {}
        self.skipped: dict[int, tuple[str, str]] = {}
        self.shifted: dict[tuple[str, int], str] = {}  # shift(day, days), of a few distinct days
        self.owned: dict[tuple[int, str], tuple[TaskAction, str | None]] = {}
        self._empty()

    def _empty(self) -> None:
        self.runs: list[tuple[Any, ...]] = []
        self.tasks: list[tuple[Any, ...]] = []
        self.emails: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.enrollment_owners: list[tuple[str | None, int]] = []
        self.customer_owners: list[tuple[str | None, str, int]] = []

    def run(self) -> None:
        columns = ("id", *customers.COLUMNS, "created_on", "updated_on")
        # each (funnel, stage): the funnel, the stage, and where each entry action comes from
        places: dict[tuple[str, str], tuple[Funnel, Stage, list[str]]] = {}
        for count, row in enumerate(imports.enrolled(self.store), start=1):
            line, enrollment_id, visit_id, funnel_id, stage_id, entered = row[:6]
            place = places.get((funnel_id, stage_id))
            if place is None:
                funnel = self.library.funnel(funnel_id)
                stage = funnel.stage(stage_id)
                wheres = [f"{funnel.id}/{stage.id} #{n}" for n in range(1, len(stage.on_enter) + 1)]
                place = places[(funnel_id, stage_id)] = (funnel, stage, wheres)
            customer = dict(zip(columns, row[6:], strict=True))
            visit = _Visit(
                line,
                customer,
                enrollment_id,
                visit_id,
                place[0],
                place[1],
                entered,
                customer["owner"],
            )
            self._enter(visit, place[2])
            if count % BATCH == 0:
                self._flush()
        self._flush()
        if self.turned:
            self.store.set_meta("round_robin", str(self.turn))

    def _flush(self) -> None:
        imports.insert_many(self.store, "action_runs", imports.RUN_COLUMNS, self.runs)
        imports.insert_many(self.store, "activities", imports.TASK_COLUMNS, self.tasks)
        imports.insert_many(self.store, "outbox", imports.EMAIL_COLUMNS, self.emails)
        imports.add_events(self.store, self.events)
        imports.set_owners(self.store, self.enrollment_owners, self.customer_owners)
        self._empty()

    # -- one row: Engine.enroll after record_enrollment ------------------------------------

    def _enter(self, visit: _Visit, wheres: Sequence[str]) -> None:
        funnel, stage = visit.funnel, visit.stage
        if stage.id != funnel.stages[0].id and not visit.customer["owner"]:
            rule = stage.owner
            if rule == "customer-owner" or rule.startswith("partner:"):
                rule = "round-robin"
            owner = self._resolve(rule, None)
            if owner is not None:
                visit.owner, visit.owner_changed = owner, True
                visit.customer["owner"], visit.customer_changed = owner, True
                visit.customer["updated_on"] = self.today
                self._event(
                    visit,
                    f"Assigned to {owner} (joined {funnel.id} at {stage.id} without an owner)",
                    None,
                )
        prefix = f"{visit.enrollment_id}:{visit.visit_id}:"
        customer_id = visit.customer["id"]
        for index, action in enumerate(stage.on_enter):
            key = f"{prefix}{index}"
            outcome = self._attempt(action, visit, key, wheres[index])
            self.runs.append((key, customer_id, visit.enrollment_id, self.today, outcome))
        if visit.owner_changed:
            self.enrollment_owners.append((visit.owner, visit.enrollment_id))
        if visit.customer_changed:
            self.customer_owners.append((visit.customer["owner"], self.today, visit.customer["id"]))

    def _event(self, visit: _Visit, text: str, where: str | None, *, ok: bool = True) -> None:
        self.events.append(
            (visit.line, visit.seq, visit.customer["id"], visit.on, "action", text, int(ok), where)
        )
        visit.seq += 1

    def _describe(self, action: Action) -> str:
        text = self.described.get(id(action))
        if text is None:
            text = self.described[id(action)] = describe_action(action)
        return text

    def _skipped(self, action: Action) -> tuple[str, str]:
        """The outcome of an action whose condition is false, and its timeline line."""
        found = self.skipped.get(id(action))
        if found is None:
            outcome = f"skipped ({self._describe(action)}): condition is false"
            found = self.skipped[id(action)] = (outcome, outcome.capitalize())
        return found

    def _attempt(self, action: Action, visit: _Visit, key: str, where: str) -> str:
        """Engine._attempt: the condition, then the action; a FunnelError fails it alone."""
        try:
            if action.when:
                holds, error = self._condition(action.when, visit)
                if error is not None:
                    raise FunnelError(error)
                if not holds:
                    outcome, line = self._skipped(action)
                    self._event(visit, line, where)
                    return outcome
            if isinstance(action, TaskAction):
                return self._task(action, visit, key, where)
            if isinstance(action, EmailAction):
                return self._email(action, visit, key, where)
            assert isinstance(action, AssignAction)
            return self._assign(action, visit, where)
        except FunnelError as exc:
            reason = exc.message or str(exc)
            self._event(visit, f"{self._describe(action)}: {reason}", where, ok=False)
            return f"failed: {reason}"

    # -- conditions: once per distinct input ----------------------------------------------

    def _condition(self, expression: str, visit: _Visit) -> tuple[bool, str | None]:
        inputs = _inputs(expression)
        assert inputs is not None  # _covered checked it
        key = (
            expression,
            visit.funnel.id,
            visit.stage.id,
            *(self._input(i, visit) for i in inputs),
        )
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) > 10_000:  # flat memory, whatever the inputs
                self.cache.clear()
            found = self.cache[key] = self._evaluate(expression, visit)
        return found

    def _input(self, name: str, visit: _Visit) -> Any:
        if name.startswith("customer."):
            field = name.removeprefix("customer.")
            value = visit.customer["name"] if field == "first_name" else visit.customer[field]
            return value
        if name in ("owner", "sender"):
            return visit.default_owner
        if name == "days_in_stage":
            return visit.on
        if name == "days_since_signed":
            return visit.customer["signed_on"]
        return None  # today, funnel, stage: the same for the whole group

    def _evaluate(self, expression: str, visit: _Visit) -> tuple[bool, str | None]:
        from .engine import CONDITION_ERRORS

        customer = Customer.from_row(visit.customer)
        enrollment = Enrollment(
            id=visit.enrollment_id,
            customer_id=customer.id,
            funnel=visit.funnel.id,
            stage=visit.stage.id,
            entered_on=visit.on,
            visit_id=visit.visit_id,
            status="active",
            owner=visit.owner,
            started_on=visit.on,
            closed_on=None,
            close_reason=None,
            next_steps=0,
        )
        context = build_context(
            self.store,
            self.settings,
            customer,
            self.today,
            funnel=visit.funnel,
            stage=visit.stage,
            enrollment=enrollment,
        )
        try:
            return bool(evaluate(expression, context)), None
        except CONDITION_ERRORS as exc:
            return False, getattr(exc, "message", None) or str(exc)

    # -- owners: activities.Assigner, with its state in memory -----------------------------

    def _resolve(self, spec: str, default: str | None) -> str | None:
        if spec == "customer-owner":
            return default
        if spec == "round-robin":
            if not self.team:
                return default
            turn, self.turn, self.turned = self.turn, self.turn + 1, True
            return self.team[turn % len(self.team)]
        if spec == "least-busy":
            if not self.team:
                return default
            return min(self.team, key=lambda member: self.load.get(member, 0))
        return spec

    # -- the actions: Engine._create_task, _queue_email and _assign ------------------------

    def _task(self, action: TaskAction, visit: _Visit, key: str, where: str) -> str:
        owned = self.owned.get((id(action), visit.stage.owner))
        if owned is None:
            task = owned_by(action, visit.stage.owner)
            spec = task_spec(task.then) if task.then else None
            owned = self.owned[(id(action), visit.stage.owner)] = (task, spec)
        task, spec = owned
        assert task.owner is not None
        owner = self._resolve(task.owner, visit.default_owner)
        due = self._shift(visit.on, task.due)
        task_id, self.task_id = self.task_id, self.task_id + 1
        self.tasks.append(
            (
                task_id,
                visit.customer["id"],
                visit.enrollment_id,
                visit.visit_id,
                None,
                "task",
                task.title,
                task.description,
                owner,
                task.channel,
                task.sourcing,
                due,
                due,
                where,
                key,
                task.drop_if,
                task.escalate_after,
                task.escalate_to,
                spec,
                self.today,
                int(task.cancel_on_exit),
            )
        )
        if owner and owner.startswith("partner:"):
            self._queue(
                visit,
                None,
                mail.PARTNER_TEMPLATE,
                visit.on,
                False,
                f"partner:{task_id}",
                partner=owner.removeprefix("partner:"),
                task_id=task_id,
            )
        if owner is not None and owner in self.team:  # Assigner.took_task
            self.load[owner] = self.load.get(owner, 0) + 1
        self._event(
            visit, f"Task t{task_id} {task.title!r} for {owner or 'nobody'}, due {due}", where
        )
        return f"task #{task_id}"

    def _shift(self, day: str, days: int) -> str:
        found = self.shifted.get((day, days))
        if found is None:
            if len(self.shifted) > 10_000:  # flat memory, whatever the dates
                self.shifted.clear()
            found = self.shifted[(day, days)] = shift(day, days)
        return found

    def _email(self, action: EmailAction, visit: _Visit, key: str, where: str) -> str:
        scheduled = self._shift(visit.on, action.delay)
        email_id, status, reason = self._queue(
            visit, visit.visit_id, action.template, scheduled, action.stop_on_reply, key
        )
        self._event(
            visit,
            f"Email {action.template!r} queued for {scheduled}"
            if status == "queued"
            else f"Email {action.template!r} skipped: {reason}",
            where,
        )
        return f"email #{email_id} {status}"

    def _queue(
        self,
        visit: _Visit,
        visit_id: int | None,
        template: str,
        scheduled_on: str,
        stop_on_reply: bool,
        key: str,
        *,
        partner: str | None = None,
        task_id: int | None = None,
    ) -> tuple[int, str, str | None]:
        """mail.queue_email: stale when already more than max_late_days behind today."""
        status, reason = "queued", None
        late = days_between(scheduled_on, self.today)
        if late > self.settings.send.max_late_days:
            limit = self.settings.send.max_late_days
            status, reason = "skipped", mail.stale_reason(scheduled_on, late, limit)
        email_id, self.email_id = self.email_id, self.email_id + 1
        self.emails.append(
            (
                email_id,
                visit.customer["id"],
                visit.enrollment_id,
                visit_id,
                template,
                key,
                mail.message_id(self.settings),
                scheduled_on,
                int(stop_on_reply),
                status,
                reason,
                self.today,
                partner,
                task_id,
            )
        )
        return email_id, status, reason

    def _assign(self, action: AssignAction, visit: _Visit, where: str) -> str:
        owner = self._resolve(action.strategy, visit.default_owner)
        visit.owner, visit.owner_changed = owner, True
        if owner and not visit.customer["owner"]:
            visit.customer["owner"], visit.customer_changed = owner, True
            visit.customer["updated_on"] = self.today
        self._event(visit, f"Assigned to {owner or 'nobody (the team is empty)'}", where)
        return f"assigned {owner}"
