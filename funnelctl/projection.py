"""Sustain or scale: the tasks each owner will have in the coming weeks, against capacity.

The book is replayed forward through the playbooks by the real engine
(:func:`simulate.replay_tasks`), once per stage that someone is in, not once per
customer: a stage's replay says which tasks a visit makes on which day after it
began, and every active visit of that stage takes the tasks its age has still to
come. So the cost follows the number of stages, not the size of the book.

What the replay assumes, said on the page and in the JSON's ``method``:
- a customer moves on after the stage's median time in stage of the report's period
  (the playbook's own timed moves happen as written); a stage nobody has left in the
  period keeps its customers;
- the tasks of each replayed day are done on their due day;
- new customers keep arriving at the period's pace, at the stages they arrived at;
- a visit older than AGE_CAP days is replayed as one of AGE_CAP days (a visit that old
  has settled into whatever it repeats).
Tasks that exist already are counted as they are (overdue ones in the first week).
Capacity counts tasks only: emails are sent by funnelctl, not by a person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from .dates import days_between, shift, week_start
from .playbooks import Funnel, Library
from .simulate import replay_tasks
from .store import Row, Store
from .store import reports as queries
from .workspace import Settings

WEEKS = 12
AGE_CAP = 120

METHOD = (
    "Tasks already planned, plus those the playbooks will create: each customer moves on "
    "after the stage's median time of the period, every task is done on its due day, and "
    "new customers keep arriving at the period's pace. Capacity counts tasks, not emails."
)


def stage_moves(
    funnel: Funnel, stage_id: str, medians: Mapping[str, float | None]
) -> dict[int, list[str]]:
    """The manual moves of a replay that starts in ``stage_id``: on to the next stage after
    each stage's median days; none past a stage with no median (nobody left it)."""
    moves: dict[int, list[str]] = {}
    ids = [s.id for s in funnel.stages]
    day = 0
    for stage, following in zip(
        funnel.stages[ids.index(stage_id) :], ids[ids.index(stage_id) + 1 :], strict=False
    ):
        if stage.advance_after is not None:
            day += stage.advance_after  # the engine moves them itself
            continue
        median = medians.get(stage.id)
        if median is None:
            break
        day += max(1, round(median))
        moves.setdefault(day, []).append(following)
    return moves


def project(
    store: Store,
    library: Library,
    settings: Settings,
    today: str,
    *,
    since: str,
    until: str,
    medians: Mapping[tuple[str, str], float | None],
    weeks: int = WEEKS,
    open_tasks: list[Row] | None = None,
) -> dict[str, Any]:
    """Tasks per owner for each of the next ``weeks`` weeks (Monday to Sunday; week 1 holds
    today), and the verdict against each team member's capacity. ``open_tasks``: the open
    tasks per owner and day from that Monday (queries.open_tasks_by_day), up to the last
    week or later."""
    first = week_start(today)
    end = shift(first, 7 * weeks - 1)
    left = days_between(today, end)  # days after today inside the projection
    now = days_between(first, today)  # days are counted from the first Monday below
    load: dict[tuple[int, str], float] = defaultdict(float)

    def add(day: int, owner: str, n: float) -> None:
        load[(max(day, 0) // 7, owner)] += n

    if open_tasks is None:
        open_tasks = queries.open_tasks_by_day(store, first, end)
    for r in open_tasks:
        if r["day"] <= end:
            add(days_between(first, r["day"]), r["owner"], r["n"])
    visits = [
        (v["funnel"], v["stage"], min(days_between(v["entered_on"], today), AGE_CAP),
         v["owner"], v["n"])
        for v in queries.active_visits(store)
    ]  # fmt: skip
    arrivals = queries.arrivals(store, since, until)
    plans = _replays(library, settings, today, left, visits, arrivals, medians)
    for funnel, stage, age, owner, n in visits:
        for made, due, who in plans.get((funnel, stage), ()):
            if made > age and due - age <= left:
                add(now + due - age, who or owner, n)
    per_day = 1 / (days_between(since, until) + 1)
    for a in arrivals:
        for _made, due, who in plans.get((a["funnel"], a["stage"]), ()):
            for t in range(1, left - due + 1):  # arrives t days after today
                add(now + t + due, who or a["owner"], a["n"] * per_day)
    return verdict(settings, load, first, weeks)


def _replays(
    library: Library,
    settings: Settings,
    today: str,
    left: int,
    visits: list[tuple[str, str, int, str, int]],
    arrivals: list[Row],
    medians: Mapping[tuple[str, str], float | None],
) -> dict[tuple[str, str], list[tuple[int, int, str | None]]]:
    """One replay per stage that someone is in or arrives at, long enough for its oldest
    visit (up to AGE_CAP days) to be followed ``left`` days more."""
    oldest: dict[tuple[str, str], int] = defaultdict(int)
    for visit in visits:
        key = (visit[0], visit[1])
        oldest[key] = max(oldest[key], visit[2])
    for a in arrivals:
        oldest.setdefault((a["funnel"], a["stage"]), 0)
    plans = {}
    for (funnel_id, stage_id), age in oldest.items():
        funnel = library.funnels.get(funnel_id)
        if funnel is None or stage_id not in {s.id for s in funnel.stages}:
            continue  # a playbook or stage that is gone: nothing more will happen there
        mine = {s: m for (f, s), m in medians.items() if f == funnel_id}
        plans[(funnel_id, stage_id)] = replay_tasks(
            library, settings, funnel_id, stage_id, start=today, days=age + left,
            moves=stage_moves(funnel, stage_id, mine),
        )  # fmt: skip
    return plans


def verdict(
    settings: Settings, load: Mapping[tuple[int, str], float], first: str, weeks: int
) -> dict[str, Any]:
    team = [settings.person(t) for t in settings.team]
    capacity = {m.id: m.capacity for m in team if m is not None}
    owners = list(capacity) + sorted({o for _, o in load} - set(capacity))
    rows = []
    members = []
    over: dict[str, list[int]] = {}
    unknown = []
    for owner in owners:
        tasks = [round(load.get((i, owner), 0)) for i in range(weeks)]
        cap = capacity.get(owner)
        if owner not in capacity:
            text = "not in the team: not judged"
        elif cap is None:
            text = "no capacity set: cannot judge"
            unknown.append(owner)
        else:
            late = [i + 1 for i, n in enumerate(tasks) if n > cap]
            if late:
                over[owner] = late
                text = f"over capacity in {spans(late)}"
            else:
                text = "within capacity"
        members.append(
            {
                "owner": owner,
                "capacity": cap,
                "peak": max(tasks, default=0),
                "over": [list(r) for r in ranges(over.get(owner, []))],
                "verdict": text,
            }
        )
        for i, n in enumerate(tasks):
            rows.append({"week": i + 1, "starts": shift(first, 7 * i), "owner": owner,
                         "tasks": n, "capacity": cap})  # fmt: skip
    judged = [o for o, c in capacity.items() if c is not None]
    if over:
        kind = "scale"
        summary = "scale: " + "; ".join(
            f"{o} is over capacity in {spans(w)}" for o, w in over.items()
        )
    elif judged:
        kind = "sustain"
        summary = f"sustain: {_names(judged)} {'stays' if len(judged) == 1 else 'stay'} within capacity for the next {weeks} weeks"
    else:
        kind = "unknown"
        summary = (
            "cannot judge: no team member has a capacity (the tasks a week they can do, "
            "as capacity under team in funnelctl.yaml)"
        )
    if unknown and judged:
        summary += f"; cannot judge {_names(unknown)}: no capacity set"
    return {
        "weeks": weeks,
        "verdict": kind,
        "summary": summary,
        "members": members,
        "rows": rows,
        "method": METHOD,
    }


def ranges(weeks: list[int]) -> list[tuple[int, int]]:
    """Week numbers merged into (first, last) runs: 3 4 5 8 -> (3, 5) (8, 8)."""
    runs: list[tuple[int, int]] = []
    for w in weeks:
        if runs and runs[-1][1] == w - 1:
            runs[-1] = (runs[-1][0], w)
        else:
            runs.append((w, w))
    return runs


def spans(weeks: list[int]) -> str:
    """``weeks 12–15 and 18`` or ``week 3``."""
    parts = [f"{a}–{b}" if a != b else f"{a}" for a, b in ranges(weeks)]
    word = "week" if len(weeks) == 1 else "weeks"
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{word} {text}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
