"""funnelctl import FILE.csv: the upsert, its counts, and every way a CSV can be bad.

Every failing import must leave the database exactly as it was: those tests
compare a full SQL dump of the database before and after.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

import pytest
from conftest import TODAY, write

KEYS = ["inserted", "updated", "unchanged", "rejected", "enrolled", "without_email"]


def counts(inserted=0, updated=0, unchanged=0, rejected=0, enrolled=0, without_email=0):
    values = (inserted, updated, unchanged, rejected, enrolled, without_email)
    return dict(zip(KEYS, values, strict=True))


def imported(run, *args, input=None):
    """Run an import that must succeed; return its JSON summary (checked for its exact keys)."""
    result = run("import", *args, "--format", "json", input=input)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert list(summary) == KEYS
    return summary


def book(run):
    """Every customer, keyed by email (or external id), as the JSON export gives them."""
    result = run("export", "customers", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {c["email"] or c["external_id"]: c for c in json.loads(result.stdout)}


def rejected(run, dump, workspace, *args, input=None):
    """Run an import that must fail as a whole; prove nothing changed; return the result."""
    before = dump(workspace)
    result = run("import", *args, input=input)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "\nError: " in "\n" + result.stderr  # (after --dry-run's column mapping)
    assert dump(workspace) == before
    return result


BAD_ROWS_HEAD = (
    "Error: people.csv: {n} bad row(s); nothing was imported "
    "(fix them, or pass --skip-bad FILE to import the good rows)\n"
)


# -- the happy path -------------------------------------------------------------------------


def test_json_summary_is_exactly_the_documented_shape(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    result = run("import", "people.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == counts(inserted=2)
    assert list(json.loads(result.stdout)) == KEYS
    assert result.stderr == ""


def test_summary_as_csv_and_table(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    as_csv = run("import", "people.csv", "--format", "csv", "--dry-run")
    assert as_csv.exit_code == 0, as_csv.stderr
    assert as_csv.stdout == (
        "inserted,updated,unchanged,rejected,enrolled,without_email\n1,0,0,0,0,0\n"
    )
    table = run("import", "people.csv")
    assert table.exit_code == 0, table.stderr
    assert "inserted" in table.stdout and "Import" in table.stdout


def test_every_documented_column_is_understood_without_mapping(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,name,company,phone,owner,plan,mrr,seats,signed_on,language,external_id,tags,industry\n"
        "Ann@Example.com,Ann Lee,Acme,+351 912 000 000,ana,growth,1200.50,12,2026-01-31,PT,"
        'crm-1,"vip, beta",Retail\n',
    )
    assert imported(run, "people.csv") == counts(inserted=1)
    ann = book(run)["ann@example.com"]
    assert {
        k: ann[k]
        for k in (
            "email",
            "external_id",
            "name",
            "company",
            "phone",
            "owner",
            "plan",
            "mrr",
            "seats",
            "signed_on",
            "language",
            "tags",
            "fields",
        )
    } == {
        "email": "ann@example.com",
        "external_id": "crm-1",
        "name": "Ann Lee",
        "company": "Acme",
        "phone": "+351 912 000 000",
        "owner": "ana",
        "plan": "growth",
        "mrr": 1200.5,
        "seats": 12,
        "signed_on": "2026-01-31",
        "language": "pt",
        "tags": ["beta", "vip"],
        "fields": {"industry": "Retail"},
    }
    assert ann["created_on"] == TODAY


def test_first_and_last_name_make_the_name(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "First Name,Last Name,E-mail\nAnn,Lee,ann@example.com\n,Solo,solo@example.com\n",
    )
    assert imported(run, "people.csv", "--map", "E-mail=email") == counts(inserted=2)
    customers = book(run)
    assert customers["ann@example.com"]["name"] == "Ann Lee"
    assert customers["solo@example.com"]["name"] == "Solo"
    assert customers["ann@example.com"]["fields"] == {}


def test_header_names_are_matched_loosely(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        " Email ,Signed On,MRR,External-ID\nann@example.com,2026-01-02,10,X\n",
    )
    assert imported(run, "people.csv") == counts(inserted=1)
    ann = book(run)["ann@example.com"]
    assert (ann["signed_on"], ann["mrr"], ann["external_id"]) == ("2026-01-02", 10.0, "X")


def test_map_renames_columns_to_fields_and_custom_fields(run, workspace, tmp_path):
    write(
        tmp_path / "crm.csv",
        "E-mail Address,Full Name,Account,Segment\nann@example.com,Ann Lee,Acme,SMB\n",
    )
    summary = imported(
        run,
        "crm.csv",
        "--map",
        "E-mail Address=email",
        "--map",
        "Full Name=name",
        "--map",
        "Account=company",
        "--map",
        "Segment=market segment",
    )
    assert summary == counts(inserted=1)
    ann = book(run)["ann@example.com"]
    assert (ann["name"], ann["company"]) == ("Ann Lee", "Acme")
    assert ann["fields"] == {"market segment": "SMB"}


def test_upsert_counts_inserted_updated_unchanged(run, workspace, tmp_path):
    write(
        tmp_path / "one.csv",
        "email,name,plan\nann@example.com,Ann,starter\nbob@example.com,Bob,growth\n",
    )
    assert imported(run, "one.csv") == counts(inserted=2)
    write(
        tmp_path / "two.csv",
        "email,name,plan\nANN@example.com,Ann,pro\nbob@example.com,Bob,growth\ncid@example.com,Cid,\n",
    )
    assert imported(run, "two.csv", "--today", "2026-03-05") == counts(
        inserted=1, updated=1, unchanged=1
    )
    customers = book(run)
    assert customers["ann@example.com"]["plan"] == "pro"
    assert customers["ann@example.com"]["updated_on"] == "2026-03-05"
    assert customers["bob@example.com"]["updated_on"] == TODAY
    assert len(customers) == 3
    shown = json.loads(run("customer", "show", "ann@example.com", "-f", "json").stdout)
    assert [e["what"] for e in shown["timeline"]] == [
        "Imported from one.csv line 2",
        "Updated from two.csv line 2: plan",
    ]
    assert imported(run, "two.csv") == counts(unchanged=3)


def test_blank_cells_on_update_leave_stored_values_unchanged(run, workspace, tmp_path):
    write(
        tmp_path / "full.csv",
        "email,name,company,mrr,tags,notes\nann@example.com,Ann,Acme,100,vip,keep me\n",
    )
    imported(run, "full.csv")
    write(
        tmp_path / "sparse.csv",
        "email,name,company,mrr,tags,notes,extra\nann@example.com,,,,,,new\n",
    )
    assert imported(run, "sparse.csv") == counts(updated=1)
    ann = book(run)["ann@example.com"]
    assert (ann["name"], ann["company"], ann["mrr"], ann["tags"]) == ("Ann", "Acme", 100.0, ["vip"])
    assert ann["fields"] == {"notes": "keep me", "extra": "new"}


def test_key_external_id_matches_and_may_change_the_email(run, workspace, tmp_path):
    write(tmp_path / "one.csv", "external_id,email,name\nX-1,old@example.com,Ann\n")
    assert imported(run, "one.csv", "--key", "external_id") == counts(inserted=1)
    write(tmp_path / "two.csv", "Customer ID,email,name\nX-1,new@example.com,Ann\n")
    summary = imported(run, "two.csv", "--key", "external_id", "--map", "Customer ID=external_id")
    assert summary == counts(updated=1)
    assert list(book(run)) == ["new@example.com"]


def test_external_ids_are_case_sensitive_like_the_database(run, workspace, tmp_path):
    # Salesforce-style ids differ only by case; the store keeps them apart, so must the file check.
    write(tmp_path / "people.csv", "external_id,name\n001aB,Ann\n001Ab,Bob\n")
    assert imported(run, "people.csv", "--key", "external_id") == counts(
        inserted=2, without_email=2
    )
    assert imported(run, "people.csv", "--key", "external_id") == counts(
        unchanged=2, without_email=2
    )


def test_a_row_without_the_key_falls_back_to_the_other_identifier(run, workspace, tmp_path):
    assert run("customer", "add", "--external-id", "X-9", "--name", "No Mail").exit_code == 0
    write(tmp_path / "people.csv", "email,external_id,plan\n,X-9,pro\nann@example.com,,starter\n")
    assert imported(run, "people.csv") == counts(inserted=1, updated=1, without_email=1)
    assert book(run)["X-9"]["plan"] == "pro"


def test_dry_run_writes_nothing_and_reports_counts(run, workspace, dump, tmp_path):
    imported(run, write(tmp_path / "one.csv", "email,plan\nann@example.com,starter\n").name)
    write(tmp_path / "two.csv", "email,plan\nann@example.com,pro\nbob@example.com,growth\n")
    before = dump(workspace)
    summary = imported(run, "two.csv", "--dry-run", "--funnel", "after-sales")
    assert summary == counts(inserted=1, updated=1, enrolled=2)
    assert dump(workspace) == before
    table = run("import", "two.csv", "--dry-run")
    assert table.exit_code == 0
    assert table.stderr == (
        "Columns of two.csv:\n  email -> email\n  plan -> plan\nDry run: nothing was written.\n"
    )
    assert dump(workspace) == before


def test_no_actions_enrolls_without_tasks_or_emails(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    summary = imported(run, "people.csv", "--funnel", "after-sales", "--no-actions")
    assert summary == counts(inserted=1, enrolled=1)
    assert book(run)["ann@example.com"]["enrollments"] == "after-sales:demand-analysis"
    assert run("export", "activities").stdout.count("\n") == 1  # the header only
    assert run("export", "outbox").stdout.count("\n") == 1


def test_enrolling_on_import_runs_the_entry_actions(workspace, tmp_path):
    """Core level: enrolling on import runs the entry actions with the workspace settings."""
    from funnelctl.importing import ImportOptions, import_customers
    from funnelctl.playbooks import load_library
    from funnelctl.store import Store
    from funnelctl.workspace import open_workspace

    ws = open_workspace(workspace, tmp_path)
    # carla owns cid already (an owner must be in the team); the others are handed out in turn
    settings = ws.settings._replace(team=("ana", "bruno", "carla"))
    library = load_library([ws.playbooks_dir], templates_dir=ws.templates_dir, team=settings.team)
    write(
        tmp_path / "new.csv",
        "email,owner\nann@example.com,\nbob@example.com,\ncid@example.com,carla\n",
    )
    write(tmp_path / "quiet.csv", "email\ndee@example.com\n")
    store = Store.open(ws.db_path)
    try:
        result = import_customers(
            store,
            library,
            tmp_path / "new.csv",
            ImportOptions(funnel="after-sales"),
            TODAY,
            settings=settings,
        )
        assert result.summary() == counts(inserted=3, enrolled=3)
        quiet = import_customers(
            store,
            library,
            tmp_path / "quiet.csv",
            ImportOptions(funnel="after-sales", run_actions=False),
            TODAY,
            settings=settings,
        )
        assert quiet.summary() == counts(inserted=1, enrolled=1)
        tasks = store.rows(
            "SELECT c.email, a.title, a.owner, a.due_on FROM activities a "
            "JOIN customers c ON c.id = a.customer_id ORDER BY a.id"
        )
    finally:
        store.close()
    assert [tuple(t.values()) for t in tasks] == [
        ("ann@example.com", "Analyze customer demand", "ana", TODAY),
        ("bob@example.com", "Analyze customer demand", "bruno", TODAY),
        ("cid@example.com", "Analyze customer demand", "carla", TODAY),
    ]


def test_import_command_runs_entry_actions(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    assert imported(run, "people.csv", "--funnel", "after-sales") == counts(inserted=1, enrolled=1)
    assert "Analyze customer demand" in run("export", "activities").stdout


def test_header_only_file_imports_nothing(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,name\n")
    assert imported(run, "people.csv") == counts()


def test_blank_lines_are_skipped_but_counted_for_line_numbers(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email,name\n\nann@example.com,Ann\n,\n\nnot-an-email,Bob\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=1) + (
        "  people.csv:6: 'not-an-email' is not a valid email address\n"
    )


def test_five_thousand_rows(run, workspace, tmp_path):
    lines = ["email,name,mrr,region"]
    lines += [f"user{i}@example.com,User {i},{i}.5,r{i % 7}" for i in range(5000)]
    write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    assert imported(run, "big.csv") == counts(inserted=5000)
    lines[4001] = "user4000@example.com,User 4000,1.5,changed"
    write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    assert imported(run, "big.csv") == counts(updated=1, unchanged=4999)


# -- funnels: enrolling while importing --------------------------------------------------------


def test_funnel_enrolls_imported_customers_at_the_first_stage(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    assert imported(run, "people.csv", "--funnel", "after-sales") == counts(inserted=2, enrolled=2)
    listed = run(
        "customer", "list", "--funnel", "after-sales", "--stage", "demand-analysis", "-f", "json"
    )
    assert listed.exit_code == 0, listed.stderr
    assert [(c["email"], c["enrollments"]) for c in json.loads(listed.stdout)] == [
        ("ann@example.com", "after-sales:demand-analysis"),
        ("bob@example.com", "after-sales:demand-analysis"),
    ]
    shown = run("customer", "show", "ann@example.com")
    assert shown.exit_code == 0, shown.stderr
    assert "Enrolled in after-sales at demand-analysis (imported from people.csv)" in shown.stdout
    # importing again enrolls nobody twice
    assert imported(run, "people.csv", "--funnel", "after-sales") == counts(unchanged=2)


def test_stage_option_places_new_customers(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    summary = imported(run, "people.csv", "--funnel", "after-sales", "--stage", "deployment")
    assert summary == counts(inserted=1, enrolled=1)
    assert book(run)["ann@example.com"]["enrollments"] == "after-sales:deployment"


def test_funnel_enrolls_existing_customers_new_to_it_but_never_closed_ones(
    run, workspace, tmp_path
):
    import sqlite3

    write(tmp_path / "people.csv", "email\nann@example.com\nbob@example.com\n")
    imported(run, "people.csv")
    imported(
        run, write(tmp_path / "bob.csv", "email\nbob@example.com\n").name, "--funnel", "after-sales"
    )
    conn = sqlite3.connect(workspace / "funnel.db")
    with conn:
        conn.execute("UPDATE enrollments SET status = 'churned', closed_on = ?", [TODAY])
    conn.close()
    assert imported(run, "people.csv", "--funnel", "after-sales") == counts(unchanged=2, enrolled=1)
    listed = json.loads(run("customer", "list", "--funnel", "after-sales", "-f", "json").stdout)
    assert [c["email"] for c in listed] == ["ann@example.com"]


def test_funnel_stage_and_entered_on_columns_place_customers_mid_funnel(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,funnel,stage,entered_on\n"
        "ann@example.com,after-sales,follow-up-30,2026-01-15\n"
        "bob@example.com,,,\n"
        "cid@example.com,support,,\n",
    )
    summary = imported(run, "people.csv", "--funnel", "after-sales", "--stage", "deployment")
    assert summary == counts(inserted=3, enrolled=3)
    customers = book(run)
    assert customers["ann@example.com"]["enrollments"] == "after-sales:follow-up-30"
    assert customers["bob@example.com"]["enrollments"] == "after-sales:deployment"
    assert customers["cid@example.com"]["enrollments"] == "support:onboarding"
    history = json.loads(run("export", "history", "-f", "json").stdout)
    assert [(h["customer_id"], h["to_stage"], h["moved_on"], h["by"]) for h in history] == [
        (1, "follow-up-30", "2026-01-15", "import"),
        (2, "deployment", TODAY, "import"),
        (3, "onboarding", TODAY, "import"),
    ]


def test_unknown_funnel_or_stage_option_fails_before_reading(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    no_funnel = rejected(run, dump, workspace, "people.csv", "--funnel", "nope")
    assert no_funnel.stderr.startswith("Error: No funnel 'nope' in the playbooks (funnels: ")
    no_stage = rejected(
        run, dump, workspace, "people.csv", "--funnel", "after-sales", "--stage", "x"
    )
    assert no_stage.stderr.startswith("Error: Funnel 'after-sales' has no stage 'x' (stages: ")


def test_bad_placements_are_bad_rows(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,funnel,stage,entered_on\n"
        "a@example.com,nope,,\n"
        "b@example.com,after-sales,nowhere,\n"
        "c@example.com,,demand-analysis,\n"
        "d@example.com,after-sales,,2026-03-03\n"
        "e@example.com,after-sales,,03/01/2026\n"
        f"f@example.com,after-sales,,{TODAY}\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr.startswith(BAD_ROWS_HEAD.format(n=5))
    lines = result.stderr.splitlines()[1:]
    assert lines[0].startswith("  people.csv:2: no funnel 'nope' (funnels: ")
    assert lines[1:] == [
        "  people.csv:3: funnel 'after-sales' has no stage 'nowhere'",
        "  people.csv:4: stage or entered_on is given without a funnel",
        f"  people.csv:5: entered_on 2026-03-03 is after today ({TODAY})",
        "  people.csv:6: entered_on: '03/01/2026' is not a date in the form YYYY-MM-DD "
        "(or pass --date-format, e.g. %d/%m/%Y)",
    ]


# -- usage errors: exit 2, nothing written ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "deployment"], "Error: --stage needs --funnel\n"),
        (["--key", "phone"], "Error: --key must be email or external_id\n"),
        (["--map", "nothing"], "Error: --map 'nothing' must be written as 'CSV column=field'\n"),
        (["--map", "=email"], "Error: --map '=email' must be written as 'CSV column=field'\n"),
        (
            ["--map", "E-mail Address=email"],
            "Error: --map names column(s) 'E-mail Address' that people.csv does not have "
            "(its columns: email, name)\n",
        ),
        (
            ["--encoding", "klingon"],
            "Error: --encoding 'klingon' is not an encoding Python knows\n",
        ),
        (["--delimiter", "|"], "Error: --delimiter must be ',', ';' or a tab ('\\t')\n"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(run, workspace, dump, tmp_path, args, message):
    write(tmp_path / "people.csv", "email,name\nann@example.com,Ann\n")
    before = dump(workspace)
    result = run("import", "people.csv", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)
    assert dump(workspace) == before


def test_missing_file(run, workspace, dump):
    result = rejected(run, dump, workspace, "nowhere.csv")
    assert result.stderr == "Error: nowhere.csv: no such file\n"


# -- bad rows: all listed with FILE:LINE, nothing written ------------------------------------


def test_every_bad_row_is_listed_and_nothing_is_written(run, workspace, dump, tmp_path):
    imported(run, write(tmp_path / "seed.csv", "email,name\nkeep@example.com,Keep\n").name)
    write(
        tmp_path / "people.csv",
        "email,name,mrr,seats,signed_on,language\n"
        "good@example.com,Good,10,1,2026-01-01,en\n"
        "ann-at-example,Ann,,,,\n"
        "bob@example.com,Bob,lots,,,\n"
        "cid@example.com,Cid,,2.5,,\n"
        "dee@example.com,Dee,,,2026-02-30,\n"
        "eve@example.com,Eve,,,,english\n"
        "fay@example.com,Fay\n"
        ",Nameless,,,,\n"
        "keep@example.com,Changed,,,,\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=7) + (
        "  people.csv:3: 'ann-at-example' is not a valid email address\n"
        "  people.csv:4: mrr 'lots' is not an amount with a decimal point (write e.g. 1,250.50)\n"
        "  people.csv:5: seats '2.5' is not a whole number\n"
        "  people.csv:6: signed_on: '2026-02-30' is not a valid date in the form %Y-%m-%d "
        "(or pass --date-format, e.g. %d/%m/%Y)\n"
        "  people.csv:7: language 'english' is not a language code such as en or pt\n"
        "  people.csv:8: 2 values but the header has 6 columns\n"
        "  people.csv:9: the email is empty\n"
    )


def test_bad_rows_are_capped_at_twenty(run, workspace, dump, tmp_path):
    rows = [f"bad{i}" for i in range(25)]
    write(tmp_path / "people.csv", "email\nok@example.com\n" + "\n".join(rows) + "\n")
    result = rejected(run, dump, workspace, "people.csv")
    lines = result.stderr.splitlines()
    assert lines[0] == BAD_ROWS_HEAD.format(n=25).rstrip("\n")
    assert lines[1] == "  people.csv:3: 'bad0' is not a valid email address"
    assert lines[20] == "  people.csv:22: 'bad19' is not a valid email address"
    assert lines[21:] == ["  … and 5 more bad row(s)"]


def test_line_numbers_count_physical_lines_after_a_quoted_newline(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,name,notes\r\nann@example.com,Ann,"two\r\nlines"\r\nbob@example.com,Bob,"a\nb\nc"\r\n'
        "bad,Cid,x\r\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr.endswith("\n  people.csv:7: 'bad' is not a valid email address\n")


def test_ambiguous_dates_are_rejected_unless_a_format_is_given(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email,signed_on\nann@example.com,03/04/2026\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr.endswith(
        "  people.csv:2: signed_on: '03/04/2026' is not a date in the form YYYY-MM-DD "
        "(or pass --date-format, e.g. %d/%m/%Y)\n"
    )
    assert imported(run, "people.csv", "--date-format", "%d/%m/%Y") == counts(inserted=1)
    assert book(run)["ann@example.com"]["signed_on"] == "2026-04-03"


def test_date_format_applies_to_entered_on(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv", "email,funnel,entered_on\nann@example.com,after-sales,15/01/2026\n"
    )
    assert imported(run, "people.csv", "--date-format", "%d/%m/%Y") == counts(
        inserted=1, enrolled=1
    )
    history = json.loads(run("export", "history", "-f", "json").stdout)
    assert [h["moved_on"] for h in history] == ["2026-01-15"]


def test_same_customer_twice_names_the_first_line(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,name\nann@example.com,Ann\nbob@example.com,Bob\nANN@Example.COM,Ann again\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=1) + (
        "  people.csv:4: email 'ann@example.com' is already on line 2 of this file\n"
    )


def test_same_external_id_twice_is_a_bad_row_not_a_crash(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email,external_id\nann@example.com,X-1\nbob@example.com,X-1\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=1) + (
        "  people.csv:3: external_id 'X-1' is already on line 2 of this file\n"
    )


def test_an_identifier_held_by_another_customer_is_a_bad_row(run, workspace, dump, tmp_path):
    write(tmp_path / "seed.csv", "email,external_id\nann@example.com,X-1\nbob@example.com,X-2\n")
    imported(run, "seed.csv")
    write(
        tmp_path / "people.csv",
        "email,external_id\nnew@example.com,X-1\nbob@example.com,X-1\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=2) + (
        "  people.csv:2: external_id 'X-1' already belongs to customer #1 (ann@example.com)\n"
        "  people.csv:3: external_id 'X-1' is already on line 2 of this file\n"
    )
    write(tmp_path / "by-id.csv", "external_id,email\nX-2,ann@example.com\n")
    result = rejected(run, dump, workspace, "by-id.csv", "--key", "external_id")
    assert result.stderr.endswith(
        "  by-id.csv:2: email 'ann@example.com' already belongs to customer #1 (ann@example.com)\n"
    )


def test_a_duplicate_is_reported_even_when_its_first_row_is_bad(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email,seats\nann@example.com,many\nann@example.com,3\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=2) + (
        "  people.csv:2: seats 'many' is not a whole number\n"
        "  people.csv:3: email 'ann@example.com' is already on line 2 of this file\n"
    )


# -- the header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("email,name,Notes,Notes", "column 'Notes' appears twice"),
        ("email,Email,name,x", "columns 'email' and 'Email' both give 'email'"),
        (
            "mail,name,a,b",
            "there is no email column (columns: mail, name, a, b); "
            "rename one with --map 'COLUMN=email'",
        ),
    ],
)
def test_unusable_headers(run, workspace, dump, tmp_path, header, problem):
    write(tmp_path / "people.csv", f"{header}\nann@example.com,Ann,1,2\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == f"Error: people.csv:1: the header is not usable: {problem}\n"


def test_empty_file(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "")
    result = rejected(run, dump, workspace, "people.csv")
    assert (
        result.stderr
        == "Error: people.csv:1: the file is empty; the first line must be the header\n"
    )


# -- encodings and delimiters ------------------------------------------------------------------


def test_utf8_bom_from_excel(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "\ufeffemail,name\r\nann@example.com,Zoë\r\n")
    assert imported(run, "people.csv") == counts(inserted=1)
    assert book(run)["ann@example.com"]["name"] == "Zoë"


@pytest.mark.parametrize(
    "bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
)
def test_utf16_with_bom(run, workspace, tmp_path, bom, codec):
    text = "email\tname\r\nann@example.com\tŁucja\r\nbad\tX\r\n"
    (tmp_path / "people.csv").write_bytes(bom + text.encode(codec))
    result = run("import", "people.csv", "--skip-bad", "bad.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == counts(inserted=1, rejected=1)
    assert book(run)["ann@example.com"]["name"] == "Łucja"
    assert result.stderr.endswith("  people.csv:3: 'bad' is not a valid email address\n")


def test_utf16_without_bom_gets_a_hint(run, workspace, dump, tmp_path):
    (tmp_path / "people.csv").write_bytes("email,name\nann@example.com,Ann\n".encode("utf-16-le"))
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:1: the header holds NUL characters: the file looks like UTF-16 "
        "without a byte-order mark (try --encoding utf-16-le)\n"
    )
    assert imported(run, "people.csv", "--encoding", "utf-16-le") == counts(inserted=1)


def test_latin1_needs_encoding_and_the_error_names_the_line(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,name\nann@example.com,Ann\nbob@example.com,Bob\njose@example.com,José\n",
        encoding="latin-1",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:4: the file is not valid UTF-8 text; pass its encoding, "
        "e.g. --encoding cp1252 (Excel on Windows; it reads latin-1 text too)\n"
    )
    assert imported(run, "people.csv", "--encoding", "latin-1") == counts(inserted=3)
    assert book(run)["jose@example.com"]["name"] == "José"


def test_bad_bytes_far_into_a_file_name_their_line(run, workspace, dump, tmp_path):
    rows = "".join(f"user{i}@example.com,User {i}\n" for i in range(2000))
    (tmp_path / "people.csv").write_bytes(
        ("email,name\n" + rows).encode() + b"late@example.com,Ren\xe9e\n"
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr.startswith("Error: people.csv:2002: the file is not valid UTF-8 text;")


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiter_is_sniffed_from_the_header(run, workspace, tmp_path, sep):
    text = sep.join(["email", "name", "tags"]) + "\n"
    text += sep.join(["ann@example.com", '"Lee, Ann; Dr"', '"vip,beta"']) + "\n"
    write(tmp_path / "people.csv", text)
    assert imported(run, "people.csv") == counts(inserted=1)
    ann = book(run)["ann@example.com"]
    assert (ann["name"], ann["tags"]) == ("Lee, Ann; Dr", ["beta", "vip"])


def test_delimiter_option_overrides_the_sniffing(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email;name,with comma;x,y\nann@example.com;Ann;1,2\n")
    assert imported(run, "people.csv", "--delimiter", ";") == counts(inserted=1)
    assert book(run)["ann@example.com"]["fields"] == {"name,with comma": "Ann", "x,y": "1,2"}


# -- malformed CSV -------------------------------------------------------------------------------


def test_ragged_rows(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email,name\nann@example.com,Ann,extra\nbob@example.com\n")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=2) + (
        "  people.csv:2: 3 values but the header has 2 columns\n"
        "  people.csv:3: 1 values but the header has 2 columns\n"
    )


def test_unterminated_quote_in_a_row(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,name\nann@example.com,Ann\nbob@example.com,"Bob\ncid@example.com,Cid\n',
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:3: a quoted value that starts on this line is never closed "
        '(an unterminated " quote)\n'
    )


def test_unterminated_quote_in_the_header(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", '"email,name\nann@example.com,Ann\n')
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:1: a quoted value that starts on this line is never closed "
        '(an unterminated " quote)\n'
    )


def test_stray_quote_inside_a_value(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", 'email,name\nann@example.com,"Ann" Lee\n')
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == "Error: people.csv:2: the CSV is malformed: ',' expected after '\"'\n"


# -- awkward values: stored as is --------------------------------------------------------------


def test_markup_newlines_and_formulas_are_stored_as_is(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,name,company,notes\nann@example.com,[bold red]Ann[/],=HYPERLINK("http://x"),'
        '"first line\nsecond line\r\nthird"\n',
    )
    assert imported(run, "people.csv") == counts(inserted=1)
    ann = book(run)["ann@example.com"]
    assert ann["name"] == "[bold red]Ann[/]"
    assert ann["company"] == '=HYPERLINK("http://x")'
    assert ann["fields"] == {"notes": "first line\nsecond line\r\nthird"}
    listed = run("customer", "list")
    assert "[bold red]Ann[/]" in listed.stdout


def test_control_characters_other_than_line_breaks_are_rejected(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,name,notes\nann@example.com,Ann,bell\x07\nbob@example.com,"B\nob",x\n',
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == BAD_ROWS_HEAD.format(n=2) + (
        "  people.csv:2: notes contains a control character\n"
        "  people.csv:3: name contains a line break or control character\n"
    )


HOSTILE = (
    "email,name,company,notes\n"
    "rita@example.com,Rita \u202eexe.txt,Acme,x\n"  # 2: shows as "Rita txt.exe"
    "eve@example.com,Eve \x9b2J,Acme,x\n"  # 3: C1 CSI, a terminal escape on some terminals
    f"long@example.com,Lou,{'C' * 301},x\n"  # 4: a company pasted 301 characters long
    f"{'a' * 250}@example.com,Al,Acme,x\n"  # 5: longer than SMTP allows an address
    "iso@example.com,Iso,Acme,evil\u2067note\n"  # 6: a direction isolate in a custom field
    f"ok@example.com,{'N' * 300},{'C' * 300},fine\n"  # 7: 300 characters: kept
)


@pytest.mark.parametrize("skip_bad", [False, True], ids=["set-based", "row by row"])
def test_a_hostile_name_is_refused_with_its_line(run, workspace, dump, tmp_path, skip_bad):
    write(tmp_path / "people.csv", HOSTILE)
    problems = [
        "people.csv:2: name contains a text-direction control (U+202E), which would show it as "
        "other text than it holds",
        "people.csv:3: name contains a line break or control character",
        "people.csv:4: company is 301 characters long: 300 at most (it starts 'CCCCCCCCCCCCC",
        f"people.csv:5: '{'a' * 250}@example.com' is not a valid email address",
        "people.csv:6: notes contains a control character",
    ]
    if not skip_bad:
        result = rejected(run, dump, workspace, "people.csv")
        assert result.stderr.startswith(BAD_ROWS_HEAD.format(n=5))
        lines = result.stderr.splitlines()[1:]
    else:
        assert imported(run, "people.csv", "--skip-bad", "rejects.csv")["inserted"] == 1
        assert list(book(run)) == ["ok@example.com"]
        with open(tmp_path / "rejects.csv", newline="", encoding="utf-8") as rejects:
            reasons = [row["funnelctl_reason"] for row in csv.DictReader(rejects)]
        lines = [
            f"people.csv:{n}: {reason}" for n, reason in zip(range(2, 7), reasons, strict=True)
        ]
    assert len(lines) == len(problems), lines
    for line, problem in zip(lines, problems, strict=True):
        assert line.strip().startswith(problem), line


def test_a_hostile_name_typed_by_hand_is_refused(run, workspace, dump):
    before = dump(workspace)
    added = run("customer", "add", "rita@example.com", "--name", "Rita \u202eexe.txt")
    assert added.exit_code == 2
    assert "text-direction control (U+202E)" in added.stderr
    assert dump(workspace) == before


def test_cells_neutralised_by_an_export_are_restored(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,phone,company,notes,plan\n'-dash@example.com,'+351 912,'=SUM(A1),'@home,'plain\n",
    )
    assert imported(run, "people.csv") == counts(inserted=1)
    dash = book(run)["-dash@example.com"]
    assert (dash["phone"], dash["company"], dash["fields"], dash["plan"]) == (
        "+351 912",
        "=SUM(A1)",
        {"notes": "@home"},
        "'plain",
    )


# -- --skip-bad ---------------------------------------------------------------------------------


def test_skip_bad_imports_good_rows_and_writes_the_rejected_ones(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,name,notes\nann@example.com,Ann,ok\nbad-one,Bob,"multi\nline"\ncid@example.com,Cid\n'
        "dee@example.com,Dee,fine\n",
    )
    result = run("import", "people.csv", "--skip-bad", "rejects.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == counts(inserted=2, rejected=2)
    assert result.stderr == (
        "Kept as custom fields: notes (to read one as funnelctl's name, company or email: "
        "--map 'notes=name').\n"
        "2 bad row(s) written to rejects.csv:\n"
        "  people.csv:3: 'bad-one' is not a valid email address\n"
        "  people.csv:5: 2 values but the header has 3 columns\n"
    )
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8") == (
        "email,name,notes,funnelctl_reason\n"
        "bad-one,Bob,\"multi\nline\",'bad-one' is not a valid email address\n"
        "cid@example.com,Cid,,2 values but the header has 3 columns\n"
    )
    assert sorted(book(run)) == ["ann@example.com", "dee@example.com"]


def test_a_fixed_rejects_file_imports_again(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,seats\nann@example.com,two\nbob@example.com,x\n")
    result = run("import", "people.csv", "--skip-bad", "rejects.csv", "-f", "json")
    assert json.loads(result.stdout) == counts(rejected=2)
    fixed = (tmp_path / "rejects.csv").read_text().replace(",two,", ",2,")
    write(tmp_path / "fixed.csv", fixed)
    again = run("import", "fixed.csv", "--skip-bad", "rejects2.csv", "-f", "json")
    assert json.loads(again.stdout) == counts(inserted=1, rejected=1)
    assert (tmp_path / "rejects2.csv").read_text() == (
        "email,seats,funnelctl_reason\nbob@example.com,x,seats 'x' is not a whole number\n"
    )


def test_a_european_files_rejects_keep_its_form_and_import_again_once_fixed(
    run, workspace, tmp_path
):
    # Excel in Portugal or Germany: ';' between cells, decimal commas, a BOM
    (tmp_path / "people.csv").write_bytes(
        "\ufeffemail;name;mrr\n"
        "ana@example.com;Ana;1.234,50\n"
        "joão@;João;99,00\n"
        "rui@example.com;@SUM(A1);12,5x\n".encode()
    )
    result = run("import", "people.csv", "--skip-bad", "rejects.csv", "-f", "json")
    assert json.loads(result.stdout) == counts(inserted=1, rejected=2)
    rejects = (tmp_path / "rejects.csv").read_bytes()
    # the same form, and a cell a spreadsheet would run is written as export writes it
    assert rejects.decode() == (
        "\ufeffemail;name;mrr;funnelctl_reason\n"
        "joão@;João;99,00;'joão@' is not a valid email address\n"
        "rui@example.com;'@SUM(A1);12,5x;mrr '12,5x' is not an amount with a decimal comma "
        "(write e.g. 1.250,50)\n"
    )
    fixed = rejects.decode().replace("joão@;", "joao@example.com;").replace("12,5x", "12,50")
    (tmp_path / "fixed.csv").write_bytes(fixed.encode())
    again = run("import", "fixed.csv", "-f", "json")
    assert json.loads(again.stdout) == counts(inserted=2), again.stderr
    mrr = {k: (c["name"], c["mrr"]) for k, c in book(run).items()}
    assert mrr["joao@example.com"] == ("João", 99.0)
    assert mrr["rui@example.com"] == ("@SUM(A1)", 12.5)


def test_rejects_keep_a_quoted_cell_and_a_legacy_encoding_as_read(run, workspace, tmp_path):
    # an earlier export's neutralised phone ('+49…) and Windows-1252 text (Excel on Windows)
    (tmp_path / "people.csv").write_bytes(
        "email,name,phone\nbad-one,Zoë Brandt,'+49 30 2\nzoe@example.com,Zoë,'+49 30 2\n".encode(
            "cp1252"
        )
    )
    result = run("import", "people.csv", "--encoding", "cp1252", "--skip-bad", "r.csv")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r.csv").read_bytes() == (
        "email,name,phone,funnelctl_reason\n"
        "bad-one,Zoë Brandt,'+49 30 2,'bad-one' is not a valid email address\n"
    ).encode("cp1252")
    fixed = (tmp_path / "r.csv").read_bytes().replace(b"bad-one,", b"zb@example.com,")
    (tmp_path / "fixed.csv").write_bytes(fixed)
    assert run("import", "fixed.csv", "--encoding", "cp1252").exit_code == 0
    people = book(run)
    assert (people["zb@example.com"]["name"], people["zb@example.com"]["phone"]) == (
        "Zoë Brandt",
        people["zoe@example.com"]["phone"],  # as the row imported directly: +49 30 2
    )


def test_skip_bad_exits_1_when_every_row_was_refused(run, workspace, tmp_path):
    """A client's export in a new date format: every row refused. A cron script must not
    read that as success; some rows refused and some imported stays a success."""
    write(tmp_path / "people.csv", "email,signed_on\nann@example.com,15/01/2024\nbob@x\n")
    result = run("import", "people.csv", "--skip-bad", "rejects.csv", "-f", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == counts(rejected=2)
    assert result.stderr.endswith(
        "Error: No row of people.csv was imported: all 2 were refused; fix them in "
        "rejects.csv and import that file.\n"
    )
    assert (tmp_path / "rejects.csv").exists()
    dry = run("import", "people.csv", "--skip-bad", "r2.csv", "--dry-run", "-f", "json")
    assert dry.exit_code == 1
    assert dry.stderr.endswith(
        "Error: No row of people.csv would be imported: all 2 would be refused.\n"
    )
    write(tmp_path / "mixed.csv", "email\nann@example.com\nbob@x\n")
    assert run("import", "mixed.csv", "--skip-bad", "r3.csv").exit_code == 0


def test_skip_bad_with_dry_run_writes_no_file(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\nbad\n")
    before = dump(workspace)
    result = run("import", "people.csv", "--skip-bad", "rejects.csv", "--dry-run", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == counts(inserted=1, rejected=1)
    assert dump(workspace) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "people.csv", "ws"]
    assert "\n1 bad row(s) would be written to rejects.csv:\n" in result.stderr


def test_skip_bad_leaves_no_file_when_the_import_fails(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", 'email,name\nann@example.com,Ann\nbob@example.com,"Bob\n')
    result = rejected(run, dump, workspace, "people.csv", "--skip-bad", "rejects.csv")
    assert result.stderr.startswith("Error: people.csv:3: a quoted value")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "people.csv", "ws"]


def test_skip_bad_into_a_missing_folder(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    result = rejected(run, dump, workspace, "people.csv", "--skip-bad", "no/such/rejects.csv")
    assert result.stderr.startswith(
        "Error: Cannot write the rejected rows to no/such/rejects.csv: "
    )


def test_quoted_header_and_nul_bytes_end_in_an_error_not_a_crash(run, workspace, tmp_path: Path):
    # files that once crashed: each must end in an Error: line naming the file, exit 1
    cases = {
        "quote.csv": '"email\n',
        "nul.csv": "email,name\nann@example.com,A\x00nn\n",
    }
    for name, text in cases.items():
        write(tmp_path / name, text)
        result = run("import", name)
        assert result.exit_code == 1, name
        assert result.stderr.startswith(f"Error: {name}:"), result.stderr
        assert "Traceback" not in result.stderr


def test_an_overlong_value_is_reported_as_too_long_not_as_a_quote(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,name,notes\nann@example.com,Ann,short\nbob@example.com,Bob," + "x" * 200_000 + "\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:3: the value in column 3 is 200,000 characters long, more than the "
        "131,072 a CSV value may hold; shorten it\n"
    )


def test_a_quote_never_closed_over_a_long_file_is_still_an_unterminated_quote(
    run, workspace, dump, tmp_path
):
    write(
        tmp_path / "people.csv",
        'email,name\nann@example.com,Ann\nbob@example.com,"Bob\n' + "cid@example.com,Cid\n" * 9000,
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:3: a quoted value that starts on this line is never closed "
        '(an unterminated " quote)\n'
    )


def test_a_long_quoted_value_over_several_lines_is_too_long_not_unclosed(
    run, workspace, dump, tmp_path
):
    notes = ("x" * 1000 + "\n") * 200  # 200 lines, 200,200 characters, quoted and closed
    write(tmp_path / "people.csv", f'email,notes\nann@example.com,"{notes}"\nbob@example.com,ok\n')
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:2: the value in column 2 is 200,200 characters long, more than the "
        "131,072 a CSV value may hold; shorten it\n"
    )


def test_skip_bad_on_a_full_disk_fails_the_import_and_changes_nothing(
    run, workspace, dump, tmp_path, small_disk
):
    from conftest import fill

    disk = small_disk(64)
    fill(disk)
    rows = "".join(f"c{n}@example.com\n" for n in range(50))
    write(tmp_path / "people.csv", "email\n" + rows + "not-an-email\n")
    before = dump(workspace)

    result = run("import", str(tmp_path / "people.csv"), "--skip-bad", str(disk / "bad.csv"))

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: Cannot write {disk / 'bad.csv'}: the disk is full. Free some space and try "
        "again.\n"
    )
    assert dump(workspace) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_columns_kept_as_custom_fields_are_named(run, workspace, tmp_path):
    """A client's export with Portuguese headers: Nome and Empresa are not name and
    company. Without a dry run nothing said where they went; now the import names them."""
    write(tmp_path / "clientes.csv", "email;Nome;Empresa\nana@example.com;Ana;Costa Lda\n")
    result = run("import", "clientes.csv", "-f", "json")
    assert result.exit_code == 0
    assert result.stderr == (
        "Kept as custom fields: Nome, Empresa (to read one as funnelctl's name, company or "
        "email: --map 'Nome=name').\n"
    )
    assert book(run)["ana@example.com"]["fields"] == {"Nome": "Ana", "Empresa": "Costa Lda"}
