"""The customer card (`customer show`), tags added and removed one by one, erasing a person
(`customer delete`) and merging duplicates (`customer merge`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import db_dump, write

from funnelctl.dates import relative


def test_relative_days_read_as_people_say_them():
    today = "2026-03-02"
    assert [
        relative(day, today)
        for day in ("2026-03-02", "2026-03-03", "2026-03-01", "2026-03-05", "2026-02-28")
    ] == ["today", "tomorrow", "yesterday", "in 3d", "2d late"]
    assert relative("2027-03-02", today) == "on 2027-03-02"  # far ahead: the date itself


# -- the card ---------------------------------------------------------------------------------------

JOANA = "joana.ferreira@ferreira-filhos-contabilidade.example.pt"


@pytest.fixture
def joana(run, workspace, monkeypatch):
    """Joana: after-sales (demand analysis done, now at customer contact with the call
    overdue and the welcome email still queued), a relationship enrollment lost, a
    touchpoint and an NPS answer of 7."""
    monkeypatch.setenv("FUNNELCTL_USER", "ana")  # who moved her: not the machine's login
    ok(
        run(
            "customer", "add", JOANA, "--name", "Joana Ferreira",
            "--company", "Ferreira & Filhos Contabilidade", "--set", "phone=+351 912 345 678",
            "--owner", "ana", "--plan", "growth", "--mrr", "490", "--seats", "8",
            "--tag", "monthly", "--set", "region=north", "--today", "2026-02-10",
        )
    )  # fmt: skip
    ok(run("enroll", JOANA, "after-sales", "--today", "2026-02-10"))
    ok(run("done", "1", "--today", "2026-02-11"))
    ok(run("enroll", JOANA, "relationship", "--today", "2026-02-12"))
    ok(run("lost", JOANA, "--funnel", "relationship", "--reason", "enrolled by mistake",
           "--today", "2026-02-13"))  # fmt: skip
    ok(run("move", JOANA, "customer-contact", "--today", "2026-02-24", "--note", "needs met"))
    ok(run("log", JOANA, "Called about the welcome pack", "--channel", "phone",
           "--direction", "outbound", "--on", "2026-02-25"))  # fmt: skip
    ok(run("signal", JOANA, "nps", "7", "--today", "2026-02-27"))
    return JOANA


CARD_HEAD_80 = """\
Joana Ferreira (#1)
  company      Ferreira & Filhos Contabilidade
  email        joana.ferreira@ferreira-filhos-contabilidade.example.pt
  phone        +351 912 345 678
  external id  –
  owner        ana
  account      growth plan, mrr 490, 8 seats
  tags         monthly
  fields       region=north

Funnels
  after-sales   Customer contact (customer-contact): active, 6d in stage
  relationship  Relationship kick-off (kickoff): lost on 2026-02-13 (enrolled by
                mistake)

Health: 64.3
  - Latest NPS answer: 7 is concerning (healthy ≥ 9)
  - Overdue tasks: 1 is concerning (healthy ≤ 0)
  - Days stuck beyond a stage's limit: 1 is concerning (healthy ≤ 0)

Open tasks
  t3  4d late  Call the customer

Queued emails
  e2  2026-02-24  6d late  welcome

Timeline
  2026-02-10  customer    Customer added
  2026-02-10  stage       Enrolled in after-sales at demand-analysis · ana
"""

CARD_TAIL_80 = """\
  2026-02-10  action      Task t1 'Analyze customer demand' for ana, due
                          2026-02-10
  2026-02-11  task        Done: t1 Analyze customer demand
  2026-02-11  task        t1 Analyze customer demand [done] · ana
  2026-02-12  stage       Enrolled in relationship at kickoff · ana
  2026-02-12  action      Email 'relationship-welcome' queued for 2026-02-12
  2026-02-12  action      Task t2 'Agree goals for the next quarter' for ana,
                          due 2026-02-19
  2026-02-12  email       e1 relationship-welcome [skipped] enrollment lost
  2026-02-13  stage       relationship: lost at kickoff (enrolled by mistake) ·
                          ana
  2026-02-13  task        t2 Agree goals for the next quarter [dropped] · ana
  2026-02-24  stage       after-sales: demand-analysis -> customer-contact
                          (needs met) · ana
  2026-02-24  action      Email 'welcome' queued for 2026-02-24
  2026-02-24  action      Task t3 'Call the customer' for ana, due 2026-02-26
  2026-02-24  email       e2 welcome [queued]
  2026-02-25  touchpoint  outbound phone: Called about the welcome pack · ana
  2026-02-26  task        t3 Call the customer [due 2026-02-26] · ana
"""


def test_the_card_at_80_columns(run, joana):
    shown = ok(run("customer", "show", joana, env={"COLUMNS": "80"}))
    assert shown.stderr == ""
    assert shown.stdout == (
        CARD_HEAD_80
        + CARD_TAIL_80
        + "  1 skipped action folded away (condition false); --all shows them\n"
    )


def test_all_unfolds_the_skipped_actions(run, joana):
    shown = ok(run("customer", "show", joana, "--all", env={"COLUMNS": "80"}))
    assert shown.stdout == (
        CARD_HEAD_80
        + "  2026-02-10  action      Skipped (assign owner: round-robin [when not\n"
        + "                          customer.owner]): condition is false\n"
        + CARD_TAIL_80
    )


def test_a_wider_terminal_wraps_less_and_a_narrow_one_never_cuts_an_email_or_a_ref(run, joana):
    wide = ok(run("customer", "show", joana, env={"COLUMNS": "120"})).stdout.splitlines()
    assert max(len(line) for line in wide) <= 120
    assert (
        "  relationship  Relationship kick-off (kickoff): lost on 2026-02-13 (enrolled by mistake)"
        in wide
    )
    assert (
        "  2026-02-24  stage       after-sales: demand-analysis -> customer-contact (needs met) · ana"
        in wide
    )
    narrow = ok(run("customer", "show", joana, env={"COLUMNS": "40"})).stdout.splitlines()
    assert f"  email        {joana}" in narrow  # longer than the line, and whole
    assert "  t3  4d late  Call the customer" in narrow
    assert "  e2  2026-02-24  6d late  welcome" in narrow


def test_in_a_pipe_the_card_is_plain_text(run, joana):
    shown = ok(run("customer", "show", joana, env={"NO_COLOR": None, "COLUMNS": None}))
    assert "\x1b" not in shown.stdout and "│" not in shown.stdout
    assert shown.stdout.startswith("Joana Ferreira (#1)\n  company      Ferreira & Filhos")
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80  # a pipe reads at 80


def test_the_card_as_json_keeps_every_key_and_adds_the_card(run, joana):
    shown = as_json(run("customer", "show", joana, "-f", "json"))
    assert list(shown) == [
        "id", "email", "external_id", "name", "company", "phone", "owner", "plan", "mrr",
        "seats", "signed_on", "language", "tags", "fields", "created_on", "updated_on",
        "do_not_email", "email_undeliverable",  # what the inbox learnt of their address
        "enrollments", "health", "open_tasks", "queued_emails", "timeline",
    ]  # fmt: skip
    assert (shown["do_not_email"], shown["email_undeliverable"]) == (False, None)
    assert shown["enrollments"] == [
        {
            "id": 1,
            "funnel": "after-sales",
            "funnel_title": "After-sales (first 90 days)",
            "stage": "customer-contact",
            "stage_title": "Customer contact",
            "status": "active",
            "entered_on": "2026-02-24",
            "days_in_stage": 6,
            "owner": "ana",
            "closed_on": None,
            "close_reason": None,
        },
        {
            "id": 2,
            "funnel": "relationship",
            "funnel_title": "Long-term relationship",
            "stage": "kickoff",
            "stage_title": "Relationship kick-off",
            "status": "lost",
            "entered_on": "2026-02-12",
            "days_in_stage": None,
            "owner": "ana",
            "closed_on": "2026-02-13",
            "close_reason": "enrolled by mistake",
        },
    ]
    assert shown["health"] == {
        "score": 64.3,
        "at_risk": False,
        "at_risk_below": 60,
        "reasons": [
            "Latest NPS answer: 7 is concerning (healthy ≥ 9)",
            "Overdue tasks: 1 is concerning (healthy ≤ 0)",
            "Days stuck beyond a stage's limit: 1 is concerning (healthy ≤ 0)",
        ],
        "opportunities": [],
    }
    assert shown["open_tasks"] == [
        {
            "ref": "t3",
            "id": 3,
            "title": "Call the customer",
            "due_on": "2026-02-26",
            "due": "4d late",
            "owner": "ana",
        }
    ]
    assert shown["queued_emails"] == [
        {
            "ref": "e2",
            "id": 2,
            "template": "welcome",
            "scheduled_on": "2026-02-24",
            "when": "6d late",
            "partner": None,
        }
    ]
    # every line, folded ones too: scripts filter for themselves
    assert [(t["on"], t["kind"]) for t in shown["timeline"][:4]] == [
        ("2026-02-10", "customer"),
        ("2026-02-10", "stage"),
        ("2026-02-10", "action"),
        ("2026-02-10", "action"),
    ]
    assert shown["timeline"][2]["what"].startswith("Skipped (assign owner")
    assert set(shown["timeline"][0]) == {"on", "kind", "what", "who"}
    assert len(shown["timeline"]) == 18


def test_the_timeline_keeps_the_order_things_happened_in_a_day(run, workspace, monkeypatch):
    """Two funnels entered the same day: each move is followed by its own actions, and
    the customer was added before anything happened to them."""
    monkeypatch.setenv("FUNNELCTL_USER", "ana")
    ok(run("customer", "add", "c@example.com", "--owner", "ana", "--today", "2026-02-20"))
    ok(run("enroll", "c@example.com", "relationship", "--today", "2026-02-20"))
    ok(run("enroll", "c@example.com", "after-sales", "--today", "2026-02-20"))
    shown = as_json(run("customer", "show", "c@example.com", "-f", "json"))
    assert [(t["kind"], t["what"]) for t in shown["timeline"] if t["on"] == "2026-02-20"] == [
        ("customer", "Customer added"),
        ("stage", "Enrolled in relationship at kickoff"),
        ("action", "Email 'relationship-welcome' queued for 2026-02-20"),
        ("action", "Task t1 'Agree goals for the next quarter' for ana, due 2026-02-27"),
        ("stage", "Enrolled in after-sales at demand-analysis"),
        (
            "action",
            "Skipped (assign owner: round-robin [when not customer.owner]): condition is false",
        ),
        ("action", "Task t2 'Analyze customer demand' for ana, due 2026-02-20"),
        ("task", "t2 Analyze customer demand [due 2026-02-20]"),
        ("email", "e1 relationship-welcome [queued]"),
    ]


def test_without_a_health_model_the_card_says_so(run, workspace):
    (workspace / "playbooks" / "health.yaml").unlink()
    ok(run("customer", "add", "c@example.com", "--name", "Cleo"))
    shown = ok(run("customer", "show", "c@example.com", env={"COLUMNS": "80"}))
    assert shown.stdout == (
        "Cleo (#1)\n"
        "  company      –\n"
        "  email        c@example.com\n"
        "  phone        –\n"
        "  external id  –\n"
        "  owner        –\n"
        "\n"
        "Funnels: none\n"
        "\n"
        "Health: no health model\n"
        "\n"
        "Open tasks: none\n"
        "\n"
        "Queued emails: none\n"
        "\n"
        "Timeline\n"
        "  2026-03-02  customer  Customer added\n"
    )
    assert as_json(run("customer", "show", "c@example.com", "-f", "json"))["health"] is None


def test_markup_and_line_breaks_in_a_touchpoint_are_printed_as_text(run, workspace):
    ok(run("customer", "add", "m@example.com", "--name", "[bold]Max[/bold]"))
    ok(run("log", "m@example.com", "said [red]no[/red]\nthen yes", "--channel", "phone",
           "--direction", "inbound"))  # fmt: skip
    shown = ok(run("customer", "show", "m@example.com", env={"COLUMNS": "80"})).stdout
    assert shown.startswith("[bold]Max[/bold] (#1)\n")
    assert "inbound phone: said [red]no[/red] then yes" in shown


# -- tags, one by one -------------------------------------------------------------------------------


def tags_of(run, who: str) -> list[str]:
    return as_json(run("customer", "show", who, "-f", "json"))["tags"]


def test_tags_are_added_and_removed_one_by_one(run, workspace):
    ok(run("customer", "add", "c@example.com", "--tag", "trial", "--tag", "monthly"))
    edited = as_json(
        run("customer", "edit", "c@example.com", "--add-tag", "vip", "--add-tag", " beta ",
            "--remove-tag", "trial", "-f", "json")
    )  # fmt: skip
    assert edited["tags"] == ["beta", "monthly", "vip"]
    # the table says the tags that result
    shown = ok(run("customer", "edit", "c@example.com", "--add-tag", "vip")).stdout
    assert "│ tags        │ beta, monthly, vip" in shown
    timeline = as_json(run("customer", "show", "c@example.com", "-f", "json"))["timeline"]
    assert [t["what"] for t in timeline] == ["Customer added", "Edited: tags"]  # vip twice: no edit


def test_removing_a_tag_the_customer_lacks_is_harmless(run, workspace):
    ok(run("customer", "add", "c@example.com", "--tag", "vip"))
    before = db_dump(workspace)
    result = ok(run("customer", "edit", "c@example.com", "--remove-tag", "nothere", "-f", "json"))
    assert json.loads(result.stdout)["tags"] == ["vip"]
    assert result.stderr == ""
    assert db_dump(workspace) == before


def test_tag_replaces_then_add_and_remove_apply(run, workspace):
    ok(run("customer", "add", "c@example.com", "--tag", "old"))
    ok(run("customer", "edit", "c@example.com", "--tag", "a", "--tag", "b", "--add-tag", "c",
           "--remove-tag", "a"))  # fmt: skip
    assert tags_of(run, "c@example.com") == ["b", "c"]


def test_an_empty_tag_is_a_usage_error(run, workspace):
    ok(run("customer", "add", "c@example.com"))
    before = db_dump(workspace)
    result = run("customer", "edit", "c@example.com", "--add-tag", " ")
    assert (result.exit_code, result.stderr) == (2, "Error: --add-tag needs a tag name.\n")
    assert db_dump(workspace) == before


# -- a customer with a row in every table -----------------------------------------------------------

# Every table that holds rows about a customer; a new one must be erased and merged too.
ABOUT_A_CUSTOMER = {
    "health_state",  # the incremental run's bookkeeping (store/health.py)
    "health_dirty",
    "enrollments",
    "stage_history",
    "action_runs",
    "activities",
    "outbox",
    "touchpoints",
    "tickets",
    "signals",
    "health_snapshots",
    "health_episodes",
    "play_starts",
    "events",
}


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


def rows_about(root: Path, customer_id: int) -> dict[str, int]:
    """How many rows of each table refer to the customer (their own row as ``customers``)."""
    conn = sqlite3.connect(root / "funnel.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {
            "customers": conn.execute(
                "SELECT count(*) FROM customers WHERE id = ?", [customer_id]
            ).fetchone()[0]
        }
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            if "customer_id" in columns:
                counts[table] = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE customer_id = ?", [customer_id]
                ).fetchone()[0]
    finally:
        conn.close()
    assert set(counts) - {"customers"} == ABOUT_A_CUSTOMER, "a table about customers is new"
    return counts


def assert_history_guarded(root: Path) -> None:
    """The stage history is still never rewritten, for anyone, after an erasure or a merge."""
    conn = sqlite3.connect(root / "funnel.db")
    try:
        for statement in ("UPDATE stage_history SET note = 'x'", "DELETE FROM stage_history"):
            with pytest.raises(sqlite3.IntegrityError, match="stage history is never rewritten"):
                conn.execute(statement)
    finally:
        conn.close()


def bea(run, tmp_path: Path) -> None:
    """Bea: two funnels, tasks open, done and dropped, emails queued and skipped, a reply,
    a ticket, an NPS that puts her at risk, and the run that starts the rescue play."""
    email = "bea@example.com"
    ok(
        run(
            "customer", "add", email, "--name", "Bea Costa", "--company", "Costa Lda",
            "--owner", "ana", "--seats", "10", "--tag", "vip", "--today", "2026-02-20",
        )
    )  # fmt: skip
    ok(run("enroll", email, "after-sales", "--today", "2026-02-20"))
    ok(run("move", email, "customer-contact", "--today", "2026-02-27"))
    ok(run("enroll", email, "support", "--today", "2026-02-27"))
    ok(run("done", "1", "--today", "2026-02-27"))
    ok(run("log", email, "Asked about SSO", "--channel", "email", "--direction", "inbound",
           "--on", "2026-02-28"))  # fmt: skip
    ok(run("signal", email, "nps", "3", "--today", "2026-03-01"))
    tickets = write(
        tmp_path / "tickets.csv",
        "id,customer,opened_at,first_response_at,resolved_at,csat\n"
        f"T-1,{email},2026-02-25,2026-02-25,2026-02-26,4\n",
    )
    ok(run("ticket", "import", str(tickets)))
    ok(run("run"))


def test_bea_has_a_row_in_every_table(run, workspace, tmp_path):
    bea(run, tmp_path)
    rows = rows_about(workspace, 1)
    # a mark waits for the next run, and bea's run has just taken hers: one more write
    assert rows.pop("health_dirty") == 0
    ok(run("signal", "bea@example.com", "csat", "4", "--today", "2026-03-02"))
    assert rows_about(workspace, 1)["health_dirty"] == 1
    assert all(rows.values()), rows


# -- delete -----------------------------------------------------------------------------------------


def test_delete_with_yes_erases_every_row_about_the_person_and_nobody_else(
    run, workspace, tmp_path
):
    bea(run, tmp_path)
    ok(run("customer", "add", "other@example.com", "--name", "Olga"))
    ok(run("enroll", "other@example.com", "relationship"))
    other = as_json(run("customer", "show", "other@example.com", "-f", "json"))
    before = rows_about(workspace, 1)

    result = as_json(run("customer", "delete", "bea@example.com", "--yes", "-f", "json"))

    assert result == {
        "customer": "bea@example.com",
        "id": 1,
        "deleted": {
            "enrollments": before["enrollments"],
            "stage_moves": before["stage_history"],
            "actions_run": before["action_runs"],
            "tasks": before["activities"],
            "emails": before["outbox"],
            "touchpoints": 1,
            "tickets": 1,
            "signals": 1,
            "health_snapshots": 1,
            "health_episodes": 1,
            "play_starts": before["play_starts"],
            "timeline_lines": before["events"],
        },
    }
    assert set(rows_about(workspace, 1).values()) == {0}
    assert_history_guarded(workspace)
    # not a trace left in the file: overwritten, not merely unlinked
    data = (workspace / "funnel.db").read_bytes()
    assert b"bea@example.com" not in data and b"Bea Costa" not in data
    assert as_json(run("customer", "show", "other@example.com", "-f", "json")) == other
    gone = run("customer", "show", "bea@example.com")
    assert (gone.exit_code, gone.stderr) == (
        1,
        "Error: No customer 'bea@example.com': give an email, an external id or #id (see "
        "'funnelctl customer list').\n",
    )


def test_delete_says_what_it_erased_in_a_table(run, workspace):
    ok(run("customer", "add", "c@example.com", "--today", "2026-02-01"))
    ok(run("enroll", "c@example.com", "relationship", "--today", "2026-02-01"))
    result = ok(run("customer", "delete", "c@example.com", "-y"))
    assert result.stdout == (
        "Deleted c@example.com and everything about them:\n"
        "  customer               1\n"
        "  enrollments            1\n"
        "  stage moves            1\n"
        "  automatic actions run  2\n"
        "  tasks                  1\n"
        "  emails                 1\n"
        "  timeline lines         3\n"
    )


def test_delete_in_a_pipe_without_yes_is_refused_and_changes_nothing(run, workspace, tmp_path):
    bea(run, tmp_path)
    before = db_dump(workspace)
    result = run("customer", "delete", "bea@example.com")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "Error: Deleting bea@example.com erases them for good, and there is no terminal to "
        "ask on: add --yes to confirm.\n"
    )
    assert db_dump(workspace) == before


def test_delete_at_a_terminal_asks_first(run, workspace, monkeypatch):
    from funnelctl.cli import customer

    monkeypatch.setattr(customer, "_at_a_terminal", lambda: True)
    ok(run("customer", "add", "c@example.com"))
    before = db_dump(workspace)
    kept = run("customer", "delete", "c@example.com", input="\n")
    assert (kept.exit_code, kept.stdout.strip()) == (1, "")  # the runner echoes the answer
    assert kept.stderr == (
        "Delete c@example.com and everything about them? [y/N]:Nothing was deleted.\n"
    )
    assert db_dump(workspace) == before
    gone = run("customer", "delete", "c@example.com", input="y\n")
    assert gone.exit_code == 0, gone.stderr
    assert gone.stdout == (
        " y\n"  # the runner's echo of the answer
        "Deleted c@example.com and everything about them:\n"
        "  customer        1\n"
        "  timeline lines  1\n"
    )
    assert rows_about(workspace, 1)["customers"] == 0


def test_delete_of_nobody_is_an_error(run, workspace):
    result = run("customer", "delete", "nobody@example.com", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No customer 'nobody@example.com'")


def test_delete_failing_half_way_leaves_the_book_as_it_was(run, workspace, tmp_path, monkeypatch):
    bea(run, tmp_path)
    before = db_dump(workspace)
    from funnelctl.store import customers

    def broken(store, customer_id):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(customers, "delete", broken)  # after every other table was emptied
    with pytest.raises(RuntimeError):
        run("customer", "delete", "bea@example.com", "--yes")
    assert db_dump(workspace) == before


def test_delete_waits_for_an_email_being_sent(run, workspace, tmp_path):
    bea(run, tmp_path)
    conn = sqlite3.connect(workspace / "funnel.db")
    with conn:
        email_id = conn.execute(
            "SELECT id FROM outbox WHERE customer_id = 1 AND status = 'queued'"
        ).fetchone()[0]
        conn.execute("UPDATE outbox SET status = 'sending' WHERE id = ?", [email_id])
    conn.close()
    before = db_dump(workspace)
    result = run("customer", "delete", "bea@example.com", "--yes")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: An email to bea@example.com is being sent right now (e{email_id}): run the "
        "delete again once 'funnelctl send' has finished; nothing was deleted.\n",
    )
    assert db_dump(workspace) == before


# -- merge ------------------------------------------------------------------------------------------


def duplicate(run, tmp_path: Path, *, funnel: str = "relationship") -> None:
    """Bea again under her private address: a phone, a tag and a custom field Bea lacks,
    another company (Bea's stays), her own funnel, touchpoint and signal."""
    email = "bea.costa@example.net"
    ok(
        run(
            "customer", "add", email, "--company", "Bea's own", "--set", "phone=+351 912 000 111",
            "--tag", "newsletter", "--tag", "vip", "--set", "region=north",
            "--external-id", "CRM-7", "--today", "2026-02-10",
        )
    )  # fmt: skip
    ok(run("enroll", email, funnel, "--today", "2026-02-10"))
    ok(run("log", email, "Signed up for the newsletter", "--channel", "in-product", "--direction",
           "inbound", "--on", "2026-02-11"))  # fmt: skip
    ok(run("signal", email, "logins", "12", "--today", "2026-02-12"))


def test_merge_moves_everything_to_the_customer_kept(run, workspace, tmp_path):
    bea(run, tmp_path)
    duplicate(run, tmp_path)
    kept, merged = rows_about(workspace, 1), rows_about(workspace, 2)
    assert merged["health_snapshots"] == 0  # the duplicate was never scored (run came before)

    result = as_json(
        run("customer", "merge", "bea@example.com", "bea.costa@example.net", "-f", "json")
    )

    assert result == {
        "customer": "bea@example.com",
        "merged": "bea.costa@example.net",
        "moved": {
            "enrollments": 1,
            "stage_moves": 1,
            "actions_run": merged["action_runs"],
            "tasks": merged["activities"],
            "emails": merged["outbox"],
            "touchpoints": 1,
            "tickets": 0,
            "signals": 1,
            "health_snapshots": 0,
            "health_episodes": 0,
            "play_starts": merged["play_starts"],
            "timeline_lines": merged["events"],
        },
        "filled": ["external_id", "fields", "phone"],
        "tags": ["newsletter", "vip"],
    }
    assert set(rows_about(workspace, 2).values()) == {0}
    assert_history_guarded(workspace)
    after = rows_about(workspace, 1)
    expected = {table: kept[table] + merged[table] for table in kept}
    expected["customers"] = 1
    expected["events"] += 1  # the line that says so
    assert after == expected
    shown = as_json(run("customer", "show", "bea@example.com", "-f", "json"))
    assert {
        k: shown[k] for k in ("email", "external_id", "company", "phone", "tags", "fields")
    } == {
        "email": "bea@example.com",
        "external_id": "CRM-7",
        "company": "Costa Lda",
        "phone": "+351 912 000 111",
        "tags": ["newsletter", "vip"],
        "fields": {"region": "north"},
    }
    listed = as_json(run("customer", "list", "-f", "json"))
    assert [(c["email"], sorted(c["enrollments"].split())) for c in listed] == [
        (
            "bea@example.com",
            ["after-sales:customer-contact", "relationship:kickoff", "support:onboarding"],
        )
    ]
    assert {
        "on": "2026-03-02",
        "kind": "customer",
        "what": "Merged bea.costa@example.net (#2) into this customer; filled external_id, "
        "fields, phone",
        "who": None,
    } in shown["timeline"]


def test_merge_says_what_moved_in_a_table(run, workspace, tmp_path):
    ok(run("customer", "add", "a@example.com", "--tag", "x"))
    duplicate(run, tmp_path)
    merged = ok(run("customer", "merge", "a@example.com", "bea.costa@example.net"))
    assert merged.stdout == (
        "Merged bea.costa@example.net into a@example.com:\n"
        "  enrollments            1\n"
        "  stage moves            1\n"
        "  automatic actions run  2\n"
        "  tasks                  1\n"
        "  emails                 1\n"
        "  touchpoints            1\n"
        "  signals                1\n"
        "  timeline lines         3\n"
        "  fields filled          company, external_id, fields, phone\n"
        "  tags now               newsletter, vip, x\n"
    )


def test_merge_when_both_are_active_in_one_funnel_changes_nothing(run, workspace, tmp_path):
    bea(run, tmp_path)
    duplicate(run, tmp_path, funnel="support")
    before = db_dump(workspace)
    result = run("customer", "merge", "bea@example.com", "bea.costa@example.net")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Cannot merge bea.costa@example.net into bea@example.com: both are active in the "
        "funnel 'support', and a customer is in a funnel once. Close one of the two first "
        "(funnelctl lost bea.costa@example.net --funnel support --reason duplicate), then merge; "
        "nothing was changed.\n"
    )
    assert db_dump(workspace) == before


def test_merge_names_every_funnel_both_are_active_in(run, workspace):
    for email in ("a@example.com", "b@example.com"):
        ok(run("customer", "add", email))
        ok(run("enroll", email, "support"))
        ok(run("enroll", email, "relationship"))
    before = db_dump(workspace)
    result = run("customer", "merge", "a@example.com", "b@example.com")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: Cannot merge b@example.com into a@example.com: both are active in the funnels "
        "'relationship' and 'support', and a customer is in a funnel once. Close one of the two "
        "in each first (funnelctl lost b@example.com --funnel relationship --reason duplicate, "
        "and so on), then merge; nothing was changed.\n",
    )
    assert db_dump(workspace) == before


def test_merge_with_itself_is_a_usage_error(run, workspace):
    ok(run("customer", "add", "a@example.com"))
    result = run("customer", "merge", "a@example.com", "#1")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: 'a@example.com' and '#1' are the same customer, a@example.com.\n",
    )


def test_merge_keeps_both_open_episodes_apart(run, workspace, tmp_path):
    """Both at risk: one open at-risk episode per customer, so the duplicate's ends today."""
    bea(run, tmp_path)
    duplicate(run, tmp_path)
    ok(run("signal", "bea.costa@example.net", "nps", "2"))
    ok(run("run", "--today", "2026-03-03"))
    ok(
        run(
            "customer", "merge", "bea@example.com", "bea.costa@example.net", "--today", "2026-03-03"
        )
    )
    conn = sqlite3.connect(workspace / "funnel.db")
    episodes = conn.execute(
        "SELECT customer_id, kind, started_on, ended_on FROM health_episodes ORDER BY id"
    ).fetchall()
    snapshots = conn.execute(
        "SELECT customer_id, day FROM health_snapshots ORDER BY day"
    ).fetchall()
    conn.close()
    assert episodes == [
        (1, "at-risk", "2026-03-02", None),
        (1, "at-risk", "2026-03-03", "2026-03-03"),
    ]
    assert snapshots == [(1, "2026-03-02"), (1, "2026-03-03")]  # one a day, Bea's where both
