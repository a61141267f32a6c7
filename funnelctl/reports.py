"""Measures: the funnel report, and the open tasks for the calendar feed.

Every number is computed here from the store; the CLI only renders. Periods are
inclusive ISO dates; "now" figures (customers per stage, stagnating, backlog,
workload) are as of ``today``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .agenda import DueQuery, due_items
from .dates import days_between, shift, week_start
from .outline import outline
from .playbooks import CloseAction, Funnel, Library
from .store import Row, Store, due
from .store import reports as queries
from .workspace import Settings

WEEKS_AHEAD = 8
WEEKS_PROJECTED = 12  # the workload projection's default horizon (report --weeks)


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


def funnel_report(
    store: Store, library: Library, funnel: Funnel, period: Period, today: str
) -> dict[str, Any]:
    order = {s.id: i for i, s in enumerate(funnel.stages)}
    visits = [
        v
        for v in queries.stage_visits(store, funnel.id)
        if v["kind"] in ("enroll", "move", "reopen")
    ]
    now = queries.active_by_stage(store, funnel.id)
    stagnating: dict[str, set[str]] = defaultdict(set)  # customers, once even if stagnant and quiet
    for item in due_items(store, outline(library), DueQuery(today=today)):
        if (
            item["kind"] == "stagnation"
            and item["funnel"] == funnel.id
            and {"stagnant", "quiet"} & set(item["alerts"])
        ):
            stagnating[item["stage"]].add(item["customer"])
    touches = _touchpoints_by_stage(store, funnel, period)
    closes = closing_stages(funnel)
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
                # a stage that closes the enrollment on entry is passed in a day: no
                # touchpoint is expected there, so it is never a gap
                "closes": closes.get(stage.id),
                "gap": not channels and stage.id not in closes,
            }
        )
    out = outcomes(store, funnel.id, period)
    exposed = out["active_at_start"] + out["started"]
    return {
        "funnel": funnel.id,
        "title": funnel.title,
        "active": sum(now.values()),
        "stages": stages,
        **out,
        # churned out of every enrollment that was active at some point in the period
        "churn_rate": round(out["churned"] / exposed, 3) if exposed else None,
    }


OUTCOMES = ("won", "lost", "churned", "active_at_start", "started")


def outcomes(store: Store, funnel: str, period: Period) -> dict[str, int]:
    """Enrollments of ``funnel`` won, lost and churned in the period, active when it
    began, and started in it."""
    closed = queries.closed_by_kind(store, funnel, period.since, period.until)
    return {
        "won": closed.get("won", 0),
        "lost": closed.get("lost", 0),
        "churned": closed.get("churned", 0),
        "active_at_start": queries.active_before(store, funnel, period.since),
        "started": queries.started(store, funnel, period.since, period.until),
    }


def closing_stages(funnel: Funnel) -> dict[str, str]:
    """The stages whose entry closes the enrollment whatever happens (an unconditional
    ``close:`` action), with the status they close it as (won, lost, churned)."""
    found = {}
    for stage in funnel.stages:
        for action in stage.on_enter:
            if isinstance(action, CloseAction) and action.when is None:
                found[stage.id] = action.status
                break
    return found


def _touchpoints_by_stage(
    store: Store, funnel: Funnel, period: Period
) -> dict[str, dict[str, int]]:
    """Touchpoints in the period, counted under the stage the customer was in that day."""
    rows = queries.touchpoints_by_stage(store, funnel.id, period.since, period.until)
    result: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        result[r["stage"]][r["channel"]] = r["n"]
    return result


def satisfaction(store: Store, period: Period) -> dict[str, Any]:
    """NPS from each customer's latest answer in the period; average CSAT of the period."""
    latest = queries.latest_nps_answers(store, period.since, period.until)
    promoters = sum(1 for v in latest if v >= 9)
    detractors = sum(1 for v in latest if v <= 6)
    csat, csat_n = queries.csat_average(store, period.since, period.until)
    ticket_csat, ticket_n = queries.ticket_csat_average(store, period.since, period.until)
    return {
        "nps": round(100 * (promoters - detractors) / len(latest), 1) if latest else None,
        "nps_answers": len(latest),
        "promoters": promoters,
        "detractors": detractors,
        "csat": round(csat, 2) if csat_n and csat is not None else None,
        "csat_answers": csat_n,
        "ticket_csat": round(ticket_csat, 2) if ticket_n and ticket_csat is not None else None,
    }


def _hours(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


def support(store: Store, period: Period, today: str) -> dict[str, Any]:
    """Response and resolution times, from touchpoints and imported tickets, and the backlog."""
    waits = [
        days_between(r["happened_on"], r["answered_on"])
        for r in queries.inbound_answers(store, period.since, period.until)
        if r["answered_on"] is not None
    ]
    tickets = queries.tickets_opened(store, period.since, period.until)
    responses = [
        _hours(t["opened_at"], t["first_response_at"]) for t in tickets if t["first_response_at"]
    ]
    resolutions = [_hours(t["opened_at"], t["resolved_at"]) for t in tickets if t["resolved_at"]]
    backlog = queries.tickets_open_on(store, today)
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
    for r in queries.tasks_done(store, period.since, period.until):
        late = days_between(r["first_due_on"], r["closed_on"])
        entry = stats[r["owner"]]
        if late > 0:
            entry["done_late"] += 1
            entry["late_days"].append(late)
        else:
            entry["done_on_time"] += 1
    for r in queries.overdue_by_owner(store, today):
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


def workload(
    store: Store, today: str, weeks: int = WEEKS_AHEAD, open_tasks: list[Row] | None = None
) -> list[dict[str, Any]]:
    """Open tasks and queued emails per week for the coming weeks, per owner.

    The first week (the one holding today) also carries everything already overdue.
    ``open_tasks``: open_tasks_by_day from the same first day, up to this end or later.
    """
    first = week_start(today)
    end = shift(first, 7 * weeks - 1)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"tasks": 0, "emails": 0})
    if open_tasks is None:
        open_tasks = queries.open_tasks_by_day(store, first, end)
    for r in open_tasks:
        if r["day"] > end:
            continue
        counts[(week_start(r["day"]), r["owner"])]["tasks"] += r["n"]
    for r in queries.queued_emails_by_day(store, first, end):
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
    for r in queries.nps_answers_by_month(store, period.since, period.until):
        answers[r["month"]].append(r["value"])
    for month, values in answers.items():
        if month in months:
            p = sum(1 for v in values if v >= 9)
            d = sum(1 for v in values if v <= 6)
            months[month]["nps"] = round(100 * (p - d) / len(values), 1)
    for r in queries.churned_by_month(store, period.since, period.until):
        if r["month"] in months:
            months[r["month"]]["churned"] = r["n"]
    return list(months.values())


# -- the client page: headline figures against the previous period, weeks, at risk ---------------

AT_RISK_LISTED = 50  # the page and the JSON list the worst this many; the tile counts them all


def previous_period(period: Period) -> Period:
    """The period of the same length that ends the day before ``period`` starts."""
    length = days_between(period.since, period.until) + 1
    return Period(shift(period.since, -length), shift(period.since, -1))


def _figures(
    store: Store, ids: list[str], period: Period, counted: list[dict[str, Any]]
) -> dict[str, Any]:
    """The headline figures of one period (for it and for the one before), from each
    funnel's ``outcomes`` in it."""
    won, lost, churned, at_start, started = (sum(c[key] for c in counted) for key in OUTCOMES)
    exposed = at_start + started
    spans = [
        days_between(r["started_on"], r["closed_on"])
        for r in queries.won_spans(store, ids, period.since, period.until)
    ]
    sat = satisfaction(store, period)
    return {
        "active_customers": queries.active_customers_on(store, ids, period.until),
        # won out of every enrollment that closed in the period, however it closed
        "conversion": round(won / (won + lost + churned), 3) if won + lost + churned else None,
        "churn_rate": round(churned / exposed, 3) if exposed else None,
        "nps": sat["nps"],
        "csat": sat["csat"],
        "median_days_to_approval": median([float(d) for d in spans]),
    }


# (key, label, which way is better)
KPIS = (
    ("active_customers", "Active customers", "up"),
    ("conversion", "Conversion to approved", "up"),
    ("churn_rate", "Churn", "down"),
    ("nps", "NPS", "up"),
    ("csat", "CSAT", "up"),
    ("at_risk", "At risk", "down"),
    ("median_days_to_approval", "Median days to approval", "down"),
)


def kpis(
    store: Store, reported: list[dict[str, Any]], period: Period, at_risk: int | None
) -> list[dict[str, Any]]:
    """The headline tiles: each figure of the period, of the period of the same length
    before it, and the change (None when either is unknown).

    At risk: ``at_risk`` is today's count; the previous one is what the daily run had
    recorded at the end of the previous period (None when it had not scored anyone yet:
    not zero)."""
    before = previous_period(period)
    ids = [f["funnel"] for f in reported]
    now = _figures(store, ids, period, reported)  # the funnels' own figures
    then = _figures(store, ids, before, [outcomes(store, f, before) for f in ids])
    now["at_risk"] = at_risk
    first = queries.first_scored_day(store)
    then["at_risk"] = (
        queries.at_risk_on(store, before.until) if first and first <= before.until else None
    )
    tiles = []
    for key, label, better in KPIS:
        value, previous = now[key], then[key]
        change = None if value is None or previous is None else round(value - previous, 3)
        tiles.append(
            {
                "kpi": key,
                "label": label,
                "value": value,
                "previous": previous,
                "change": change,
                "better": better,
            }
        )
    return tiles


def weekly_trends(store: Store, funnels: list[Funnel], period: Period) -> list[dict[str, Any]]:
    """Per week (Monday to Sunday) of the period: enrollments started, won and churned, and
    the NPS of the answers given that week. The first and last weeks may be partial."""
    weeks: dict[str, dict[str, Any]] = {}
    day = week_start(period.since)
    while day <= period.until:
        weeks[day] = {"week": day, "started": 0, "won": 0, "churned": 0, "nps": None, "answers": 0}
        day = shift(day, 7)
    names = {"enroll": "started", "won": "won", "churned": "churned"}
    ids = [f.id for f in funnels]
    for r in queries.history_by_day(store, ids, period.since, period.until):
        weeks[week_start(r["day"])][names[r["kind"]]] += r["n"]
    answers: dict[str, list[float]] = defaultdict(list)
    for r in queries.nps_answers_by_day(store, period.since, period.until):
        answers[week_start(r["day"])].append(r["value"])
    for week, values in answers.items():
        p = sum(1 for v in values if v >= 9)
        d = sum(1 for v in values if v <= 6)
        weeks[week]["nps"] = round(100 * (p - d) / len(values), 1)
        weeks[week]["answers"] = len(values)
    return list(weeks.values())


def at_risk_list(store: Store, today: str) -> tuple[int | None, list[dict[str, Any]]]:
    """How many customers the daily run holds at risk today, and the worst AT_RISK_LISTED
    with their latest reasons: the customers of the morning list's "Needs attention".

    Read from what `funnelctl run` recorded, never scored here: scoring a large book
    takes far longer than the rest of the report. None (not 0) before the first run."""
    if store.get_meta("last_run") is None:
        return None, []
    rows = list(due.at_risk(store, today, None))
    listed = [
        {
            "customer": r["email"] or r["external_id"],
            "name": r["name"],
            "owner": r["owner"],
            "score": r["score"],
            "since": r["started_on"],
            "reasons": json.loads(r["reasons"] or "[]"),
        }
        for r in rows[:AT_RISK_LISTED]
    ]
    return len(rows), listed


def build_report(
    store: Store,
    library: Library,
    today: str,
    *,
    funnel: str | None = None,
    since: str | None = None,
    until: str | None = None,
    settings: Settings | None = None,
    weeks: int = WEEKS_PROJECTED,
) -> dict[str, Any]:
    from .projection import project

    period = default_period(today, since, until)
    settings = settings or Settings()
    funnels = [library.funnel(funnel)] if funnel else list(library.funnels.values())
    with store.read():
        at_risk, listed = at_risk_list(store, today)
        reported = [funnel_report(store, library, f, period, today) for f in funnels]
        # the projection covers the whole book: the other funnels' medians too
        medians = {
            (f.id, stage): days
            for f in library.funnels.values()
            if f not in funnels
            for stage, days in _median_days(store, f, period).items()
        }
        for f in reported:
            medians.update({(f["funnel"], s["stage"]): s["median_days"] for s in f["stages"]})
        # the open tasks per owner and day, once for the workload and the projection
        first = week_start(today)
        open_tasks = queries.open_tasks_by_day(
            store, first, shift(first, 7 * max(weeks, WEEKS_AHEAD) - 1)
        )
        return {
            "today": today,
            "period": {"since": period.since, "until": period.until},
            "previous_period": vars(previous_period(period)),
            "kpis": kpis(store, reported, period, at_risk),
            "funnels": reported,
            "satisfaction": satisfaction(store, period),
            "support": support(store, period, today),
            "owners": owners(store, period, today),
            "workload": workload(store, today, open_tasks=open_tasks),
            "trends": monthly_trends(store, period),
            "weekly": weekly_trends(store, funnels, period),
            "at_risk": listed,
            "projection": project(
                store,
                library,
                settings,
                today,
                since=period.since,
                until=period.until,
                medians=medians,
                weeks=weeks,
                open_tasks=open_tasks,
            ),
        }


def _median_days(store: Store, funnel: Funnel, period: Period) -> dict[str, float | None]:
    """Each stage's median days of the visits that ended in the period (as funnel_report)."""
    durations: dict[str, list[float]] = defaultdict(list)
    for v in queries.stage_visits(store, funnel.id):
        if (
            v["kind"] in ("enroll", "move", "reopen")
            and v["left_on"] is not None
            and period.since <= v["left_on"] <= period.until
        ):
            durations[v["stage"]].append(days_between(v["entered"], v["left_on"]))
    return {s.id: median(durations.get(s.id, [])) for s in funnel.stages}


# -- the calendar feed --------------------------------------------------------------------------


# Done and dropped tasks stay in the feed this many days, cancelled, so that calendar
# apps take their events away instead of keeping them as they last saw them.
CLOSED_DAYS = 14


def calendar_tasks(store: Store, *, today: str, owner: str | None = None) -> Iterator[Row]:
    """The tasks for the calendar feed, by due date: the open ones, and those closed in
    the last CLOSED_DAYS days (on or after ``today`` minus CLOSED_DAYS), each with its
    customer (email or external id, name, company) and its enrollment's funnel and stage."""
    since = (date.fromisoformat(today) - timedelta(days=CLOSED_DAYS)).isoformat()
    return due.calendar_tasks(store, owner, since)


def workspace_id(store: Store) -> str:
    """The random id that makes this workspace's calendar UIDs its own."""
    return due.workspace_id(store)
