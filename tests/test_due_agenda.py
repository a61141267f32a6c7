"""`due` as the consultant reads it: an agenda pinned at 80 and 140 columns, in a
pipe and as JSON, on a fixed book (two after-sales customers, a support customer
handed to the help desk, one at risk)."""

from __future__ import annotations

import json
import re

import pytest

BOOK = (
    (
        "customer",
        "add",
        "lena@example.com",
        "--name",
        "Lena Fischer",
        "--company",
        "Fischer GmbH",
        "--owner",
        "ana",
        "--today",
        "2026-02-27",
    ),
    ("enroll", "lena@example.com", "after-sales", "--today", "2026-02-27"),
    (
        "customer",
        "add",
        "tom@example.com",
        "--name",
        "Tom Becker",
        "--owner",
        "bruno",
        "--today",
        "2026-03-02",
    ),
    (
        "enroll",
        "tom@example.com",
        "after-sales",
        "--stage",
        "customer-contact",
        "--today",
        "2026-03-02",
    ),
    (
        "customer",
        "add",
        "maria.dos.santos.oliveira@example.com.br",
        "--name",
        "Maria dos Santos Oliveira",
        "--owner",
        "ana",
        "--today",
        "2026-03-01",
    ),
    (
        "enroll",
        "maria.dos.santos.oliveira@example.com.br",
        "support",
        "--stage",
        "post-sales",
        "--today",
        "2026-03-01",
    ),
    (
        "customer",
        "add",
        "zed@example.com",
        "--name",
        "Zed Ali",
        "--owner",
        "bruno",
        "--today",
        "2026-01-01",
    ),
    ("enroll", "zed@example.com", "support", "--stage", "retention", "--today", "2026-01-01"),
    ("signal", "zed@example.com", "nps", "1", "--today", "2026-03-02"),
    ("signal", "zed@example.com", "csat", "1", "--today", "2026-03-02"),
    ("run", "--today", "2026-03-02"),
)

AT_80 = (
    "Overdue (2)\n"
    "  t1  lena@example.com                          Analyze customer dem…    3d late\n"
    "  e2  maria.dos.santos.oliveira@example.com.br  Email 'partner-task'…  yesterday\n"
    "Today (3)\n"
    "  t4  maria.dos.santos.oliveira@example.com.br  Send the guides for …      today\n"
    "  e1  tom@example.com                           Email 'welcome' to s…      today\n"
    "  e4  zed@example.com                           Email 'at-risk-check…      today\n"
    "Needs attention (3)\n"
    "  -   zed@example.com                           At risk (22.2): Late…        new\n"
    "  -   zed@example.com                           No touchpoint since …   18d late\n"
    "  -   lena@example.com                          In demand-analysis f…    2d late\n"
    "Coming up (2)\n"
    "  t2  tom@example.com                           Call the customer          in 2d\n"
    "  t7  zed@example.com                           Call about what is n…      in 2d\n"
    "Waiting on partners (1)\n"
    "  t3  maria.dos.santos.oliveira@example.com.br  Harbour Help Desk: I…      today\n"
    "\n"
    "2 overdue · 3 today · 3 need attention · 2 coming up · 1 waiting on partners\n"
    'Next: done t1 · snooze t1 --days 2 · task add CUSTOMER "what" --due 3d\n'
)

AT_140 = (
    "Overdue (2)\n"
    "  t1  lena@example.com                          Analyze customer demand                after-sales/demand-analysis   ana             3d late\n"
    "  e2  maria.dos.santos.oliveira@example.com.br  Email 'partner-task' to send           support/post-sales            ana           yesterday\n"
    "Today (3)\n"
    "  t4  maria.dos.santos.oliveira@example.com.br  Send the guides for everyday use       support/post-sales            ana               today\n"
    "  e1  tom@example.com                           Email 'welcome' to send                after-sales/customer-contact  bruno             today\n"
    "  e4  zed@example.com                           Email 'at-risk-check-in' to send       support/retention             bruno             today\n"
    "Needs attention (3)\n"
    "  -   zed@example.com                           At risk (22.2): Latest NPS answer: 1…                                bruno               new\n"
    "  -   zed@example.com                           No touchpoint since entering for 60 …  support/retention             bruno          18d late\n"
    "  -   lena@example.com                          In demand-analysis for 3 days (limit…  after-sales/demand-analysis   ana             2d late\n"
    "Coming up (2)\n"
    "  t2  tom@example.com                           Call the customer                      after-sales/customer-contact  bruno             in 2d\n"
    "  t7  zed@example.com                           Call about what is not working         support/retention             bruno             in 2d\n"
    "Waiting on partners (1)\n"
    "  t3  maria.dos.santos.oliveira@example.com.br  Harbour Help Desk: Introduce first-l…  support/post-sales            partner:hel…      today\n"
    "\n"
    "2 overdue · 3 today · 3 need attention · 2 coming up · 1 waiting on partners\n"
    'Next: done t1 · snooze t1 --days 2 · task add CUSTOMER "what" --due 3d\n'
)

IN_A_PIPE = (
    "overdue\tt1\tlena@example.com\tAnalyze customer demand\t3d late\t2026-02-27\tafter-sales\tdemand-analysis\tana\n"
    "overdue\te2\tmaria.dos.santos.oliveira@example.com.br\tEmail 'partner-task' to send\tyesterday\t2026-03-01\tsupport\tpost-sales\tana\n"
    "today\tt4\tmaria.dos.santos.oliveira@example.com.br\tSend the guides for everyday use\ttoday\t2026-03-02\tsupport\tpost-sales\tana\n"
    "today\te1\ttom@example.com\tEmail 'welcome' to send\ttoday\t2026-03-02\tafter-sales\tcustomer-contact\tbruno\n"
    "today\te4\tzed@example.com\tEmail 'at-risk-check-in' to send\ttoday\t2026-03-02\tsupport\tretention\tbruno\n"
    "attention\t\tzed@example.com\tAt risk (22.2): Latest NPS answer: 1 is poor (healthy ≥ 9); Latest CSAT: 1 is poor (healthy ≥ 4.5); Days since the last touchpoint: 60 is poor (healthy ≤ 21)\tnew\t2026-03-02\t\t\tbruno\n"
    "attention\t\tzed@example.com\tNo touchpoint since entering for 60 days (limit 42)\t18d late\t2026-02-12\tsupport\tretention\tbruno\n"
    "attention\t\tlena@example.com\tIn demand-analysis for 3 days (limit 1)\t2d late\t2026-02-28\tafter-sales\tdemand-analysis\tana\n"
    "coming\tt2\ttom@example.com\tCall the customer\tin 2d\t2026-03-04\tafter-sales\tcustomer-contact\tbruno\n"
    "coming\tt7\tzed@example.com\tCall about what is not working\tin 2d\t2026-03-04\tsupport\tretention\tbruno\n"
    "waiting\tt3\tmaria.dos.santos.oliveira@example.com.br\tHarbour Help Desk: Introduce first-line support to the customer\ttoday\t2026-03-02\tsupport\tpost-sales\tpartner:helpdesk-partner\n"
)


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


@pytest.fixture
def book(run, workspace):
    for command in BOOK:
        ok(run(*command))
    return workspace


@pytest.mark.parametrize(("columns", "expected"), [("80", AT_80), ("140", AT_140)])
def test_due_is_an_agenda_that_fits_the_terminal(run, book, columns, expected):
    shown = ok(run("due", "--days", "3", env={"COLUMNS": columns})).stdout
    assert shown == expected
    assert all(len(line) <= int(columns) for line in shown.splitlines())


@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (80, 40), (72, 23), (50, 30)])
def test_on_a_terminal_every_section_and_the_warning_fit_the_screen(
    run, demo, columns, lines, monkeypatch
):
    from funnelctl import output

    monkeypatch.setattr(output, "_terminal", lambda: True)
    ok(run("run"))
    # a week on, the run not yet done: the warning, then five sections share the screen
    env = {"COLUMNS": str(columns), "LINES": str(lines)}
    shown = ok(run("due", "--days", "7", "--today", "2026-03-09", env=env)).stdout.splitlines()

    assert shown[0].startswith("The daily run last ran 7 days ago")
    titles = [line.split(" (")[0] for line in shown if re.fullmatch(r"[A-Z][a-z ]+ \(\d+\)", line)]
    assert titles == ["Overdue", "Today", "Needs attention", "Coming up", "Waiting on partners"]
    # the rows the terminal shows them in (a line wider than it wraps), and the prompt's
    assert sum(output.rows_taken(line, columns) for line in shown) <= lines - 1
    assert shown[-1].startswith("Next: done t")
    items = [line for line in shown if line.startswith("  ") and not line.startswith("  …")]
    assert len(items) >= (15 if lines == 40 else 5)  # the room is used


def test_with_no_task_on_the_list_the_next_line_names_no_task(run, workspace):
    ok(run("customer", "add", "ann@example.com", "--owner", "ana"))
    ok(run("enroll", "ann@example.com", "after-sales"))
    ok(run("done", "t1"))  # the stage's only task: now nothing is planned
    shown = ok(run("due", "--today", "2026-03-04", env={"COLUMNS": "80"})).stdout

    assert "Needs attention (1)\n  -  ann@example.com" in shown
    # it used to say "Next: done t1", a task already done
    assert shown.splitlines()[-1] == (
        'Next: customer show CUSTOMER · log CUSTOMER "what" --channel phone'
    )


def test_in_a_pipe_due_writes_plain_uncut_rows(run, book):
    assert ok(run("due", "--days", "3", env={"COLUMNS": ""})).stdout == IN_A_PIPE


def test_due_json_has_the_documented_keys_and_the_agenda_ones(run, book):
    items = json.loads(ok(run("due", "--days", "3", "-f", "json")).stdout)
    assert [(i["section"], i["kind"], i["ref"], i["customer"]) for i in items] == [
        ("overdue", "task", "t1", "lena@example.com"),
        ("overdue", "email", "e2", "maria.dos.santos.oliveira@example.com.br"),
        ("today", "task", "t4", "maria.dos.santos.oliveira@example.com.br"),
        ("today", "email", "e1", "tom@example.com"),
        ("today", "email", "e4", "zed@example.com"),
        ("attention", "at-risk", None, "zed@example.com"),
        ("attention", "stagnation", None, "zed@example.com"),
        ("attention", "stagnation", None, "lena@example.com"),
        ("coming", "task", "t2", "tom@example.com"),
        ("coming", "task", "t7", "zed@example.com"),
        ("waiting", "task", "t3", "maria.dos.santos.oliveira@example.com.br"),
    ]
    # a stuck customer's item names its owner: the customer's, when the enrollment has none
    assert [(i["customer"], i["owner"]) for i in items if i["kind"] == "stagnation"] == [
        ("zed@example.com", "bruno"),
        ("lena@example.com", "ana"),
    ]
    quiet = items[6]
    assert (quiet["alerts"], quiet["reasons"]) == (
        ["quiet"],
        ["no touchpoint since entering for 60 days (limit 42)"],
    )


def test_due_says_first_when_the_daily_run_is_behind(run, book):
    shown = ok(run("due", "--today", "2026-03-07", env={"COLUMNS": "80"})).stdout
    assert shown.startswith(
        "The daily run last ran 5 days ago (2026-03-02): run 'funnelctl run' first; this "
        "list is incomplete.\n\nOverdue"
    )
    as_json = run("due", "--today", "2026-03-07", "-f", "json")
    assert "The daily run last ran 5 days ago" in as_json.stderr
    json.loads(as_json.stdout)  # the data stays clean


def test_limit_shows_n_per_section_and_says_how_many_more(run, book):
    shown = ok(run("due", "--limit", "1", env={"COLUMNS": "80"})).stdout
    assert "Today (3)\n  t4  " in shown
    assert "  … and 2 more (due --all)\n" in shown
    items = json.loads(ok(run("due", "--limit", "1", "-f", "json")).stdout)
    assert [i["section"] for i in items] == ["overdue", "today", "attention", "waiting"]


def test_a_stage_is_stagnant_on_the_day_its_limit_is_reached(run, workspace):
    ok(run("customer", "add", "new@example.com", "--owner", "ana", "--today", "2026-03-02"))
    ok(run("enroll", "new@example.com", "after-sales", "--today", "2026-03-02"))
    # demand-analysis: stagnant_after 1d. Entered on the 2nd: stagnant on the 3rd, today.
    items = json.loads(ok(run("due", "--today", "2026-03-03", "-f", "json")).stdout)
    stuck = [i for i in items if i["kind"] == "stagnation"]
    assert [(i["alerts"], i["due_on"], i["days_overdue"]) for i in stuck] == [
        (["stagnant"], "2026-03-03", 0)
    ]
    items = json.loads(ok(run("due", "--today", "2026-03-02", "-f", "json")).stdout)
    assert [i for i in items if i["kind"] == "stagnation"] == []


def test_emails_that_need_a_decision_need_attention(run, book):
    import sqlite3

    from conftest import db_dump  # noqa: F401  (the book is real; the statuses are set by send)

    conn = sqlite3.connect(book / "funnel.db")
    with conn:
        conn.execute("UPDATE outbox SET status = 'failed', reason = 'mailbox full' WHERE id = 1")
        conn.execute("UPDATE outbox SET status = 'uncertain' WHERE id = 4")
        conn.execute("UPDATE outbox SET scheduled_on = '2026-02-20' WHERE id = 2")
    conn.close()
    items = json.loads(ok(run("due", "-f", "json")).stdout)
    attention = [
        (i["ref"], i["title"], i["reasons"])
        for i in items
        if i["section"] == "attention" and i["kind"] == "email"
    ]
    assert attention == [
        (
            "e2",
            "Email 'partner-task' will be skipped as stale",
            [
                "due 2026-02-20, more than max_late_days (3) ago: requeue it "
                "(outbox requeue e2) or let it go"
            ],
        ),
        (
            "e1",
            "Email 'welcome' failed",
            ["mailbox full", "fix it, then outbox resolve e1 --resend"],
        ),
        (
            "e4",
            "Email 'at-risk-check-in' may not have gone",
            ["check, then outbox resolve e4 --sent or --resend"],
        ),
    ]


def test_the_advice_for_a_stale_email_works_before_send_skips_it(run, book):
    """due says 'requeue it (outbox requeue e2)' while e2 is still queued: following the
    advice must keep the email from being skipped, not fail and let it be lost."""
    import sqlite3

    conn = sqlite3.connect(book / "funnel.db")
    with conn:
        conn.execute("UPDATE outbox SET scheduled_on = '2026-02-20' WHERE id = 2")
        conn.execute("UPDATE outbox SET scheduled_on = '2026-03-05' WHERE id = 1")
    conn.close()

    requeued = json.loads(ok(run("outbox", "requeue", "e2", "-f", "json")).stdout)

    assert [(r["status"], r["scheduled_on"]) for r in requeued] == [("queued", "2026-03-02")]
    items = json.loads(ok(run("due", "-f", "json")).stdout)
    assert [i["section"] for i in items if i["ref"] == "e2"] == ["today"]
    # one not late yet is not moved: it goes on its day
    early = run("outbox", "requeue", "e1")
    assert early.exit_code == 1
    assert "Error: Email e1 is queued for 2026-03-05 already" in early.stderr


def test_what_keeps_emails_from_going_comes_first_in_needs_attention(run, book):
    """A screenful shows the first items of each section: an email that failed or will be
    skipped must not sit below every customer at risk and every stuck stage visit."""
    import sqlite3

    conn = sqlite3.connect(book / "funnel.db")
    with conn:
        conn.execute("UPDATE outbox SET status = 'failed', reason = 'mailbox full' WHERE id = 1")
        conn.execute("UPDATE outbox SET scheduled_on = '2026-02-20' WHERE id = 2")
    conn.close()
    items = json.loads(ok(run("due", "-f", "json")).stdout)
    kinds = [i["kind"] for i in items if i["section"] == "attention"]
    assert kinds[:2] == ["email", "email"]
    assert {"at-risk", "stagnation"} & set(kinds[2:]), kinds  # the customers come after


def test_long_lists_take_limit_and_the_outbox_shows_references(run, book):
    rows = json.loads(ok(run("outbox", "list", "--limit", "2", "-f", "json")).stdout)
    assert [(r["id"], r["ref"]) for r in rows] == [(2, "e2"), (1, "e1")]  # oldest first
    assert len(json.loads(ok(run("at-risk", "--all", "--limit", "1", "-f", "json")).stdout)) == 1
    assert len(json.loads(ok(run("customer", "list", "--limit", "3", "-f", "json")).stdout)) == 3


def test_one_day_is_one_day(run, workspace):
    ok(run("customer", "add", "new@example.com", "--owner", "ana", "--today", "2026-03-02"))
    ok(run("enroll", "new@example.com", "after-sales", "--today", "2026-03-02"))
    items = json.loads(ok(run("due", "--today", "2026-03-03", "-f", "json")).stdout)
    stuck = next(i for i in items if i["kind"] == "stagnation")
    assert stuck["reasons"] == ["in demand-analysis for 1 day (limit 1)"]


def test_an_address_far_wider_than_the_others_takes_a_line_of_its_own(run, book):
    """One procurement alias from a client's file no longer narrows every row's title to
    nothing: it is written whole on its own line, its row's title below it."""
    long = "procurement.department.accounts.payable@subsidiary.example-holding.com"
    ok(run("customer", "add", long, "--name", "Procurement", "--today", "2026-03-02"))
    ok(
        run(
            "task",
            "add",
            long,
            "Send the signed contract",
            "--due",
            "today",
            "--today",
            "2026-03-02",
        )
    )

    shown = ok(run("due", "--days", "3", env={"COLUMNS": "80"})).stdout

    assert shown.startswith(AT_80.split("Today (3)\n")[0])  # the other rows as they were
    assert (
        "Today (4)\n"
        "  t4  maria.dos.santos.oliveira@example.com.br  Send the guides for …      today\n"
        f"  t9  {long}\n"
        "                                                Send the signed cont…      today\n"
        "  e1  tom@example.com                           Email 'welcome' to s…      today\n"
        "  e4  zed@example.com                           Email 'at-risk-check…      today\n"
        "Needs attention (3)\n"
    ) in shown
    assert all(len(line) <= 80 for line in shown.splitlines())


def test_wide_characters_are_measured_in_the_cells_they_take(run, book):
    """A title in Japanese takes two cells a character: the agenda measured it in
    characters, so its line overflowed 80 columns and wrapped."""
    title = "田中様に契約更新の見積もりを送付して、来週の打ち合わせを設定する"
    ok(run("task", "add", "tom@example.com", title, "--due", "today", "--today", "2026-03-02"))

    shown = ok(run("due", "--days", "3", env={"COLUMNS": "80"})).stdout

    assert (
        "  t9  tom@example.com                           田中様に契約更新の見…      today\n"
    ) in shown
    from rich.cells import cell_len

    assert all(cell_len(line) <= 80 for line in shown.splitlines())


def test_many_long_addresses_keep_one_line_each_and_the_titles_give_way(run, book):
    """Long addresses are the rule on this list, not one outlier: putting each on a line
    of its own would halve the screen, so the titles are cut instead, as before."""
    for n in range(4):
        email = f"customer.success.team{n}@northwind-traders.example"
        ok(run("customer", "add", email, "--today", "2026-03-02"))
        ok(run("task", "add", email, "Send the renewal", "--due", "today", "--today", "2026-03-02"))

    shown = ok(run("due", "--days", "3", env={"COLUMNS": "80"})).stdout.splitlines()

    assert all(len(line) <= 80 for line in shown)
    assert not [line for line in shown if re.fullmatch(r"  t\d+ +\S+@\S+", line)]
    assert any(
        re.match(r"  t4 +maria\.dos\.santos\.oliveira@example\.com\.br +Send", line)
        for line in shown
    )


def test_a_screenful_is_counted_with_the_layout_it_is_drawn_in(monkeypatch, capsys):
    """Items below the screen (dated far ahead, so their 'when' is wider) must not lay
    out the count differently from the lines drawn: the screen would overflow."""
    import os
    import shutil

    from funnelctl import output
    from funnelctl.cli import due

    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((80, 24)))
    items = [
        {
            "section": "coming",
            "ref": f"t{10 + i}",
            "customer": f"c{i}@" + "x" * (31 if i % 2 else 36) + ".com",
            "name": None,
            "title": "Call the customer about renewal",
            "reasons": [],
            "kind": "task",
            "due_on": "2026-03-03" if i < 18 else f"2026-{9 + i % 3:02d}-{1 + i:02d}",
            "funnel": "f",
            "stage": "s",
            "owner": "ana",
            "days_overdue": 0,
        }
        for i in range(30)
    ]
    per_section = due._screenful(items, "2026-03-02", 80, None)
    due._write_agenda(items, "2026-03-02", 80, per_section, None)

    assert output.rows_taken(capsys.readouterr().out, 80) <= 24 - 1


def test_nothing_planned_counts_from_the_last_task_closed_not_the_stage_entry(run, workspace):
    """A consultant who finished the customer's last task today saw 'Nothing planned in
    retention 160d late': the lapse began today, not when the stage was entered."""
    start, later = ("--today", "2026-01-05"), ("--today", "2026-03-02")
    ok(run("customer", "add", "liam@example.com", *start))
    ok(run("enroll", "liam@example.com", "support", "--stage", "retention", *start))
    # the stage's review task and email are not for now; a call is, and it is done today
    ok(run("drop", "t1", "e1", "--reason", "not yet", *start))
    ok(
        run(
            "task",
            "add",
            "liam@example.com",
            "Call",
            "--due",
            "2026-03-01",
            "--channel",
            "phone",
            *start,
        )
    )
    ok(run("done", "t2", *later))

    items = json.loads(ok(run("due", "-f", "json", *later)).stdout)

    stuck = [i for i in items if i["kind"] == "stagnation"]
    assert [(i["due_on"], i["days_overdue"], i["reasons"]) for i in stuck] == [
        ("2026-03-02", 0, ["nothing planned in retention"])
    ]
