"""Scenario tests of the funnel engine through the real command line."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from conftest import db_dump

START = date(2026, 3, 2)


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


@pytest.fixture
def book(run, workspace):
    added = run("customer", "add", "c@example.com", "--name", "Carla Reis", "--owner", "ana")
    assert added.exit_code == 0, added.stderr
    return workspace


def due(run, n: int, *args: str) -> list[dict]:
    result = run("due", "--today", day(n), "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def brief(items: list[dict]) -> list[tuple]:
    """(kind, what, due_on, days_overdue); a stuck stage visit's alerts joined with +."""
    return [
        (i["kind"], "+".join(i.get("alerts", ())) or i["title"], i["due_on"], i["days_overdue"])
        for i in items
    ]


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def test_after_sales_day_by_day(run, book):
    ok(run("enroll", "c@example.com", "after-sales", "--today", day(0)))
    # Day 0: the demand analysis task, due the day of entry.
    assert brief(due(run, 0)) == [("task", "Analyze customer demand", day(0), 0)]
    # Day 2: overdue, and the stage's 1-day stagnation alert fires.
    assert brief(due(run, 2)) == [
        ("task", "Analyze customer demand", day(0), 2),
        ("stagnation", "stagnant", day(1), 1),
    ]
    task_id = due(run, 2)[0]["id"]
    ok(run("done", str(task_id), "--today", day(2)))
    # one item for the stage visit, with both of its reasons, late since the earliest:
    # the stage limit (day 1), not the entry; nothing has been planned only since today
    assert brief(due(run, 2)) == [("stagnation", "stagnant+no-next-step", day(1), 1)]
    # Day 3: first contact. The welcome email is queued and the call is due in 2 days.
    ok(run("move", "c@example.com", "customer-contact", "--today", day(3)))
    assert brief(due(run, 3, "--days", "2")) == [
        ("email", "Email 'welcome' to send", day(3), 0),
        ("task", "Call the customer", day(5), -2),
    ]
    assert brief(due(run, 5)) == [
        ("email", "Email 'welcome' to send", day(3), 2),  # overdue first, then today
        ("task", "Call the customer", day(5), 0),
    ]
    # Day 5: the customer answers: the call is dropped and the queued welcome not sent.
    ok(
        run(
            "log",
            "c@example.com",
            "Replied with times for a call",
            "--channel",
            "email",
            "--direction",
            "inbound",
            "--today",
            day(5),
        )
    )
    # the dropped call was the plan until today: nothing planned since today
    assert brief(due(run, 5)) == [("stagnation", "no-next-step", day(5), 0)]
    # Day 9: more than 5 days in customer-contact.
    assert brief(due(run, 9)) == [("stagnation", "stagnant+no-next-step", day(5), 4)]
    stuck = due(run, 9)[0]
    assert (stuck["section"], stuck["title"], stuck["reasons"]) == (
        "attention",
        "Stuck, no next step",
        ["in customer-contact for 6 days (limit 5)", "nothing planned in customer-contact"],
    )
    ok(run("move", "c@example.com", "deployment", "--today", day(9)))
    fill = due(run, 9)
    assert brief(fill) == [("task", "Fill customer needs", day(9), 0)]
    ok(run("done", str(fill[0]["id"]), "--today", day(9)))
    ok(run("move", "c@example.com", "follow-up-30", "--today", day(12)))
    assert brief(due(run, 12, "--days", "30")) == [
        ("email", "Email 'follow-up-30' to send", day(12), 0),
        ("task", "Contact after another 30 days", day(42), -30),
    ]
    # The consultant reports all is well at 30 days: the 60- and 90-day contacts still come.
    ok(
        run(
            "log",
            "c@example.com",
            "All good, team happy",
            "--channel",
            "phone",
            "--direction",
            "inbound",
            "--today",
            day(13),
        )
    )
    ran = json.loads(ok(run("run", "--today", day(42), "-f", "json")).stdout)
    assert ran["moved"] == 1
    items = brief(due(run, 42))
    assert ("task", "Contact after another 30 days", day(42), 0) in items
    assert ("email", "Email 'follow-up-60' to send", day(42), 0) in items
    # Cron missed two months: the run catches up, each move dated when it was due. (The
    # customer answered the surveys happily meanwhile: approval waits while at risk.)
    ok(run("signal", "c@example.com", "nps", "10", "--today", day(100)))
    ok(run("signal", "c@example.com", "csat", "5", "--today", day(100)))
    ran = json.loads(ok(run("run", "--today", day(120), "-f", "json")).stdout)
    assert (
        ran["moved"] == 3
    )  # follow-up-90 (day 72), approved (day 102), relationship steady (day 116)
    shown = json.loads(ok(run("customer", "show", "c@example.com", "-f", "json")).stdout)
    stages = [(t["on"], t["what"]) for t in shown["timeline"] if t["kind"] == "stage"]
    assert (
        day(72),
        "after-sales: follow-up-60 -> follow-up-90 (automatic after 30 days in follow-up-60)",
    ) in stages
    assert (
        day(102),
        "after-sales: follow-up-90 -> approved (automatic after 30 days in follow-up-90, "
        "once not health.at_risk)",
    ) in stages
    assert (
        day(102),
        "after-sales: won at approved (First 90 days completed and goals met)",
    ) in stages
    assert (day(102), "Enrolled in relationship at kickoff (from after-sales)") in stages
    # The emails of the stages passed through while the tick did not run are superseded;
    # those of the stage the customer is in now go out today, late but not lost.
    outbox = json.loads(ok(run("export", "outbox", "-f", "json")).stdout)
    status = {o["template"]: (o["status"], o["scheduled_on"]) for o in outbox}
    assert status["welcome"] == ("skipped", day(3))  # the customer had replied
    assert status["follow-up-30"] == ("superseded", day(12))  # never sent: no send ran
    assert status["follow-up-60"] == ("superseded", day(42))
    assert status["follow-up-90"] == ("superseded", day(120))  # caught up, then passed
    assert status["relationship-welcome"] == ("superseded", day(120))


def test_run_is_idempotent(run, book):
    ok(run("enroll", "c@example.com", "after-sales", "--stage", "follow-up-30", "--today", day(0)))
    ok(run("run", "--today", day(75)))
    before = db_dump(book)
    again = json.loads(ok(run("run", "--today", day(75), "-f", "json")).stdout)
    assert again == {
        "moved": 0,
        "tasks": 0,
        "emails": 0,
        "emails_skipped": 0,
        "escalated": 0,
        "failed_actions": 0,
        "caught_up": 0,
        "superseded": 0,
        "scored": 1,
        "at_risk": 1,
        "plays": 0,
    }
    assert db_dump(book) == before


def test_backward_move_in_support_runs_entry_actions_again(run, book):
    ok(run("enroll", "c@example.com", "support", "--stage", "post-sales", "--today", day(0)))
    first = [i["title"] for i in due(run, 30)]
    assert first.count("Send the guides for everyday use") == 1
    ok(run("move", "c@example.com", "retention", "--today", day(30)))
    ok(run("move", "c@example.com", "post-sales", "--today", day(40), "--note", "new team joined"))
    titles = [i["title"] for i in due(run, 41)]
    assert titles.count("Send the guides for everyday use") == 2
    shown = json.loads(ok(run("customer", "show", "c@example.com", "-f", "json")).stdout)
    assert (day(40), "support: retention -> post-sales (new team joined)") in [
        (t["on"], t["what"]) for t in shown["timeline"]
    ]


def test_rerunning_a_command_never_repeats_an_action(run, book):
    ok(run("enroll", "c@example.com", "after-sales", "--today", day(0)))
    again = run("enroll", "c@example.com", "after-sales", "--today", day(0))
    assert again.exit_code == 1
    assert again.stderr == "Error: Customer c@example.com is already in funnel 'after-sales'.\n"
    assert len(due(run, 0)) == 1


def test_closed_enrollment_moves_only_with_reopen(run, book):
    ok(run("enroll", "c@example.com", "support", "--today", day(0)))
    ok(run("churn", "c@example.com", "--reason", "budget cut", "--today", day(5)))
    assert [i["kind"] for i in due(run, 6)] == []  # churned: nothing open, never stagnant
    moved = run("move", "c@example.com", "onboarding", "--funnel", "support", "--today", day(6))
    assert moved.exit_code == 1
    assert "--reopen" in moved.stderr
    ok(
        run(
            "move",
            "c@example.com",
            "onboarding",
            "--reopen",
            "--funnel",
            "support",
            "--today",
            day(6),
        )
    )
    assert [i["funnel"] for i in due(run, 6)] != []


def test_ambiguous_customer_asks_for_funnel(run, book):
    ok(run("enroll", "c@example.com", "support", "--today", day(0)))
    ok(run("enroll", "c@example.com", "after-sales", "--today", day(0)))
    result = run("won", "c@example.com", "--today", day(1))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: c@example.com is in several funnels (after-sales, support); say which with --funnel.\n"
    )


def test_forbidden_skip_is_refused_and_changes_nothing(run, book):
    ok(run("enroll", "c@example.com", "after-sales", "--today", day(0)))
    before = db_dump(book)
    result = run("move", "c@example.com", "approved", "--today", day(1))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Funnel after-sales does not allow skipping stages")
    assert db_dump(book) == before


ESCALATING = """\
id: desk
title: Help desk
stages:
  - id: open
    title: Open ticket
    on_enter:
      - task: Solve the ticket
        due: 1d
        escalate_after: 2d
        escalate_to: partner:desk-partner
        then:
          task: Confirm the fix with the customer
          due: 3d
partners:
  - id: desk-partner
    name: Harbour Desk
    email: desk@example.com
"""


def test_escalation_created_once_and_follow_up_counts_from_completion(run, book):
    (book / "playbooks" / "desk.yaml").write_text(ESCALATING)
    ok(run("enroll", "c@example.com", "desk", "--today", day(0)))
    assert json.loads(ok(run("run", "--today", day(2), "-f", "json")).stdout)["escalated"] == 0
    assert json.loads(ok(run("run", "--today", day(3), "-f", "json")).stdout)["escalated"] == 1
    assert json.loads(ok(run("run", "--today", day(9), "-f", "json")).stdout)["escalated"] == 0
    items = due(run, 9)
    owners = {i["title"]: i["owner"] for i in items}
    assert owners["Solve the ticket"] == "ana"
    escalation = [i for i in items if "Escalated: Solve the ticket" in i["title"]]
    assert [(e["section"], e["owner"], e["due_on"]) for e in escalation] == [
        ("waiting", "partner:desk-partner", day(3))
    ]
    assert escalation[0]["title"].startswith("Harbour Desk: Escalated: Solve")
    solve = next(i for i in items if i["title"] == "Solve the ticket")
    ok(run("done", str(solve["id"]), "--today", day(10)))
    follow = [
        i for i in due(run, 10, "--days", "5") if i["title"] == "Confirm the fix with the customer"
    ]
    assert [(f["due_on"], f["days_overdue"]) for f in follow] == [(day(13), -3)]


def test_failed_action_leaves_a_line_and_the_rest_runs(run, book):
    (book / "playbooks" / "broken.yaml").write_text(
        "id: broken\ntitle: Broken\nstages:\n  - id: one\n    title: One\n    on_enter:\n"
        "      - task: Needs a field\n        when: customer.fields.missing > 1\n"
        "      - task: Still created\n"
    )
    ok(run("enroll", "c@example.com", "broken", "--today", day(0)))
    assert [i["title"] for i in due(run, 0)] == ["Still created"]
    shown = json.loads(ok(run("customer", "show", "c@example.com", "-f", "json")).stdout)
    failed = [t["what"] for t in shown["timeline"] if t["what"].startswith("FAILED")]
    assert len(failed) == 1 and "missing" in failed[0]


def test_due_filters_by_owner(run, book):
    ok(run("customer", "add", "d@example.com", "--owner", "bruno"))
    ok(run("enroll", "c@example.com", "after-sales", "--today", day(0)))
    ok(run("enroll", "d@example.com", "after-sales", "--today", day(0)))
    assert [i["customer"] for i in due(run, 0, "--owner", "bruno")] == ["d@example.com"]


def test_simulate_touches_nothing(run, book):
    before = db_dump(book)
    result = ok(
        run(
            "playbook",
            "simulate",
            "after-sales",
            "--moves",
            "customer-contact@1,deployment@4,follow-up-30@10",
            "--days",
            "110",
            "-f",
            "json",
        )
    )
    plan = json.loads(result.stdout)
    assert db_dump(book) == before
    kinds = [(p["day"], p["kind"], p["what"]) for p in plan]
    assert (1, "email", "send 'welcome'") in kinds
    assert (3, "task", "Call the customer") in kinds
    assert any(k[1] == "won" for k in kinds)
    bad = run("playbook", "simulate", "after-sales", "--moves", "nowhere@3")
    assert bad.exit_code == 1


def test_schema_version_counts_every_migration():
    from funnelctl.store import SCHEMA_VERSION, migrations

    assert len(migrations.migrations._migrations) == SCHEMA_VERSION


@pytest.mark.parametrize(
    "expression",
    [
        "customer.plan",
        "customer.fields.tier",
        "signals.nps",
        "missing",
        "customer.nope",
        "customer.nope.x",
        "today",
        "none",
    ],
)
def test_dotted_names_evaluate_exactly_as_the_sandbox_does(expression):
    from jinja2 import UndefinedError

    from funnelctl.sandbox import _compiled, evaluate

    context = {
        "customer": {"plan": "growth", "fields": {"tier": "gold"}},
        "signals": {"nps": 9.0},
        "today": "2026-03-02",
    }

    def outcome(function):
        try:
            value = function()
            str(value)  # an Undefined raises once it is used
            return ("value", value)
        except UndefinedError:
            return ("undefined", None)

    assert outcome(lambda: evaluate(expression, context)) == outcome(
        lambda: _compiled(expression)(**context)
    )


def test_simulate_an_attentive_consultant_never_trips_the_health_rules(run, book):
    plan = json.loads(
        ok(
            run(
                "playbook",
                "simulate",
                "after-sales",
                "--moves",
                "customer-contact@1,deployment@4,follow-up-30@10",
                "--days",
                "130",
                "-f",
                "json",
            )
        ).stdout
    )
    assert not [p for p in plan if "at-risk" in p["what"] or "not working" in p["what"]]


# -- a laptop asleep for weeks: the tick catches up --------------------------------------------


def test_a_run_after_weeks_sends_the_current_stage_and_supersedes_the_passed_ones(
    run, book, monkeypatch
):
    settings = book / "funnelctl.yaml"
    settings.write_text(settings.read_text().replace("09:00-17:00", "00:00-24:00"))
    monkeypatch.setenv("FUNNELCTL_NOW", "2026-03-02T10:00")

    def send(n: int) -> dict:
        return json.loads(ok(run("send", "--today", day(n), "-f", "json")).stdout)

    def fates() -> dict[str, tuple[str, str]]:
        """The funnels' emails (the health play's check-in, for a customer silent for
        three months, is not this test's business)."""
        rows = json.loads(ok(run("outbox", "list", "-f", "json")).stdout)
        return {
            r["template"]: (r["status"], r["scheduled_on"])
            for r in rows
            if r["template"] != "at-risk-check-in"
        }

    ok(run("enroll", "c@example.com", "after-sales", "--stage", "follow-up-30", "--today", day(1)))
    for n in (1, 3):
        ok(run("run", "--today", day(n)))
        send(n)
    assert fates() == {"follow-up-30": ("sent", day(1))}

    # Day 100: the tick did not run for 97 days. follow-up-60 (day 31), follow-up-90
    # (day 61), approved (day 91, which enrols in relationship at kickoff) all happened:
    # the customer answered the surveys happily meanwhile (approval waits while at risk).
    ok(run("signal", "c@example.com", "nps", "10", "--today", day(50)))
    ok(run("signal", "c@example.com", "csat", "5", "--today", day(50)))
    ran = json.loads(ok(run("run", "--today", day(100), "-f", "json")).stdout)
    assert (ran["moved"], ran["superseded"], ran["caught_up"]) == (3, 2, 3)
    assert fates() == {
        "follow-up-30": ("sent", day(1)),
        "follow-up-60": ("superseded", day(100)),  # its stage was left on day 61
        "follow-up-90": ("superseded", day(100)),  # left on day 91, approved
        "relationship-welcome": ("queued", day(100)),  # the stage the customer is in now
    }
    # Late, not lost: the current stage's email goes out on the catch-up day ...
    assert send(100)["sent"] == 1
    assert fates()["relationship-welcome"] == ("sent", day(100))
    # ... the passed ones are visible and can be sent by hand
    superseded = json.loads(
        ok(run("outbox", "list", "--status", "superseded", "-f", "json")).stdout
    )
    assert [r["reason"] for r in superseded] == [
        f"left follow-up-60 on {day(61)}",
        f"left follow-up-90 on {day(91)}",
    ]
    requeued = ok(run("outbox", "requeue", f"e{superseded[0]['id']}", "--today", day(100)))
    assert "queued again by hand (it was superseded: left follow-up-60" in requeued.stdout
    assert send(100)["sent"] == 1
    assert fates()["follow-up-60"] == ("sent", day(100))
    # a sent email cannot be requeued
    again = run("outbox", "requeue", str(superseded[0]["id"]), "--today", day(100))
    assert (again.exit_code, again.stderr) == (
        1,
        f"Error: Email e{superseded[0]['id']} is sent; requeue applies to skipped, "
        "superseded, bounced or late emails (an uncertain or failed one: 'funnelctl "
        "outbox resolve').\n",
    )


def test_an_import_of_old_customers_still_never_blasts_a_mailbox(run, workspace, tmp_path):
    (tmp_path / "old.csv").write_text(
        "email,funnel,stage,entered_on\nold@example.com,after-sales,customer-contact,2026-01-05\n"
    )
    ok(run("import", str(tmp_path / "old.csv")))
    rows = json.loads(ok(run("outbox", "list", "-f", "json")).stdout)
    assert [(r["template"], r["status"]) for r in rows] == [("welcome", "skipped")]
    assert rows[0]["reason"].startswith("stale: due 2026-01-05")


def test_leaving_a_stage_keeps_its_promised_tasks_unless_they_say_cancel_on_exit(run, book):
    path = book / "playbooks" / "exit.yaml"
    path.write_text(
        "id: exit\ntitle: Exit\nstages:\n"
        "  - id: one\n    title: One\n    on_enter:\n"
        "      - task: Call back as promised\n        due: 3d\n"
        "      - task: Prepare the demo\n        due: 3d\n        cancel_on_exit: true\n"
        "      - email: welcome\n        delay: 5d\n"
        "  - id: two\n    title: Two\n"
    )
    ok(run("enroll", "c@example.com", "exit", "--today", day(0)))
    ok(run("move", "c@example.com", "two", "--today", day(1)))

    items = due(run, 1, "--days", "7")
    assert [(i["kind"], i["title"]) for i in items] == [("task", "Call back as promised")]
    emails = json.loads(ok(run("outbox", "list", "-f", "json")).stdout)
    assert [(e["status"], e["reason"]) for e in emails] == [("superseded", f"left one on {day(1)}")]
    shown = json.loads(ok(run("customer", "show", "c@example.com", "-f", "json")).stdout)
    whats = [t["what"] for t in shown["timeline"]]
    assert f"1 queued email(s) of one superseded: left one on {day(1)}" in whats
    assert f"1 task(s) dropped: left one on {day(1)}" in whats


def test_a_play_started_by_hand_attaches_to_the_current_enrollment_once_a_day(run, book):
    ok(run("enroll", "c@example.com", "support", "--today", day(0)))
    listed = json.loads(ok(run("play", "list", "-f", "json")).stdout)
    assert "issue-escalation" in [p["play"] for p in listed]

    started = json.loads(
        ok(
            run("play", "run", "issue-escalation", "c@example.com", "--today", day(1), "-f", "json")
        ).stdout
    )
    assert (started["funnel"], started["stage"], started["tasks"] > 0) == (
        "support",
        "onboarding",
        True,
    )
    again = run("play", "run", "issue-escalation", "c@example.com", "--today", day(1))
    assert (again.exit_code, again.stderr) == (
        1,
        "Error: Play 'issue-escalation' was already started for c@example.com today; nothing "
        "was done again.\n",
    )
    unknown = run("play", "run", "nope", "c@example.com", "--today", day(1))
    assert unknown.exit_code == 1 and "No play 'nope'" in unknown.stderr
