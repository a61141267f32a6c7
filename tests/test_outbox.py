"""The outbox's state machine: every status change goes through one transition function,
and a change the machine does not allow is an error, never a silent update."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from funnelctl.store import Store, outbox
from funnelctl.store.outbox import TRANSITIONS, IllegalTransition, Status

DAY = "2026-03-02"
_numbers = itertools.count(1)


@pytest.fixture
def db(tmp_path: Path):
    store = Store.open(tmp_path / "funnel.db", create=True)
    store.conn.execute(
        "INSERT INTO customers (id, email, created_on, updated_on) VALUES (1, 'a@example.com', ?, ?)",
        [DAY, DAY],
    )
    yield store
    store.close()


def email_in(db: Store, status: Status) -> int:
    """An email brought to ``status`` the way the program would bring it there."""
    n = next(_numbers)
    email_id = outbox.queue(
        db,
        customer_id=1,
        enrollment_id=None,
        visit_id=n,
        template="welcome",
        action_key=f"action-{n}",
        message_id=f"<{n}@example.com>",
        scheduled_on=DAY,
        stop_on_reply=False,
        today=DAY,
        stale_reason="stale" if status is Status.SKIPPED else None,
    )
    path: dict[Status, list[Callable[[int], object]]] = {
        Status.QUEUED: [],
        Status.SKIPPED: [],
        Status.SENDING: [lambda i: outbox.claim(db, i, subject="Hi", recipients="a@example.com")],
    }
    path[Status.SENT] = [*path[Status.SENDING], lambda i: outbox.mark_sent(db, i, sent_at=DAY)]
    path[Status.FAILED] = [*path[Status.SENDING], lambda i: outbox.mark_failed(db, i, "5xx")]
    path[Status.UNCERTAIN] = [*path[Status.SENDING], lambda i: outbox.mark_uncertain(db, i, "?")]
    path[Status.SUPERSEDED] = [lambda i: outbox.supersede_visit(db, n, "stage left")]
    path[Status.HELD] = [lambda i: outbox.hold(db, i, "the address bounced")]
    path[Status.BOUNCED] = [*path[Status.SENT], lambda i: outbox.mark_bounced(db, i, "5.1.1")]
    for step in path[status]:
        step(email_id)
    email = outbox.get(db, email_id)
    assert email is not None and email.status == status.value
    return email_id


# Each transition function, and the status it leads to.
MOVES: dict[str, tuple[Callable[[Store, int], object], Status]] = {
    "claim": (lambda db, i: outbox.claim(db, i, subject="s", recipients="r"), Status.SENDING),
    "mark_sent": (lambda db, i: outbox.mark_sent(db, i, sent_at=DAY), Status.SENT),
    "mark_failed": (lambda db, i: outbox.mark_failed(db, i, "r"), Status.FAILED),
    "mark_uncertain": (lambda db, i: outbox.mark_uncertain(db, i, "r"), Status.UNCERTAIN),
    "defer": (lambda db, i: outbox.defer(db, i, reason="r", retry_at=DAY), Status.QUEUED),
    "defer_tried": (
        lambda db, i: outbox.defer(db, i, reason="r", retry_at=DAY, tried=True),
        Status.QUEUED,
    ),
    "requeue_untouched": (lambda db, i: outbox.requeue_untouched(db, i, 0, None), Status.QUEUED),
    "resend": (lambda db, i: outbox.resend(db, i, "r"), Status.QUEUED),
    "skip": (lambda db, i: outbox.skip(db, i, "r"), Status.SKIPPED),
    "requeue": (lambda db, i: outbox.requeue(db, i, "r", DAY), Status.QUEUED),
    "unskip": (lambda db, i: outbox.unskip(db, i, None), Status.QUEUED),
    "give_up": (lambda db, i: outbox.give_up(db, i, "r", tried=False), Status.FAILED),
    "give_up_tried": (lambda db, i: outbox.give_up(db, i, "r", tried=True), Status.FAILED),
    "hold": (lambda db, i: outbox.hold(db, i, "r"), Status.HELD),
    "mark_bounced": (lambda db, i: outbox.mark_bounced(db, i, "r"), Status.BOUNCED),
    "release_held": (lambda db, i: outbox.release_held(db, 1, "r", DAY), Status.QUEUED),
}
# Where each function may start from (a status the function itself allows).
ALLOWED_FROM: dict[str, set[Status]] = {
    "claim": {Status.QUEUED},
    "mark_sent": {Status.SENDING, Status.UNCERTAIN},
    "mark_failed": {Status.QUEUED, Status.SENDING},
    "mark_uncertain": {Status.SENDING},
    "defer": {Status.SENDING},
    "defer_tried": {Status.QUEUED},
    "requeue_untouched": {Status.SENDING},
    "resend": {Status.UNCERTAIN, Status.FAILED},
    "skip": {Status.QUEUED, Status.UNCERTAIN, Status.FAILED},
    "requeue": {Status.SKIPPED, Status.SUPERSEDED, Status.BOUNCED, Status.QUEUED},
    "unskip": {Status.SKIPPED},
    "give_up": {Status.SENDING},
    "give_up_tried": {Status.QUEUED},
    "hold": {Status.QUEUED},
    "mark_bounced": {Status.SENT},
    "release_held": {Status.HELD},
}
REACHABLE = list(Status)
RACES = {"claim", "defer_tried", "give_up_tried", "mark_bounced"}  # another run may win these
MANY = {"release_held"}  # moves every email of the customer that may: 0 is no error


def test_every_function_moves_only_along_the_machine():
    for name, (_, to) in MOVES.items():
        for source in ALLOWED_FROM[name]:
            assert to in TRANSITIONS[source], (name, source, to)


@pytest.mark.parametrize("name", sorted(MOVES))
@pytest.mark.parametrize("start", REACHABLE, ids=str)
def test_each_transition_from_each_status(db, name, start):
    move, to = MOVES[name]
    email_id = email_in(db, start)
    if start in ALLOWED_FROM[name]:
        assert move(db, email_id) in (None, True)
        email = outbox.get(db, email_id)
        assert email is not None and email.status == to.value
    elif name in RACES or name in MANY:
        assert move(db, email_id) in (False, 0)
        email = outbox.get(db, email_id)
        assert email is not None and email.status == start.value
    else:
        with pytest.raises(IllegalTransition, match=f"is {start.value}: it cannot become"):
            move(db, email_id)


def test_sent_is_final_and_a_never_sent_email_can_only_be_requeued():
    assert TRANSITIONS[Status.SENT] == {Status.BOUNCED}  # only a bounce notice says otherwise
    # never delivered: by hand, once the customer's address is fixed (outbox requeue)
    assert TRANSITIONS[Status.BOUNCED] == {Status.QUEUED}
    assert TRANSITIONS[Status.SKIPPED] == TRANSITIONS[Status.SUPERSEDED] == {Status.QUEUED}


def test_leaving_a_visit_supersedes_only_its_queued_emails(db):
    queued = email_in(db, Status.QUEUED)
    other = email_in(db, Status.QUEUED)
    sent = email_in(db, Status.SENT)
    visit = outbox.get(db, queued).visit_id  # type: ignore[union-attr]
    assert outbox.supersede_visit(db, visit, "left the stage") == 1
    assert [outbox.get(db, i).status for i in (queued, other, sent)] == [  # type: ignore[union-attr]
        "superseded",
        "queued",
        "sent",
    ]


def test_claim_counts_the_attempt_and_defer_tried_counts_its_own(db):
    claimed = email_in(db, Status.SENDING)
    waiting = email_in(db, Status.QUEUED)
    outbox.defer(db, waiting, reason="down", retry_at="2026-03-02T10:05:00", tried=True)
    assert [outbox.get(db, i).attempts for i in (claimed, waiting)] == [1, 1]  # type: ignore[union-attr]


def test_every_status_change_in_the_code_goes_through_the_machine():
    """No module but the outbox's own writes its status."""
    root = Path(__file__).resolve().parent.parent / "funnelctl"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "outbox.py" and "UPDATE outbox" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_unskip_puts_a_dropped_email_back_as_it_was(db):
    email_id = email_in(db, Status.QUEUED)
    outbox.skip(db, email_id, "dropped by hand: x")
    outbox.unskip(db, email_id, None)
    email = outbox.get(db, email_id)
    assert email is not None
    assert (email.status, email.scheduled_on, email.reason, email.attempts) == (
        "queued",
        DAY,
        None,
        0,
    )
