"""funnelctl export: CSV safe for spreadsheets, JSON for scripts, and a CSV that imports back."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import TODAY, write
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_import import KEYS

CUSTOMER_COLUMNS = [
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
]


def exported(run, *args):
    result = run("export", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def csv_rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def imported(run, *args):
    result = run("import", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def customers(run, *args):
    """The customers as stored, without the columns that say when or in which order."""
    rows = json.loads(exported(run, "customers", "--format", "json", *args))
    return [{k: c[k] for k in (*CUSTOMER_COLUMNS, "fields")} for c in rows]


@pytest.fixture
def awkward(run, workspace, tmp_path):
    """A small book full of values that break naive CSV and spreadsheet handling."""
    write(
        tmp_path / "people.csv",
        "email,name,company,phone,mrr,seats,signed_on,tags,notes,id\n"
        'ann@example.com,[bold]Ann[/bold],"=HYPERLINK(""http://evil"",""x"")",+351 912 000,'
        '1200.5,3,2026-01-31,"vip, beta","line one\nline two",CRM-17\n'
        'bob@example.com,"Lee, Bob ""Bobby""",@corp,-5,,,,,'
        '"-1+1",CRM-18\n'
        "cid@example.com,Cid,Plain Ltd,,0,,,,,\n",
    )
    assert imported(run, "people.csv")["inserted"] == 3
    return workspace


# -- CSV -------------------------------------------------------------------------------------------


def test_customers_csv_has_every_field_then_custom_fields(run, awkward):
    rows = csv_rows(exported(run, "customers"))
    assert rows[0] == [*CUSTOMER_COLUMNS, "id", "notes"]
    assert rows[1] == [
        "ann@example.com",
        "",
        "[bold]Ann[/bold]",
        '\'=HYPERLINK("http://evil","x")',
        "'+351 912 000",
        "",
        "",
        "1200.5",
        "3",
        "2026-01-31",
        "",
        "beta;vip",
        "CRM-17",
        "line one\nline two",
    ]
    assert rows[2] == [
        "bob@example.com",
        "",
        'Lee, Bob "Bobby"',
        "'@corp",
        "'-5",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "CRM-18",
        "'-1+1",
    ]
    assert rows[3] == [
        "cid@example.com",
        "",
        "Cid",
        "Plain Ltd",
        "",
        "",
        "",
        "0.0",
        "",
        "",
        "",
        "",
        "",
        "",
    ]


def test_every_formula_start_is_neutralised(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,company\na@example.com,=1+1\nb@example.com,+1\n"
        'c@example.com,-1\nd@example.com,@SUM(A1)\ne@example.com,"\'=kept"\n',
    )
    imported(run, "people.csv")
    rows = csv_rows(exported(run, "customers"))
    assert [r[3] for r in rows[1:]] == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'=kept"]


def test_custom_field_named_like_a_stored_column_is_exported_as_itself(run, awkward):
    rows = csv_rows(exported(run, "customers"))
    id_at = rows[0].index("id")
    assert [r[id_at] for r in rows[1:]] == ["CRM-17", "CRM-18", ""]


def test_export_to_a_file(run, awkward, tmp_path):
    result = run("export", "customers", "--output", "out.csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "Exported 3 customers row(s) to out.csv.\n"
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == exported(run, "customers")


def test_customers_json_keeps_types(run, awkward):
    rows = json.loads(exported(run, "customers", "--format", "json"))
    ann = rows[0]
    assert ann["email"] == "ann@example.com"
    assert ann["company"] == '=HYPERLINK("http://evil","x")'  # JSON is data, never neutralised
    assert (ann["mrr"], ann["seats"], ann["tags"]) == (1200.5, 3, ["beta", "vip"])
    assert ann["fields"] == {"id": "CRM-17", "notes": "line one\nline two"}
    assert ann["created_on"] == TODAY


@pytest.mark.parametrize(
    ("table", "first_columns"),
    [
        ("activities", ["customer", "id", "customer_id", "enrollment_id"]),
        ("history", ["customer", "id", "enrollment_id", "customer_id", "funnel", "kind"]),
        ("outbox", ["customer", "id", "customer_id", "enrollment_id"]),
        ("touchpoints", ["customer", "id", "customer_id", "channel"]),
        ("signals", ["customer", "id", "customer_id", "metric"]),
    ],
)
def test_empty_tables_still_export_their_header(run, workspace, table, first_columns):
    text = exported(run, table)
    header = text.splitlines()[0].split(",")
    assert header[: len(first_columns)] == first_columns
    assert text.count("\n") == 1
    assert exported(run, table, "--format", "json") == "[]\n"


def test_history_export_names_the_customer(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    imported(run, "people.csv", "--funnel", "after-sales")
    rows = list(csv.DictReader(io.StringIO(exported(run, "history"), newline="")))
    assert [
        (r["customer"], r["funnel"], r["kind"], r["to_stage"], r["moved_on"]) for r in rows
    ] == [("ann@example.com", "after-sales", "enroll", "demand-analysis", TODAY)]


def test_unknown_table_is_a_usage_error(run, workspace):
    result = run("export", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "'nope' is not one of" in result.stderr


# -- round trips ----------------------------------------------------------------------------------


def test_export_imports_back_unchanged(run, awkward, tmp_path):
    write(tmp_path / "more.csv", "external_id,name\nX-1,Only An Id\n")
    assert imported(run, "more.csv", "--key", "external_id")["inserted"] == 1
    (tmp_path / "out.csv").write_text(exported(run, "customers"), encoding="utf-8")
    # X-1 has only an external id: counted as without an email, on every import
    unchanged = dict.fromkeys(KEYS, 0) | {"unchanged": 4, "without_email": 1}
    assert imported(run, "out.csv") == unchanged
    assert imported(run, "out.csv", "--key", "external_id") == unchanged


def test_export_loads_into_a_fresh_workspace(run, awkward, tmp_path, monkeypatch):
    before = customers(run)
    (tmp_path / "out.csv").write_text(exported(run, "customers"), encoding="utf-8")
    assert run("init", str(tmp_path / "fresh")).exit_code == 0
    monkeypatch.setenv("FUNNELCTL_HOME", str(tmp_path / "fresh"))
    assert imported(run, "out.csv")["inserted"] == 3
    assert customers(run) == before


def test_a_stored_value_starting_with_a_quote_survives_the_round_trip(run, workspace, tmp_path):
    assert run("customer", "add", "ann@example.com", "--company", "'=not a formula").exit_code == 0
    (tmp_path / "out.csv").write_text(exported(run, "customers"), encoding="utf-8")
    assert imported(run, "out.csv")["unchanged"] == 1


# Text a CSV, a spreadsheet or a terminal may trip over. Names and companies are one line
# (the customer rules refuse line breaks there); custom fields may hold several lines.
_TRICKY = st.sampled_from(
    ['"', ",", ";", "=", "+", "-", "@", "'", "[b]", "[/]", " ", "é", "字", "🙂"]
)
_LINE = st.lists(
    st.one_of(_TRICKY, st.characters(blacklist_categories=("Cc", "Cs"))), max_size=12
).map("".join)
_LINES = st.lists(st.one_of(_LINE, st.sampled_from(["\n", "\r\n", "\t"])), max_size=4).map("".join)
_BOOK = st.lists(st.tuples(_LINE, _LINE, _LINES), min_size=1, max_size=6)


def _plain(text):
    # A value that starts with ' before a formula character is read as a neutralised cell
    # (that is what makes an export load back); the tests above cover it.
    return not text.strip().startswith("'")


@pytest.fixture
def empty_workspace(run, tmp_path):
    """A freshly initialised workspace to copy: init once, not twice per example."""
    root = tmp_path / "empty"
    assert run("init", str(root)).exit_code == 0
    return root


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(book=[("=SUM(A1)", '"Acme, Inc"', "two\nlines"), ("+351", "@home", "-1")])
@given(book=_BOOK)
def test_any_names_survive_export_and_import_into_a_fresh_workspace(
    run, tmp_path, empty_workspace, book
):
    assume(all(_plain(v) for row in book for v in row))
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        source, copy = base / "source", base / "copy"
        for root in (source, copy):
            shutil.copytree(empty_workspace, root)
        people = io.StringIO(newline="")
        writer = csv.writer(people, lineterminator="\n")
        writer.writerow(["email", "name", "company", "notes"])
        for i, row in enumerate(book):
            writer.writerow([f"c{i}@example.com", *row])
        write(base / "people.csv", people.getvalue())
        env = {"FUNNELCTL_HOME": str(source)}
        loaded = run("import", str(base / "people.csv"), "-f", "json", env=env)
        assert loaded.exit_code == 0, loaded.stderr
        original = customers_in(run, env)
        assert [
            (c["name"], c["company"] or "", c["fields"].get("notes", "")) for c in original
        ] == [tuple(v.strip() for v in row) for row in book]
        out = run("export", "customers", "-o", str(base / "out.csv"), env=env)
        assert out.exit_code == 0, out.stderr
        env = {"FUNNELCTL_HOME": str(copy)}
        again = run("import", str(base / "out.csv"), "-f", "json", env=env)
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout)["inserted"] == len(book)
        assert customers_in(run, env) == original
    finally:
        shutil.rmtree(base)


def customers_in(run, env):
    result = run("export", "customers", "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    return [{k: c[k] for k in (*CUSTOMER_COLUMNS, "fields")} for c in json.loads(result.stdout)]
