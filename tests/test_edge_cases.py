"""Bad input and edge cases found in review: each failed before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import TODAY, db_dump


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def test_edit_refuses_a_taken_external_id_and_an_empty_key(run, workspace):
    ok(run("customer", "add", "a@example.com", "--external-id", "EXT1"))
    ok(run("customer", "add", "b@example.com"))
    ok(run("customer", "add", "--external-id", "ONLY9"))
    before = db_dump(workspace)
    taken = run("customer", "edit", "b@example.com", "--external-id", "EXT1")
    assert (taken.exit_code, taken.stderr) == (
        1,
        "Error: Another customer already has the external id 'EXT1'.\n",
    )
    empty = run("customer", "edit", "ONLY9", "--set", "external_id=")
    assert (empty.exit_code, empty.stderr) == (
        2,
        "Error: A customer needs an email or an external id; both cannot be empty.\n",
    )
    assert db_dump(workspace) == before


def test_markup_in_a_name_is_printed_literally_even_in_titles(run, workspace):
    ok(run("customer", "add", "m@example.com", "--name", "[/bold] oops [red]x"))
    shown = ok(run("customer", "show", "m@example.com"))
    assert "[/bold] oops [red]x" in shown.stdout


def test_export_to_a_missing_folder_is_an_error_not_a_traceback(run, workspace, tmp_path):
    for args in (("customers", "-o"), ("calendar",)):
        result = run("export", *args, str(tmp_path / "nowhere" / "x.out"))
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: Cannot write {tmp_path / 'nowhere' / 'x.out'}: ")


def test_dates_outside_the_calendar_are_usage_errors(run, workspace):
    ok(run("customer", "add", "a@example.com"))
    ok(run("enroll", "a@example.com", "after-sales"))
    far = run("snooze", "1", "--days", "99999999")
    assert far.exit_code == 2 and "outside the calendar" in far.stderr
    early = run("due", "--today", "0001-01-01")
    assert early.exit_code == 2 and "outside the years 1900 to 9000" in early.stderr


def test_init_with_a_bad_today_writes_nothing(run, tmp_path):
    result = run("init", str(tmp_path / "i2"), "--today", "2026-02-30")
    assert result.exit_code == 2
    assert not (tmp_path / "i2").exists()


def test_a_new_owner_reaches_the_customers_funnels(run, workspace):
    ok(run("customer", "add", "z@example.com", "--owner", "ana"))
    ok(run("enroll", "z@example.com", "support", "--stage", "post-sales"))
    ok(run("customer", "edit", "z@example.com", "--owner", "bruno"))
    moved = json.loads(ok(run("move", "z@example.com", "retention", "-f", "json")).stdout)
    assert moved["owner"] == "bruno"
    due = json.loads(ok(run("due", "--owner", "bruno", "--days", "120", "-f", "json")).stdout)
    assert {i["title"] for i in due} >= {"Hold the periodic success review"}


def test_a_back_dated_reply_does_not_cancel_a_later_email(run, workspace):
    ok(run("customer", "add", "late@example.com", "--owner", "ana"))
    ok(run("enroll", "late@example.com", "after-sales", "--stage", "customer-contact"))
    logged = json.loads(
        ok(
            run(
                "log",
                "late@example.com",
                "old note",
                "--channel",
                "email",
                "--direction",
                "inbound",
                "--on",
                "2026-01-05",
                "-f",
                "json",
            )
        ).stdout
    )
    assert logged["emails_skipped"] == 0 and logged["tasks_dropped"] == 0


def test_closing_before_the_stage_began_is_refused(run, workspace):
    ok(run("customer", "add", "w@example.com"))
    ok(run("enroll", "w@example.com", "support"))
    before = db_dump(workspace)
    result = run("won", "w@example.com", "--today", "2020-01-01")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: Cannot close on 2020-01-01: the customer entered onboarding on {TODAY}.\n"
    )
    assert db_dump(workspace) == before


def test_customers_in_a_renamed_stage_can_still_be_moved_out(run, workspace):
    ok(run("customer", "add", "r@example.com"))
    ok(run("enroll", "r@example.com", "after-sales", "--stage", "deployment"))
    path = workspace / "playbooks" / "after-sales.yaml"
    path.write_text(path.read_text().replace("id: deployment", "id: rollout"))
    ok(run("move", "r@example.com", "follow-up-30", "--funnel", "after-sales"))


def test_a_closed_pipe_is_not_a_failure(run, workspace, tmp_path):
    rows = "".join(
        f"c{n}@example.com,{'x' * 80}\n" for n in range(3000)
    )  # far more than a pipe holds
    (tmp_path / "many.csv").write_text("email,notes\n" + rows)
    ok(run("import", str(tmp_path / "many.csv")))
    funnelctl = Path(sys.executable).with_name("funnelctl")
    done = subprocess.run(
        f"'{funnelctl}' export customers | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
    )
    assert done.stdout.startswith("email,")
    assert "Traceback" not in done.stderr
    status = subprocess.run(
        f"set -o pipefail; '{funnelctl}' export customers | head -1 >/dev/null",
        shell=True,
        executable="/bin/bash",
        timeout=60,
    )
    assert status.returncode == 0


def test_a_draft_copy_of_a_workspace_funnel_validates(run, workspace, tmp_path):
    draft = tmp_path / "support-draft.yaml"
    draft.write_text((workspace / "playbooks" / "support.yaml").read_text())
    result = run("playbook", "validate", str(draft))
    assert result.exit_code == 0, result.stderr
    # a draft that names a play nobody defines is still caught, at its own line
    draft.write_text(draft.read_text().replace("play: onboarding-kickoff", "play: no-such-play"))
    broken = run("playbook", "validate", str(draft))
    assert broken.exit_code == 1
    assert f"{draft}:" in broken.stderr and "no play 'no-such-play'" in broken.stderr


# -- found in the second review -------------------------------------------------------------


def test_numbers_json_cannot_hold_are_refused(run, workspace):
    for args in (("--mrr", "1e400"), ("--seats", "99999999999999999999"), ("--seats", "²")):
        result = run("customer", "add", "n@example.com", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_failing_condition_fails_that_action_not_the_import(run, workspace, tmp_path):
    path = workspace / "playbooks" / "after-sales.yaml"
    path.write_text(
        path.read_text().replace('when: "not customer.owner"', 'when: "customer.mrr < 1000"')
    )
    (tmp_path / "n.csv").write_text("email\nn@example.com\n")
    result = run("import", str(tmp_path / "n.csv"), "--funnel", "after-sales", "-f", "json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(ok(run("customer", "show", "n@example.com", "-f", "json")).stdout)
    assert any(t["what"].startswith("FAILED: assign") for t in shown["timeline"])


def test_churn_rate_never_exceeds_one(run, workspace):
    ok(run("customer", "add", "old@example.com"))
    ok(run("enroll", "old@example.com", "support", "--today", "2025-10-01"))
    for n in range(3):
        ok(run("customer", "add", f"new{n}@example.com"))
        ok(run("enroll", f"new{n}@example.com", "support", "--today", "2026-01-10"))
        ok(run("churn", f"new{n}@example.com", "--today", "2026-02-01"))
    data = json.loads(
        ok(run("report", "--funnel", "support", "--since", "2026-01-01", "-f", "json")).stdout
    )
    (funnel,) = data["funnels"]
    # 3 churned out of 1 active at the start + 3 started in the period
    assert (
        funnel["churned"],
        funnel["active_at_start"],
        funnel["started"],
        funnel["churn_rate"],
    ) == (
        3,
        1,
        3,
        0.75,
    )


def test_importing_the_same_signals_twice_adds_nothing(run, workspace, tmp_path):
    ok(run("customer", "add", "s@example.com"))
    (tmp_path / "sig.csv").write_text(
        "customer,metric,value,date\ns@example.com,csat,4,2026-02-01\n"
    )
    first = json.loads(ok(run("signal", "import", str(tmp_path / "sig.csv"), "-f", "json")).stdout)
    again = json.loads(ok(run("signal", "import", str(tmp_path / "sig.csv"), "-f", "json")).stdout)
    assert (first["imported"], again["imported"], again["duplicates"]) == (1, 0, 1)


def test_report_html_to_a_missing_folder_is_an_error(run, workspace, tmp_path):
    result = run("report", "--html", str(tmp_path / "nowhere" / "r.html"))
    assert result.exit_code == 1 and result.stderr.startswith("Error: Cannot write ")


def test_tickets_resolved_the_day_they_opened_and_duplicate_ids(run, workspace, tmp_path):
    ok(run("customer", "add", "t@example.com"))
    good = tmp_path / "good.csv"
    good.write_text(
        "id,customer,opened_at,resolved_at,csat\nT1,t@example.com,2026-03-01T10:00,2026-03-01,inf\n"
    )
    bad = run("ticket", "import", str(good))
    assert bad.exit_code == 1 and "csat 'inf' is not a number" in bad.stderr
    good.write_text(
        "id,customer,opened_at,resolved_at\nT1,t@example.com,2026-03-01T10:00,2026-03-01\n"
    )
    ok(run("ticket", "import", str(good)))
    twice = tmp_path / "twice.csv"
    twice.write_text(
        "id,customer,opened_at\nT9,t@example.com,2026-03-01\nT9,t@example.com,2026-03-02\n"
    )
    result = run("ticket", "import", str(twice))
    assert result.exit_code == 1 and "ticket 'T9' is already on line 2" in result.stderr
