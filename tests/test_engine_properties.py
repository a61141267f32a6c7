"""Property tests of the engine: whatever a consultant does, in whatever order,
`run` twice on a day changes nothing the second time, the stage history only
grows, and no action produces two emails or two tasks for one stage visit."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelctl.activities import complete_task, log_touchpoint
from funnelctl.agenda import DueQuery, due_items
from funnelctl.engine import Engine, pick_enrollment, run_tick
from funnelctl.errors import FunnelError
from funnelctl.health import record_signal
from funnelctl.outline import outline
from funnelctl.playbooks import Library, load_library
from funnelctl.store import Store, customers, enrollments, outbox
from funnelctl.store.activities import open_due_by
from funnelctl.workspace import Settings, shipped_dir

START = date(2026, 3, 2)
STAGES = [
    "demand-analysis",
    "customer-contact",
    "deployment",
    "follow-up-30",
    "follow-up-60",
    "follow-up-90",
    "approved",
    "onboarding",
    "post-sales",
    "retention",
    "advocacy",
]

step = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(STAGES)),
    st.tuples(st.just("done"), st.just("")),
    st.tuples(st.just("reply"), st.just("")),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=45)),
)


def dump(store: Store) -> list[str]:
    return list(store.conn.iterdump())


def new_book(funnel_id: str) -> tuple[Library, Settings, Store, int]:
    """The shipped playbooks, a team of two, and one customer enrolled in ``funnel_id``
    on START, in a throwaway database."""
    library = load_library(
        [shipped_dir("playbooks")], templates_dir=shipped_dir("templates"), team=("ana", "bruno")
    )
    team = Settings(team=("ana", "bruno"), sender="Ana <ana@example.com>")
    store = Store.memory()
    with store.write():
        cid = customers.insert(
            store, {"email": "p@example.com", "name": "P Q", "owner": "ana"}, START.isoformat()
        )
        customer = customers.get(store, cid)
        assert customer is not None
        Engine(store, library, team, START.isoformat()).enroll(customer, library.funnel(funnel_id))
    return library, team, store, cid


def move(
    store: Store, library: Library, team: Settings, cid: int, funnel_id: str, stage: str, on: str
) -> None:
    """The consultant moves the customer; a refused move (same stage, skipping, closed)
    changes nothing."""
    try:
        with store.write():
            customer = customers.get(store, cid)
            assert customer is not None
            enrollment, funnel = pick_enrollment(
                store, library, customer, funnel_id=funnel_id, stage_id=stage
            )
            Engine(store, library, team, on).move(enrollment, funnel, stage)
    except FunnelError:
        pass


def reply(store: Store, library: Library, team: Settings, on: str) -> None:
    log_touchpoint(
        store,
        library,
        team,
        "p@example.com",
        channel="email",
        direction="inbound",
        summary="reply",
        on=on,
        today=on,
        by=None,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=12), st.sampled_from(["after-sales", "support"]))
def test_any_day_run_twice_changes_nothing_and_no_action_repeats(steps, funnel_id):
    library, team, store, cid = new_book(funnel_id)
    try:
        day = START
        history = 0
        for kind, arg in steps:
            today = day.isoformat()
            if kind == "wait":
                day += timedelta(days=int(arg))
                today = day.isoformat()
                run_tick(store, library, team, today)
                before = dump(store)
                run_tick(store, library, team, today)
                assert dump(store) == before, "a second run on the same day changed something"
            elif kind == "move":
                move(store, library, team, cid, funnel_id, str(arg), today)
            elif kind == "done":
                with store.write():
                    for task in open_due_by(store, today):
                        complete_task(store, team, task, today, None)
            else:
                reply(store, library, team, today)
            count = store.scalar("SELECT count(*) FROM stage_history")
            assert count >= history
            history = count
            list(due_items(store, outline(library), DueQuery(today=today, days=30)))  # never raises
        # one email and one task per action per stage visit, never two
        assert not store.rows(
            "SELECT action_key, count(*) FROM outbox GROUP BY action_key HAVING count(*) > 1"
        )
        assert not store.rows(
            "SELECT visit_id, source, title, count(*) AS n FROM activities WHERE action_key NOT LIKE 'then:%' "
            "AND action_key NOT LIKE 'escalate:%' GROUP BY action_key HAVING n > 1"
        )
        assert not store.rows(
            "SELECT enrollment_id, moved_on FROM stage_history h WHERE moved_on < "
            "(SELECT max(moved_on) FROM stage_history p WHERE p.enrollment_id = h.enrollment_id AND p.id < h.id)"
        ), "the stage history went back in time"
    finally:
        store.close()


life = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(STAGES)),
    st.tuples(st.just("reply"), st.just("")),
    st.tuples(st.just("nps"), st.sampled_from([1, 6, 10])),  # at risk, or not
    st.tuples(st.just("send"), st.just("")),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=20)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(life, min_size=1, max_size=20), st.sampled_from(["after-sales", "support"]))
def test_no_email_goes_for_a_stage_left_and_no_play_repeats_inside_its_cooldown(steps, funnel_id):
    """Moves, replies, health changes and gaps between runs in any order: an email
    that goes out belongs to the stage visit its customer is in (or to no visit: a
    health play's), and a play never starts by itself twice inside its cooldown."""
    library, team, store, cid = new_book(funnel_id)
    try:
        day = START
        for kind, arg in steps:
            today = day.isoformat()
            if kind == "wait":
                day += timedelta(days=int(arg))
                run_tick(store, library, team, day.isoformat())
            elif kind == "move":
                move(store, library, team, cid, funnel_id, str(arg), today)
            elif kind == "nps":
                record_signal(store, "p@example.com", "nps", str(arg), today, today)
            elif kind == "reply":
                reply(store, library, team, today)
            else:
                with store.write():
                    for email in outbox.due(store, today, f"{today}T23:59"):
                        if email.visit_id is None or email.enrollment_id is None:
                            continue
                        enrollment = enrollments.get(store, email.enrollment_id)
                        assert enrollment is not None
                        assert email.visit_id == enrollment.visit_id, (
                            f"email {email.template!r} of a stage visit the customer left"
                        )
                    outbox.deliver_due_in_simulation(store, today, sent_at=today)
        cooldowns = {p.id: p.cooldown for p in library.plays.values()}
        starts = store.rows(
            "SELECT play, started_on, source FROM play_starts WHERE customer_id = ? ORDER BY id",
            [cid],
        )
        for i, start in enumerate(starts):
            if start["source"] == "hand":
                continue
            for earlier in starts[:i]:
                if earlier["play"] == start["play"]:
                    gap = (
                        date.fromisoformat(start["started_on"])
                        - date.fromisoformat(earlier["started_on"])
                    ).days
                    assert gap >= cooldowns[start["play"]], (
                        f"{start['play']} started on {earlier['started_on']} and again "
                        f"{gap} days later"
                    )
    finally:
        store.close()
