"""Health: signals (a dated value of a metric for a customer), snapshots (a customer's
score on the days it changed) and episodes (a stretch of time at risk, or with an
opportunity, that starts its plays once).

Scoring a whole book reads in bulk (``*_by_customer``): a few whole-table queries
grouped by customer rather than ten small ones per customer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from .customers import COLUMNS, Customer
from .db import Row, Store
from .enrollments import Enrollment


def _todo(todo: bool, column: str = "customer_id") -> str:
    """The filter to the customers the run scores (temp.health_todo), when ``todo``."""
    return f" AND {column} IN (SELECT id FROM temp.health_todo)" if todo else ""


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


def latest_by_customer(
    store: Store, today: str, *, todo: bool = False, metrics: Collection[str] | None = None
) -> dict[int, dict[str, float]]:
    """:func:`latest` of every customer (of temp.health_todo with ``todo``), of only
    ``metrics`` when given. The day of each latest value is found in the index
    signals_customer (customer, metric, day, id) alone, without reading a row; only the
    row of that value is read then, the last of its day as :func:`latest` takes it."""
    found: dict[int, dict[str, float]] = defaultdict(dict)
    if metrics is not None and not metrics:
        return found
    only = "" if metrics is None else f" AND metric IN ({', '.join('?' for _ in metrics)})"
    for customer_id, metric, value in store.conn.execute(
        "SELECT g.customer_id, g.metric, (SELECT s.value FROM signals s "
        "WHERE s.customer_id = g.customer_id AND s.metric = g.metric AND s.measured_on = g.day "
        "ORDER BY s.id DESC LIMIT 1) FROM (SELECT customer_id, metric, max(measured_on) AS day "
        f"FROM signals WHERE measured_on <= ?{only}{_todo(todo)} GROUP BY customer_id, metric) g",
        [today, *sorted(metrics or ())],
    ):
        found[customer_id][metric] = value
    return found


def window_by_customer(
    store: Store, metric: str, since: str, until: str, how: str, *, todo: bool = False
) -> dict[int, float]:
    assert how in ("sum", "avg", "min", "max")
    return {
        customer_id: float(value)
        for customer_id, value in store.conn.execute(
            f"SELECT customer_id, {how}(value) FROM signals WHERE metric = ? "
            f"AND measured_on > ? AND measured_on <= ?{_todo(todo)} GROUP BY customer_id",
            [metric, since, until],
        )
    }


def touches_by_customer(
    store: Store, today: str, *, todo: bool = False
) -> dict[int, tuple[str | None, str | None]]:
    """(last touchpoint, last inbound one) of every customer, up to ``today``."""
    return {
        customer_id: (last_on, last_inbound)
        for customer_id, last_on, last_inbound in store.conn.execute(
            "SELECT customer_id, max(happened_on), "
            "max(CASE WHEN direction = 'inbound' THEN happened_on END) "
            f"FROM touchpoints WHERE happened_on <= ?{_todo(todo)} GROUP BY customer_id",
            [today],
        )
    }


def overdue_by_customer(store: Store, today: str, *, todo: bool = False) -> dict[int, int]:
    # ``+customer_id``: the overdue tasks found by status and date (activities_open_due),
    # then grouped, not every task of the book read in customer order to spare the sort
    return {
        customer_id: n
        for customer_id, n in store.conn.execute(
            "SELECT customer_id, count(*) FROM activities "
            f"WHERE status = 'open' AND due_on < ?{_todo(todo)} GROUP BY +customer_id",
            [today],
        )
    }


def overdue_of(store: Store, customer_id: int, today: str) -> int:
    # ``+status``: the customer's own tasks, never every open task of the book due before
    # today (which a book without statistics would otherwise read, by status and date)
    return int(
        store.conn.execute(
            "SELECT count(*) FROM activities WHERE customer_id = ? AND +status = 'open' "
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


def active_columns(
    store: Store, columns: Collection[str], *, todo: bool = False
) -> Iterator[tuple[Any, ...]]:
    """(id, signed_on, created_on, *columns) of every customer with an active enrollment
    (of temp.health_todo with ``todo``), in id order: what scoring reads of a customer,
    without making a Customer of each."""
    unknown = set(columns) - set(COLUMNS)
    assert not unknown, f"not customer columns: {unknown}"
    extra = "".join(f", c.{column}" for column in columns)
    return store.conn.execute(
        f"SELECT c.id, c.signed_on, c.created_on{extra} FROM customers c WHERE EXISTS "
        "(SELECT 1 FROM enrollments e WHERE e.customer_id = c.id AND e.status = 'active')"
        f"{_todo(todo, 'c.id')} ORDER BY c.id"
    )


def todo_customers(store: Store, after: int, limit: int) -> list[Customer]:
    """The next ``limit`` customers to score (temp.health_todo) after id ``after``, in id
    order: read a batch at a time, as the run writes between batches."""
    return [
        Customer.from_row(row)
        for row in store.conn.execute(
            "SELECT * FROM customers WHERE id IN (SELECT id FROM temp.health_todo) AND id > ? "
            "ORDER BY id LIMIT ?",
            [after, limit],
        )
    ]


class Place(NamedTuple):
    """Where an active enrollment stands: what stagnation is worked out from."""

    funnel: str
    stage: str
    entered_on: str


def active_places(store: Store, *, todo: bool = False) -> dict[int, list[Place]]:
    """Every active enrollment's place, by customer, in enrollment id order (the last one
    is the current enrollment), without making an Enrollment of each."""
    found: dict[int, list[Place]] = defaultdict(list)
    for customer_id, funnel, stage, entered_on in store.conn.execute(
        "SELECT customer_id, funnel, stage, entered_on FROM enrollments "
        f"WHERE status = 'active'{_todo(todo)} ORDER BY id"
    ):
        found[customer_id].append(Place(funnel, stage, entered_on))
    return found


def active_enrollments(store: Store, *, todo: bool = False) -> Iterator[Enrollment]:
    """Every active enrollment (of the customers to score), in id order."""
    for row in store.conn.execute(
        f"SELECT * FROM enrollments WHERE status = 'active'{_todo(todo)} ORDER BY id"
    ):
        yield Enrollment.from_row(row)


# -- snapshots --------------------------------------------------------------------------------


def latest_snapshots(store: Store, today: str, *, todo: bool = False) -> dict[int, Row]:
    """Every customer's latest snapshot up to ``today``."""
    return {
        row["customer_id"]: dict(row)
        for row in store.conn.execute(
            "SELECT s.* FROM health_snapshots s WHERE s.day = (SELECT max(t.day) "
            f"FROM health_snapshots t WHERE t.customer_id = s.customer_id AND t.day <= ?)"
            f"{_todo(todo, 's.customer_id')}",
            [today],
        )
    }


def snapshots_with_customers(
    store: Store, today: str, *, everyone: bool, but_todo: bool = False
) -> Iterator[tuple[Customer, Row]]:
    """The latest snapshot up to ``today`` of each customer still active, with the customer;
    only those at risk or with an opportunity unless ``everyone``; with ``but_todo``, not
    those of temp.health_todo (scored now instead)."""
    wanted = "" if everyone else "AND (s.at_risk = 1 OR s.opportunities != '[]')"
    if but_todo:
        wanted += " AND s.customer_id NOT IN (SELECT id FROM temp.health_todo)"
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


def scores_before(store: Store, customer_ids: Sequence[int], today: str) -> dict[int, float]:
    """:func:`score_before` of each of ``customer_ids`` that has one, in one query."""
    marks = ", ".join("?" for _ in customer_ids)
    return {
        customer_id: score
        for customer_id, score in store.conn.execute(
            "SELECT s.customer_id, s.score FROM health_snapshots s "
            f"WHERE s.customer_id IN ({marks}) AND s.day = (SELECT max(t.day) "
            "FROM health_snapshots t WHERE t.customer_id = s.customer_id AND t.day < ?)",
            [*customer_ids, today],
        )
        if score is not None
    }


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


def keep_snapshots(store: Store, rows: list[tuple[int, str, float | None, bool, str, str]]) -> None:
    """:func:`keep_snapshot` for many (customer_id, day, score, at_risk, reasons,
    opportunities) at once."""
    store.conn.executemany(_KEEP, [(c, d, s, int(a), r, o) for c, d, s, a, r, o in rows])


def keep_snapshot(
    store: Store,
    customer_id: int,
    day: str,
    score: float | None,
    at_risk: bool,
    reasons: str,
    opportunities: str,
) -> None:
    store.conn.execute(_KEEP, [customer_id, day, score, int(at_risk), reasons, opportunities])


_KEEP = (
    "INSERT INTO health_snapshots (customer_id, day, score, at_risk, reasons, opportunities) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(customer_id, day) DO UPDATE SET score = excluded.score, "
    "at_risk = excluded.at_risk, reasons = excluded.reasons, opportunities = excluded.opportunities"
)


# -- episodes ---------------------------------------------------------------------------------


def open_episodes_by_customer(store: Store, *, todo: bool = False) -> dict[int, dict[str, int]]:
    """Every open episode: customer -> kind -> episode id."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for episode_id, customer_id, kind in store.conn.execute(
        f"SELECT id, customer_id, kind FROM health_episodes WHERE ended_on IS NULL{_todo(todo)}"
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


# -- the incremental run: whom to score, and when to look again ---------------------------------
# Triggers (migration m013) mark a customer in health_dirty whenever something scoring reads
# is written; health_state keeps what the last scoring of each customer found.

_NEVER = "9999-12-31"


def plan(store: Store, today: str, *, everyone: bool, take: bool = True) -> None:
    """Fill temp.health_todo with the active customers to score today: ``everyone``, or
    those marked since the last run, due for a recheck by today, or never scored. With
    ``take`` (the run) the marks are taken: what is written from now on marks a customer
    for the next run; without (a report) nothing but the temporary table is written."""
    conn = store.conn
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS health_todo (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.health_todo")
    active = "SELECT customer_id FROM enrollments WHERE status = 'active'"
    if everyone:
        conn.execute(f"INSERT OR IGNORE INTO temp.health_todo {active}")
        if take:
            conn.execute("DELETE FROM health_state")
    else:
        conn.execute(
            "INSERT OR IGNORE INTO temp.health_todo SELECT customer_id FROM health_dirty "
            "UNION SELECT customer_id FROM health_state WHERE recheck_on <= ? "
            "UNION SELECT customer_id FROM enrollments e WHERE status = 'active' AND NOT EXISTS "
            "(SELECT 1 FROM health_state h WHERE h.customer_id = e.customer_id)",
            [today],
        )
        conn.execute(f"DELETE FROM temp.health_todo WHERE id NOT IN ({active})")
    if take:
        conn.execute("DELETE FROM health_dirty")


def keep_states(store: Store, rows: list[tuple[int, str, bool, str | None]]) -> None:
    """Each (customer_id, day scored, at risk, recheck_on) as the run found it."""
    store.conn.executemany(
        "INSERT INTO health_state (customer_id, scored_on, at_risk, recheck_on) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(customer_id) DO UPDATE SET scored_on = excluded.scored_on, "
        "at_risk = excluded.at_risk, recheck_on = excluded.recheck_on",
        [(c, d, int(a), r) for c, d, a, r in rows],
    )


def recheck_on_inputs(store: Store, today: str, windows: Iterable[tuple[str, int]]) -> None:
    """Bring the recheck day of each customer scored (temp.health_todo) forward to the
    first day one of their stored inputs starts to count differently with nothing
    written: a signal, touchpoint or stage entry dated after today, an open task falling
    overdue (the day after it is due), a signal leaving one of the model's windows
    (``windows``: (metric, days) read by signal_sum/avg/min/max/change)."""
    conn = store.conn
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS health_events (customer_id INTEGER NOT NULL, day TEXT)"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS temp.health_events_customer ON health_events(customer_id)"
    )
    conn.execute("DELETE FROM temp.health_events")
    todo = _todo(True)
    sources = [
        ("SELECT customer_id, min(measured_on) FROM signals WHERE measured_on > ?", [today]),
        ("SELECT customer_id, min(happened_on) FROM touchpoints WHERE happened_on > ?", [today]),
        (
            "SELECT customer_id, min(date(due_on, '+1 day')) FROM activities "
            "WHERE status = 'open' AND due_on >= ?",
            [today],
        ),
        (
            "SELECT customer_id, min(entered_on) FROM enrollments "
            "WHERE status = 'active' AND entered_on > ?",
            [today],
        ),
    ]
    for metric, days in sorted(set(windows)):
        sources.append(
            (
                f"SELECT customer_id, min(date(measured_on, '+{int(days)} days')) FROM signals "
                "WHERE metric = ? AND measured_on > date(?, ?) AND measured_on <= ?",
                [metric, today, f"-{int(days)} days", today],
            )
        )
    for query, params in sources:
        conn.execute(f"INSERT INTO temp.health_events {query}{todo} GROUP BY customer_id", params)
    conn.execute(
        "UPDATE health_state SET recheck_on = nullif(min(coalesce(recheck_on, ?), coalesce("
        "(SELECT min(day) FROM temp.health_events e WHERE e.customer_id = health_state.customer_id), "
        "?)), ?) WHERE customer_id IN (SELECT id FROM temp.health_todo)",
        [_NEVER, _NEVER, _NEVER],
    )


def forget_states(store: Store) -> None:
    store.conn.execute("DELETE FROM health_state")


def forget_own_tasks(store: Store) -> None:
    """The tasks the run's own plays created for the customers it scored: due today or
    later, they change nothing today, and the day they fall overdue is in recheck_on."""
    store.conn.execute(
        "DELETE FROM health_dirty WHERE source = 'activities' "
        "AND customer_id IN (SELECT id FROM temp.health_todo)"
    )


def verdicts(store: Store) -> tuple[int, int]:
    """(active customers, those of them at risk) as the runs have scored them."""
    row = store.conn.execute(
        "SELECT count(*), coalesce(sum(at_risk), 0) FROM health_state h WHERE EXISTS "
        "(SELECT 1 FROM enrollments e WHERE e.customer_id = h.customer_id AND e.status = 'active')"
    ).fetchone()
    return int(row[0]), int(row[1])


# -- erasing a person, merging two records of one ------------------------------------------------


def delete_of_customer(store: Store, customer_id: int) -> dict[str, int]:
    return {
        table: store.conn.execute(
            f"DELETE FROM {table} WHERE customer_id = ?", [customer_id]
        ).rowcount
        for table in ("signals", "health_snapshots", "health_episodes")
    }


def forget_customer(store: Store, customer_id: int) -> None:
    """The incremental run's bookkeeping of a customer erased or merged away: called
    after their rows are gone, as those deletions mark them once more."""
    for table in ("health_state", "health_dirty"):
        store.conn.execute(f"DELETE FROM {table} WHERE customer_id = ?", [customer_id])


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
