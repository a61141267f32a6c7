"""Email: the outbox. (Templates and delivery build on this.)"""

from __future__ import annotations

from email.utils import make_msgid, parseaddr

from .dates import days_between
from .store import Store
from .workspace import Settings


def message_id(settings: Settings) -> str:
    """A Message-ID fixed when the email is queued, so a resend can reuse it."""
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or "funnelctl.invalid"
    return make_msgid(domain=domain)


def queue_email(
    store: Store,
    settings: Settings,
    *,
    customer_id: int,
    enrollment_id: int | None,
    visit_id: int | None,
    template: str,
    scheduled_on: str,
    stop_on_reply: bool,
    action_key: str,
    today: str,
) -> tuple[int, str, str | None]:
    """Queue one email for one scheduled action. Returns (id, status, reason).

    An email whose date is already more than ``max_late_days`` behind today (a
    historical import, a catch-up) is recorded as skipped, never sent late.
    """
    status, reason = "queued", None
    late = days_between(scheduled_on, today)
    if late > settings.send.max_late_days:
        status = "skipped"
        reason = (
            f"stale: due {scheduled_on}, {late} days ago (more than max_late_days "
            f"{settings.send.max_late_days})"
        )
    outbox_id = store.insert(
        "outbox",
        {
            "customer_id": customer_id,
            "enrollment_id": enrollment_id,
            "visit_id": visit_id,
            "template": template,
            "action_key": action_key,
            "message_id": message_id(settings),
            "scheduled_on": scheduled_on,
            "stop_on_reply": int(stop_on_reply),
            "status": status,
            "reason": reason,
            "queued_on": today,
        },
    )
    return outbox_id, status, reason


def skip_queued(store: Store, where: str, params: list[object], reason: str) -> int:
    """Mark queued emails matching ``where`` as skipped with ``reason``; returns how many."""
    cursor = store.conn.execute(
        f"UPDATE outbox SET status = 'skipped', reason = ? WHERE status = 'queued' AND {where}",
        [reason, *params],
    )
    return cursor.rowcount


__all__ = ["message_id", "queue_email", "skip_queued"]
