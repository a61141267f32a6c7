"""Plays that know when to stop, and advances that wait for a condition.

The shipped playbooks, lived with `--today`: the after-sales funnel does not approve
(close as won, thank) a customer who is at risk; a detractor entering advocacy is not
asked for a testimonial; the cooldown and gates show in `playbook simulate`.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from conftest import TODAY, write

START = date.fromisoformat(TODAY)


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


def enrolled(run, email: str, funnel: str, stage: str, on: str, owner: str = "ana") -> None:
    ok(run("customer", "add", email, "--name", "Bo Ng", "--owner", owner, "--today", on))
    ok(run("enroll", email, funnel, "--stage", stage, "--today", on))


def history(run, email: str) -> list[tuple[str, str, str, str]]:
    """(funnel, kind, to_stage, moved_on) of each stage history row of the customer."""
    rows = as_json(run("export", "history", "-f", "json"))
    return [
        (r["funnel"], r["kind"], r["to_stage"], r["moved_on"])
        for r in rows
        if r["customer"] == email
    ]


def open_tasks(run, email: str, on: str) -> list[tuple[str, str]]:
    items = as_json(run("due", "--today", on, "--days", "60", "-f", "json"))
    return [
        (i["title"], i["due_on"]) for i in items if i["kind"] == "task" and i["customer"] == email
    ]


def timeline(run, email: str, on: str) -> list[str]:
    shown = as_json(run("customer", "show", email, "--today", on, "-f", "json"))
    return [e["what"] for e in shown["timeline"]]


def test_an_at_risk_customer_is_not_approved_by_the_calendar(run, workspace):
    email = "bo@example.com"
    enrolled(run, email, "after-sales", "follow-up-90", day(0))
    ok(run("signal", email, "nps", "2", "--today", day(10)))
    ok(run("run", "--today", day(10)))
    # 30 days in follow-up-90: the calendar says approve, the gate says not while at risk
    summary = as_json(run("run", "--today", day(30), "-f", "json"))
    assert summary["moved"] == 0
    assert history(run, email) == [("after-sales", "enroll", "follow-up-90", day(0))]
    ready = ("Ready for Approved customer?", day(30))
    assert ready in open_tasks(run, email, day(30))
    # asked once per stage visit, however many mornings it stays held
    ok(run("run", "--today", day(31)))
    ok(run("run", "--today", day(32)))
    assert open_tasks(run, email, day(32)).count(ready) == 1

    # the customer recovers: the next run approves them, dated that day, and the
    # question is gone with the stage visit
    ok(run("signal", email, "nps", "10", "--today", day(45)))
    ok(run("signal", email, "logins", "25", "--today", day(45)))
    assert as_json(run("run", "--today", day(45), "-f", "json"))["moved"] == 1
    assert history(run, email) == [
        ("after-sales", "enroll", "follow-up-90", day(0)),
        ("after-sales", "move", "approved", day(45)),
        ("after-sales", "won", "approved", day(45)),
        ("relationship", "enroll", "kickoff", day(45)),
    ]
    assert ready not in open_tasks(run, email, day(45))


def test_a_healthy_customer_is_approved_on_the_day_it_was_due(run, workspace):
    email = "fine@example.com"
    enrolled(run, email, "after-sales", "follow-up-90", day(0))
    ok(run("signal", email, "nps", "10", "--today", day(1)))
    ok(run("run", "--today", day(1)))
    # the laptop slept: the catch-up dates the approval when it was due, as before
    assert as_json(run("run", "--today", day(40), "-f", "json"))["moved"] == 1
    assert ("after-sales", "won", "approved", day(30)) in history(run, email)


def test_a_detractor_entering_advocacy_is_not_asked_for_a_testimonial(run, workspace):
    email = "unhappy@example.com"
    enrolled(run, email, "support", "retention", day(0))
    ok(run("signal", email, "nps", "3", "--today", day(1)))
    ok(run("run", "--today", day(1)))
    ok(run("move", email, "advocacy", "--today", day(2)))
    lines = timeline(run, email, day(2))
    assert "Play 'testimonial-ask' not started: the customer is at risk (unless_at_risk)" in lines
    outbox = as_json(run("outbox", "list", "-f", "json", "--today", day(2)))
    queued = [r["template"] for r in outbox if r["customer"] == email and r["status"] == "queued"]
    assert queued == ["at-risk-check-in"]


def test_a_play_run_by_hand_ignores_the_cooldown_but_counts_for_it(run, workspace):
    email = "hand@example.com"
    enrolled(run, email, "support", "post-sales", day(0))
    ok(run("play", "run", "at-risk-rescue", email, "--today", day(0)))
    # the customer slips the next day: the rescue was just done by hand
    ok(run("signal", email, "nps", "2", "--today", day(1)))
    assert as_json(run("run", "--today", day(1), "-f", "json"))["plays"] == 0
    assert (
        f"Play 'at-risk-rescue' not started: it started on {day(0)}, inside its cooldown of "
        "30 days" in timeline(run, email, day(1))
    )
    # and by hand again it runs: the consultant decides
    ok(run("play", "run", "at-risk-rescue", email, "--today", day(2)))


def test_leaving_a_stage_does_not_end_a_rescue(run, workspace):
    """A health play's work belongs to the customer, not to the stage they were in."""
    email = "moving@example.com"
    enrolled(run, email, "support", "post-sales", day(0))
    ok(run("signal", email, "nps", "2", "--today", day(0)))
    ok(run("run", "--today", day(0)))
    ok(run("move", email, "onboarding", "--today", day(1)))
    outbox = as_json(run("outbox", "list", "-f", "json", "--today", day(1)))
    rescue = [r for r in outbox if r["template"] == "at-risk-check-in"]
    assert [r["status"] for r in rescue] == ["queued"]


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("{after: 30d, when: 'health.at_risk and'}", "is not a valid expression"),
        ("{after: 30d, when: 'mood == 1'}", "uses mood, which is not defined"),
        ("{when: 'not health.at_risk'}", "missing required key 'after'"),
        ("{after: 30d, unless: x}", "unknown key 'unless'"),
        ("[30d]", "'advance_after' must be"),
    ],
)
def test_a_broken_gate_is_reported_on_its_line(run, tmp_path, gate, message):
    folder = tmp_path / "lib" / "playbooks"
    folder.mkdir(parents=True)
    write(
        folder / "f.yaml",
        "id: f\ntitle: F\nstages:\n  - id: a\n    title: A\n"
        f"    advance_after: {gate}\n  - id: b\n    title: B\n",
    )
    result = run("playbook", "validate", str(folder))
    assert result.exit_code == 1
    assert "f.yaml:6:" in result.stderr and message in result.stderr, result.stderr


def test_a_rescue_play_that_waits_while_at_risk_is_refused(run, tmp_path):
    folder = tmp_path / "lib" / "playbooks"
    folder.mkdir(parents=True)
    write(
        folder / "h.yaml",
        "plays:\n  - id: rescue\n    title: Rescue\n    sourcing: internal\n"
        "    unless_at_risk: true\n    actions:\n      - task: Call\n"
        "health:\n  at_risk_below: 50\n  on_at_risk: [rescue]\n  measures:\n"
        "    - {id: nps, title: NPS, value: signals.nps, healthy: 9, poor: 6}\n",
    )
    result = run("playbook", "validate", str(folder))
    assert result.exit_code == 1
    assert "h.yaml:2: play rescue: on_at_risk starts it when the customer is at risk" in (
        result.stderr
    )


def test_simulate_shows_the_cadence_and_the_gate(run, workspace):
    plan = as_json(
        run(
            "playbook",
            "simulate",
            "after-sales",
            "--moves",
            "customer-contact@1,deployment@3,follow-up-30@10",
            "--signals",
            "nps=3@80,nps=10@150",
            "--days",
            "150",
            "--today",
            day(0),
            "-f",
            "json",
        )
    )
    rows = [(r["day"], r["kind"], r["what"]) for r in plan if r["day"] >= 80]
    assert rows == [
        (80, "signal", "nps = 3"),
        (80, "health", "At risk (score 57.1): Latest NPS answer: 3 is poor (healthy ≥ 9)"),
        (80, "play", "Play 'at-risk-rescue' started: At-risk rescue"),
        (80, "email", "send 'at-risk-check-in'"),
        (82, "task", "Call about what is not working"),
        (85, "task", "Agree a recovery plan and log it"),
        (100, "task", "Ready for Approved customer?"),
        (150, "signal", "nps = 10"),
        (
            150,
            "move",
            "after-sales: follow-up-90 -> approved (automatic after 30 days in follow-up-90, "
            "once not health.at_risk)",
        ),
        (150, "won", "after-sales closed as won"),
        (150, "enroll", "enters relationship at kickoff"),
        (150, "health", "No longer at-risk"),
        (150, "email", "send 'relationship-welcome'"),
    ]


def test_simulate_refuses_a_bad_signal(run, workspace):
    result = run("playbook", "simulate", "after-sales", "--signals", "nps3@80")
    assert result.exit_code == 2
    assert "--signals: 'nps3@80': it must look like METRIC=VALUE@DAY" in result.stderr


def test_playbook_plays_shows_each_plays_cadence(run, workspace):
    plays = {p["play"]: p for p in as_json(run("playbook", "plays", "-f", "json"))}
    assert plays["testimonial-ask"]["cadence"] == (
        "at most once per 30 days per customer, never while at risk"
    )
    assert plays["at-risk-rescue"]["cadence"] == (
        "at most once per 30 days per customer; from an opportunity, not while at risk"
    )
