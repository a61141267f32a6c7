"""The outbox: every email the playbooks schedule, and the one place its status changes.

An email's life is a small state machine. ``TRANSITIONS`` lists, for each status, the
statuses it may go to; each function below is one transition, done as one conditional
UPDATE (``... WHERE status IN (the statuses it may come from)``), so that two runs can
never both take the same email, and a transition from anywhere else is an error
(:class:`IllegalTransition`), never a silent change::

    (new) -> queued | skipped            queue: skipped when already stale
    queued -> sending                    claim: this run talks to the server now
    queued -> queued                     defer: not tried (server unreachable), retry later;
                                         requeue: a late one, by hand, due today
    queued -> failed                     fail: cannot be built (a bad address in data)
    queued -> skipped                    skip: stale, the customer replied, stage closed, by hand
    queued -> superseded                 supersede: its stage visit ended (a move, a catch-up)
    skipped | superseded | bounced       requeue: by hand, due the day it is requeued
      -> queued                          (a bounced one, to the customer's address now)
    skipped -> queued                    unskip: a drop undone, the email as it was before
    sending -> sent                      sent: the server took it
    sending -> queued                    defer: a temporary failure; or requeue: nothing left
    sending -> failed | uncertain        fail: refused for good; uncertain: fate unknown
    uncertain -> sent | queued | skipped settled by hand (or --retry-uncertain)
    failed -> queued | skipped           settled by hand
    queued -> held                       hold: the customer's address bounced (the inbox)
    held -> queued                       release: the address was changed
    held -> skipped | superseded         as a queued one: its enrollment closed, its visit ended
    sent -> bounced                      bounce: a delivery status notification said so
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

from .db import Row, Store
from .record import Record


class Status(str, Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"
    SUPERSEDED = "superseded"
    HELD = "held"
    BOUNCED = "bounced"

    def __str__(self) -> str:
        return self.value


Q, SENDING, SENT, FAILED, SKIPPED, UNCERTAIN, SUPERSEDED = (
    Status.QUEUED,
    Status.SENDING,
    Status.SENT,
    Status.FAILED,
    Status.SKIPPED,
    Status.UNCERTAIN,
    Status.SUPERSEDED,
)

TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Q, SKIPPED}),
    Q: frozenset({SENDING, Q, FAILED, SKIPPED, SUPERSEDED, Status.HELD}),
    SENDING: frozenset({SENT, Q, FAILED, UNCERTAIN}),
    UNCERTAIN: frozenset({SENT, Q, SKIPPED}),
    FAILED: frozenset({Q, SKIPPED}),
    SKIPPED: frozenset({Q}),
    SUPERSEDED: frozenset({Q}),
    SENT: frozenset({Status.BOUNCED}),
    # held by send while the customer's address is known to bounce; a new address frees it
    Status.HELD: frozenset({Q, SKIPPED, SUPERSEDED}),
    Status.BOUNCED: frozenset({Q}),  # requeued by hand, once the address is fixed
}
STATUSES = tuple(s.value for s in Status)


class IllegalTransition(Exception):
    """A status change the state machine does not allow: a bug in funnelctl."""


@dataclasses.dataclass(frozen=True)
class OutboxEmail(Record):
    id: int
    customer_id: int
    enrollment_id: int | None
    visit_id: int | None
    template: str
    action_key: str
    message_id: str
    scheduled_on: str
    stop_on_reply: bool
    status: str
    reason: str | None
    recipients: str | None
    subject: str | None
    attempts: int
    next_attempt_at: str | None
    sent_at: str | None
    queued_on: str
    partner: str | None = None  # a partner's id: the email goes to them, about a task
    task_id: int | None = None  # the task a partner's email is about

    BOOLEANS = ("stop_on_reply",)


# -- reading -------------------------------------------------------------------------------


def get(store: Store, email_id: int) -> OutboxEmail | None:
    row = store.conn.execute("SELECT * FROM outbox WHERE id = ?", [email_id]).fetchone()
    return OutboxEmail.from_row(row) if row else None


def _emails(store: Store, sql: str, params: Sequence[Any] = ()) -> list[OutboxEmail]:
    return [OutboxEmail.from_row(row) for row in store.conn.execute(sql, params)]


def with_status(store: Store, status: Status) -> list[OutboxEmail]:
    return _emails(store, "SELECT * FROM outbox WHERE status = ? ORDER BY id", [status.value])


def due(store: Store, today: str, now: str) -> list[OutboxEmail]:
    """Queued emails whose day has come and whose retry time (if any) has passed."""
    return _emails(
        store,
        "SELECT * FROM outbox WHERE status = 'queued' AND scheduled_on <= ? "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY scheduled_on, id",
        [today, now],
    )


def never_tried_before(store: Store, cutoff: str) -> list[OutboxEmail]:
    """Queued emails scheduled before ``cutoff`` that no run has tried yet: stale ones.

    An email already tried (deferred by a 4xx, or requeued by hand after an uncertain or
    failed attempt) is not stale: its first attempt was on time.
    """
    return _emails(
        store,
        "SELECT * FROM outbox WHERE status = 'queued' AND scheduled_on < ? AND attempts = 0 "
        "ORDER BY scheduled_on, id",
        [cutoff],
    )


def count(store: Store, *statuses: Status) -> int:
    marks = ", ".join("?" for _ in statuses)
    return int(
        store.conn.execute(
            f"SELECT count(*) FROM outbox WHERE status IN ({marks})", [s.value for s in statuses]
        ).fetchone()[0]
    )


def listing(store: Store, status: Status | None = None) -> Iterator[Row]:
    """Every email with its customer's email (or external id), oldest first."""
    where, params = ("WHERE o.status = ?", [status.value]) if status else ("", [])
    for row in store.conn.execute(
        "SELECT o.*, coalesce(c.email, c.external_id) AS customer FROM outbox o "
        f"JOIN customers c ON c.id = o.customer_id {where} ORDER BY o.scheduled_on, o.id",
        params,
    ):
        yield dict(row)


def of_customer(store: Store, customer_id: int) -> list[OutboxEmail]:
    return _emails(store, "SELECT * FROM outbox WHERE customer_id = ? ORDER BY id", [customer_id])


def telling_partner(store: Store, task_id: int) -> OutboxEmail | None:
    """The email that hands task ``task_id`` to its partner, if it has one (found by the
    key activities.tell_partner gives it, which is indexed)."""
    row = store.conn.execute(
        "SELECT * FROM outbox WHERE action_key = ?", [f"partner:{task_id}"]
    ).fetchone()
    return OutboxEmail.from_row(row) if row else None


def by_message_ids(store: Store, message_ids: Sequence[str]) -> OutboxEmail | None:
    """The email one of ``message_ids`` names (a reply's In-Reply-To or References, a
    bounce's returned Message-ID): the last one named, when several are."""
    found: OutboxEmail | None = None
    for message_id in message_ids:
        row = store.conn.execute(
            "SELECT * FROM outbox WHERE message_id = ?", [message_id]
        ).fetchone()
        if row is not None:
            found = OutboxEmail.from_row(row)
    return found


def last_sent(store: Store, customer_id: int) -> OutboxEmail | None:
    """The last email sent to the customer themself (not to a partner about them)."""
    row = store.conn.execute(
        "SELECT * FROM outbox WHERE customer_id = ? AND status = 'sent' AND partner IS NULL "
        "ORDER BY sent_at DESC, id DESC LIMIT 1",
        [customer_id],
    ).fetchone()
    return OutboxEmail.from_row(row) if row else None


def template_of(store: Store, email_id: int) -> str | None:
    email = get(store, email_id)
    return email.template if email else None


# -- the transitions -------------------------------------------------------------------------


def queue(
    store: Store,
    *,
    customer_id: int,
    enrollment_id: int | None,
    visit_id: int | None,
    template: str,
    action_key: str,
    message_id: str,
    scheduled_on: str,
    stop_on_reply: bool,
    today: str,
    stale_reason: str | None = None,
    partner: str | None = None,
    task_id: int | None = None,
) -> int:
    """(new) -> queued, or skipped with ``stale_reason`` when it is already too late.
    With ``partner``, the email goes to that partner about task ``task_id``."""
    status = SKIPPED if stale_reason else Q
    cursor = store.conn.execute(
        "INSERT INTO outbox (customer_id, enrollment_id, visit_id, template, action_key, "
        "message_id, scheduled_on, stop_on_reply, status, reason, queued_on, partner, task_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            customer_id,
            enrollment_id,
            visit_id,
            template,
            action_key,
            message_id,
            scheduled_on,
            int(stop_on_reply),
            status.value,
            stale_reason,
            today,
            partner,
            task_id,
        ],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def claim(store: Store, email_id: int, *, subject: str, recipients: str) -> bool:
    """queued -> sending, counting the attempt. False when another run took it first."""
    return _change(
        store,
        email_id,
        SENDING,
        (Q,),
        race=True,
        subject=subject,
        recipients=recipients,
        attempts=_PLUS_ONE,
    )


def mark_sent(store: Store, email_id: int, *, sent_at: str, reason: str | None = None) -> None:
    """sending | uncertain -> sent: the server took it (or the user says it arrived)."""
    _change(store, email_id, SENT, (SENDING, UNCERTAIN), sent_at=sent_at, reason=reason)


def mark_failed(store: Store, email_id: int, reason: str) -> None:
    """queued | sending -> failed: it cannot be built, or the server refused it for good."""
    _change(store, email_id, FAILED, (Q, SENDING), reason=reason)


def give_up(store: Store, email_id: int, reason: str, *, tried: bool) -> bool:
    """-> failed after the last temporary failure: sending -> failed (the claim counted
    the attempt), or queued -> failed counting it (``tried``: the server could not be
    reached). False when another run took a queued email meanwhile."""
    if tried:
        return _change(store, email_id, FAILED, (Q,), race=True, reason=reason, attempts=_PLUS_ONE)
    return _change(store, email_id, FAILED, (SENDING,), reason=reason)


def mark_uncertain(store: Store, email_id: int, reason: str) -> None:
    """sending -> uncertain: it may have left; it is sent again only when asked."""
    _change(store, email_id, UNCERTAIN, (SENDING,), reason=reason)


def defer(store: Store, email_id: int, *, reason: str, retry_at: str, tried: bool = False) -> bool:
    """sending -> queued (the attempt was counted by the claim), or queued -> queued with
    the attempt counted here (``tried``: the server could not be reached); either way it
    waits until ``retry_at``. False when another run took a queued email meanwhile."""
    if tried:
        return _change(
            store,
            email_id,
            Q,
            (Q,),
            race=True,
            reason=reason,
            next_attempt_at=retry_at,
            attempts=_PLUS_ONE,
        )
    return _change(store, email_id, Q, (SENDING,), reason=reason, next_attempt_at=retry_at)


def requeue_untouched(store: Store, email_id: int, attempts: int, reason: str | None) -> None:
    """sending -> queued as if never claimed: nothing of it left (a set-up problem), or
    an interrupted run's Maildir shows it was never written."""
    _change(store, email_id, Q, (SENDING,), attempts=attempts, reason=reason)


def resend(store: Store, email_id: int, reason: str) -> None:
    """uncertain | failed -> queued, at once and with the same Message-ID."""
    _change(store, email_id, Q, (UNCERTAIN, FAILED), reason=reason, next_attempt_at=None)


def skip(store: Store, email_id: int, reason: str) -> None:
    """queued | uncertain | failed -> skipped: never sent, for ``reason``."""
    _change(store, email_id, SKIPPED, (Q, UNCERTAIN, FAILED), reason=reason)


def unskip(store: Store, email_id: int, reason: str | None) -> None:
    """skipped -> queued as it was before a drop skipped it (undo): its day, retry time
    and attempts unchanged, its reason the one it had."""
    _change(store, email_id, Q, (SKIPPED,), reason=reason)


def requeue(store: Store, email_id: int, reason: str, today: str) -> None:
    """skipped | superseded | bounced | queued (late) -> queued, due ``today`` (by hand:
    the user wants it sent)."""
    _change(
        store,
        email_id,
        Q,
        (SKIPPED, SUPERSEDED, Status.BOUNCED, Q),
        reason=reason,
        scheduled_on=today,
        next_attempt_at=None,
    )


def hold(store: Store, email_id: int, reason: str) -> None:
    """queued -> held: the customer's address bounced for good; it waits for a new one."""
    _change(store, email_id, Status.HELD, (Q,), reason=reason)


def mark_bounced(store: Store, email_id: int, reason: str) -> bool:
    """sent -> bounced: the recipient's server refused it for good, after taking it.
    False when the email is not (or no longer) sent: a second notice of the same bounce."""
    return _change(store, email_id, Status.BOUNCED, (SENT,), race=True, reason=reason)


# -- transitions of many emails at once ---------------------------------------------------------


def resend_every_uncertain(store: Store, reason: str) -> int:
    """uncertain -> queued for all of them (send --retry-uncertain)."""
    return _change_many(store, Q, (UNCERTAIN,), "1", [], reason=reason, next_attempt_at=None)


def skip_for_enrollment(store: Store, enrollment_id: int, reason: str) -> int:
    """queued -> skipped for every email of an enrollment that was lost or churned."""
    return _change_many(
        store, SKIPPED, (Q, Status.HELD), "enrollment_id = ?", [enrollment_id], reason=reason
    )


def skip_waiting_for_reply(store: Store, customer_id: int, replied_on: str, reason: str) -> int:
    """queued -> skipped for the customer's emails that stop on a reply, of the stage
    visits the customer is in now, begun by the day of the reply: an email of a later
    visit, or one a won enrollment kept, still goes."""
    return _change_many(
        store,
        SKIPPED,
        (Q,),
        "customer_id = ? AND stop_on_reply = 1 AND (visit_id IS NULL OR (visit_id IN "
        "(SELECT visit_id FROM enrollments WHERE customer_id = ? AND status = 'active') "
        "AND visit_id IN (SELECT id FROM stage_history WHERE customer_id = ? AND moved_on <= ?)))",
        [customer_id, customer_id, customer_id, replied_on],
        reason=reason,
    )


def skip_for_customer(store: Store, customer_id: int, reason: str) -> int:
    """queued -> skipped for every email to the customer themself (they asked for none);
    a partner's email about them still goes."""
    return _change_many(
        store, SKIPPED, (Q,), "customer_id = ? AND partner IS NULL", [customer_id], reason=reason
    )


def hold_for_customer(store: Store, customer_id: int, reason: str) -> int:
    """queued -> held for every email to the customer themself: their address bounced."""
    return _change_many(
        store,
        Status.HELD,
        (Q,),
        "customer_id = ? AND partner IS NULL",
        [customer_id],
        reason=reason,
    )


def release_held(store: Store, customer_id: int, reason: str, today: str) -> int:
    """held -> queued, due ``today``, for every email held for the customer: their
    address changed, so it may work now."""
    return _change_many(
        store,
        Q,
        (Status.HELD,),
        "customer_id = ?",
        [customer_id],
        reason=reason,
        scheduled_on=today,
        next_attempt_at=None,
    )


def supersede_visit(store: Store, visit_id: int, reason: str) -> int:
    """queued -> superseded for every email of a stage visit that has ended."""
    return _change_many(
        store, SUPERSEDED, (Q, Status.HELD), "visit_id = ?", [visit_id], reason=reason
    )


def supersede(store: Store, email_id: int, reason: str) -> None:
    """queued -> superseded for one email whose reason to go is gone (a partner's task
    that was done or dropped before they were told)."""
    _change(store, email_id, SUPERSEDED, (Q,), reason=reason)


def supersede_keyed(store: Store, prefix: str, reason: str) -> int:
    """queued -> superseded for every email an action claimed under ``prefix`` queued (a
    play whose health episode has ended)."""
    return _change_many(
        store,
        SUPERSEDED,
        (Q,),
        "substr(action_key, 1, length(?)) = ?",
        [prefix, prefix],
        reason=reason,
    )


def deliver_due_in_simulation(store: Store, today: str, sent_at: str) -> int:
    """queued -> sending -> sent for every email due by ``today``: a simulated send run
    in a throwaway database, through the same transitions as a real one."""
    taken = _change_many(store, SENDING, (Q,), "scheduled_on <= ?", [today], attempts=_PLUS_ONE)
    _change_many(store, SENT, (SENDING,), "1", [], sent_at=sent_at)
    return taken


# -- the one place a status changes ------------------------------------------------------------


class _Expression(str):
    """A column value that is SQL (attempts + 1), not a parameter."""


_PLUS_ONE = _Expression("attempts + 1")


def _check(to: Status, sources: Sequence[Status]) -> None:
    for source in sources:
        if to not in TRANSITIONS[source]:
            raise IllegalTransition(f"the outbox never goes from {source} to {to}")


def _assignments(to: Status, changes: dict[str, Any]) -> tuple[str, list[Any]]:
    columns = ["status = ?"]
    params: list[Any] = [to.value]
    for column, value in changes.items():
        if isinstance(value, _Expression):
            columns.append(f"{column} = {value}")
        else:
            columns.append(f"{column} = ?")
            params.append(value)
    return ", ".join(columns), params


def _change(
    store: Store,
    email_id: int,
    to: Status,
    sources: Sequence[Status],
    *,
    race: bool = False,
    **changes: Any,
) -> bool:
    """Move one email to ``to`` if it is in one of ``sources``. When it is not: False
    for a transition that another run may win (``race``), else IllegalTransition."""
    _check(to, sources)
    assignments, params = _assignments(to, changes)
    marks = ", ".join("?" for _ in sources)
    changed = store.conn.execute(
        f"UPDATE outbox SET {assignments} WHERE id = ? AND status IN ({marks})",
        [*params, email_id, *(s.value for s in sources)],
    ).rowcount
    if changed or race:
        return bool(changed)
    email = get(store, email_id)
    now = email.status if email else "missing"
    raise IllegalTransition(
        f"email #{email_id} is {now}: it cannot become {to} (only from "
        f"{' or '.join(s.value for s in sources)})"
    )


def _change_many(
    store: Store,
    to: Status,
    sources: Sequence[Status],
    where: str,
    params: Sequence[Any],
    **changes: Any,
) -> int:
    """Move every email matching ``where`` (SQL of this module only) that is in one of
    ``sources`` to ``to``; returns how many moved."""
    _check(to, sources)
    assignments, values = _assignments(to, changes)
    marks = ", ".join("?" for _ in sources)
    return store.conn.execute(
        f"UPDATE outbox SET {assignments} WHERE status IN ({marks}) AND ({where})",
        [*values, *(s.value for s in sources), *params],
    ).rowcount


# -- erasing a person, merging two records of one (no status changes) ------------------------------


def delete_of_customer(store: Store, customer_id: int) -> int:
    """Erase every email about the customer, whatever its status."""
    return store.conn.execute("DELETE FROM outbox WHERE customer_id = ?", [customer_id]).rowcount


def move_to_customer(store: Store, from_id: int, to_id: int) -> int:
    """Every email about ``from_id`` becomes about ``to_id``: a queued one goes to the
    customer kept (its address is read when it is sent)."""
    return store.conn.execute(
        "UPDATE outbox SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
