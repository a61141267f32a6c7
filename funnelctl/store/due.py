"""The queries behind `funnelctl due`: open tasks, stuck and quiet enrollments, customers
at risk, enrollments with no next step, and queued emails, each as a row that names the
customer, the funnel and stage, and the owner (the enrollment's, else the customer's).

Every query is an index range scan (activities_open_due, enrollments_stage,
enrollments_idle, outbox_due): its cost follows what is due, not the size of the book.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .db import Row, Store, dicts

_OWNER = "coalesce(e.owner, c.owner)"


def _STAGE_OF(table: str) -> str:  # noqa: N802 (reads as the SQL it makes)
    """The stage a task or email came from: its stage visit's, else (a play started by
    health or by hand) the stage the customer is in now."""
    return (
        f"coalesce((SELECT h.to_stage FROM stage_history h WHERE h.id = {table}.visit_id), e.stage)"
    )


def _rows(store: Store, sql: str, params: list[Any]) -> Iterator[Row]:
    yield from dicts(store.conn.execute(sql, params))


def _window(column: str, after: str | None, until: str) -> tuple[str, list[Any]]:
    """``column`` up to ``until``, and after ``after`` when given."""
    if after is None:
        return f"{column} <= ?", [until]
    return f"{column} > ? AND {column} <= ?", [after, until]


def tasks(store: Store, *, until: str, after: str | None, owner: str | None) -> Iterator[Row]:
    """Open tasks due by ``until`` (and after ``after``), earliest first."""
    window, params = _window("a.due_on", after, until)
    mine = "AND a.owner = ?" if owner else ""
    yield from _rows(
        store,
        f"SELECT a.*, c.email, c.external_id, c.name, e.funnel, {_STAGE_OF('a')} AS stage "
        "FROM activities a JOIN customers c ON c.id = a.customer_id "
        "LEFT JOIN enrollments e ON e.id = a.enrollment_id "
        f"WHERE a.status = 'open' AND {window} {mine} ORDER BY a.due_on, a.id",
        [*params, *([owner] if owner else [])],
    )


def emails(store: Store, *, until: str, after: str | None, owner: str | None) -> Iterator[Row]:
    """Queued emails scheduled by ``until`` (and after ``after``), earliest first."""
    window, params = _window("o.scheduled_on", after, until)
    mine = f"AND {_OWNER} = ?" if owner else ""
    yield from _rows(
        store,
        f"SELECT o.*, c.email, c.external_id, c.name, e.funnel, {_STAGE_OF('o')} AS stage, "
        f"{_OWNER} AS owner "
        "FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        f"WHERE o.status = 'queued' AND {window} {mine} ORDER BY o.scheduled_on, o.id",
        [*params, *([owner] if owner else [])],
    )


def in_stage_since(
    store: Store, funnel: str, stage: str, cutoff: str, owner: str | None
) -> Iterator[Row]:
    """Active enrollments at ``stage`` entered on or before ``cutoff``, with the day of
    the customer's last touchpoint (``last_touch``)."""
    mine = f"AND {_OWNER} = ?" if owner else ""
    yield from _rows(
        store,
        # the owner first: of two columns of one name, a row's dict keeps the first,
        # and e.* has the enrollment's own (often none), not the customer's
        f"SELECT {_OWNER} AS owner, e.*, c.email, c.external_id, c.name, "
        "(SELECT max(t.happened_on) FROM touchpoints t WHERE t.customer_id = e.customer_id) "
        "AS last_touch FROM enrollments e JOIN customers c ON c.id = e.customer_id "
        "WHERE e.funnel = ? AND e.stage = ? AND e.status = 'active' AND e.entered_on <= ? "
        f"{mine}",
        [funnel, stage, cutoff, *([owner] if owner else [])],
    )


def idle(store: Store, funnel: str, stage: str, owner: str | None) -> Iterator[Row]:
    """Active enrollments at ``stage`` with no open task and no queued email, and since
    when (``idle_since``): the stage's entry, or the day its last task was closed."""
    mine = f"AND {_OWNER} = ?" if owner else ""
    yield from _rows(
        store,
        f"SELECT {_OWNER} AS owner, e.*, c.email, c.external_id, c.name, "  # owner first
        "max(e.entered_on, coalesce((SELECT max(a.closed_on) FROM activities a "
        "WHERE a.enrollment_id = e.id AND a.status != 'open'), '')) AS idle_since "
        "FROM enrollments e JOIN customers c ON c.id = e.customer_id "
        "WHERE e.funnel = ? AND e.stage = ? AND e.status = 'active' AND e.next_steps = 0 "
        f"{mine} ORDER BY e.entered_on, e.id",
        [funnel, stage, *([owner] if owner else [])],
    )


def at_risk(store: Store, today: str, owner: str | None) -> Iterator[Row]:
    """Customers in an open at-risk episode begun by ``today``, worst score first, with
    their latest score and reasons up to ``today`` (not those of the episode's first
    day); owned, as the other items are, by an active enrollment's owner, else the
    customer's."""
    mine = f"AND {_OWNER} = ?" if owner else ""
    latest = (
        "(SELECT s.{col} FROM health_snapshots s WHERE s.customer_id = c.id AND s.day <= ? "
        "ORDER BY s.day DESC LIMIT 1)"
    )
    yield from _rows(
        store,
        f"SELECT * FROM (SELECT h.started_on, coalesce({latest.format(col='score')}, h.score) "
        f"AS score, coalesce({latest.format(col='reasons')}, h.reasons) AS reasons, c.email, "
        f"c.external_id, c.name, (SELECT {_OWNER} FROM enrollments e WHERE e.customer_id = c.id "
        f"AND e.status = 'active' {mine} ORDER BY e.id LIMIT 1) AS owner FROM health_episodes h "
        "JOIN customers c ON c.id = h.customer_id "
        "WHERE h.kind = 'at-risk' AND h.ended_on IS NULL AND EXISTS (SELECT 1 FROM enrollments e "
        f"WHERE e.customer_id = c.id AND e.status = 'active' {mine}) AND h.started_on <= ?) "
        "ORDER BY score, started_on",
        [today, today, *([owner, owner] if owner else []), today],
    )


def email_problems(store: Store, today: str, since: str, owner: str | None) -> Iterator[Row]:
    """Emails that wait on a decision: failed or uncertain (sending: a run that stopped),
    and those superseded that were due after ``since`` up to ``today``."""
    mine = f"AND {_OWNER} = ?" if owner else ""
    yield from _rows(
        store,
        f"SELECT o.*, c.email, c.external_id, c.name, e.funnel, {_STAGE_OF('o')} AS stage, "
        f"{_OWNER} AS owner FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        "WHERE (o.status IN ('failed', 'uncertain', 'sending') OR (o.status = 'superseded' "
        f"AND o.scheduled_on > ? AND o.scheduled_on <= ?)) {mine} ORDER BY o.scheduled_on, o.id",
        [since, today, *([owner] if owner else [])],
    )


def calendar_tasks(store: Store, owner: str | None, closed_since: str) -> Iterator[Row]:
    """The open tasks for the calendar feed, and those closed (done or dropped) on or
    after ``closed_since``, by due date, each with its customer (email or external id,
    name, company) and its enrollment's funnel and stage."""
    mine = "AND a.owner = ?" if owner else ""
    yield from _rows(
        store,
        "SELECT a.*, coalesce(c.email, c.external_id) AS customer, c.name, c.company, "
        "e.funnel, e.stage FROM activities a JOIN customers c ON c.id = a.customer_id "
        "LEFT JOIN enrollments e ON e.id = a.enrollment_id "
        f"WHERE (a.status = 'open' OR a.closed_on >= ?) {mine} "
        "ORDER BY a.due_on, a.id",
        [closed_since, owner] if owner else [closed_since],
    )


def workspace_id(store: Store) -> str:
    """The random id of this workspace's book (made by migration m011), which keeps its
    calendar events apart from another workspace's."""
    value = store.get_meta("workspace_id")
    assert value, "migration m011 stores a workspace id"
    return value
