"""The report's aggregate queries: funnels, satisfaction, support, owners, workload, trends.

Each returns plain rows; reports.py turns them into figures. ``since``/``until`` bound
the report's period (ISO dates, both included).
"""

from __future__ import annotations

from typing import Any

from .db import Row, Store


def _rows(store: Store, sql: str, params: list[Any]) -> list[Row]:
    return [dict(row) for row in store.conn.execute(sql, params)]


def _count(store: Store, sql: str, params: list[Any]) -> int:
    return int(store.conn.execute(sql, params).fetchone()[0])


# -- funnels ------------------------------------------------------------------------------------


def stage_visits(store: Store, funnel: str) -> list[Row]:
    """Every stage visit of the funnel with when it ended and where it went next."""
    return _rows(
        store,
        "SELECT h.enrollment_id, h.kind, h.to_stage AS stage, h.moved_on AS entered, "
        "lead(h.moved_on) OVER w AS left_on, lead(h.kind) OVER w AS next_kind, "
        "lead(h.to_stage) OVER w AS next_stage "
        "FROM stage_history h WHERE h.funnel = ? "
        "WINDOW w AS (PARTITION BY h.enrollment_id ORDER BY h.moved_on, h.id) "
        "ORDER BY h.enrollment_id, h.moved_on, h.id",
        [funnel],
    )


def active_by_stage(store: Store, funnel: str) -> dict[str, int]:
    return {
        r["stage"]: r["n"]
        for r in _rows(
            store,
            "SELECT stage, count(*) AS n FROM enrollments WHERE funnel = ? AND status = 'active' "
            "GROUP BY stage",
            [funnel],
        )
    }


def closed_by_kind(store: Store, funnel: str, since: str, until: str) -> dict[str, int]:
    return {
        r["kind"]: r["n"]
        for r in _rows(
            store,
            "SELECT kind, count(*) AS n FROM stage_history WHERE funnel = ? "
            "AND kind IN ('won', 'lost', 'churned') AND moved_on BETWEEN ? AND ? GROUP BY kind",
            [funnel, since, until],
        )
    }


def active_before(store: Store, funnel: str, day: str) -> int:
    """Enrollments whose last event before ``day`` left them active."""
    return _count(
        store,
        "SELECT count(*) FROM (SELECT kind, row_number() OVER (PARTITION BY enrollment_id "
        "ORDER BY moved_on DESC, id DESC) AS n FROM stage_history WHERE funnel = ? "
        "AND moved_on < ?) WHERE n = 1 AND kind IN ('enroll', 'move', 'reopen')",
        [funnel, day],
    )


def started(store: Store, funnel: str, since: str, until: str) -> int:
    return _count(
        store,
        "SELECT count(*) FROM stage_history WHERE funnel = ? AND kind = 'enroll' "
        "AND moved_on BETWEEN ? AND ?",
        [funnel, since, until],
    )


def touchpoints_by_stage(store: Store, funnel: str, since: str, until: str) -> list[Row]:
    """Touchpoints in the period by channel, under the stage the customer was in that day."""
    return _rows(
        store,
        "WITH visits AS (SELECT h.customer_id, h.to_stage AS stage, h.moved_on AS start, "
        "  lead(h.moved_on) OVER w AS stop, lead(h.kind) OVER w AS next_kind, "
        "  h.kind FROM stage_history h WHERE h.funnel = ? "
        "  WINDOW w AS (PARTITION BY h.enrollment_id ORDER BY h.moved_on, h.id)) "
        "SELECT v.stage, t.channel, count(*) AS n FROM touchpoints t JOIN visits v "
        "ON v.customer_id = t.customer_id AND v.kind IN ('enroll', 'move', 'reopen') "
        "AND t.happened_on >= v.start AND (v.stop IS NULL OR t.happened_on < v.stop "
        "  OR (t.happened_on = v.stop AND v.next_kind IN ('won', 'lost', 'churned'))) "
        "WHERE t.happened_on BETWEEN ? AND ? GROUP BY v.stage, t.channel",
        [funnel, since, until],
    )


# -- satisfaction and support ---------------------------------------------------------------------


def latest_nps_answers(store: Store, since: str, until: str) -> list[float]:
    """Each customer's latest NPS answer in the period."""
    return [
        r["value"]
        for r in _rows(
            store,
            "SELECT value FROM signals s WHERE metric = 'nps' AND measured_on BETWEEN ? AND ? "
            "AND id = (SELECT id FROM signals t WHERE t.customer_id = s.customer_id "
            "AND t.metric = 'nps' AND t.measured_on BETWEEN ? AND ? "
            "ORDER BY t.measured_on DESC, t.id DESC LIMIT 1)",
            [since, until, since, until],
        )
    ]


def csat_average(store: Store, since: str, until: str) -> tuple[float | None, int]:
    row = store.conn.execute(
        "SELECT avg(value), count(*) FROM signals WHERE metric = 'csat' "
        "AND measured_on BETWEEN ? AND ?",
        [since, until],
    ).fetchone()
    return (row[0], row[1]) if row else (None, 0)


def ticket_csat_average(store: Store, since: str, until: str) -> tuple[float | None, int]:
    row = store.conn.execute(
        "SELECT avg(csat), count(csat) FROM tickets WHERE substr(opened_at, 1, 10) BETWEEN ? AND ?",
        [since, until],
    ).fetchone()
    return (row[0], row[1]) if row else (None, 0)


def inbound_answers(store: Store, since: str, until: str) -> list[Row]:
    """Each inbound touchpoint of the period with the day of the first outbound one after."""
    return _rows(
        store,
        "SELECT t.happened_on, (SELECT min(o.happened_on) FROM touchpoints o "
        "WHERE o.customer_id = t.customer_id AND o.direction = 'outbound' "
        "AND o.happened_on >= t.happened_on) AS answered_on "
        "FROM touchpoints t WHERE t.direction = 'inbound' AND t.happened_on BETWEEN ? AND ?",
        [since, until],
    )


def tickets_opened(store: Store, since: str, until: str) -> list[Row]:
    return _rows(
        store,
        "SELECT opened_at, first_response_at, resolved_at FROM tickets "
        "WHERE substr(opened_at, 1, 10) BETWEEN ? AND ?",
        [since, until],
    )


def tickets_open_on(store: Store, day: str) -> int:
    return _count(
        store,
        "SELECT count(*) FROM tickets WHERE substr(opened_at, 1, 10) <= ? "
        "AND (resolved_at IS NULL OR substr(resolved_at, 1, 10) > ?)",
        [day, day],
    )


# -- owners and workload --------------------------------------------------------------------------


def tasks_done(store: Store, since: str, until: str) -> list[Row]:
    return _rows(
        store,
        "SELECT coalesce(owner, '(nobody)') AS owner, first_due_on, closed_on FROM activities "
        "WHERE status = 'done' AND closed_on BETWEEN ? AND ?",
        [since, until],
    )


def overdue_by_owner(store: Store, today: str) -> list[Row]:
    return _rows(
        store,
        "SELECT coalesce(owner, '(nobody)') AS owner, count(*) AS n FROM activities "
        "WHERE status = 'open' AND due_on < ? GROUP BY 1",
        [today],
    )


def open_tasks_by_day(store: Store, first: str, end: str) -> list[Row]:
    """Open tasks due by ``end`` per owner and day (anything earlier counts on ``first``)."""
    return _rows(
        store,
        "SELECT coalesce(owner, '(nobody)') AS owner, max(due_on, ?) AS day, count(*) AS n "
        "FROM activities WHERE status = 'open' AND due_on <= ? GROUP BY 1, 2",
        [first, end],
    )


def queued_emails_by_day(store: Store, first: str, end: str) -> list[Row]:
    return _rows(
        store,
        "SELECT coalesce(e.owner, c.owner, '(nobody)') AS owner, max(o.scheduled_on, ?) AS day, "
        "count(*) AS n FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        "WHERE o.status = 'queued' AND o.scheduled_on <= ? GROUP BY 1, 2",
        [first, end],
    )


# -- trends ----------------------------------------------------------------------------------------


def nps_answers_by_month(store: Store, since: str, until: str) -> list[Row]:
    return _rows(
        store,
        "SELECT substr(measured_on, 1, 7) AS month, value FROM signals WHERE metric = 'nps' "
        "AND measured_on BETWEEN ? AND ?",
        [since, until],
    )


def churned_by_month(store: Store, since: str, until: str) -> list[Row]:
    return _rows(
        store,
        "SELECT substr(moved_on, 1, 7) AS month, count(*) AS n FROM stage_history "
        "WHERE kind = 'churned' AND moved_on BETWEEN ? AND ? GROUP BY 1",
        [since, until],
    )


# -- the client page: tiles, weeks, the at-risk list -------------------------------------------


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def active_customers_on(store: Store, funnels: list[str], day: str) -> int:
    """Customers with an enrollment in ``funnels`` that the end of ``day`` leaves active."""
    return _count(
        store,
        "SELECT count(DISTINCT customer_id) FROM (SELECT customer_id, kind, row_number() OVER "
        "(PARTITION BY enrollment_id ORDER BY moved_on DESC, id DESC) AS n FROM stage_history "
        f"WHERE funnel IN ({_marks(funnels)}) AND moved_on <= ?) "
        "WHERE n = 1 AND kind IN ('enroll', 'move', 'reopen')",
        [*funnels, day],
    )


def won_spans(store: Store, funnels: list[str], since: str, until: str) -> list[Row]:
    """Each enrollment won in the period, with the day it started and the day it was won."""
    return _rows(
        store,
        "SELECT started_on, closed_on FROM enrollments WHERE status = 'won' "
        f"AND funnel IN ({_marks(funnels)}) AND closed_on BETWEEN ? AND ?",
        [*funnels, since, until],
    )


def history_by_day(store: Store, funnels: list[str], since: str, until: str) -> list[Row]:
    """Enrollments started, won and churned per day of the period."""
    return _rows(
        store,
        "SELECT moved_on AS day, kind, count(*) AS n FROM stage_history "
        f"WHERE funnel IN ({_marks(funnels)}) AND kind IN ('enroll', 'won', 'churned') "
        "AND moved_on BETWEEN ? AND ? GROUP BY 1, 2",
        [*funnels, since, until],
    )


def nps_answers_by_day(store: Store, since: str, until: str) -> list[Row]:
    return _rows(
        store,
        "SELECT measured_on AS day, value FROM signals WHERE metric = 'nps' "
        "AND measured_on BETWEEN ? AND ?",
        [since, until],
    )


def first_scored_day(store: Store) -> str | None:
    """The first day the daily run scored anyone; None before its first run."""
    value = store.conn.execute("SELECT min(day) FROM health_snapshots").fetchone()[0]
    return None if value is None else str(value)


def at_risk_on(store: Store, day: str) -> int:
    """Customers the daily run held at risk at the end of ``day``."""
    return _count(
        store,
        "SELECT count(DISTINCT customer_id) FROM health_episodes WHERE kind = 'at-risk' "
        "AND started_on <= ? AND (ended_on IS NULL OR ended_on > ?)",
        [day, day],
    )


# -- the workload projection -----------------------------------------------------------------------


def active_visits(store: Store) -> list[Row]:
    """Active enrollments grouped by funnel, stage, day the stage was entered and owner."""
    return _rows(
        store,
        "SELECT e.funnel, e.stage, e.entered_on, coalesce(e.owner, c.owner, '(nobody)') AS owner, "
        "count(*) AS n FROM enrollments e JOIN customers c ON c.id = e.customer_id "
        "WHERE e.status = 'active' GROUP BY 1, 2, 3, 4",
        [],
    )


def arrivals(store: Store, since: str, until: str) -> list[Row]:
    """Enrollments started in the period, by funnel, first stage and owner."""
    return _rows(
        store,
        "SELECT h.funnel, h.to_stage AS stage, coalesce(e.owner, c.owner, '(nobody)') AS owner, "
        "count(*) AS n FROM stage_history h JOIN enrollments e ON e.id = h.enrollment_id "
        "JOIN customers c ON c.id = h.customer_id "
        "WHERE h.kind = 'enroll' AND h.moved_on BETWEEN ? AND ? GROUP BY 1, 2, 3",
        [since, until],
    )
