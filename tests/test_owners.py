"""Who does the work: a stage's owner rule assigns its tasks, partners are told by email
and listed apart, and customers who join mid-funnel without an owner get one."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from conftest import TODAY

PARTNERS = """\
partners:
  - id: desk
    name: Harbour Help Desk
    email: desk@example.com
"""

FUNNEL = """\
id: care
title: Care
stages:
  - id: intake
    title: Intake
    owner: bruno
    on_enter:
      - task: Read the contract
        due: 1d
        then:
          task: Summarise it
          due: 1d
      - task: Book the kick-off
        owner: ana
  - id: helpdesk
    title: Help desk
    owner: partner:desk
    on_enter:
      - task: Answer the first question
        due: 1d
        description: How to export the monthly report.
  - id: shared
    title: Shared
    owner: round-robin
    on_enter:
      - task: Say hello
      - task: Send the guide
"""


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


@pytest.fixture
def team(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "team"
    ok(run("init", str(root)))
    (root / "playbooks" / "care.yaml").write_text(FUNNEL + PARTNERS)
    monkeypatch.setenv("FUNNELCTL_HOME", str(root))
    monkeypatch.setenv("FUNNELCTL_NOW", f"{TODAY}T10:00")
    settings = root / "funnelctl.yaml"
    text = settings.read_text().replace("09:00-17:00", "00:00-24:00")
    settings.write_text(text.replace("team: []", "team: [ana, bruno]"))
    return root


def tasks(run, *args: str) -> list[tuple[str, str, str | None]]:
    items = as_json(run("due", "--days", "30", "-f", "json", *args))
    return [(i["section"], i["title"], i["owner"]) for i in items if i["kind"] == "task"]


def test_a_stages_owner_rule_assigns_its_tasks(run, team):
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "care"))
    # the stage's owner (bruno) takes the tasks that name nobody; ana's stays ana's
    assert tasks(run) == [
        ("today", "Book the kick-off", "ana"),
        ("coming", "Read the contract", "bruno"),
    ]
    read = next(
        i
        for i in as_json(run("due", "--days", "3", "-f", "json"))
        if i["title"] == "Read the contract"
    )
    ok(run("done", str(read["id"])))
    # its then: follow-up follows the same rule
    assert ("coming", "Summarise it", "bruno") in tasks(run)


def test_round_robin_stage_owner_hands_each_task_out_in_turn(run, team):
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "care", "--stage", "shared"))
    assert sorted(o for _, t, o in tasks(run) if t in ("Say hello", "Send the guide")) == [
        "ana",
        "bruno",
    ]


def test_a_partners_task_is_emailed_to_them_once_and_listed_apart(run, team):
    ok(run("customer", "add", "c@example.com", "--name", "Cleo Diaz", "--owner", "ana"))
    ok(run("customer", "add", "d@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "care", "--stage", "helpdesk"))
    ok(run("enroll", "d@example.com", "care", "--stage", "intake"))
    items = as_json(run("due", "--days", "3", "-f", "json"))
    # the consultant's own work first, what partners hold last
    assert [(i["section"], i["title"]) for i in items if i["kind"] == "task"] == [
        ("today", "Book the kick-off"),
        ("coming", "Read the contract"),
        ("waiting", "Harbour Help Desk: Answer the first question"),
    ]
    # a partner's own list
    only = as_json(run("due", "--days", "3", "--owner", "partner:desk", "-f", "json"))
    assert [(i["section"], i["customer"]) for i in only if i["kind"] != "email"] == [
        ("waiting", "c@example.com")
    ]
    # on a terminal, a table of its own
    table = ok(run("due", "--days", "3", env={"COLUMNS": "200"})).stdout
    assert "Waiting on partners" in table
    assert table.index("Waiting on partners") > table.index("Read the contract")

    outbox = as_json(run("outbox", "list", "-f", "json"))
    handoff = [r for r in outbox if r["template"] == "partner-task"]
    assert [(r["partner"], r["customer"], r["status"]) for r in handoff] == [
        ("desk", "c@example.com", "queued")
    ]
    ok(run("run"))
    ok(run("run"))
    assert len([r for r in as_json(run("outbox", "list", "-f", "json")) if r["partner"]]) == 1

    sent = as_json(run("send", "-f", "json"))
    assert sent["sent"] >= 1
    box = mailbox.Maildir(team / "outbox", create=False)
    to_desk = [m for m in box if "desk@example.com" in m["To"]]
    assert len(to_desk) == 1
    message = to_desk[0]
    assert message["To"] == "Harbour Help Desk <desk@example.com>"
    assert " ".join(message["Subject"].split()) == (
        "Task for Harbour Help Desk: Answer the first question (Cleo Diaz, ref. t1)"
    )
    body = message.get_payload(decode=True).decode()
    assert "How to export the monthly report." in body
    assert "Cleo Diaz" in body and "c@example.com" in body
    # the partner was told, not the customer: no touchpoint for the customer
    shown = as_json(run("customer", "show", "c@example.com", "-f", "json"))
    assert shown["timeline"] and not any(t["kind"] == "touchpoint" for t in shown["timeline"])


def test_a_partner_task_done_before_sending_is_not_emailed(run, team):
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "care", "--stage", "helpdesk"))
    partner_task = next(
        i for i in as_json(run("due", "--days", "3", "-f", "json")) if i["section"] == "waiting"
    )
    ok(run("done", str(partner_task["id"])))
    ok(run("send"))
    handoff = [r for r in as_json(run("outbox", "list", "-f", "json")) if r["partner"]]
    assert [(r["status"], r["reason"]) for r in handoff] == [
        ("superseded", "its task was done before the partner was told")
    ]


def test_an_escalation_to_a_partner_emails_them(run, workspace):
    ok(run("customer", "add", "c@example.com", "--owner", "ana", "--today", "2026-03-02"))
    ok(run("enroll", "c@example.com", "support", "--stage", "retention", "--today", "2026-03-02"))
    ok(run("play", "run", "issue-escalation", "c@example.com", "--today", "2026-03-02"))
    # due 03-03, escalated two days overdue (03-05) to the help desk
    ok(run("run", "--today", "2026-03-05"))
    handoff = [r for r in as_json(run("outbox", "list", "-f", "json")) if r["partner"]]
    assert [(r["partner"], r["scheduled_on"]) for r in handoff] == [
        ("helpdesk-partner", "2026-03-05")
    ]


def test_customers_imported_mid_funnel_without_an_owner_get_one(run, team, tmp_path):
    csv = tmp_path / "mid.csv"
    csv.write_text(
        "email,owner,funnel,stage\n"
        "one@example.com,,after-sales,follow-up-30\n"
        "two@example.com,,after-sales,follow-up-30\n"
        "kept@example.com,ana,after-sales,follow-up-30\n"
        "first@example.com,,after-sales,demand-analysis\n"
    )
    ok(run("import", str(csv)))
    owners = {r["email"]: r["owner"] for r in as_json(run("export", "customers", "-f", "json"))}
    # the team in turn for the mid-funnel ones (follow-up-30's rule is the customer's owner,
    # and they have none); demand-analysis assigns its own by its entry action
    assert owners["kept@example.com"] == "ana"
    assert {owners["one@example.com"], owners["two@example.com"]} == {"ana", "bruno"}
    assert owners["first@example.com"] in ("ana", "bruno")
    due = as_json(run("due", "--days", "30", "-f", "json"))
    assert all(i["owner"] for i in due if i["kind"] == "task")


def test_the_support_funnel_hands_post_sales_customers_to_the_help_desk(run, workspace):
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "support", "--stage", "post-sales"))
    items = as_json(run("due", "--days", "3", "-f", "json"))
    assert [i["title"] for i in items if i["section"] == "waiting"] == [
        "Harbour Help Desk: Introduce first-line support to the customer"
    ]
    handoff = [r for r in as_json(run("outbox", "list", "-f", "json")) if r["partner"]]
    assert [r["partner"] for r in handoff] == ["helpdesk-partner"]


def test_due_shows_the_stage_a_task_came_from(run, workspace):
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "support", "--stage", "retention"))
    ok(run("move", "c@example.com", "onboarding"))
    items = as_json(run("due", "--days", "100", "-f", "json"))
    review = next(i for i in items if i["title"] == "Hold the periodic success review")
    assert (review["stage"], review["funnel"]) == ("retention", "support")
    kickoff = next(i for i in items if i["title"] == "Hold the kick-off meeting")
    assert kickoff["stage"] == "onboarding"


def test_a_partner_is_told_late_after_a_gap_but_never_about_a_historical_import(
    run, team, tmp_path
):
    (team / "playbooks" / "relay.yaml").write_text(
        "id: relay\ntitle: Relay\nstages:\n"
        "  - id: wait\n    title: Wait\n    advance_after: 5d\n"
        "  - id: desk\n    title: Desk\n    owner: partner:desk\n"
        "    on_enter:\n      - task: Take over\n        due: 1d\n"
    )
    ok(run("customer", "add", "gap@example.com", "--owner", "ana", "--today", "2026-03-02"))
    ok(run("enroll", "gap@example.com", "relay", "--today", "2026-03-02"))
    # the laptop slept: the move into desk was due 03-07, the run comes on 03-20
    ok(run("run", "--today", "2026-03-20"))
    csv = tmp_path / "old.csv"
    csv.write_text(
        "email,owner,funnel,stage,entered_on\nold@example.com,ana,care,helpdesk,2025-11-03\n"
    )
    ok(run("import", str(csv), "--today", "2026-03-20"))
    rows = [r for r in as_json(run("outbox", "list", "-f", "json")) if r["partner"]]
    assert sorted((r["customer"], r["status"], r["scheduled_on"]) for r in rows) == [
        ("gap@example.com", "queued", "2026-03-20"),
        ("old@example.com", "skipped", "2025-11-03"),
    ]


def test_a_workspace_without_the_partner_template_still_tells_partners(run, team):
    (team / "templates" / "partner-task.txt").unlink()  # a workspace made before it existed
    ok(run("customer", "add", "c@example.com", "--owner", "ana"))
    ok(run("enroll", "c@example.com", "care", "--stage", "helpdesk"))
    preview = ok(run("template", "render", "partner-task", "--customer", "c@example.com"))
    assert "To: Harbour Help Desk <desk@example.com>" in preview.stdout
    assert "Answer the first question" in preview.stdout
    assert as_json(run("send", "-f", "json"))["sent"] == 1
