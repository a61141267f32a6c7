"""The incremental daily run: `run` scores only the customers whose health may have
changed (an input written, a day count crossing into another band, a signal leaving a
window, a task falling overdue), and ends up with exactly what scoring everyone
(`run --rescore`) would have written: the same snapshots, episodes, plays, tasks,
emails and timeline, day after day."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelctl import health
from funnelctl.activities import NextStep, add_task, complete_task, log_touchpoint
from funnelctl.engine import Engine, pick_enrollment, run_tick
from funnelctl.errors import FunnelError
from funnelctl.health import at_risk_report, clockwork, record_signal
from funnelctl.playbooks import (
    CloseAction,
    EmailAction,
    Funnel,
    HealthModel,
    Library,
    Measure,
    Opportunity,
    Stage,
    load_library,
)
from funnelctl.store import Store, customers
from funnelctl.store.activities import open_due_by
from funnelctl.workspace import Settings, shipped_dir

START = date(2026, 3, 2)
TEAM = Settings(team=("ana", "bruno"), sender="Ana <ana@example.com>")
FUNNELS = ["care", "care", "after-sales", "support"]
STAGES = [
    "live",
    "watch",
    "demand-analysis",
    "customer-contact",
    "deployment",
    "follow-up-30",
    "approved",
    "onboarding",
    "post-sales",
    "retention",
]
METRICS = {
    "nps": (0, 10),
    "csat": (1, 5),
    "logins": (0, 40),
    "tickets": (0, 9),
    "seats_used": (0, 30),
}

# A model that reads every kind of input, and the calendar in every way an expression can:
# bare day counts (one that can be missing), a day count inside arithmetic, `today`, a
# day count behind an `and` that usually stops before it, windows and a change over days.
CRAFTED = HealthModel(
    at_risk_below=55,
    on_at_risk=("at-risk-rescue",),
    measures=(
        Measure("nps", "NPS", "signals.nps", 3, 9, 6),
        Measure("tickets", "Tickets", 'signal_sum("tickets", 10)', 2, 2, 6, "lower"),
        Measure("quiet", "Quiet", "days_since_touch", 2, 7, 20, "lower"),
        Measure("reply", "Reply", "days_since_reply", 1, 10, 30, "lower"),
        Measure("weeks", "Weeks in stage", "(days_in_stage or 0) / 7", 1, 2, 5, "lower"),
        Measure("overdue", "Overdue", "overdue_tasks", 1, 0, 2, "lower"),
        Measure("stuck", "Stuck", "days_stagnant", 1, 0, 5, "lower"),
        Measure("logins", "Logins trend", 'signal_change("logins", 14)', 1, 0, -5),
        Measure("csat", "CSAT", "signals.csat * 20 if 'csat' in signals else none", 1, 90, 70),
        Measure("tenure", "Tenure", "days_since_signed", 1, 60, 10),
    ),
    opportunities=(
        Opportunity(
            "promoter",
            "Promoter",
            "'nps' in signals and signals.nps >= 9 and (days_since_signed or 0) >= 40",
            "testimonial-ask",
        ),
        Opportunity(
            "spring", "Spring seats", "today >= '2026-04-01' and (customer.seats or 0) > 10"
        ),
        Opportunity(
            "busy",
            "Busy",
            'signal_avg("logins", 7) and signal_avg("logins", 7) > 20',
            "upsell-conversation",
        ),
    ),
)


@functools.cache
def shipped() -> Library:
    return load_library(
        [shipped_dir("playbooks")], templates_dir=shipped_dir("templates"), team=TEAM.team
    )


# A funnel where nothing happens by itself (no actions, no time-based moves): its
# customers change only by what the steps do and by the calendar.
CARE = Funnel(
    "care",
    "Care",
    (Stage("live", "Live", stagnant_after=12), Stage("watch", "Watch", stagnant_after=3)),
)


# Smaller models, each moved by the calendar in one way only, so that most days most
# customers are not scored and a wrong recheck day shows.
MODELS = {
    "mixed": CRAFTED,
    "touch": HealthModel(
        at_risk_below=60,
        on_at_risk=("at-risk-rescue",),
        measures=(
            Measure("nps", "NPS", "signals.nps", 2, 9, 6),
            Measure("quiet", "Quiet", "days_since_touch", 1, 6, 40, "lower"),
            Measure("reply", "Reply", "days_since_reply", 1, 3, 30, "lower"),
        ),
    ),
    "probe": HealthModel(
        at_risk_below=60,
        on_at_risk=("at-risk-rescue",),
        measures=(
            Measure("nps", "NPS", "signals.nps", 2, 9, 6),
            Measure("weeks", "Weeks in stage", "(days_in_stage or 0) // 7", 1, 1, 3, "lower"),
        ),
        opportunities=CRAFTED.opportunities,
    ),
    "windows": HealthModel(
        at_risk_below=60,
        on_at_risk=("at-risk-rescue",),
        measures=(
            Measure("tickets", "Tickets", 'signal_sum("tickets", 10)', 2, 2, 6, "lower"),
            Measure("logins", "Logins trend", 'signal_change("logins", 14)', 1, 0, -5),
            Measure("avg", "Logins", 'signal_avg("logins", 7)', 1, 20, 5),
        ),
    ),
    "tasks": HealthModel(
        at_risk_below=60,
        on_at_risk=("at-risk-rescue",),
        measures=(
            Measure("overdue", "Overdue", "overdue_tasks", 1, 0, 2, "lower"),
            Measure("stuck", "Stuck", "days_stagnant", 1, 2, 5, "lower"),
        ),
    ),
}


def library_for(model: str) -> Library:
    library = shipped()
    library = dataclasses.replace(library, funnels={**library.funnels, "care": CARE})
    return library if model == "shipped" else dataclasses.replace(library, health=MODELS[model])


def new_store(library: Library, people: list[tuple[int, int | None, str]]) -> Store:
    """Customers (signed so many days before START, seats, funnel), each enrolled."""
    store = Store.memory()
    today = START.isoformat()
    with store.write():
        for n, (signed, seats, funnel) in enumerate(people):
            cid = customers.insert(
                store,
                {
                    "email": f"c{n}@example.com",
                    "name": f"C {n}",
                    "owner": "ana",
                    "signed_on": (START - timedelta(days=signed)).isoformat(),
                    "seats": seats,
                },
                today,
            )
            customer = customers.get(store, cid)
            assert customer is not None
            Engine(store, library, TEAM, today).enroll(customer, library.funnel(funnel))
    return store


def act(store: Store, library: Library, step: tuple, today: str) -> None:
    """One thing a consultant or an import does; a refused one changes nothing."""
    kind, who, arg = step
    email = f"c{who}@example.com"
    try:
        if kind == "signal":
            metric, value, back = arg
            on = (date.fromisoformat(today) - timedelta(days=back)).isoformat()
            record_signal(store, email, metric, str(value), max(on, START.isoformat()), today)
        elif kind == "touch":
            log_touchpoint(
                store,
                library,
                TEAM,
                email,
                channel="email",
                direction=arg,
                summary="x",
                on=today,
                today=today,
                by=None,
            )
        elif kind == "task":
            due = (date.fromisoformat(today) + timedelta(days=arg)).isoformat()
            add_task(store, library, TEAM, email, NextStep("Call", due), today=today)
        elif kind == "done":
            with store.write():
                customer = customers.find(store, email)
                for task in open_due_by(store, arg):
                    if task.customer_id == customer.id:
                        complete_task(store, TEAM, task, today, None)
        elif kind == "seats":
            with store.write():
                customers.update(store, customers.find(store, email).id, {"seats": arg}, today)
        elif kind == "move":
            with store.write():
                customer = customers.find(store, email)
                enrollment, funnel = pick_enrollment(
                    store, library, customer, funnel_id=None, stage_id=arg
                )
                Engine(store, library, TEAM, today).move(enrollment, funnel, arg)
        elif kind == "close":
            with store.write():
                customer = customers.find(store, email)
                enrollment, _ = pick_enrollment(store, library, customer, funnel_id=None)
                Engine(store, library, TEAM, today).close(enrollment, arg)
        elif kind == "enroll":
            with store.write():
                customer = customers.find(store, email)
                Engine(store, library, TEAM, today).enroll(customer, library.funnel(arg))
    except FunnelError:
        pass


def live(store: Store, library: Library, folks: int, steps: list[tuple]) -> str:
    """Act out ``steps`` (a wait moves the day on), then wait a day: that day."""
    day = START
    for kind, who_, arg in [*steps, ("wait", 0, 1)]:
        if kind == "wait":
            day += timedelta(days=int(arg))
            continue
        act(store, library, (kind, who_ % folks, arg), day.isoformat())
    return day.isoformat()


def book(store: Store) -> dict[str, list[tuple]]:
    """Everything but the incremental run's own bookkeeping (and the random part of an
    email's Message-ID)."""
    tables = [
        r[0]
        for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
            "('health_state', 'health_dirty', 'meta', '_sqlite_migrations') "
            "AND name NOT LIKE 'sqlite_%'"
        )
    ]
    found = {  # sorted here: a WITHOUT ROWID table (the inbox's) has no rowid to order by
        t: sorted((tuple(r) for r in store.conn.execute(f"SELECT * FROM {t}")), key=repr)
        for t in tables
    }
    found["outbox"] = [tuple(r) for r in store.conn.execute("SELECT * FROM outbox ORDER BY id")]
    names = [c[1] for c in store.conn.execute("PRAGMA table_info(outbox)")]
    at = names.index("message_id")
    found["outbox"] = [row[:at] + row[at + 1 :] for row in found["outbox"]]
    return found


people = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=80),
        st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
        st.sampled_from(FUNNELS),
    ),
    min_size=1,
    max_size=4,
)
who = st.integers(min_value=0, max_value=3)
step = st.one_of(
    st.tuples(
        st.just("signal"),
        who,
        st.sampled_from(sorted(METRICS)).flatmap(
            lambda m: st.tuples(
                st.just(m),
                st.integers(min_value=METRICS[m][0], max_value=METRICS[m][1]),
                st.integers(min_value=0, max_value=20),
            )
        ),
    ),
    st.tuples(st.just("touch"), who, st.sampled_from(["inbound", "outbound"])),
    st.tuples(st.just("task"), who, st.integers(min_value=0, max_value=15)),
    st.tuples(st.just("done"), who, st.just("9999-12-31")),
    st.tuples(st.just("seats"), who, st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("move"), who, st.sampled_from(STAGES)),
    st.tuples(st.just("close"), who, st.sampled_from(["lost", "won"])),
    st.tuples(st.just("enroll"), who, st.sampled_from(FUNNELS)),
    st.tuples(st.just("wait"), st.just(0), st.integers(min_value=0, max_value=25)),
    st.tuples(st.just("wait"), st.just(0), st.integers(min_value=1, max_value=6)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["shipped", "mixed", "touch", "probe", "windows"]),
    people,
    st.lists(step, min_size=1, max_size=30),
)
def test_the_incremental_run_writes_what_scoring_everyone_writes(model, folks, steps):
    """Two copies of a random book live the same random days; one runs incrementally,
    the other scores everyone every time. After every run they hold the same rows."""
    library = library_for(model)
    fast, full = new_store(library, folks), new_store(library, folks)
    try:
        day = START
        runs = 0
        for kind, who_, arg in [*steps, ("wait", 0, 1)]:
            today = day.isoformat()
            if kind != "wait":
                for store in (fast, full):
                    act(store, library, (kind, who_ % len(folks), arg), today)
                continue
            day += timedelta(days=int(arg))
            today = day.isoformat()
            a = run_tick(fast, library, TEAM, today)
            b = run_tick(full, library, TEAM, today, rescore=True)
            runs += 1
            assert a == b, f"run {runs} on {today}"
            assert book(fast) == book(full), f"run {runs} on {today}"
            # at-risk --live the next day, when the calendar has moved and nothing ran
            later = (day + timedelta(days=int(arg) % 7)).isoformat()
            assert at_risk_report(
                fast, library, TEAM, later, everyone=True, live=True
            ) == at_risk_report(
                fast, library, TEAM, later, everyone=True, live=True, rescore=True
            ), f"at-risk --live on {later}, after run {runs}"
    finally:
        fast.close()
        full.close()


def next_steps(store: Store) -> list[tuple[int, int, int]]:
    """Each enrollment's kept count of next steps, and its open tasks and queued emails."""
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT e.id, e.next_steps, (SELECT count(*) FROM activities a "
            "WHERE a.enrollment_id = e.id AND a.status = 'open') + (SELECT count(*) "
            "FROM outbox o WHERE o.enrollment_id = e.id AND o.status = 'queued') "
            "FROM enrollments e ORDER BY e.id"
        )
    ]


def marks(store: Store) -> list[tuple]:
    return [tuple(r) for r in store.conn.execute("SELECT * FROM health_dirty ORDER BY 1, 2")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["shipped", "mixed", "touch"]),
    people,
    st.lists(step, min_size=1, max_size=30),
)
def test_plays_started_with_the_row_triggers_lifted_write_what_the_triggers_write(
    model, folks, steps
):
    """A run starts its plays with the row triggers lifted (store.triggers): the book, the
    counts of next steps and the marks for the next run are those of the triggers run
    row by row."""
    library = library_for(model)
    assert health._plays_only_add(library)
    lifted, per_row = new_store(library, folks), new_store(library, folks)
    try:
        day = START
        for kind, who_, arg in [*steps, ("wait", 0, 1)]:
            if kind != "wait":
                for store in (lifted, per_row):
                    act(store, library, (kind, who_ % len(folks), arg), day.isoformat())
                continue
            day += timedelta(days=int(arg))
            a = run_tick(lifted, library, TEAM, day.isoformat())
            with mock.patch.object(health, "_plays_only_add", return_value=False):
                b = run_tick(per_row, library, TEAM, day.isoformat())
            assert a == b
            assert book(lifted) == book(per_row)
            assert marks(lifted) == marks(per_row)
            assert [(n, kept) for n, kept, _ in next_steps(lifted)] == [
                (n, counted) for n, _, counted in next_steps(per_row)
            ]
    finally:
        lifted.close()
        per_row.close()


def test_a_play_that_closes_the_enrollment_keeps_the_row_triggers():
    """A play that closes what it has just queued changes the email's status in the same
    run, which the triggers lifted would miscount: such a run keeps them, row by row."""
    library = library_for("touch")
    rescue = library.plays["at-risk-rescue"]
    library = dataclasses.replace(
        library,
        plays={
            **library.plays,
            "at-risk-rescue": dataclasses.replace(
                rescue, actions=(EmailAction("at-risk-check-in"), CloseAction("lost"))
            ),
        },
    )
    assert not health._plays_only_add(library)
    store = new_store(library, [(0, None, "care")])
    try:
        today = START.isoformat()
        record_signal(store, "c0@example.com", "nps", "2", today, today)
        assert run_tick(store, library, TEAM, today)["plays"] == 1
        assert [tuple(r) for r in store.conn.execute("SELECT status FROM outbox")] == [("skipped",)]
        assert [(kept, counted) for _, kept, counted in next_steps(store)] == [(0, 0)]
    finally:
        store.close()


def test_a_runs_plays_read_their_customers_and_do_the_trigger_work_at_once():
    """Six customers fall at risk on one run: their plays read the current enrollments
    in one query (not three reads a play) and the insert triggers are lifted for the
    batch (store.triggers), their work done once at the end."""
    library = library_for("touch")
    store = new_store(library, [(0, None, "care")] * 6)
    try:
        today = START.isoformat()
        for n in range(6):
            record_signal(store, f"c{n}@example.com", "nps", "2", today, today)
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        assert run_tick(store, library, TEAM, today)["plays"] == 6
        store.conn.set_trace_callback(None)
    finally:
        store.close()
    reads = [s for s in seen if s.startswith("SELECT * FROM enrollments WHERE ")]
    assert [s for s in reads if "customer_id IN (" in s] == [reads[-1]]  # one, for the batch
    assert not [s for s in reads if "ORDER BY id DESC LIMIT 1" in s]  # none a play
    assert not [s for s in seen if s.startswith("SELECT * FROM customers WHERE id = ")]
    assert sorted(s for s in seen if s.startswith("DROP TRIGGER")) == [
        f"DROP TRIGGER {name}"
        for name in sorted(
            (
                "activities_health_insert",
                "activities_steps_insert",
                "customers_health_insert",
                "enrollments_health_insert",
                "outbox_steps_insert",
            )
        )
    ]


# -- what the run scores --------------------------------------------------------------------


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ids of the customers health scores, as it scores them."""
    ids: list[int] = []
    real = health._verdict

    def spy(model, customer_id, measured, held):
        ids.append(customer_id)
        return real(model, customer_id, measured, held)

    monkeypatch.setattr(health, "_verdict", spy)
    yield ids


def test_a_second_run_the_same_day_scores_nobody_and_a_signal_rescores_its_customer(scored):
    library = shipped()
    store = new_store(library, [(400, 10, "support"), (30, 5, "support"), (5, None, "support")])
    try:
        today = START.isoformat()
        first = run_tick(store, library, TEAM, today)
        assert sorted(scored) == [1, 2, 3]
        scored.clear()
        again = run_tick(store, library, TEAM, today)
        assert (again["scored"], again["at_risk"]) == (first["scored"], first["at_risk"])
        assert scored == []
        record_signal(store, "c1@example.com", "nps", "2", today, today)
        changed = run_tick(store, library, TEAM, today)
        assert scored == [2]
        assert changed["scored"] == 3  # the counts are those of the whole book
        scored.clear()
        run_tick(store, library, TEAM, today, rescore=True)
        assert sorted(scored) == [1, 2, 3]
    finally:
        store.close()


CARE_YAML = "id: care\ntitle: Care\nstages:\n  - id: live\n    title: Live\n"


def test_a_quiet_customer_is_rescored_the_day_its_touch_measure_leaves_healthy(scored, tmp_path):
    """The shipped `quiet` measure is healthy up to 21 days since the last touchpoint:
    a customer touched on day 0 (and nothing else moving) is next scored on day 22,
    then every day (its reason prints the days)."""
    (tmp_path / "care.yaml").write_text(CARE_YAML)
    library = load_library(
        [shipped_dir("playbooks"), tmp_path], templates_dir=shipped_dir("templates"), team=TEAM.team
    )
    library = dataclasses.replace(
        library,
        health=HealthModel(
            at_risk_below=50,
            measures=(Measure("quiet", "Quiet", "days_since_touch", 1, 21, 60, "lower"),),
        ),
    )
    store = new_store(library, [(0, None, "care")])
    try:
        act(store, library, ("touch", 0, "outbound"), START.isoformat())
        for n in range(0, 30):
            scored.clear()
            run_tick(store, library, TEAM, (START + timedelta(days=n)).isoformat())
            assert scored == ([1] if n == 0 or n >= 22 else []), n
    finally:
        store.close()


def test_a_changed_model_is_scored_in_full(scored):
    library = shipped()
    store = new_store(library, [(0, None, "support"), (0, None, "support")])
    try:
        run_tick(store, library, TEAM, START.isoformat())
        assert library.health is not None
        stricter = dataclasses.replace(
            library, health=dataclasses.replace(library.health, at_risk_below=90)
        )
        scored.clear()
        run_tick(store, stricter, TEAM, START.isoformat())
        assert sorted(scored) == [1, 2]
    finally:
        store.close()


def test_a_book_scored_by_an_older_meaning_of_scoring_is_scored_in_full(scored, monkeypatch):
    library = shipped()
    store = new_store(library, [(0, None, "support"), (0, None, "support")])
    try:
        run_tick(store, library, TEAM, START.isoformat())
        scored.clear()
        run_tick(store, library, TEAM, START.isoformat())
        assert scored == []
        monkeypatch.setattr(health, "SCORING", health.SCORING + 1)
        run_tick(store, library, TEAM, START.isoformat())
        assert sorted(scored) == [1, 2]
    finally:
        store.close()


def test_a_write_from_outside_funnelctl_marks_its_customer(scored):
    """The marks are triggers: a signal inserted with sqlite3 is seen too."""
    library = shipped()
    store = new_store(library, [(0, None, "support"), (0, None, "support")])
    try:
        run_tick(store, library, TEAM, START.isoformat())
        with store.write():
            store.conn.execute(
                "INSERT INTO signals (customer_id, metric, value, measured_on, created_on) "
                "VALUES (2, 'nps', 1, ?, ?)",
                [START.isoformat(), START.isoformat()],
            )
        scored.clear()
        summary = run_tick(store, library, TEAM, START.isoformat())
        assert scored == [2]
        assert summary["at_risk"] == 1
        reasons = json.loads(
            store.scalar("SELECT reasons FROM health_snapshots WHERE customer_id = 2")
        )
        assert reasons[0].startswith("Latest NPS answer: 1 is poor")
    finally:
        store.close()


def test_what_the_clock_can_change_in_a_model():
    clock = clockwork(CRAFTED)
    assert clock.exact
    assert clock.counts == {
        "quiet": "days_since_touch",
        "reply": "days_since_reply",
        "stuck": "days_stagnant",
        "tenure": "days_since_signed",
    }
    assert clock.windows == {("tickets", 10), ("logins", 14), ("logins", 7)}
    assert "(days_in_stage or 0) / 7" in clock.probed
    assert "signals.nps" not in clock.probed
    reads_itself = dataclasses.replace(
        CRAFTED, measures=(Measure("self", "Self", "health.score", 1, 50, 20),)
    )
    assert not clockwork(reads_itself).exact
    computed = dataclasses.replace(
        CRAFTED, measures=(Measure("w", "W", 'signal_sum("tickets", days_in_stage)', 1, 1, 5),)
    )
    assert not clockwork(computed).exact


def test_a_customer_is_rescored_the_day_a_signal_leaves_a_window(scored):
    """10 tickets counted over 10 days: the day they no longer count (measured on day 0,
    out of the window on day 10) the customer is scored again, and not on the days
    between, when nothing changes."""
    windows = dataclasses.replace(MODELS["windows"], on_at_risk=())  # no play, no tasks
    library = dataclasses.replace(library_for("windows"), health=windows)
    store = new_store(library, [(0, None, "care")])
    try:
        act(store, library, ("signal", 0, ("tickets", 9, 0)), START.isoformat())
        found = {}
        for n in range(0, 13):
            scored.clear()
            summary = run_tick(store, library, TEAM, (START + timedelta(days=n)).isoformat())
            found[n] = (scored == [1], summary["at_risk"])
        assert found[0] == (True, 1)
        assert all(found[n] == (False, 1) for n in range(1, 10)), found
        assert found[10] == (True, 0)  # the tickets left the window: no input, no risk
        assert found[11] == found[12] == (False, 0)
    finally:
        store.close()


def test_a_run_for_an_earlier_day_leaves_the_next_run_scoring_everyone():
    """Runs on days 10, 7 (a replay, with a signal written between) and 11: the same
    rows as scoring everyone each time."""
    nps = HealthModel(at_risk_below=60, measures=(Measure("nps", "NPS", "signals.nps", 1, 9, 6),))
    library = dataclasses.replace(library_for("touch"), health=nps)  # nothing moves by itself
    folks = [(0, None, "care"), (0, None, "care")]
    fast, full = new_store(library, folks), new_store(library, folks)
    try:
        for n, signal in ((10, None), (7, ("nps", 2, 0)), (11, None), (12, ("nps", 10, 0))):
            today = (START + timedelta(days=n)).isoformat()
            for store in (fast, full):
                if signal:
                    act(store, library, ("signal", 1, signal), today)
            run_tick(fast, library, TEAM, today)
            run_tick(full, library, TEAM, today, rescore=True)
            assert book(fast) == book(full), today
    finally:
        fast.close()
        full.close()


# -- scoring a whole book: the same as scoring each customer alone --------------------------------

# A model that reads every name of the context (scoring a book builds only those a model
# reads), and window calls in every form: literal (read from the prefetch directly), with
# other quotes and spaces, and with arguments that are not plain literals (evaluated).
EVERY_NAME = HealthModel(
    at_risk_below=60,
    on_at_risk=("at-risk-rescue",),
    measures=(
        Measure("nps", "NPS", "signals.nps", 2, 9, 6),
        Measure("sum", "Tickets", "signal_sum('tickets', 10)", 1, 2, 6, "lower"),
        Measure("avg", "Logins", ' signal_avg ( "logins" , 7 ) ', 1, 20, 5),
        Measure("min", "Low", 'signal_min("logins", 30)', 1, 10, 2),
        Measure("max", "High", 'signal_max("csat", 0)', 1, 4, 2),
        Measure("days", "Days", 'signal_max("nps", days_in_stage or 1)', 1, 9, 6),
        Measure("change", "Change", 'signal_change("logins", 14)', 1, 0, -5),
        Measure("owner", "Owner", "1 if owner == 'Ana' else 0", 1, 1, 0),
        Measure("sender", "Sender", "1 if sender.email == 'ana@example.com' else 0", 1, 1, 0),
        Measure("where", "Where", "(funnel.id | length) + (stage.title | length)", 1, 30, 5),
        Measure("signed", "Signed", "days_since_signed", 1, 60, 10),
        Measure("quiet", "Quiet", "days_since_touch", 1, 7, 20, "lower"),
        Measure("reply", "Reply", "days_since_reply", 1, 10, 30, "lower"),
        Measure("late", "Late", "overdue_tasks + days_stagnant", 1, 0, 5, "lower"),
        Measure("seats", "Seats", "signals.seats_used / customer.seats", 1, 0.7, 0.3),
    ),
    opportunities=(
        Opportunity("replied", "Replied", "customer.replied and today >= '2026-03-01'"),
        Opportunity("tagged", "Tagged", "customer.first_name and 'vip' not in customer.tags"),
        Opportunity("busy", "Busy", 'signal_avg("logins", 7)'),
    ),
)


# A model that reads the signals as a whole: every metric's latest value is read.
READS_ALL_SIGNALS = HealthModel(
    at_risk_below=60,
    measures=(
        Measure("count", "Metrics", "signals | length", 1, 4, 1),
        Measure("nps", "NPS", "signals.get('nps', 5)", 1, 9, 6),
    ),
)


def test_the_metrics_a_model_reads_through_signals():
    def reads(*expressions: str) -> frozenset[str] | None:
        measures = tuple(Measure(f"m{i}", "M", e, 1, 1, 0) for i, e in enumerate(expressions))
        return health.metrics_of_signals(HealthModel(at_risk_below=50, measures=measures))

    assert reads("signals.nps", "signals['csat'] + 1", "'seats' in signals") == {
        "nps",
        "csat",
        "seats",
    }
    assert reads("'x' not in signals and a < 'y' in signals") == {"x", "y"}
    assert reads("days_since_touch", "1") == frozenset()
    assert health.metrics_of_signals(EVERY_NAME) == {"nps", "seats_used"}
    # the mapping as a whole, a key that is not a constant, one of its methods: all
    for whole in ("signals | length", "signals[k]", "signals.get('nps')", "signals._x"):
        assert reads("signals.nps", whole) is None, whole
    assert health.metrics_of_signals(READS_ALL_SIGNALS) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["shipped", "mixed", "windows", "every", "whole"]),
    people,
    st.lists(step, min_size=1, max_size=25),
)
def test_scoring_a_book_gives_each_customer_what_scoring_them_alone_gives(model, folks, steps):
    """run and at-risk --live score a book with one prefetch (of the latest values of only
    the metrics the model reads), only the context names the model reads, literal window
    calls read directly and one Jinja context reused from one customer to the next: each
    customer's result is the one of scoring them alone, with their whole context."""
    library = library_for("shipped")
    if model in ("every", "whole"):
        library = dataclasses.replace(
            library, health=EVERY_NAME if model == "every" else READS_ALL_SIGNALS
        )
    else:
        library = library_for(model)
    assert library.health is not None
    store = new_store(library, folks)
    try:
        today = live(store, library, len(folks), steps)
        with store.read():
            metrics = health.metrics_of_signals(library.health)
            prefetch = health.Prefetch(store, today, metrics=metrics)
            scorer = health._Scorer(store, library, TEAM, library.health, prefetch)
            alone = {}
            for customer in health.signals.active_customers(store):
                bulk, _ = scorer.score(customer)
                alone[customer.id] = health.score_customer(
                    store, library, TEAM, library.health, customer, today
                )
                assert bulk == alone[customer.id], customer.email
            # at-risk --live: no Customer made, the values read by the row
            assert (scorer.code is not None) == (model not in ("every", "whole"))
            if scorer.code is not None:
                rows = {row[0]: scorer.score_row(row) for row in scorer.rows()}
                assert rows == alone
    finally:
        store.close()


def test_at_risk_live_counts_days_in_the_stage_of_the_latest_enrollment():
    """A customer in two funnels: days_in_stage is the current (latest) enrollment's."""
    library = library_for("probe")
    store = new_store(library, [(10, 5, "care")])
    try:
        act(store, library, ("enroll", 0, "support"), (START + timedelta(days=14)).isoformat())
        today = (START + timedelta(days=21)).isoformat()
        with mock.patch.object(health, "_compiled", lambda model: None):
            sandboxed = at_risk_report(store, library, TEAM, today, everyone=True, live=True)
        compiled = at_risk_report(store, library, TEAM, today, everyone=True, live=True)
        assert compiled == sandboxed
        assert compiled[0]["score"] == 100.0  # not 3 weeks (the first enrollment's)
    finally:
        store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["shipped", "mixed", "probe", "tasks"]), people, st.lists(step, max_size=20))
def test_at_risk_live_lists_what_the_sandbox_would(model, folks, steps):
    """The report of a model compiled to Python is the one the sandbox scores."""
    library = library_for(model)
    store = new_store(library, folks)
    try:
        today = live(store, library, len(folks), steps)
        for everyone in (False, True):
            compiled = at_risk_report(store, library, TEAM, today, everyone=everyone, live=True)
            with mock.patch.object(health, "_compiled", lambda model: None):
                sandboxed = at_risk_report(
                    store, library, TEAM, today, everyone=everyone, live=True
                )
            assert compiled == sandboxed
    finally:
        store.close()


def test_a_reused_evaluator_sees_only_the_names_of_its_current_context():
    from funnelctl.sandbox import Evaluator, TemplateError

    evaluate = Evaluator({"a": 1, "b": 2})
    assert evaluate("a + b") == 3
    evaluate.reset({"a": 5})
    assert evaluate("a * 2") == 10
    with pytest.raises(TemplateError):
        evaluate("a + b")  # b was the last context's
    evaluate.reset({"a": 1, "b": 4})
    assert evaluate("a + b") == 5
    with pytest.raises(TemplateError):
        evaluate("a + b", hiding={"b"})


def test_window_calls_read_directly_give_the_windows_values():
    """Every day's value differs, so a window one day too long or short shows."""
    windows = HealthModel(
        at_risk_below=60,
        measures=tuple(
            Measure(f"{how}{days}", how, f'signal_{how}("logins", {days})', 1, 1000, 0)
            for how in ("sum", "avg", "min", "max")
            for days in (0, 1, 7, 10, 30)
        ),
    )
    library = dataclasses.replace(library_for("shipped"), health=windows)
    store = new_store(library, [(60, None, "support"), (60, 5, "support")])
    today = (START + timedelta(days=40)).isoformat()
    try:
        with store.write():
            for back in range(40):
                on = (START + timedelta(days=40 - back)).isoformat()
                health.signals.add_signal(
                    store,
                    customer_id=1,
                    metric="logins",
                    value=100 + back,
                    measured_on=on,
                    source="test",
                    today=today,
                )
        with store.read():
            scorer = health._Scorer(store, library, TEAM, windows, health.Prefetch(store, today))
            first, second = health.signals.active_customers(store)
            bulk, _ = scorer.score(first)
            assert bulk == health.score_customer(store, library, TEAM, windows, first, today)
            assert bulk.values["sum10"] == sum(100 + back for back in range(10))
            assert bulk.values["min7"] == 100 and bulk.values["max30"] == 129
            assert bulk.values["sum0"] is None
            nothing, _ = scorer.score(second)
            assert nothing.values["avg7"] is None
            assert nothing == health.score_customer(store, library, TEAM, windows, second, today)
    finally:
        store.close()


def test_the_latest_signals_read_in_bulk_are_those_read_one_customer_at_a_time():
    """Out of order: a later measurement stored first, two on one day (the last stored
    wins), one after today (not seen)."""
    library = library_for("shipped")
    store = new_store(library, [(60, None, "support"), (60, 5, "support")])
    today = START.isoformat()
    rows = [
        (1, "nps", 7, "2026-02-20"),
        (1, "nps", 3, "2026-02-10"),
        (1, "nps", 9, "2026-02-20"),
        (1, "nps", 1, "2026-03-05"),
        (1, "csat", 4, "2026-01-01"),
        (2, "csat", 2, "2026-02-01"),
        (2, "csat", 5, "2026-02-01"),
        (2, "logins", 10, "2026-03-02"),
    ]
    try:
        with store.write():
            for customer_id, metric, value, on in rows:
                health.signals.add_signal(
                    store,
                    customer_id=customer_id,
                    metric=metric,
                    value=value,
                    measured_on=on,
                    source="test",
                    today=today,
                )
        bulk = health.signals.latest_by_customer(store, today)
        assert bulk == {1: {"nps": 9, "csat": 4}, 2: {"csat": 5, "logins": 10}}
        for customer_id in (1, 2):
            assert bulk[customer_id] == health.signals.latest(store, customer_id, today)
    finally:
        store.close()


def test_the_scores_before_today_read_at_once_are_those_read_one_at_a_time():
    """A trend compares with the latest snapshot before today: not today's, not a later
    one, none for a customer first scored today."""
    store = Store.memory()
    try:
        with store.write():
            for customer_id in (1, 2, 3):
                customers.insert(store, {"email": f"c{customer_id}@example.com"}, "2026-01-01")
            for customer_id, day, score in [
                (1, "2026-02-01", 40.0),
                (1, "2026-02-20", 55.5),
                (1, "2026-03-02", 70.0),
                (1, "2026-03-09", 10.0),
                (2, "2026-03-02", 80.0),
                (3, "2026-01-10", None),
            ]:
                health.signals.keep_snapshot(store, customer_id, day, score, False, "[]", "[]")
        today = "2026-03-02"
        bulk = health.signals.scores_before(store, [1, 2, 3], today)
        assert bulk == {1: 55.5}
        for customer_id in (1, 2, 3):
            assert bulk.get(customer_id) == health.signals.score_before(store, customer_id, today)
    finally:
        store.close()


def test_rounding_remembered_per_value_gives_what_rounding_gives():
    for value in (81.25, 81.24999, 0.05, -0.05, 66.66666666666667, 0.0, -0.0, 1e20):
        for _ in range(2):  # the second time from what was remembered
            rounded = health.round1(value)
            assert repr(rounded) == repr(
                float(Decimal(repr(value)).quantize(Decimal("0.1"), ROUND_HALF_UP))
            )
