"""Planning a next step by hand: `funnelctl task add` and `funnelctl log --next`, the due
forms they read (dates.parse_due) and the words they say it in (dates.relative)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from conftest import TODAY

from funnelctl.dates import parse_due, relative
from funnelctl.errors import UsageError

# In the demo book (today 2026-03-02, a Monday): beatriz is in after-sales only, with
# nothing planned; sam is in after-sales and support; kevin's only enrollment is lost.
BEATRIZ = "beatriz.almeida@example.net"
SAM = "sam.whitaker@example.com"
KEVIN = "kevin.lowe@example.com"


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


def add(run, customer: str, title: str, *args: str):
    return as_json(run("task", "add", customer, title, *args, "-f", "json"))


def no_next_step(run, customer: str) -> list[str]:
    """The funnels in which ``due`` says ``customer`` has no next step planned."""
    return [
        item["funnel"]
        for item in as_json(run("due", "-f", "json"))
        if "no-next-step" in item.get("alerts", ()) and item["customer"] == customer
    ]


def touchpoints(run, customer: str) -> list[str]:
    rows = as_json(run("export", "touchpoints", "-f", "json"))
    return [r["summary"] for r in rows if r["customer"] == customer]


# -- the due forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("2026-12-03", "2026-12-03"),
        ("0d", "2026-03-02"),
        ("3d", "2026-03-05"),
        ("2w", "2026-03-16"),
        ("today", "2026-03-02"),
        ("tomorrow", "2026-03-03"),
        (" Tomorrow ", "2026-03-03"),
        ("3D", "2026-03-05"),
        ("tue", "2026-03-03"),
        ("thu", "2026-03-05"),
        ("Thursday", "2026-03-05"),
        ("SUN", "2026-03-08"),
        # today is a Monday: "mon" is the next Monday, a week ahead, never today
        ("mon", "2026-03-09"),
        ("monday", "2026-03-09"),
    ],
)
def test_parse_due_reads_every_form_from_today(text, due):
    assert parse_due(text, "2026-03-02") == due


def test_parse_due_takes_today_as_a_date_too():
    assert parse_due("fri", date(2026, 3, 7)) == "2026-03-13"  # a Saturday: next Friday


@pytest.mark.parametrize("text", ["", "next week", "3", "d3", "-1d", "3 d", "thurs", "2026-3-5"])
def test_parse_due_refuses_anything_else_naming_the_value_and_the_forms(text):
    with pytest.raises(UsageError) as caught:
        parse_due(text, TODAY)
    assert caught.value.message == (
        f"{text!r} is not a due date; write YYYY-MM-DD, Nd (3d), Nw (2w), today, tomorrow "
        "or a weekday (mon or monday … sun or sunday)."
    )


def test_parse_due_refuses_a_day_not_in_the_calendar():
    with pytest.raises(UsageError, match="'2026-02-30' is not a valid date"):
        parse_due("2026-02-30", TODAY)
    # a task due on 9999-12-31 made the calendar feed (its end is the day after) crash
    with pytest.raises(UsageError, match="'9999-12-31' is outside the years 1900 to 9000"):
        parse_due("9999-12-31", TODAY)


@pytest.mark.parametrize(
    ("day", "words"),
    [
        ("2026-03-02", "today"),
        ("2026-03-03", "tomorrow"),
        ("2026-03-01", "yesterday"),
        ("2026-03-05", "in 3d"),
        ("2026-04-01", "on 2026-04-01"),
        ("2026-02-28", "2d late"),
        (date(2026, 2, 20), "10d late"),
    ],
)
def test_relative_says_a_day_in_words(day, words):
    assert relative(day, "2026-03-02") == words
    assert relative(day, date(2026, 3, 2)) == words


# -- task add: the due forms from the command line ------------------------------------------------


@pytest.mark.parametrize(
    ("due", "on"),
    [
        ("2026-12-03", "2026-12-03"),
        ("3d", "2026-03-05"),
        ("2w", "2026-03-16"),
        ("today", "2026-03-02"),
        ("tomorrow", "2026-03-03"),
        ("thu", "2026-03-05"),
    ],
)
def test_task_add_reads_every_due_form(run, demo, due, on):
    task = add(run, BEATRIZ, "Call back about SSO", "--due", due)
    assert task["due_on"] == on


def test_a_weekday_counts_from_the_day_given_with_today(run, demo):
    # 2026-03-04 is a Wednesday: thu is the next day, wed a week ahead
    assert add(run, BEATRIZ, "One", "--due", "thu", "--today", "2026-03-04")["due_on"] == (
        "2026-03-05"
    )
    assert add(run, BEATRIZ, "Two", "--due", "WED", "--today", "2026-03-04")["due_on"] == (
        "2026-03-11"
    )


def test_a_bad_due_is_a_usage_error_naming_it(run, demo, dump):
    before = dump(demo)
    result = run("task", "add", BEATRIZ, "Call back", "--due", "next week")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --due: 'next week' is not a due date; write YYYY-MM-DD, Nd (3d), Nw (2w), "
        "today, tomorrow or a weekday (mon or monday … sun or sunday).\n"
    )
    assert dump(demo) == before


def test_a_due_date_in_the_past_is_refused(run, demo, dump):
    before = dump(demo)
    result = run("task", "add", BEATRIZ, "Call back", "--due", "2026-03-01")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --due 2026-03-01 is in the past (today is 2026-03-02): plan a next step "
        "for today or later.\n"
    )
    assert dump(demo) == before


# -- task add: what it makes ------------------------------------------------------------------------


def test_task_add_says_which_task_for_whom_and_when(run, workspace):
    ok(run("customer", "add", "ana@client.example", "--owner", "ana"))
    ok(run("enroll", "ana@client.example", "after-sales"))  # its entry task is t1
    result = run("task", "add", "ana@client.example", "Call back about SSO", "--due", "3d")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        'Planned t2 for ana@client.example (after-sales, demand-analysis): "Call back about '
        'SSO", due in 3d (Thu 2026-03-05), owner ana.\n'
    )
    assert result.stderr == ""
    today = run("task", "add", "ana@client.example", "Send the notes", "--due", "today")
    assert today.stdout == (
        'Planned t3 for ana@client.example (after-sales, demand-analysis): "Send the notes", '
        "due today (Mon 2026-03-02), owner ana.\n"
    )


def test_task_add_json_names_the_task_and_where_it_belongs(run, demo):
    task = add(
        run,
        BEATRIZ,
        "Call back about SSO",
        "--due",
        "3d",
        "--channel",
        "phone",
        "--description",
        "She asked whether SAML works with Okta.",
    )
    assert task == {
        "id": task["id"],
        "ref": f"t{task['id']}",
        "customer": BEATRIZ,
        "title": "Call back about SSO",
        "due_on": "2026-03-05",
        "owner": "ana",  # the enrollment's owner
        "channel": "phone",
        "funnel": "after-sales",
        "stage": "deployment",
    }
    listed = [i for i in as_json(run("due", "--days", "3", "-f", "json")) if i["id"] == task["id"]]
    assert [(i["kind"], i["customer"], i["title"], i["due_on"], i["owner"]) for i in listed] == [
        ("task", BEATRIZ, "Call back about SSO", "2026-03-05", "ana")
    ]
    shown = as_json(run("customer", "show", BEATRIZ, "-f", "json"))
    lines = [line["what"] for line in shown["timeline"] if line["kind"] == "task"]
    assert f"Planned by hand: t{task['id']} 'Call back about SSO' for ana, due 2026-03-05" in lines


def test_a_task_planned_by_hand_clears_no_next_step(run, demo):
    assert no_next_step(run, BEATRIZ) == ["after-sales"]
    add(run, BEATRIZ, "Call back about SSO", "--due", "2w")
    assert no_next_step(run, BEATRIZ) == []


def test_a_customer_in_several_funnels_is_asked_which(run, demo, dump):
    before = dump(demo)
    result = run("task", "add", SAM, "Check the rollout", "--due", "3d")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {SAM} is in several funnels (after-sales, support); say which with --funnel.\n"
    )
    assert dump(demo) == before
    assert no_next_step(run, SAM) == ["after-sales"]
    task = add(run, SAM, "Check the rollout", "--due", "3d", "--funnel", "after-sales")
    assert (task["funnel"], task["stage"], task["owner"]) == ("after-sales", "deployment", "bruno")
    assert no_next_step(run, SAM) == []


def test_a_funnel_the_customer_is_not_active_in_is_refused(run, demo):
    result = run("task", "add", KEVIN, "Win back", "--due", "3d", "--funnel", "after-sales")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {KEVIN} has no active enrollment in after-sales (it is lost); leave out "
        "--funnel to plan the task for the customer alone.\n"
    )


def test_a_customer_with_no_active_enrollment_gets_a_task_of_their_own(run, demo):
    task = add(run, KEVIN, "Ask how the other tool works out", "--due", "2w")
    assert (task["funnel"], task["stage"], task["owner"]) == (None, None, "bruno")
    listed = as_json(run("due", "--days", "14", "-f", "json"))
    assert [i["title"] for i in listed if i["customer"] == KEVIN] == [
        "Ask how the other tool works out"
    ]
    result = run("task", "add", KEVIN, "Send the survey", "--due", "tomorrow")
    assert result.stdout == (
        f'Planned t{task["id"] + 1} for {KEVIN} (no active funnel): "Send the survey", '
        "due tomorrow (Tue 2026-03-03), owner bruno.\n"
    )


# -- owners and channels ---------------------------------------------------------------------------


def test_the_owner_is_a_team_member(run, demo):
    assert add(run, BEATRIZ, "Call back", "--due", "3d", "--owner", "bruno")["owner"] == "bruno"


def test_an_owner_outside_the_team_is_refused_with_did_you_mean(run, demo, dump):
    before = dump(demo)
    result = run("task", "add", BEATRIZ, "Call back", "--due", "3d", "--owner", "bruna")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --owner 'bruna' is not in the team of funnelctl.yaml (ana, bruno); "
        "did you mean 'bruno'?\n"
    )
    far = run("task", "add", BEATRIZ, "Call back", "--due", "3d", "--owner", "zed")
    assert far.exit_code == 2
    assert far.stderr == (
        "Error: --owner 'zed' is not in the team of funnelctl.yaml (ana, bruno); give a team "
        "member, or partner:ID for a partner (helpdesk-partner).\n"
    )
    assert dump(demo) == before


def test_an_owner_with_no_team_is_refused(run, workspace):
    ok(run("customer", "add", "ana@client.example", "--owner", "ana"))
    result = run("task", "add", "ana@client.example", "Call", "--due", "3d", "--owner", "ana")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --owner 'ana': funnelctl.yaml has no team; list the people who take tasks "
        "under team: there.\n"
    )
    # without --owner the customer's owner takes it, team or not
    assert add(run, "ana@client.example", "Call", "--due", "3d")["owner"] == "ana"


def test_a_partner_owner_is_emailed_the_task(run, demo):
    task = add(
        run,
        BEATRIZ,
        "Answer the SSO question",
        "--due",
        "2d",
        "--owner",
        "partner:helpdesk-partner",
    )
    assert task["owner"] == "partner:helpdesk-partner"
    handoff = [
        (r["template"], r["partner"], r["customer"], r["scheduled_on"], r["status"])
        for r in as_json(run("outbox", "list", "-f", "json"))
        if r["task_id"] == task["id"]
    ]
    assert handoff == [("partner-task", "helpdesk-partner", BEATRIZ, TODAY, "queued")]
    listed = [i for i in as_json(run("due", "--days", "2", "-f", "json")) if i["id"] == task["id"]]
    assert [(i["section"], i["title"]) for i in listed] == [
        ("waiting", "Harbour Help Desk: Answer the SSO question")
    ]
    said = run(
        "task", "add", BEATRIZ, "Again", "--due", "2d", "--owner", "partner:helpdesk-partner"
    )
    assert said.stdout.endswith(", owner partner:helpdesk-partner (told by email).\n")


def test_an_unknown_partner_is_refused_with_did_you_mean(run, demo):
    result = run("task", "add", BEATRIZ, "Call", "--due", "3d", "--owner", "partner:helpdesk")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --owner 'partner:helpdesk': no partner 'helpdesk' in the playbooks "
        "(partners: helpdesk-partner); did you mean 'partner:helpdesk-partner'?\n"
    )


def test_a_channel_outside_the_list_is_refused(run, demo):
    result = run("task", "add", BEATRIZ, "Call", "--due", "3d", "--channel", "fone")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --channel 'fone' must be one of self-service, chat,")
    assert result.stderr.endswith("; did you mean 'phone'?\n")


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("  ", "Error: The task needs a title.\n"),
        ("Call\nback", "Error: A task's title is one line; put the details in --description.\n"),
    ],
)
def test_a_title_is_one_line_of_text(run, demo, title, message):
    result = run("task", "add", BEATRIZ, title, "--due", "3d")
    assert (result.exit_code, result.stderr) == (2, message)


def test_an_unknown_customer_is_named(run, demo):
    result = run("task", "add", "nobody@example.com", "Call", "--due", "3d")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No customer 'nobody@example.com'")


# -- log --next: the touchpoint and the next step, both or neither ---------------------------------


def test_log_next_logs_the_touchpoint_and_plans_the_next_step(run, demo):
    assert no_next_step(run, BEATRIZ) == ["after-sales"]
    logged = as_json(
        run(
            "log",
            BEATRIZ,
            "asked about SSO",
            "--channel",
            "email",
            "--next",
            "Send the proposal",
            "--due",
            "5d",
            "-f",
            "json",
        )
    )
    task = logged["next_step"]
    assert logged["customer"] == BEATRIZ
    assert (task["ref"], task["title"], task["due_on"], task["owner"], task["funnel"]) == (
        f"t{task['id']}",
        "Send the proposal",
        "2026-03-07",
        "ana",
        "after-sales",
    )
    assert "asked about SSO" in touchpoints(run, BEATRIZ)
    assert no_next_step(run, BEATRIZ) == []


def test_log_next_without_due_is_due_tomorrow(run, demo):
    result = run("log", BEATRIZ, "call", "--channel", "phone", "--next", "Send the proposal")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(
        '"Send the proposal", due tomorrow (Tue 2026-03-03), owner ana.\n'
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--owner", "bruna"],
            "Error: --owner 'bruna' is not in the team of funnelctl.yaml (ana, bruno); "
            "did you mean 'bruno'?\n",
        ),
        (
            ["--due", "yesterday"],
            "Error: --due: 'yesterday' is not a due date; write YYYY-MM-DD, Nd (3d), Nw (2w), "
            "today, tomorrow or a weekday (mon or monday … sun or sunday).\n",
        ),
    ],
)
def test_log_next_with_a_bad_next_step_logs_nothing(run, demo, dump, args, message):
    before = dump(demo)
    result = run("log", BEATRIZ, "call", "--channel", "phone", "--next", "Send it", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)
    assert dump(demo) == before


def test_log_next_for_a_customer_in_several_funnels_logs_nothing_without_funnel(run, demo, dump):
    before = dump(demo)
    result = run("log", SAM, "call", "--channel", "phone", "--next", "Check the rollout")
    assert result.exit_code == 2
    assert "say which with --funnel" in result.stderr
    assert dump(demo) == before
    ok(
        run(
            "log",
            SAM,
            "call",
            "--channel",
            "phone",
            "--next",
            "Check the rollout",
            "--funnel",
            "after-sales",
        )
    )
    assert "call" in touchpoints(run, SAM)
    assert no_next_step(run, SAM) == []


@pytest.mark.parametrize("args", [["--due", "5d"], ["--owner", "ana"], ["--funnel", "support"]])
def test_the_next_step_options_need_next(run, demo, dump, args):
    before = dump(demo)
    result = run("log", BEATRIZ, "call", "--channel", "phone", *args)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --due, --owner and --funnel describe the next step: give it with --next TITLE.\n"
    )
    assert dump(demo) == before


def test_log_without_next_is_unchanged(run, demo):
    logged = as_json(run("log", BEATRIZ, "call", "--channel", "phone", "-f", "json"))
    assert "next_step" not in logged
    assert no_next_step(run, BEATRIZ) == ["after-sales"]


def test_the_task_group_lists_add(run, workspace):
    result = run("task", "--help")
    assert result.exit_code == 0
    assert "add" in result.stdout
