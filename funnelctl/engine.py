"""The funnel engine: enroll, move and close, with the stage history as the record."""

from __future__ import annotations

from .errors import FunnelError
from .playbooks import Funnel
from .store import Row, Store


def enroll(
    store: Store,
    customer: Row,
    funnel: Funnel,
    *,
    stage_id: str | None,
    on: str,
    by: str | None = None,
    note: str | None = None,
) -> int:
    """Put ``customer`` in ``funnel`` at ``stage_id`` (default the first stage) as of ``on``.

    The caller holds the write transaction. Returns the enrollment id.
    """
    stage = funnel.stage(stage_id) if stage_id else funnel.stages[0]
    if store.active_enrollment(customer["id"], funnel.id):
        raise FunnelError(f"Customer {customer_label(customer)} is already in funnel {funnel.id!r}.")
    enrollment_id = store.insert(
        "enrollments",
        {
            "customer_id": customer["id"],
            "funnel": funnel.id,
            "stage": stage.id,
            "entered_on": on,
            "status": "active",
            "owner": customer.get("owner"),
            "started_on": on,
        },
    )
    visit_id = store.add_history(
        enrollment_id=enrollment_id,
        customer_id=customer["id"],
        funnel=funnel.id,
        kind="enroll",
        from_stage=None,
        to_stage=stage.id,
        moved_on=on,
        by=by,
        note=note,
    )
    store.update("enrollments", enrollment_id, {"visit_id": visit_id})
    return enrollment_id


def customer_label(customer: Row) -> str:
    return str(customer.get("email") or customer.get("external_id") or f"#{customer['id']}")


def move(
    store: Store,
    enrollment: Row,
    funnel: Funnel,
    to_stage: str,
    *,
    on: str,
    by: str | None = None,
    note: str | None = None,
) -> int:
    """Move an active enrollment to ``to_stage`` (either direction, as the funnel allows).

    Returns the new stage visit's history id. The caller holds the transaction.
    """
    target = funnel.stage(to_stage)
    if enrollment["status"] != "active":
        raise FunnelError(
            f"The {funnel.id} enrollment is {enrollment['status']}; reopen it first (--reopen)."
        )
    current = enrollment["stage"]
    if current == target.id:
        raise FunnelError(f"Already at stage {target.id!r} of {funnel.id}.")
    step = funnel.index(target.id) - funnel.index(current)
    if step < 0 and not funnel.allow_backward:
        raise FunnelError(f"Funnel {funnel.id} does not allow moving back from {current} to {target.id}.")
    if step > 1 and not funnel.allow_skip:
        nxt = funnel.next_stage(current)
        raise FunnelError(
            f"Funnel {funnel.id} does not allow skipping stages: from {current} the next is "
            f"{nxt.id if nxt else 'none'}."
        )
    if on < enrollment["entered_on"]:
        raise FunnelError(
            f"Cannot move on {on}: the customer entered {current} on {enrollment['entered_on']}."
        )
    visit_id = store.add_history(
        enrollment_id=enrollment["id"],
        customer_id=enrollment["customer_id"],
        funnel=funnel.id,
        kind="move",
        from_stage=current,
        to_stage=target.id,
        moved_on=on,
        by=by,
        note=note,
    )
    store.update(
        "enrollments", enrollment["id"], {"stage": target.id, "entered_on": on, "visit_id": visit_id}
    )
    return visit_id


def close(
    store: Store,
    enrollment: Row,
    status: str,
    *,
    on: str,
    by: str | None = None,
    reason: str | None = None,
) -> None:
    """Close an active enrollment as won, lost or churned."""
    assert status in ("won", "lost", "churned")
    if enrollment["status"] != "active":
        raise FunnelError(f"The {enrollment['funnel']} enrollment is already {enrollment['status']}.")
    store.add_history(
        enrollment_id=enrollment["id"],
        customer_id=enrollment["customer_id"],
        funnel=enrollment["funnel"],
        kind=status,
        from_stage=enrollment["stage"],
        to_stage=enrollment["stage"],
        moved_on=on,
        by=by,
        note=reason,
    )
    store.update(
        "enrollments", enrollment["id"], {"status": status, "closed_on": on, "close_reason": reason}
    )
