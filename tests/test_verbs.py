"""done, snooze, drop and undo: references that cannot be confused (t12 a task, e7 an
email), several at once (all or none), and an answer that names the task, the
customer and what follows.

The demo book (today 2026-03-02) has task 1 for Lena and email 1 for Tom: the pair the
issue was about ('drop 1' dropped Lena's task when Tom's email was meant). Tom has since
replied, so email 1 is skipped; email 49 (Gustavo's renewal) is the one still queued, beside
task 49 (done long ago).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

TASK_KEYS = {
    "id",
    "customer_id",
    "enrollment_id",
    "title",
    "status",
    "due_on",
    "first_due_on",
    "owner",
    "note",
    "closed_on",
    "source",
}


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def rows(root: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(root / "funnel.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def task(root: Path, task_id: int) -> tuple | None:
    found = rows(
        root, "SELECT status, due_on, closed_on, note FROM activities WHERE id = ?", (task_id,)
    )
    return found[0] if found else None


def email(root: Path, email_id: int) -> tuple:
    return rows(root, "SELECT status, scheduled_on, reason FROM outbox WHERE id = ?", (email_id,))[
        0
    ]


def timeline(root: Path, customer: str) -> list[str]:
    return [
        r[0]
        for r in rows(
            root,
            "SELECT summary FROM events e JOIN customers c ON c.id = e.customer_id "
            "WHERE c.email = ? ORDER BY e.id",
            (customer,),
        )
    ]


# -- done ----------------------------------------------------------------------------------------


def test_done_names_the_task_the_customer_and_the_follow_up(run, demo):
    result = ok(run("done", "t13"))
    assert result.stdout == (
        "Done: t13 Hold the kick-off meeting (aiko.tanaka@example.com)\n"
        "  next: t156 Send the kick-off notes and agreed goals, due tomorrow\n"
    )
    assert result.stderr == ""
    assert task(demo, 13) == ("done", "2026-02-23", "2026-03-02", None)
    assert task(demo, 156) == ("open", "2026-03-03", None, None)
    assert timeline(demo, "aiko.tanaka@example.com")[-2:] == [
        "Done: t13 Hold the kick-off meeting",
        "Task t156 'Send the kick-off notes and agreed goals' created, due 2026-03-03 (after t13)",
    ]


def test_a_bare_number_is_still_a_task(run, demo):
    assert (
        ok(run("done", "1")).stdout
        == "Done: t1 Analyze customer demand (lena.fischer@example.com)\n"
    )
    assert task(demo, 1)[0] == "done"


def test_done_as_json_keeps_the_task_keys_and_adds_ref_customer_and_next(run, demo):
    result = json.loads(ok(run("done", "t13", "t1", "--note", "held", "-f", "json")).stdout)
    assert [set(row) >= TASK_KEYS for row in result] == [True, True]
    assert [(r["id"], r["status"], r["note"]) for r in result] == [
        (13, "done", "held"),
        (1, "done", "held"),
    ]
    assert [(r["ref"], r["customer"], r["next"]) for r in result] == [
        ("t13", "aiko.tanaka@example.com", "t156"),
        ("t1", "lena.fischer@example.com", None),
    ]


def test_done_as_csv_keeps_its_columns_and_adds_ref_customer_and_next(run, demo):
    result = ok(run("done", "t13", "-f", "csv"))
    assert result.stdout == (
        "id,title,status,due_on,owner,note,ref,customer,next\n"
        "13,Hold the kick-off meeting,done,2026-02-23,ana,,t13,aiko.tanaka@example.com,t156\n"
    )


def test_several_tasks_done_at_once(run, demo):
    result = ok(run("done", "t1", "t7", "t13"))
    assert result.stdout == (
        "Done: t1 Analyze customer demand (lena.fischer@example.com)\n"
        "Done: t7 Call the customer (joana.ferreira@example.com)\n"
        "Done: t13 Hold the kick-off meeting (aiko.tanaka@example.com)\n"
        "  next: t156 Send the kick-off notes and agreed goals, due tomorrow\n"
    )
    assert [task(demo, i)[0] for i in (1, 7, 13)] == ["done", "done", "done"]


@pytest.mark.parametrize(
    ("args", "exit_code", "error"),
    [
        (
            ("done", "t1", "t9999", "t7"),
            1,
            "No task t9999 (see 'funnelctl due'); nothing was changed.",
        ),
        (
            ("done", "t1", "t1"),
            2,
            "t1 is given twice; nothing was changed.",
        ),
        (
            ("done", "t1", "x5"),
            2,
            "'x5' is not a reference: write t12 for a task or e7 for an email (see 'funnelctl due').",
        ),
        (("done", "t1", "e1"), 2, "'e1' is email e1; this command takes a task (t12)."),
        (
            ("snooze", "t1", "e1", "--days", "2"),
            2,
            "'e1' is email e1; this command takes a task (t12).",
        ),
        (
            ("snooze", "t1", "t9999", "--days", "2"),
            1,
            "No task t9999 (see 'funnelctl due'); nothing was changed.",
        ),
        (
            ("drop", "t1", "e9999", "--reason", "x"),
            1,
            "No email e9999 (see 'funnelctl outbox list'); nothing was changed.",
        ),
        (
            ("drop", "t1", "e2", "--reason", "x"),
            1,
            "e2 Email 'welcome' (joana.ferreira@example.com) is already skipped; nothing was changed.",
        ),
    ],
)
def test_one_bad_reference_changes_nothing(run, demo, dump, args, exit_code, error):
    before = dump(demo)
    result = run(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (exit_code, "", f"Error: {error}\n")
    assert dump(demo) == before


def test_a_task_already_closed_is_named_and_nothing_changes(run, demo, dump):
    ok(run("done", "t13"))
    before = dump(demo)
    for verb, extra in (("done", ()), ("snooze", ("--days", "2")), ("drop", ("--reason", "x"))):
        result = run(verb, "t1", "t13", *extra)
        assert (result.exit_code, result.stderr) == (
            1,
            "Error: t13 Hold the kick-off meeting (aiko.tanaka@example.com) is already done "
            "(on 2026-03-02); nothing was changed.\n",
        )
    assert dump(demo) == before


# -- snooze and drop -------------------------------------------------------------------------


def test_snooze_says_when_each_task_is_due_now(run, demo):
    result = ok(run("snooze", "t14", "t1", "--days", "3"))
    assert result.stdout == (
        "Snoozed: t14 Check the first week of use (aiko.tanaka@example.com), now due in 3d\n"
        "Snoozed: t1 Analyze customer demand (lena.fischer@example.com), now due in 3d\n"
    )
    far = ok(run("snooze", "t7", "--until", "2026-12-03"))
    assert (
        far.stdout
        == "Snoozed: t7 Call the customer (joana.ferreira@example.com), now due on 2026-12-03\n"
    )
    assert [task(demo, i)[1] for i in (14, 1, 7)] == ["2026-03-05", "2026-03-05", "2026-12-03"]
    # the forms task add --due takes: Monday the 2nd, so fri is the 6th
    ok(run("snooze", "t9", "--until", "fri"))
    ok(run("snooze", "t12", "--until", "2w"))
    assert [task(demo, i)[1] for i in (9, 12)] == ["2026-03-06", "2026-03-16"]
    # an overdue task to be done today: off the overdue list, onto today's
    ok(run("snooze", "t2", "--until", "today"))
    assert task(demo, 2)[1] == "2026-03-02"
    due = json.loads(ok(run("due", "-f", "json")).stdout)
    assert [i["section"] for i in due if i.get("id") == 2] == ["today"]
    refused = run("snooze", "t5", "--until", "2026-03-01")
    assert refused.exit_code == 2
    assert "Snooze to today (2026-03-02) or a later day, not 2026-03-01." in refused.stderr
    snoozed = json.loads(ok(run("snooze", "t3", "--days", "1", "-f", "json")).stdout)
    assert [(r["ref"], r["customer"], r["next"], r["due_on"]) for r in snoozed] == [
        ("t3", "priya.nair@example.org", None, "2026-03-03")
    ]


def test_drop_1_drops_lenas_task_and_says_whose_it_was(run, demo):
    result = ok(run("drop", "1", "--reason", "asked to wait"))
    assert result.stdout == "Dropped: t1 Analyze customer demand (lena.fischer@example.com)\n"
    assert task(demo, 1) == ("dropped", "2026-03-02", "2026-03-02", "asked to wait")
    # Tom's email is untouched: skipped when he replied
    assert email(demo, 1) == ("skipped", "2026-02-28", "the customer replied")


def test_drop_e49_skips_gustavos_email_and_never_task_49(run, demo):
    result = ok(run("drop", "e49", "--reason", "he called first"))
    assert result.stdout == (
        "Dropped: e49 Email 'renewal' (gustavo.pereira@example.net), it will not be sent\n"
    )
    assert email(demo, 49) == ("skipped", "2026-03-07", "dropped by hand: he called first")
    assert task(demo, 49) == ("done", "2025-11-27", "2025-11-27", None)
    assert timeline(demo, "gustavo.pereira@example.net")[-1] == (
        "Dropped: e49 Email 'renewal' (he called first)"
    )
    as_json = json.loads(ok(run("drop", "t7", "--reason", "x", "-f", "json")).stdout)
    assert [(r["ref"], r["customer"], r["status"], r["next"]) for r in as_json] == [
        ("t7", "joana.ferreira@example.com", "dropped", None)
    ]


@pytest.fixture
def seven(run, workspace):
    """A book where task 7 and email 7 both exist and belong to different customers: one
    customer with a task and no email, then seven who each got a welcome email and a call."""
    ok(run("customer", "add", "first@example.com", "--name", "First One"))
    ok(run("enroll", "first@example.com", "after-sales"))
    for n in range(1, 8):
        ok(run("customer", "add", f"c{n}@example.com", "--name", f"Customer {n}"))
        ok(run("enroll", f"c{n}@example.com", "after-sales", "--stage", "customer-contact"))
    assert rows(
        workspace,
        "SELECT c.email FROM activities a JOIN customers c ON c.id = a.customer_id WHERE a.id = 7",
    ) == [("c6@example.com",)]
    assert rows(
        workspace,
        "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id WHERE o.id = 7",
    ) == [("c7@example.com",)]
    return workspace


def test_drop_e7_can_never_touch_task_7(run, seven):
    result = ok(run("drop", "e7", "--reason", "not wanted"))
    assert result.stdout == "Dropped: e7 Email 'welcome' (c7@example.com), it will not be sent\n"
    assert task(seven, 7) == ("open", "2026-03-04", None, None)
    assert email(seven, 7)[0] == "skipped"
    assert rows(seven, "SELECT count(*) FROM activities WHERE status != 'open'") == [(0,)]
    # and the other way round: t7 and a bare 7 are the task, never the email
    assert ok(run("drop", "7", "--reason", "x")).stdout == (
        "Dropped: t7 Call the customer (c6@example.com)\n"
    )
    assert email(seven, 7) == ("skipped", "2026-03-02", "dropped by hand: not wanted")
    assert rows(seven, "SELECT count(*) FROM outbox WHERE status != 'queued'") == [(1,)]


def test_done_and_snooze_refuse_e7_by_name(run, seven, dump):
    before = dump(seven)
    for args in (("done", "e7"), ("snooze", "e7", "--days", "1")):
        result = run(*args)
        assert (result.exit_code, result.stderr) == (
            2,
            "Error: 'e7' is email e7; this command takes a task (t12).\n",
        )
    assert dump(seven) == before


def test_a_failed_email_is_settled_by_outbox_resolve_not_dropped(run, seven, dump):
    conn = sqlite3.connect(seven / "funnel.db")
    conn.execute("UPDATE outbox SET status = 'failed', reason = '550 no such user' WHERE id = 3")
    conn.commit()
    conn.close()
    before = dump(seven)
    result = run("drop", "e3", "--reason", "x")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: e3 Email 'welcome' (c3@example.com) is failed: settle it with "
        "'funnelctl outbox resolve e3 --skip'; nothing was changed.\n",
    )
    assert dump(seven) == before


# -- undo ----------------------------------------------------------------------------------------


def test_undo_done_reopens_the_task_and_removes_its_follow_up(run, demo):
    listed = ok(run("due", "-f", "json", "--days", "7")).stdout
    ok(run("done", "t13", "--note", "held"))
    result = ok(run("undo"))
    assert result.stdout == (
        "Undone: done t13 Hold the kick-off meeting (aiko.tanaka@example.com): open again, "
        "follow-up t156 removed\n"
    )
    assert task(demo, 13) == ("open", "2026-02-23", None, None)
    assert task(demo, 156) is None
    # the enrollment's count of next steps follows the removed follow-up
    assert rows(
        demo,
        "SELECT e.next_steps, (SELECT count(*) FROM activities a WHERE a.enrollment_id = e.id "
        "AND a.status = 'open') + (SELECT count(*) FROM outbox o WHERE o.enrollment_id = e.id "
        "AND o.status = 'queued') FROM enrollments e WHERE e.id = "
        "(SELECT enrollment_id FROM activities WHERE id = 13)",
    ) == [(2, 2)]
    assert ok(run("due", "-f", "json", "--days", "7")).stdout == listed
    assert timeline(demo, "aiko.tanaka@example.com")[-1] == (
        "Undone: done t13 Hold the kick-off meeting; follow-up t156 removed; its touchpoint removed"
    )
    # done again: the follow-up comes back
    assert "next: t156 Send the kick-off notes" in ok(run("done", "t13")).stdout


def test_a_second_undo_does_not_redo(run, demo, dump):
    ok(run("snooze", "t14", "--days", "3"))
    ok(run("undo"))
    before = dump(demo)
    again = run("undo")
    assert (again.exit_code, again.stdout, again.stderr) == (
        1,
        "",
        "Error: Nothing to undo: the last done, snooze or drop (snooze t14) is undone already, "
        "and undo goes back one command only.\n",
    )
    assert dump(demo) == before
    assert task(demo, 14)[1] == "2026-02-27"


def test_undo_with_nothing_done_says_so(run, demo, dump):
    before = dump(demo)
    result = run("undo")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: Nothing to undo: no done, snooze or drop has been made in this book.\n",
    )
    assert dump(demo) == before


def test_undo_reverts_the_whole_last_command_and_only_it(run, demo):
    ok(run("snooze", "t3", "--days", "5"))
    ok(run("snooze", "t14", "t1", "--days", "3"))
    result = ok(run("undo", "-f", "json"))
    undone = json.loads(result.stdout)
    assert [(r["ref"], r["customer"], r["undone"], r["due_on"], r["removed"]) for r in undone] == [
        ("t14", "aiko.tanaka@example.com", "snooze", "2026-02-27", None),
        ("t1", "lena.fischer@example.com", "snooze", "2026-03-02", None),
    ]
    assert [task(demo, i)[1] for i in (14, 1, 3)] == ["2026-02-27", "2026-03-02", "2026-03-07"]


def test_undo_snooze_and_drop_say_what_they_put_back(run, demo):
    ok(run("snooze", "t14", "--days", "3"))
    assert ok(run("undo")).stdout == (
        "Undone: snooze t14 Check the first week of use (aiko.tanaka@example.com): "
        "due 3d late again\n"
    )
    ok(run("drop", "t1", "e49", "--reason", "duplicate"))
    assert ok(run("undo")).stdout == (
        "Undone: drop t1 Analyze customer demand (lena.fischer@example.com): open again\n"
        "Undone: drop e49 Email 'renewal' (gustavo.pereira@example.net): queued again\n"
    )
    assert task(demo, 1) == ("open", "2026-03-02", None, None)
    assert email(demo, 49) == ("queued", "2026-03-07", None)
    assert timeline(demo, "gustavo.pereira@example.net")[-1] == ("Undone: drop e49 Email 'renewal'")


def test_undo_refuses_when_the_follow_up_was_worked_on(run, demo, dump):
    ok(run("done", "t13"))
    ok(run("churn", "aiko.tanaka@example.com", "--funnel", "support"))  # drops t156
    before = dump(demo)
    result = run("undo")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: Cannot undo done t13: its follow-up t156 Send the kick-off notes and agreed "
        "goals is dropped now (on 2026-03-02); nothing was changed.\n",
    )
    assert dump(demo) == before


def test_undo_never_requeues_an_email_that_changed_since_the_drop(run, demo, dump):
    ok(run("drop", "e49", "--reason", "duplicate"))
    ok(run("outbox", "requeue", "e49"))
    before = dump(demo)
    result = run("undo")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: Cannot undo drop e49: e49 Email 'renewal' is queued now, not as the drop "
        "left it; nothing was changed.\n",
    )
    assert dump(demo) == before


HANDED_ON = """\
id: care
title: Care
stages:
  - id: intake
    title: Intake
    on_enter:
      - task: Read the contract
        due: 1d
        then:
          task: Answer the first question
          due: 1d
          owner: partner:desk
partners:
  - id: desk
    name: Harbour Help Desk
    email: desk@example.com
"""


@pytest.fixture
def handed_on(run, workspace):
    """A task whose follow-up goes to a partner, who is told by email."""
    (workspace / "playbooks" / "care.yaml").write_text(HANDED_ON)
    ok(run("customer", "add", "c@example.com", "--name", "Cee"))
    ok(run("enroll", "c@example.com", "care"))
    assert ok(run("done", "t1")).stdout == (
        "Done: t1 Read the contract (c@example.com)\n"
        "  next: t2 Answer the first question, due tomorrow\n"
    )
    assert email(workspace, 1)[0] == "queued"  # the partner's email about t2
    return workspace


def test_undo_takes_back_a_partner_follow_up_and_its_unsent_email(run, handed_on):
    assert ok(run("undo")).stdout == (
        "Undone: done t1 Read the contract (c@example.com): open again, follow-up t2 removed\n"
    )
    assert (task(handed_on, 1)[0], task(handed_on, 2)) == ("open", None)
    assert email(handed_on, 1) == ("superseded", "2026-03-02", "its task was taken back by undo")


def test_undo_refuses_once_the_partner_was_told(run, handed_on, dump):
    conn = sqlite3.connect(handed_on / "funnel.db")
    conn.execute("UPDATE outbox SET status = 'sent', sent_at = '2026-03-02T10:00:00' WHERE id = 1")
    conn.commit()
    conn.close()
    before = dump(handed_on)
    result = run("undo")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: Cannot undo done t1: its follow-up t2 Answer the first question went to the "
        "partner already (email e1 is sent); nothing was changed.\n",
    )
    assert dump(handed_on) == before


# -- outbox resolve ------------------------------------------------------------------------------


def test_outbox_resolve_takes_e7_and_refuses_t7(run, seven, dump):
    conn = sqlite3.connect(seven / "funnel.db")
    conn.execute("UPDATE outbox SET status = 'failed', reason = '550 no such user' WHERE id = 7")
    conn.commit()
    conn.close()
    before = dump(seven)
    wrong = run("outbox", "resolve", "t7", "--skip")
    assert (wrong.exit_code, wrong.stderr) == (
        2,
        "Error: 't7' is task t7; this command takes an email (e7).\n",
    )
    assert dump(seven) == before
    ok(run("outbox", "resolve", "e7", "--skip"))
    assert email(seven, 7)[0] == "skipped"
    assert task(seven, 7)[0] == "open"


def test_a_call_done_is_a_touchpoint_and_undo_takes_it_back(run, workspace):
    """A consultant who calls every week is not flagged quiet: a task done on a contact
    channel logs an outbound touchpoint; undo removes it with the done."""
    assert run("customer", "add", "q@example.com", "--owner", "ana").exit_code == 0
    enrolled = run("enroll", "q@example.com", "after-sales", "--stage", "customer-contact")
    assert enrolled.exit_code == 0
    calls = [
        i
        for i in json.loads(run("due", "--days", "3", "-f", "json").stdout)
        if i["title"] == "Call the customer"
    ]
    assert run("done", calls[0]["ref"], "--today", "2026-03-03").exit_code == 0
    touches = json.loads(run("export", "touchpoints", "-f", "json").stdout)
    assert [(t["channel"], t["direction"], t["happened_on"], t["summary"]) for t in touches] == [
        ("phone", "outbound", "2026-03-03", f"Done: {calls[0]['ref']} Call the customer")
    ]
    assert run("undo", "--today", "2026-03-03").exit_code == 0
    assert json.loads(run("export", "touchpoints", "-f", "json").stdout) == []
    shown = json.loads(run("customer", "show", "q@example.com", "-f", "json").stdout)
    assert any(t["what"].endswith("; its touchpoint removed") for t in shown["timeline"])


def test_a_mistyped_stage_gets_the_stage_it_looks_like(run, demo, dump):
    """'has no active enrollment with a stage' read as if the customer were not enrolled."""
    before = dump(demo)
    result = run("move", "aiko.tanaka@example.com", "deploymnet")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: aiko.tanaka@example.com's funnels (after-sales, support) have no stage "
        "'deploymnet'; did you mean 'deployment'? (stages: demand-analysis, customer-contact, "
        "deployment, follow-up-30, follow-up-60, follow-up-90, approved, onboarding, "
        "post-sales, retention, advocacy).\n"
    )
    assert dump(demo) == before
