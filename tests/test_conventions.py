"""Everyday conventions of the command line: --version, -h and `help`, --home and
--today before the command, -f in any case, owners and stages by the names people use,
signals within their range, and a demo book that agrees with itself."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import write

import funnelctl
from funnelctl.errors import NotFound, UsageError
from funnelctl.playbooks import Funnel, Stage


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def as_json(result):
    return json.loads(ok(result).stdout)


def with_team(root: Path, team: str = "ana, bruno") -> Path:
    config = root / "funnelctl.yaml"
    text = config.read_text()
    assert "\nteam: []\n" in text
    config.write_text(text.replace("\nteam: []\n", f"\nteam: [{team}]\n"))
    return root


@pytest.fixture
def team(workspace: Path) -> Path:
    """The empty workspace, with ana and bruno in its team."""
    return with_team(workspace)


# -- 1. --version, -h, help -------------------------------------------------------------------


def test_version_prints_the_package_version(run):
    result = ok(run("--version"))
    assert result.stdout == f"funnelctl {funnelctl.__version__}\n"
    assert result.stderr == ""


@pytest.mark.parametrize("command", [(), ("due",), ("customer",), ("customer", "add")])
def test_dash_h_is_help_everywhere(run, command):
    long = ok(run(*command, "--help"))
    short = ok(run(*command, "-h"))
    assert short.stdout == long.stdout
    assert "-h, --help" in short.stdout


@pytest.mark.parametrize("command", [(), ("due",), ("customer",), ("customer", "add")])
def test_help_command_prints_the_commands_help(run, command):
    assert ok(run("help", *command)).stdout == ok(run(*command, "--help")).stdout


def test_help_of_an_unknown_command_lists_the_commands(run):
    result = run("help", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: No command 'nope'; the commands are: at-risk, backup, ")
    for name in ("customer", "due", "help", "import", "move", "signal"):
        assert f" {name}," in result.stderr or f" {name}." in result.stderr


def test_help_of_an_unknown_subcommand_lists_the_groups_commands(run):
    result = run("help", "playbook", "nope")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: No command 'playbook nope'; the playbook commands are: "
        "list, plays, show, simulate, validate.\n"
    )


def test_help_of_a_subcommand_of_a_plain_command(run):
    result = run("help", "due", "extra")
    assert result.exit_code == 2
    assert result.stderr == "Error: 'due' has no subcommands; see: funnelctl help due\n"


# -- 2. --home and --today before the command ----------------------------------------------------


@pytest.fixture
def two(run, tmp_path, monkeypatch) -> tuple[Path, Path]:
    one, other = tmp_path / "one", tmp_path / "two"
    ok(run("init", str(one)))
    ok(run("init", str(other)))
    monkeypatch.setenv("FUNNELCTL_HOME", str(one))
    return one, other


def emails(run, *args):
    return [c["email"] for c in as_json(run(*args, "customer", "list", "-f", "json"))]


def test_home_before_the_command_is_the_same_as_after_it(run, two):
    one, other = two
    ok(run("--home", str(other), "customer", "add", "x@example.com"))
    ok(run(f"--home={other}", "customer", "add", "y@example.com"))
    assert emails(run) == []  # FUNNELCTL_HOME: the option beat it
    assert emails(run, "--home", str(other)) == ["x@example.com", "y@example.com"]
    after = as_json(run("customer", "list", "-f", "json", "--home", str(other)))
    assert [c["email"] for c in after] == ["x@example.com", "y@example.com"]


def test_home_after_the_command_wins_over_before(run, two):
    one, other = two
    ok(run("--home", str(other), "customer", "add", "z@example.com", "--home", str(one)))
    assert emails(run, "--home", str(one)) == ["z@example.com"]
    assert emails(run, "--home", str(other)) == []


def test_today_before_the_command(run, workspace):
    ok(run("--today", "2026-01-15", "customer", "add", "a@example.com"))
    ok(run("--today", "2026-01-15", "customer", "add", "b@example.com", "--today", "2026-01-20"))
    shown = as_json(run("customer", "list", "-f", "json"))
    assert [(c["email"], c["created_on"]) for c in shown] == [
        ("a@example.com", "2026-01-15"),
        ("b@example.com", "2026-01-20"),
    ]


def test_a_bad_today_before_the_command_is_the_same_usage_error(run, workspace):
    result = run("--today", "23/11/2026", "customer", "list")
    assert result.exit_code == 2
    assert result.stderr == "Error: --today: '23/11/2026' is not a date in the form YYYY-MM-DD\n"


def test_options_before_a_command_that_does_not_take_them(run, workspace):
    assert ok(run("--home", str(workspace), "help", "due")).stdout == ok(run("due", "-h")).stdout


# -- 3. formats in any case ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["JSON", "Json", "json"])
def test_format_in_any_case(run, workspace, value):
    ok(run("customer", "add", "a@example.com"))
    assert [c["email"] for c in as_json(run("customer", "list", "-f", value))] == ["a@example.com"]
    assert as_json(run("due", "--format", value)) == []
    assert as_json(run("export", "customers", "-f", value))[0]["email"] == "a@example.com"


def test_format_csv_upper_case_and_a_bad_format(run, workspace):
    ok(run("customer", "add", "a@example.com"))
    assert ok(run("customer", "list", "-f", "CSV")).stdout.startswith("id,email,")
    bad = run("customer", "list", "-f", "XML")
    assert bad.exit_code == 2
    assert "'XML' is not one of 'table', 'json', 'csv'" in bad.stderr


# -- 4. owners not in the team --------------------------------------------------------------------


def test_due_owner_must_be_in_the_team(run, team):
    result = run("due", "--owner", "anna")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --owner 'anna' is not in the team of funnelctl.yaml (ana, bruno); "
        "did you mean 'ana'?\n"
    )
    far = run("due", "--owner", "zed", "-f", "ics")
    assert far.exit_code == 2
    assert far.stderr == (
        "Error: --owner 'zed' is not in the team of funnelctl.yaml (ana, bruno); give a team "
        "member, or partner:ID for a partner (helpdesk-partner).\n"
    )
    assert as_json(run("due", "--owner", "ana", "-f", "json")) == []
    assert as_json(run("due", "--owner", "partner:helpdesk-partner", "-f", "json")) == []


def test_due_owner_partner_must_exist(run, team):
    result = run("due", "--owner", "partner:helpdesk")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --owner 'partner:helpdesk': no partner 'helpdesk' in the playbooks "
        "(partners: helpdesk-partner); did you mean 'partner:helpdesk-partner'?\n"
    )


def test_due_owner_without_a_team_is_any_name(run, workspace):
    assert as_json(run("due", "--owner", "whoever", "-f", "json")) == []


OWNERS = "email,name,owner\na@example.com,A,ana\nb@example.com,B,anna\nc@example.com,C,\n"


def test_import_rejects_an_owner_outside_the_team(run, team, dump, tmp_path):
    csv = write(tmp_path / "owners.csv", OWNERS + "d@example.com,D,partner:helpdesk-partner\n")
    before = dump(team)
    result = run("import", str(csv))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {csv}: 1 bad row(s); nothing was imported (fix them, or pass --skip-bad FILE "
        "to import the good rows)\n"
        f"  {csv}:3: owner 'anna' is not in the team of funnelctl.yaml (ana, bruno); "
        "did you mean 'ana'?\n"
    )
    assert dump(team) == before


def test_import_skip_bad_keeps_the_good_owners(run, team, tmp_path):
    csv = write(tmp_path / "owners.csv", OWNERS)
    rejects = tmp_path / "rejects.csv"
    summary = as_json(run("import", str(csv), "--skip-bad", str(rejects), "-f", "json"))
    assert (summary["inserted"], summary["rejected"]) == (2, 1)
    assert rejects.read_text() == (
        "email,name,owner,funnelctl_reason\n"
        "b@example.com,B,anna,\"owner 'anna' is not in the team of funnelctl.yaml (ana, bruno); "
        "did you mean 'ana'?\"\n"
    )
    owners = {c["email"]: c["owner"] for c in as_json(run("customer", "list", "-f", "json"))}
    assert owners == {"a@example.com": "ana", "c@example.com": None}


def test_import_without_a_team_takes_any_owner(run, workspace, tmp_path):
    csv = write(tmp_path / "owners.csv", OWNERS)
    assert as_json(run("import", str(csv), "-f", "json"))["inserted"] == 3


# -- 5. a stage by id or by title -------------------------------------------------------------------


def stage(id_: str, title: str) -> Stage:
    return Stage(id_, title)


# Stage ids are lowercase slugs (the loader refuses others); titles are free text.
FUNNEL = Funnel(
    "f",
    "F",
    (
        stage("intake", "Start"),
        stage("start", "First call"),
        stage("review", "Check"),
        stage("audit", "Check"),
        stage("check", "Last step"),
    ),
)


def test_funnel_stage_by_id_then_any_case_id_then_title():
    assert FUNNEL.stage("intake").id == "intake"
    assert FUNNEL.stage("INTAKE").id == "intake"  # the id in any case
    assert FUNNEL.stage("start").id == "start"  # an id beats another stage's title
    assert FUNNEL.stage("first CALL").id == "start"  # then the title, in any case
    assert FUNNEL.stage(" last   step ").id == "check"  # spaces as typed
    assert FUNNEL.stage("Check").id == "check"  # the id, though two stages are titled so
    assert FUNNEL.has_stage("first call") and not FUNNEL.has_stage("nope")


def test_funnel_stage_ambiguous_title_and_unknown_stage():
    twins = Funnel("f", "F", (stage("review", "Check"), stage("audit", "check")))
    with pytest.raises(UsageError) as ambiguous:
        twins.stage("CHECK")
    assert ambiguous.value.message == (
        "Funnel 'f' has several stages titled 'CHECK' (review, audit); give the stage id."
    )
    assert twins.has_stage("check")
    with pytest.raises(NotFound) as missing:
        FUNNEL.stage("nope")
    assert missing.value.message == (
        "Funnel 'f' has no stage 'nope' (stages: intake, start, review, audit, check)."
    )


def test_move_and_enroll_by_title_or_any_case(run, workspace):
    ok(run("customer", "add", "bob@example.com"))
    ok(run("customer", "add", "eve@example.com"))
    ok(run("enroll", "bob@example.com", "after-sales"))
    moved = as_json(run("move", "bob@example.com", "Customer contact", "-f", "json"))
    assert moved["stage"] == "customer-contact"
    enrolled = as_json(
        run("enroll", "eve@example.com", "support", "--stage", "RETENTION", "-f", "json")
    )
    assert enrolled["stage"] == "retention"
    history = as_json(run("export", "history", "-f", "json"))
    assert [(h["to_stage"]) for h in history] == [
        "demand-analysis",
        "customer-contact",
        "retention",
    ]


def test_unknown_stage_is_not_found_everywhere(run, workspace, tmp_path):
    ok(run("customer", "add", "bob@example.com"))
    result = run("enroll", "bob@example.com", "support", "--stage", "Nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Funnel 'support' has no stage 'Nope' "
        "(stages: onboarding, post-sales, retention, advocacy).\n"
    )
    ok(run("enroll", "bob@example.com", "support"))
    moved = run("move", "bob@example.com", "Nope")
    assert moved.exit_code == 1
    assert moved.stderr == (
        "Error: bob@example.com's funnel (support) has no stage 'Nope' "
        "(stages: onboarding, post-sales, retention, advocacy).\n"
    )
    moved = run("move", "bob@example.com", "Nope", "--funnel", "support")
    assert moved.exit_code == 1
    assert moved.stderr == (
        "Error: Funnel 'support' has no stage 'Nope' "
        "(stages: onboarding, post-sales, retention, advocacy).\n"
    )
    imported = run("import", str(tmp_path), "--funnel", "support", "--stage", "Nope")
    assert imported.exit_code == 1
    assert imported.stderr == moved.stderr


def test_import_places_customers_at_a_stage_by_title(run, workspace, tmp_path):
    csv = write(
        tmp_path / "placed.csv",
        "email,funnel,stage\n"
        "a@example.com,support,Post-sales support\n"
        "b@example.com,support,RETENTION\n"
        "c@example.com,support,Nowhere\n",
    )
    result = run("import", str(csv), "--no-actions")
    assert result.exit_code == 1
    assert result.stderr.endswith(f"  {csv}:4: funnel 'support' has no stage 'Nowhere'\n")
    write(csv, csv.read_text().replace("c@example.com,support,Nowhere\n", ""))
    ok(run("import", str(csv), "--no-actions"))
    listed = as_json(run("customer", "list", "-f", "json"))
    assert [c["enrollments"] for c in listed] == ["support:post-sales", "support:retention"]


AMBIGUOUS = """\
id: twin
title: Twin
stages:
  - id: first
    title: Check
  - id: second
    title: check
"""


def test_an_ambiguous_title_is_a_usage_error(run, workspace):
    write(workspace / "playbooks" / "twin.yaml", AMBIGUOUS)
    ok(run("customer", "add", "bob@example.com"))
    result = run("enroll", "bob@example.com", "twin", "--stage", "CHECK")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Funnel 'twin' has several stages titled 'CHECK' (first, second); "
        "give the stage id.\n"
    )
    assert (
        as_json(run("enroll", "bob@example.com", "twin", "--stage", "Second", "-f", "json"))[
            "stage"
        ]
        == "second"
    )


# -- 6. signals within range, of metrics something reads ---------------------------------------------


@pytest.fixture
def customer(run, workspace):
    ok(run("customer", "add", "a@example.com"))
    return "a@example.com"


@pytest.mark.parametrize(
    "metric, value, message",
    [
        ("nps", "11", "nps 11 is out of range: nps goes from 0 to 10"),
        ("nps", "-0.5", "nps -0.5 is out of range: nps goes from 0 to 10"),
        ("csat", "0", "csat 0 is out of range: csat goes from 1 to 5"),
        ("CSAT", "80", "csat 80 is out of range: csat goes from 1 to 5"),
        ("logins", "-1", "logins -1 is out of range: logins is 0 or more"),
        ("tickets", "-2", "tickets -2 is out of range: tickets is 0 or more"),
        ("seats_used", "-3", "seats_used -3 is out of range: seats_used is 0 or more"),
    ],
)
def test_a_signal_out_of_its_range_is_refused(
    run, customer, dump, workspace, metric, value, message
):
    before = dump(workspace)
    result = run("signal", customer, metric, "--", value)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n"
    # --new-metric is for names, not for values
    assert run("signal", customer, metric, "--new-metric", "--", value).stderr == result.stderr
    assert dump(workspace) == before


@pytest.mark.parametrize(
    "metric, value", [("nps", "0"), ("nps", "10"), ("csat", "1"), ("csat", "4.5"), ("logins", "0")]
)
def test_a_signal_at_the_ends_of_its_range_is_kept(run, customer, metric, value):
    assert as_json(run("signal", customer, metric, value, "-f", "json"))["value"] == float(value)


def test_a_metric_nothing_reads_is_refused_with_a_suggestion(run, customer, dump, workspace):
    known = "csat, logins, nps, seats_used, tickets"
    before = dump(workspace)
    typo = run("signal", customer, "nsp", "8")
    assert typo.exit_code == 2
    assert typo.stderr == (
        f"Error: No health measure or report reads the metric 'nsp' (known: {known}): "
        "did you mean 'nps'? To record it anyway, pass --new-metric.\n"
    )
    other = run("signal", customer, "mood", "3")
    assert other.exit_code == 2
    assert other.stderr == (
        f"Error: No health measure or report reads the metric 'mood' (known: {known}); "
        "to record it anyway, pass --new-metric.\n"
    )
    assert dump(workspace) == before
    kept = as_json(run("signal", customer, "mood", "3", "--new-metric", "-f", "json"))
    assert (kept["metric"], kept["value"]) == ("mood", 3.0)


def test_a_metric_read_by_a_playbook_condition_is_known(run, customer, workspace):
    write(
        workspace / "playbooks" / "usage.yaml",
        "plays:\n"
        "  - id: usage-drop\n"
        "    title: Usage dropped\n"
        "    sourcing: internal\n"
        "    trigger: \"signal_avg('weekly-usage', 14) < 3 and signals['api_calls'] > 0\"\n"
        "    actions:\n"
        "      - task: Look at the usage\n",
    )
    ok(run("signal", customer, "weekly_usage", "2"))
    ok(run("signal", customer, "api_calls", "2"))


def test_signal_import_rejects_values_out_of_range(run, customer, dump, workspace, tmp_path):
    csv = write(
        tmp_path / "signals.csv",
        "customer,metric,value\n"
        "a@example.com,nps,9\n"
        "a@example.com,csat,45\n"
        "a@example.com,mood,-4\n",  # no known range: kept as it is
    )
    before = dump(workspace)
    result = run("signal", "import", str(csv))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {csv}: 1 bad row(s); no signal was imported\n"
        f"  {csv}:3: csat 45 is out of range: csat goes from 1 to 5\n"
    )
    assert dump(workspace) == before
    wide = write(tmp_path / "wide.csv", "customer,nps,logins\na@example.com,10,-1\n")
    result = run("signal", "import", str(wide))
    assert result.exit_code == 1
    assert result.stderr.endswith(f"  {wide}:2: logins -1 is out of range: logins is 0 or more\n")


# -- 7. the demo book agrees with itself ---------------------------------------------------------


def test_in_the_demo_a_customer_who_replied_is_not_chased(demo):
    """No customer with an inbound touchpoint since entering customer-contact still has
    the welcome email queued or "Call the customer" open, in the whole demo book."""
    conn = sqlite3.connect(demo / "funnel.db")
    try:
        waiting = conn.execute(
            """
            SELECT c.email, 'task ' || a.title, h.moved_on FROM activities a
              JOIN customers c ON c.id = a.customer_id
              JOIN stage_history h ON h.id = a.visit_id
             WHERE h.to_stage = 'customer-contact' AND a.status = 'open'
               AND a.title = 'Call the customer'
            UNION ALL
            SELECT c.email, 'email ' || o.template, h.moved_on FROM outbox o
              JOIN customers c ON c.id = o.customer_id
              JOIN stage_history h ON h.id = o.visit_id
             WHERE h.to_stage = 'customer-contact' AND o.template = 'welcome'
               AND o.status IN ('queued', 'held', 'failed', 'uncertain')
            """
        ).fetchall()
        replied = {
            (email, on)
            for email, on in conn.execute(
                "SELECT c.email, t.happened_on FROM touchpoints t "
                "JOIN customers c ON c.id = t.customer_id WHERE t.direction = 'inbound'"
            )
        }
        reasons = dict(
            conn.execute(
                "SELECT c.email, o.reason FROM outbox o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.template = 'welcome'"
            ).fetchall()
        )
    finally:
        conn.close()
    chased = [
        (email, what)
        for email, what, entered in waiting
        if any(who == email and on >= entered for who, on in replied)
    ]
    assert chased == []
    # the book has such a customer: Tom answered on the day he entered customer-contact
    assert reasons["tom.becker@example.com"] == "the customer replied"
    assert {email for email, _, _ in waiting} >= {"joana.ferreira@example.com"}  # no reply


def test_the_demo_replies_are_logged_as_log_does(run, demo):
    timeline = ok(run("customer", "show", "tom.becker@example.com")).stdout
    assert "1 queued email(s) not sent: the customer replied" in timeline
    assert "Dropped: t5 Call the customer (customer.replied)" in timeline


def test_customer_list_finds_a_stage_by_its_title(run, demo):
    by_id = json.loads(run("customer", "list", "--stage", "post-sales", "-f", "json").stdout)
    by_title = json.loads(
        run("customer", "list", "--stage", "Post-sales SUPPORT", "-f", "json").stdout
    )
    assert by_title == by_id and by_id
