"""Health: signals (a dated value of a metric for a customer), snapshots (a customer's
score on the days it changed) and episodes (a stretch of time at risk, or with an
opportunity, that starts its plays once).

Scoring a whole book reads in bulk (``*_by_customer``): a few whole-table queries
grouped by customer rather than ten small ones per customer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

from .customers import Customer
from .db import Row, Store

# -- signals ----------------------------------------------------------------------------------


def add_signal(
    store: Store,
    *,
    customer_id: int,
    metric: str,
    value: float,
    measured_on: str,
    source: str,
    today: str,
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO signals (customer_id, metric, value, measured_on, source, created_on) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [customer_id, metric, value, measured_on, source, today],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def has_signal(store: Store, customer_id: int, metric: str, measured_on: str, value: float) -> bool:
    """The same measurement is already stored (importing a file twice is harmless)."""
    return bool(
        store.conn.execute(
            "SELECT 1 FROM signals WHERE customer_id = ? AND metric = ? AND measured_on = ? "
            "AND value = ?",
            [customer_id, metric, measured_on, value],
        ).fetchone()
    )


def latest(store: Store, customer_id: int, today: str) -> dict[str, float]:
    """Each metric's latest value as of ``today`` (later measurements are not seen)."""
    return {
        row[0]: row[1]
        for row in store.conn.execute(
            "SELECT metric, value FROM signals s WHERE customer_id = ? AND measured_on = "
            "(SELECT max(measured_on) FROM signals WHERE customer_id = s.customer_id "
            "AND metric = s.metric AND measured_on <= ?) ORDER BY id",
            [customer_id, today],
        )
    }


def window(
    store: Store, customer_id: int, metric: str, since: str, until: str, how: str
) -> float | None:
    """``how`` (sum, avg, min, max) of the metric's values after ``since`` up to ``until``;
    None when there are none."""
    assert how in ("sum", "avg", "min", "max")
    row = store.conn.execute(
        f"SELECT {how}(value), count(*) FROM signals "
        "WHERE customer_id = ? AND metric = ? AND measured_on > ? AND measured_on <= ?",
        [customer_id, metric, since, until],
    ).fetchone()
    return float(row[0]) if row and row[1] else None


def value_on(store: Store, customer_id: int, metric: str, day: str) -> float | None:
    """The metric's latest value measured by ``day``."""
    row = store.conn.execute(
        "SELECT value FROM signals WHERE customer_id = ? AND metric = ? AND measured_on <= ? "
        "ORDER BY measured_on DESC, id DESC LIMIT 1",
        [customer_id, metric, day],
    ).fetchone()
    return None if row is None else float(row[0])


# -- the same, for every customer at once ----------------------------------------------------------


def latest_by_customer(store: Store, today: str) -> dict[int, dict[str, float]]:
    found: dict[int, dict[str, float]] = defaultdict(dict)
    for customer_id, metric, value in store.conn.execute(
        "SELECT customer_id, metric, value FROM (SELECT customer_id, metric, value, "
        "row_number() OVER (PARTITION BY customer_id, metric "
        "ORDER BY measured_on DESC, id DESC) AS n FROM signals WHERE measured_on <= ?) "
        "WHERE n = 1",
        [today],
    ):
        found[customer_id][metric] = value
    return found


def window_by_customer(
    store: Store, metric: str, since: str, until: str, how: str
) -> dict[int, float]:
    assert how in ("sum", "avg", "min", "max")
    return {
        customer_id: float(value)
        for customer_id, value in store.conn.execute(
            f"SELECT customer_id, {how}(value) FROM signals WHERE metric = ? "
            "AND measured_on > ? AND measured_on <= ? GROUP BY customer_id",
            [metric, since, until],
        )
    }


def touches_by_customer(store: Store, today: str) -> dict[int, tuple[str | None, str | None]]:
    """(last touchpoint, last inbound one) of every customer, up to ``today``."""
    return {
        customer_id: (last_on, last_inbound)
        for customer_id, last_on, last_inbound in store.conn.execute(
            "SELECT customer_id, max(happened_on), "
            "max(CASE WHEN direction = 'inbound' THEN happened_on END) "
            "FROM touchpoints WHERE happened_on <= ? GROUP BY customer_id",
            [today],
        )
    }


def overdue_by_customer(store: Store, today: str) -> dict[int, int]:
    return {
        customer_id: n
        for customer_id, n in store.conn.execute(
            "SELECT customer_id, count(*) FROM activities "
            "WHERE status = 'open' AND due_on < ? GROUP BY customer_id",
            [today],
        )
    }


def overdue_of(store: Store, customer_id: int, today: str) -> int:
    return int(
        store.conn.execute(
            "SELECT count(*) FROM activities WHERE customer_id = ? AND status = 'open' "
            "AND due_on < ?",
            [customer_id, today],
        ).fetchone()[0]
    )


def active_customers(store: Store) -> Iterator[Customer]:
    """Every customer with an active enrollment: the ones health scores."""
    for row in store.conn.execute(
        "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM enrollments e "
        "WHERE e.customer_id = c.id AND e.status = 'active') ORDER BY c.id"
    ):
        yield Customer.from_row(row)


# -- snapshots --------------------------------------------------------------------------------


def latest_snapshots(store: Store, today: str) -> dict[int, Row]:
    """Every customer's latest snapshot up to ``today``."""
    return {
        row["customer_id"]: dict(row)
        for row in store.conn.execute(
            "SELECT s.* FROM health_snapshots s WHERE s.day = (SELECT max(t.day) "
            "FROM health_snapshots t WHERE t.customer_id = s.customer_id AND t.day <= ?)",
            [today],
        )
    }


def snapshots_with_customers(
    store: Store, today: str, *, everyone: bool
) -> Iterator[tuple[Customer, Row]]:
    """The latest snapshot up to ``today`` of each customer still active, with the customer;
    only those at risk or with an opportunity unless ``everyone``."""
    wanted = "" if everyone else "AND (s.at_risk = 1 OR s.opportunities != '[]')"
    for row in store.conn.execute(
        "SELECT c.*, s.day AS snapshot_day, s.score AS snapshot_score, "
        "s.at_risk AS snapshot_at_risk, s.reasons AS snapshot_reasons, "
        "s.opportunities AS snapshot_opportunities FROM health_snapshots s "
        "JOIN customers c ON c.id = s.customer_id "
        "WHERE s.day = (SELECT max(t.day) FROM health_snapshots t WHERE t.customer_id = s.customer_id "
        f"AND t.day <= ?) {wanted} AND EXISTS (SELECT 1 FROM enrollments e "
        "WHERE e.customer_id = s.customer_id AND e.status = 'active')",
        [today],
    ):
        snapshot = {
            key.removeprefix("snapshot_"): row[key]
            for key in row.keys()  # noqa: SIM118 (sqlite3.Row)
            if key.startswith("snapshot_")
        }
        yield Customer.from_row(row), snapshot


def score_before(store: Store, customer_id: int, today: str) -> float | None:
    row = store.conn.execute(
        "SELECT score FROM health_snapshots WHERE customer_id = ? AND day < ? "
        "ORDER BY day DESC LIMIT 1",
        [customer_id, today],
    ).fetchone()
    return None if row is None else row[0]


def verdict(store: Store, customer_id: int, today: str) -> dict[str, object]:
    """The customer's latest health result up to ``today``: score and whether at risk
    (no snapshot yet: no score, not at risk)."""
    row = store.conn.execute(
        "SELECT score, at_risk FROM health_snapshots WHERE customer_id = ? AND day <= ? "
        "ORDER BY day DESC LIMIT 1",
        [customer_id, today],
    ).fetchone()
    if row is None:
        return {"score": None, "at_risk": False}
    return {"score": row[0], "at_risk": bool(row[1])}


def keep_snapshot(
    store: Store,
    customer_id: int,
    day: str,
    score: float | None,
    at_risk: bool,
    reasons: str,
    opportunities: str,
) -> None:
    store.conn.execute(
        "INSERT INTO health_snapshots (customer_id, day, score, at_risk, reasons, opportunities) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(customer_id, day) DO UPDATE SET score = excluded.score, "
        "at_risk = excluded.at_risk, reasons = excluded.reasons, opportunities = excluded.opportunities",
        [customer_id, day, score, int(at_risk), reasons, opportunities],
    )


# -- episodes ---------------------------------------------------------------------------------


def open_episodes_by_customer(store: Store) -> dict[int, dict[str, int]]:
    """Every open episode: customer -> kind -> episode id."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for episode_id, customer_id, kind in store.conn.execute(
        "SELECT id, customer_id, kind FROM health_episodes WHERE ended_on IS NULL"
    ):
        found[customer_id][kind] = episode_id
    return found


def open_episode(store: Store, customer_id: int, kind: str) -> int | None:
    row = store.conn.execute(
        "SELECT id FROM health_episodes WHERE customer_id = ? AND kind = ? AND ended_on IS NULL",
        [customer_id, kind],
    ).fetchone()
    return None if row is None else int(row[0])


def orphan_episodes(store: Store) -> list[Row]:
    """Open episodes of customers with no active enrollment left."""
    return [
        dict(row)
        for row in store.conn.execute(
            "SELECT h.id, h.customer_id, h.kind FROM health_episodes h WHERE h.ended_on IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.customer_id = h.customer_id "
            "AND e.status = 'active')"
        )
    ]


def start_episode(
    store: Store, customer_id: int, kind: str, on: str, score: float | None, reasons: list[str]
) -> int:
    cursor = store.conn.execute(
        "INSERT INTO health_episodes (customer_id, kind, started_on, score, reasons) "
        "VALUES (?, ?, ?, ?, ?)",
        [customer_id, kind, on, score, json.dumps(reasons)],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def end_episode(store: Store, episode_id: int, on: str) -> None:
    store.conn.execute("UPDATE health_episodes SET ended_on = ? WHERE id = ?", [on, episode_id])


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> dict[str, int]:
    return {
        table: store.conn.execute(
            f"DELETE FROM {table} WHERE customer_id = ?", [customer_id]
        ).rowcount
        for table in ("signals", "health_snapshots", "health_episodes")
    }


def move_to_customer(store: Store, from_id: int, to_id: int, today: str) -> dict[str, int]:
    """Give ``from_id``'s signals, snapshots and episodes to ``to_id``. Where both have a
    snapshot of the same day, ``to_id``'s stays (one result a day); where both are in an
    open episode of the same kind, ``from_id``'s ends ``today`` (one open episode of a
    kind), its plays left as they are: the customer kept is still in that state."""
    conn = store.conn
    counts = {
        "signals": conn.execute(
            "UPDATE signals SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
        ).rowcount
    }
    conn.execute(
        "DELETE FROM health_snapshots WHERE customer_id = ? AND day IN "
        "(SELECT day FROM health_snapshots WHERE customer_id = ?)",
        [from_id, to_id],
    )
    counts["health_snapshots"] = conn.execute(
        "UPDATE health_snapshots SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
    conn.execute(
        "UPDATE health_episodes SET ended_on = ? WHERE customer_id = ? AND ended_on IS NULL "
        "AND kind IN (SELECT kind FROM health_episodes WHERE customer_id = ? AND ended_on IS NULL)",
        [today, from_id, to_id],
    )
    counts["health_episodes"] = conn.execute(
        "UPDATE health_episodes SET customer_id = ? WHERE customer_id = ?", [to_id, from_id]
    ).rowcount
    return counts
