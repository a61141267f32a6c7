"""Measures: the funnel report, the HTML page and the calendar feed.

Every number is computed here from the store; the CLI only renders. Periods are
inclusive ISO dates; "now" figures (customers per stage, stagnating, backlog,
workload) are as of ``today``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .activities import DueQuery, due_items
from .dates import days_between, shift
from .playbooks import Funnel, Library
from .store import Store

WEEKS_AHEAD = 8


@dataclass(frozen=True)
class Period:
    since: str
    until: str


def default_period(today: str, since: str | None, until: str | None) -> Period:
    end = until or today
    return Period(since or shift(end, -89), end)  # 90 days, both ends included


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return float(ordered[int(rank) - 1])


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _visits(store: Store, funnel: Funnel) -> list[dict[str, Any]]:
    """Every stage visit of the funnel with when it ended and where it went next."""
    return store.rows(
        "SELECT h.enrollment_id, h.kind, h.to_stage AS stage, h.moved_on AS entered, "
        "lead(h.moved_on) OVER w AS left_on, lead(h.kind) OVER w AS next_kind, "
        "lead(h.to_stage) OVER w AS next_stage "
        "FROM stage_history h WHERE h.funnel = ? "
        "WINDOW w AS (PARTITION BY h.enrollment_id ORDER BY h.moved_on, h.id) "
        "ORDER BY h.enrollment_id, h.moved_on, h.id",
        [funnel.id],
    )


def funnel_report(
    store: Store, library: Library, funnel: Funnel, period: Period, today: str
) -> dict[str, Any]:
    order = {s.id: i for i, s in enumerate(funnel.stages)}
    visits = [v for v in _visits(store, funnel) if v["kind"] in ("enroll", "move", "reopen")]
    now = {
        r["stage"]: r["n"]
        for r in store.rows(
            "SELECT stage, count(*) AS n FROM enrollments WHERE funnel = ? AND status = 'active' "
            "GROUP BY stage",
            [funnel.id],
        )
    }
    stagnating: dict[str, set[str]] = defaultdict(set)  # customers, once even if stagnant and quiet
    for item in due_items(store, library, DueQuery(today=today)):
        if (
            item["kind"] == "stagnation"
            and item["funnel"] == funnel.id
            and item.get("alert") != "no-next-step"
        ):
            stagnating[item["stage"]].add(item["customer"])
    touches = _touchpoints_by_stage(store, funnel, period)
    stages = []
    for stage in funnel.stages:
        mine = [v for v in visits if v["stage"] == stage.id]
        entered = [v for v in mine if period.since <= v["entered"] <= period.until]
        # A visit converts when the next thing that happens is a move further on, or a win.
        converted = [
            v
            for v in entered
            # what happened after --until does not change the period's figures
            if v["left_on"] is not None
            and v["left_on"] <= period.until
            and (
                (v["next_kind"] == "move" and order.get(v["next_stage"], -1) > order[stage.id])
                or v["next_kind"] == "won"
            )
        ]
        durations = [
            days_between(v["entered"], v["left_on"])
            for v in mine
            if v["left_on"] is not None and period.since <= v["left_on"] <= period.until
        ]
        channels = touches.get(stage.id, {})
        stages.append(
            {
                "stage": stage.id,
                "title": stage.title,
                "customers": now.get(stage.id, 0),
                "entered": len(entered),
                "converted": len(converted),
                "conversion": round(len(converted) / len(entered), 3) if entered else None,
                "median_days": median(durations),
                "p90_days": percentile(durations, 90),
                "stagnating": len(stagnating.get(stage.id, ())),
                "touchpoints": channels,
                "gap": not channels,
            }
        )
    closed = {
        r["kind"]: r["n"]
        for r in store.rows(
            "SELECT kind, count(*) AS n FROM stage_history WHERE funnel = ? "
            "AND kind IN ('won', 'lost', 'churned') AND moved_on BETWEEN ? AND ? GROUP BY kind",
            [funnel.id, period.since, period.until],
        )
    }
    at_start = int(
        store.scalar(
            # enrollments whose last event before the period left them active
            "SELECT count(*) FROM (SELECT kind, row_number() OVER (PARTITION BY enrollment_id "
            "ORDER BY moved_on DESC, id DESC) AS n FROM stage_history WHERE funnel = ? "
            "AND moved_on < ?) WHERE n = 1 AND kind IN ('enroll', 'move', 'reopen')",
            [funnel.id, period.since],
        )
    )
    started = int(
        store.scalar(
            "SELECT count(*) FROM stage_history WHERE funnel = ? AND kind = 'enroll' "
            "AND moved_on BETWEEN ? AND ?",
            [funnel.id, period.since, period.until],
        )
    )
    churned = closed.get("churned", 0)
    return {
        "funnel": funnel.id,
        "title": funnel.title,
        "active": sum(now.values()),
        "stages": stages,
        "won": closed.get("won", 0),
        "lost": closed.get("lost", 0),
        "churned": churned,
        "active_at_start": at_start,
        "started": started,
        # churned out of every enrollment that was active at some point in the period
        "churn_rate": round(churned / (at_start + started), 3) if at_start + started else None,
    }


def _touchpoints_by_stage(
    store: Store, funnel: Funnel, period: Period
) -> dict[str, dict[str, int]]:
    """Touchpoints in the period, counted under the stage the customer was in that day."""
    rows = store.rows(
        "WITH visits AS (SELECT h.customer_id, h.to_stage AS stage, h.moved_on AS start, "
        "  lead(h.moved_on) OVER w AS stop, lead(h.kind) OVER w AS next_kind, "
        "  h.kind FROM stage_history h WHERE h.funnel = ? "
        "  WINDOW w AS (PARTITION BY h.enrollment_id ORDER BY h.moved_on, h.id)) "
        "SELECT v.stage, t.channel, count(*) AS n FROM touchpoints t JOIN visits v "
        "ON v.customer_id = t.customer_id AND v.kind IN ('enroll', 'move', 'reopen') "
        "AND t.happened_on >= v.start AND (v.stop IS NULL OR t.happened_on < v.stop "
        "  OR (t.happened_on = v.stop AND v.next_kind IN ('won', 'lost', 'churned'))) "
        "WHERE t.happened_on BETWEEN ? AND ? GROUP BY v.stage, t.channel",
        [funnel.id, period.since, period.until],
    )
    result: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        result[r["stage"]][r["channel"]] = r["n"]
    return result


def satisfaction(store: Store, period: Period) -> dict[str, Any]:
    """NPS from each customer's latest answer in the period; average CSAT of the period."""
    latest = [
        r["value"]
        for r in store.rows(
            "SELECT value FROM signals s WHERE metric = 'nps' AND measured_on BETWEEN ? AND ? "
            "AND id = (SELECT id FROM signals t WHERE t.customer_id = s.customer_id "
            "AND t.metric = 'nps' AND t.measured_on BETWEEN ? AND ? "
            "ORDER BY t.measured_on DESC, t.id DESC LIMIT 1)",
            [period.since, period.until, period.since, period.until],
        )
    ]
    promoters = sum(1 for v in latest if v >= 9)
    detractors = sum(1 for v in latest if v <= 6)
    csat = store.one(
        "SELECT avg(value) AS avg, count(*) AS n FROM signals WHERE metric = 'csat' "
        "AND measured_on BETWEEN ? AND ?",
        [period.since, period.until],
    ) or {"avg": None, "n": 0}
    ticket_csat = store.one(
        "SELECT avg(csat) AS avg, count(csat) AS n FROM tickets WHERE substr(opened_at, 1, 10) BETWEEN ? AND ?",
        [period.since, period.until],
    ) or {"avg": None, "n": 0}
    return {
        "nps": round(100 * (promoters - detractors) / len(latest), 1) if latest else None,
        "nps_answers": len(latest),
        "promoters": promoters,
        "detractors": detractors,
        "csat": round(csat["avg"], 2) if csat["n"] else None,
        "csat_answers": csat["n"],
        "ticket_csat": round(ticket_csat["avg"], 2) if ticket_csat["n"] else None,
    }


def _hours(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


def support(store: Store, period: Period, today: str) -> dict[str, Any]:
    """Response and resolution times, from touchpoints and imported tickets, and the backlog."""
    waits = [
        days_between(r["happened_on"], r["answered_on"])
        for r in store.rows(
            "SELECT t.happened_on, (SELECT min(o.happened_on) FROM touchpoints o "
            "WHERE o.customer_id = t.customer_id AND o.direction = 'outbound' "
            "AND o.happened_on >= t.happened_on) AS answered_on "
            "FROM touchpoints t WHERE t.direction = 'inbound' AND t.happened_on BETWEEN ? AND ?",
            [period.since, period.until],
        )
        if r["answered_on"] is not None
    ]
    tickets = store.rows(
        "SELECT opened_at, first_response_at, resolved_at FROM tickets "
        "WHERE substr(opened_at, 1, 10) BETWEEN ? AND ?",
        [period.since, period.until],
    )
    responses = [
        _hours(t["opened_at"], t["first_response_at"]) for t in tickets if t["first_response_at"]
    ]
    resolutions = [_hours(t["opened_at"], t["resolved_at"]) for t in tickets if t["resolved_at"]]
    backlog = int(
        store.scalar(
            "SELECT count(*) FROM tickets WHERE substr(opened_at, 1, 10) <= ? "
            "AND (resolved_at IS NULL OR substr(resolved_at, 1, 10) > ?)",
            [today, today],
        )
    )
    return {
        "response_days_median": median([float(w) for w in waits]),
        "inbound_answered": len(waits),
        "tickets": len(tickets),
        "first_response_hours_median": _round(median(responses)),
        "resolution_hours_median": _round(median(resolutions)),
        "resolution_hours_p90": _round(percentile(resolutions, 90)),
        "backlog": backlog,
    }


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def owners(store: Store, period: Period, today: str) -> list[dict[str, Any]]:
    """Tasks done on time and late in the period, overdue now, and median lateness."""
    stats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"done_on_time": 0, "done_late": 0, "overdue": 0, "late_days": []}
    )
    for r in store.rows(
        "SELECT coalesce(owner, '(nobody)') AS owner, first_due_on, closed_on FROM activities "
        "WHERE status = 'done' AND closed_on BETWEEN ? AND ?",
        [period.since, period.until],
    ):
        late = days_between(r["first_due_on"], r["closed_on"])
        entry = stats[r["owner"]]
        if late > 0:
            entry["done_late"] += 1
            entry["late_days"].append(late)
        else:
            entry["done_on_time"] += 1
    for r in store.rows(
        "SELECT coalesce(owner, '(nobody)') AS owner, count(*) AS n FROM activities "
        "WHERE status = 'open' AND due_on < ? GROUP BY 1",
        [today],
    ):
        stats[r["owner"]]["overdue"] = r["n"]
    result = []
    for owner, entry in sorted(stats.items()):
        done = entry["done_on_time"] + entry["done_late"]
        result.append(
            {
                "owner": owner,
                "done_on_time": entry["done_on_time"],
                "done_late": entry["done_late"],
                "on_time_rate": round(entry["done_on_time"] / done, 3) if done else None,
                "overdue": entry["overdue"],
                "median_days_late": median([float(d) for d in entry["late_days"]]),
            }
        )
    return result


def week_start(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def workload(store: Store, today: str, weeks: int = WEEKS_AHEAD) -> list[dict[str, Any]]:
    """Open tasks and queued emails per week for the coming weeks, per owner.

    The first week (the one holding today) also carries everything already overdue.
    """
    first = week_start(today)
    end = shift(first, 7 * weeks - 1)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"tasks": 0, "emails": 0})
    for r in store.rows(
        "SELECT coalesce(owner, '(nobody)') AS owner, max(due_on, ?) AS day, count(*) AS n "
        "FROM activities WHERE status = 'open' AND due_on <= ? GROUP BY 1, 2",
        [first, end],
    ):
        counts[(week_start(r["day"]), r["owner"])]["tasks"] += r["n"]
    for r in store.rows(
        "SELECT coalesce(e.owner, c.owner, '(nobody)') AS owner, max(o.scheduled_on, ?) AS day, "
        "count(*) AS n FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "LEFT JOIN enrollments e ON e.id = o.enrollment_id "
        "WHERE o.status = 'queued' AND o.scheduled_on <= ? GROUP BY 1, 2",
        [first, end],
    ):
        counts[(week_start(r["day"]), r["owner"])]["emails"] += r["n"]
    owners_seen = sorted({owner for _, owner in counts})
    rows = []
    for i in range(weeks):
        week = shift(first, 7 * i)
        for owner in owners_seen:
            c = counts.get((week, owner), {"tasks": 0, "emails": 0})
            rows.append({"week": week, "owner": owner, "tasks": c["tasks"], "emails": c["emails"]})
    return rows


def monthly_trends(store: Store, period: Period) -> list[dict[str, Any]]:
    """NPS and churned enrollments per month of the period (for the trend lines)."""
    months: dict[str, dict[str, Any]] = {}
    day = date.fromisoformat(period.since).replace(day=1)
    stop = date.fromisoformat(period.until)
    while day <= stop:
        months[day.isoformat()[:7]] = {"month": day.isoformat()[:7], "nps": None, "churned": 0}
        day = (day + timedelta(days=32)).replace(day=1)
    answers: dict[str, list[float]] = defaultdict(list)
    for r in store.rows(
        "SELECT substr(measured_on, 1, 7) AS month, value FROM signals WHERE metric = 'nps' "
        "AND measured_on BETWEEN ? AND ?",
        [period.since, period.until],
    ):
        answers[r["month"]].append(r["value"])
    for month, values in answers.items():
        if month in months:
            p = sum(1 for v in values if v >= 9)
            d = sum(1 for v in values if v <= 6)
            months[month]["nps"] = round(100 * (p - d) / len(values), 1)
    for r in store.rows(
        "SELECT substr(moved_on, 1, 7) AS month, count(*) AS n FROM stage_history "
        "WHERE kind = 'churned' AND moved_on BETWEEN ? AND ? GROUP BY 1",
        [period.since, period.until],
    ):
        if r["month"] in months:
            months[r["month"]]["churned"] = r["n"]
    return list(months.values())


def build_report(
    store: Store,
    library: Library,
    today: str,
    *,
    funnel: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    period = default_period(today, since, until)
    funnels = [library.funnel(funnel)] if funnel else list(library.funnels.values())
    with store.read():
        return {
            "today": today,
            "period": {"since": period.since, "until": period.until},
            "funnels": [funnel_report(store, library, f, period, today) for f in funnels],
            "satisfaction": satisfaction(store, period),
            "support": support(store, period, today),
            "owners": owners(store, period, today),
            "workload": workload(store, today),
            "trends": monthly_trends(store, period),
        }


# -- the calendar feed --------------------------------------------------------------------------


def calendar(store: Store, *, owner: str | None = None) -> bytes:
    """Open tasks as all-day events on their due dates (an iCalendar file).

    Everything in an event comes from the database (DTSTAMP is the task's creation
    day), so the same book always gives the same file and calendar apps see stable
    UIDs across refreshes.
    """
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//funnelctl//follow-ups//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "funnelctl follow-ups")
    where, params = ("AND a.owner = ?", [owner]) if owner else ("", [])
    for row in store.iter_rows(
        "SELECT a.*, coalesce(c.email, c.external_id) AS customer, c.name, c.company, e.funnel, e.stage "
        "FROM activities a JOIN customers c ON c.id = a.customer_id "
        f"LEFT JOIN enrollments e ON e.id = a.enrollment_id WHERE a.status = 'open' {where} "
        "ORDER BY a.due_on, a.id",
        params,
    ):
        event = Event()
        event.add("uid", f"task-{row['id']}@funnelctl")
        event.add("dtstamp", datetime.fromisoformat(row["created_on"]))
        event.add("dtstart", date.fromisoformat(row["due_on"]))
        event.add("dtend", date.fromisoformat(row["due_on"]) + timedelta(days=1))
        who = row["name"] or row["customer"]
        event.add("summary", f"{row['title']} ({who})")
        details = [
            f"Customer: {row['customer']}" + (f", {row['company']}" if row["company"] else "")
        ]
        if row["funnel"]:
            details.append(f"Funnel: {row['funnel']} / {row['stage']}")
        if row["owner"]:
            details.append(f"Owner: {row['owner']}")
        if row["channel"]:
            details.append(f"Channel: {row['channel']}")
        if row["description"]:
            details.append(row["description"].strip())
        details.append(f"Done? funnelctl done {row['id']}")
        event.add("description", "\n".join(details))
        if row["owner"]:
            event.add("categories", [row["owner"]])
        cal.add_component(event)
    return bytes(cal.to_ical())
