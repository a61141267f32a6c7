"""funnelctl import with the files people actually have: exports of HubSpot, Pipedrive,
Salesforce reports, Google Contacts, Excel and Numbers, with their amounts, headers,
footers and encodings (issue 14).

Every fixture is built here, shaped like the real export (its column names); every
failing import must leave the database exactly as it was.
"""

from __future__ import annotations

import json

import pytest
from conftest import write
from test_import import BAD_ROWS_HEAD as HEAD
from test_import import book, imported, rejected

# -- amounts ----------------------------------------------------------------------------------


def test_semicolon_files_read_amounts_with_a_decimal_comma(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email;mrr;seats\n"
        "a@example.com;1.250,50;3\n"
        "b@example.com;149,00;1\n"
        "c@example.com;€ 149,00;1\n"
        "d@example.com;1.250.000,5 EUR;1\n"
        "e@example.com;12;1\n"
        "f@example.com;0,125;1\n",
    )
    assert imported(run, "people.csv")["inserted"] == 6
    mrr = {k: c["mrr"] for k, c in book(run).items()}
    assert mrr == {
        "a@example.com": 1250.5,
        "b@example.com": 149.0,
        "c@example.com": 149.0,
        "d@example.com": 1250000.5,
        "e@example.com": 12.0,
        "f@example.com": 0.125,
    }


def test_comma_files_read_amounts_with_a_decimal_point(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,mrr\n"
        'a@example.com,"1,250.00"\n'
        "b@example.com,$890.00\n"
        "c@example.com,£12.5\n"
        "d@example.com,149.00 USD\n"
        'e@example.com,"$1,250,000"\n',
    )
    assert imported(run, "people.csv")["inserted"] == 5
    mrr = {k: c["mrr"] for k, c in book(run).items()}
    assert mrr == {
        "a@example.com": 1250.0,
        "b@example.com": 890.0,
        "c@example.com": 12.5,
        "d@example.com": 149.0,
        "e@example.com": 1250000.0,
    }


def test_ambiguous_amounts_are_rejected_without_decimal(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        'email,mrr\na@example.com,"1,250"\nb@example.com,1.250\nc@example.com,"149,00"\n',
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=3) + (
        "  people.csv:2: mrr '1,250' is ambiguous: 1250 with a decimal point, or 1.25 with "
        "a decimal comma; pass --decimal . or --decimal ,\n"
        "  people.csv:3: mrr '1.250' is ambiguous: 1.25 with a decimal point, or 1250 with "
        "a decimal comma; pass --decimal . or --decimal ,\n"
        "  people.csv:4: mrr '149,00' is not an amount with a decimal point; pass "
        "--decimal , if the file writes amounts that way\n"
    )


@pytest.mark.parametrize(
    ("mark", "expected"),
    [(".", [1250.0, 1.25]), (",", [1.25, 1250.0])],
)
def test_decimal_option_settles_what_the_delimiter_cannot(run, workspace, tmp_path, mark, expected):
    write(tmp_path / "people.csv", 'email,mrr\na@example.com,"1,250"\nb@example.com,1.250\n')
    assert imported(run, "people.csv", "--decimal", mark)["inserted"] == 2
    customers = book(run)
    assert [customers["a@example.com"]["mrr"], customers["b@example.com"]["mrr"]] == expected


def test_bad_groupings_and_seats_with_decimals_are_rejected(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email;mrr;seats\n"
        "a@example.com;1.25,00;1\n"
        "b@example.com;12,5,0;1\n"
        "c@example.com;1;2,0\n"
        "d@example.com;-5;1\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=4) + (
        "  people.csv:2: mrr '1.25,00' is not an amount with a decimal comma (write e.g. 1.250,50)\n"
        "  people.csv:3: mrr '12,5,0' is not an amount with a decimal comma (write e.g. 1.250,50)\n"
        "  people.csv:4: seats '2,0' is not a whole number\n"
        "  people.csv:5: mrr '-5' must be a number from zero up\n"
    )


def test_decimal_option_must_be_a_mark(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "email\na@example.com\n")
    result = run("import", "people.csv", "--decimal", "x")
    assert (result.exit_code, result.stderr) == (2, "Error: --decimal must be '.' or ','\n")


# -- headers of the common exports -------------------------------------------------------------


def test_hubspot_contacts_export(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "Record ID,First Name,Last Name,Email,Phone Number,Contact owner,Lifecycle Stage,"
        "Associated Company,Company Name\n"
        "101,Ann,Lee,Ann@Example.com,+351 910,ana,customer,Acme Ltd,Acme\n",
    )
    assert imported(run, "people.csv")["inserted"] == 1
    ann = book(run)["ann@example.com"]
    assert {k: ann[k] for k in ("external_id", "name", "phone", "owner", "company", "fields")} == {
        "external_id": "101",
        "name": "Ann Lee",
        "phone": "+351 910",
        "owner": "ana",
        "company": "Acme",
        "fields": {"Lifecycle Stage": "customer", "Associated Company": "Acme Ltd"},
    }


def test_pipedrive_people_export(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "Person - ID,Person - Name,Person - Organization,Person - Email - Work,"
        "Person - Email - Home,Person - Phone - Work,Person - Owner,Person - Labels\n"
        "7,Bob Ray,Beta Inc,bob@beta.example,bob@home.example,555,ana,Hot\n",
    )
    assert imported(run, "people.csv")["inserted"] == 1
    bob = book(run)["bob@beta.example"]
    assert {k: bob[k] for k in ("external_id", "name", "company", "phone", "owner", "fields")} == {
        "external_id": "7",
        "name": "Bob Ray",
        "company": "Beta Inc",
        "phone": "555",
        "owner": "ana",
        "fields": {"Person - Email - Home": "bob@home.example", "Person - Labels": "Hot"},
    }


def test_google_contacts_export(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "First Name,Middle Name,Last Name,E-mail 1 - Label,E-mail 1 - Value,"
        "Phone 1 - Label,Phone 1 - Value,Organization Name,Organization Title\n"
        "Zoë,,Ng,* Work,zoe@example.com,Mobile,+44 7700,Gamma,CTO\n",
    )
    assert imported(run, "people.csv")["inserted"] == 1
    zoe = book(run)["zoe@example.com"]
    assert (zoe["name"], zoe["phone"], zoe["company"]) == ("Zoë Ng", "+44 7700", "Gamma")
    assert zoe["fields"] == {
        "E-mail 1 - Label": "* Work",
        "Phone 1 - Label": "Mobile",
        "Organization Title": "CTO",
    }


def test_header_names_ignore_case_spaces_dashes_underscores_and_camel_case(
    run, workspace, tmp_path
):
    write(
        tmp_path / "people.csv",
        "EmailAddress,FirstName,last-name,Full_Name,SIGNED ON,externalId\n"
        "c@example.com,Cy,Doe,,2026-01-02,X9\n",
    )
    assert imported(run, "people.csv")["inserted"] == 1
    cy = book(run)["c@example.com"]
    assert (cy["name"], cy["signed_on"], cy["external_id"], cy["fields"]) == (
        "Cy Doe",
        "2026-01-02",
        "X9",
        {},
    )


def test_dry_run_prints_the_column_mapping_first(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "Email Address,Company Name,Industry,\nann@example.com,Acme,Retail,\n",
    )
    before = dump(workspace)
    result = run("import", "people.csv", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "Columns of people.csv:\n"
        "  Email Address -> email\n"
        "  Company Name -> company\n"
        "  Industry -> custom field 'Industry'\n"
        "  (column 4, no name) -> ignored while empty\n"
        "Dry run: nothing was written.\n"
    )
    assert json.loads(result.stdout)["inserted"] == 1
    assert dump(workspace) == before


def test_dry_run_shows_the_mapping_even_when_rows_are_bad(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", "E-mail,Name\nnot-an-email,Ann\n")
    result = rejected(run, dump, workspace, "people.csv", "--dry-run")
    assert result.stderr == (
        "Columns of people.csv:\n  E-mail -> email\n  Name -> name\n"
        + HEAD.format(n=1)
        + "  people.csv:2: 'not-an-email' is not a valid email address\n"
    )


# -- unnamed columns ------------------------------------------------------------------------------


def test_trailing_empty_unnamed_columns_of_numbers_and_excel_are_ignored(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "email;name;;\r\nann@example.com;Ann;;\r\nbob@example.com;Bob;;\r\n",
    )
    assert imported(run, "people.csv")["inserted"] == 2
    assert book(run)["ann@example.com"]["fields"] == {}


def test_an_unnamed_column_holding_data_is_rejected(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,,name,\nann@example.com,,Ann,\nbob@example.com,x,Bob,\ncy@example.com,,Cy,note\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=2) + (
        "  people.csv:3: column 2 has no name in the header but holds 'x'; "
        "name the column or delete it\n"
        "  people.csv:4: column 4 has no name in the header but holds 'note'; "
        "name the column or delete it\n"
    )


# -- a Salesforce report's footer ----------------------------------------------------------------

SALESFORCE = (
    '"First Name","Last Name","Title","Account Name","Email","Phone","Contact Owner","MRR"\n'
    '"John","Smith","CEO","Acme","john@acme.example","555","ana","1,250.00"\n'
    '"Mary","Jones","CTO","Beta","mary@beta.example","","bruno","99.50"\n'
    "\n"
    '"Total","","","","","","","1,349.50"\n'
    "\n"
    "\n"
    '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
    '"Confidential Information - Do Not Distribute"\n'
    '"Generated By:  Ana Lima  3/1/2026 9:14 AM"\n'
    '"Acme Consulting, Lda."\n'
)


def test_salesforce_report_footer_is_skipped_with_a_note(run, workspace, tmp_path):
    write(tmp_path / "report.csv", SALESFORCE)
    result = run("import", "report.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["inserted"] == 2
    assert result.stderr == (
        "Skipped the report's footer (Total, Copyright, Generated By…) on lines 5-11.\n"
        "Kept as custom fields: Title (to read one as funnelctl's name, company or email: "
        "--map 'Title=name').\n"
    )
    customers = book(run)
    assert sorted(customers) == ["john@acme.example", "mary@beta.example"]
    john = customers["john@acme.example"]
    assert (john["name"], john["company"], john["owner"], john["mrr"]) == (
        "John Smith",
        "Acme",
        "ana",
        1250.0,
    )
    assert john["fields"] == {"Title": "CEO"}


def test_data_after_a_footer_is_a_bad_row(run, workspace, dump, tmp_path):
    write(
        tmp_path / "people.csv",
        "email,name\nann@example.com,Ann\n\nCopyright 2026 Someone\nbob@example.com,Bob\n",
    )
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == HEAD.format(n=1) + (
        "  people.csv:5: a row after the report's footer (which starts on line 4); "
        "delete the footer or move the row above it\n"
    )


def test_a_customer_named_total_is_not_a_footer(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "name,email\nTotal,total@example.com\n")
    assert imported(run, "people.csv")["inserted"] == 1


# -- standard input ------------------------------------------------------------------------------


def test_import_dash_reads_standard_input(run, workspace, tmp_path):
    summary = imported(run, "-", input="Email Address;MRR\nann@example.com;1.250,50\n")
    assert summary["inserted"] == 1
    assert book(run)["ann@example.com"]["mrr"] == 1250.5
    card = run("customer", "show", "ann@example.com")
    assert "Imported from <stdin> line 2" in card.stdout


def test_errors_from_standard_input_name_stdin_and_the_line(run, workspace, dump):
    result = rejected(run, dump, workspace, "-", input="email,name\nann@example.com,Ann\nbad,Bob\n")
    assert result.stderr == (
        "Error: <stdin>: 1 bad row(s); nothing was imported "
        "(fix them, or pass --skip-bad FILE to import the good rows)\n"
        "  <stdin>:3: 'bad' is not a valid email address\n"
    )


# -- encodings of Excel on Windows ------------------------------------------------------------------

EXCEL_CP1252 = "Email;Name;Notes;MRR\r\nann@example.com;Ann O’Neil;“VIP” – pays in €;1.250,50\r\n"


def test_a_cp1252_file_is_recognised_and_named(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", EXCEL_CP1252, encoding="cp1252")
    result = rejected(run, dump, workspace, "people.csv")
    assert result.stderr == (
        "Error: people.csv:2: the file is not valid UTF-8 text; its bytes are Windows-1252 "
        "(as Excel on Windows saves CSV, with € as byte 0x80): pass --encoding cp1252\n"
    )
    assert imported(run, "people.csv", "--encoding", "cp1252")["inserted"] == 1
    ann = book(run)["ann@example.com"]
    assert (ann["name"], ann["fields"], ann["mrr"]) == (
        "Ann O’Neil",
        {"Notes": "“VIP” – pays in €"},
        1250.5,
    )


def test_latin1_would_turn_the_euro_into_a_control_character(run, workspace, dump, tmp_path):
    write(tmp_path / "people.csv", EXCEL_CP1252, encoding="cp1252")
    result = rejected(run, dump, workspace, "people.csv", "--encoding", "latin-1")
    assert result.stderr == (
        "Error: people.csv:2: byte 0x92 is an invisible control character in latin-1 "
        "(in Windows-1252 it is '’'); pass --encoding cp1252\n"
    )


def test_a_latin1_file_still_reads_with_latin1(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email,name\njose@example.com,José\n", encoding="latin-1")
    assert imported(run, "people.csv", "--encoding", "latin-1")["inserted"] == 1
    assert book(run)["jose@example.com"]["name"] == "José"


def test_cp1252_on_standard_input(run, workspace, dump):
    data = "email,notes\nann@example.com,ok\nbob@example.com,10 €\n".encode("cp1252")
    result = rejected(run, dump, workspace, "-", input=data)
    assert result.stderr.startswith("Error: <stdin>:3: the file is not valid UTF-8 text; its bytes")


# -- customers without an email --------------------------------------------------------------------


def test_rows_keyed_by_external_id_without_email_are_counted(run, workspace, tmp_path):
    write(
        tmp_path / "people.csv",
        "Record ID,Email,Name\n1,ann@example.com,Ann\n2,,Bob\n3,,Cy\n",
    )
    result = run("import", "people.csv", "--key", "external_id", "--format", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["inserted"], summary["without_email"]) == (3, 2)
    assert result.stderr == (
        "2 customer(s) have no email address: no email can be sent to them until one is added.\n"
    )
    customers = book(run)
    assert (customers["2"]["email"], customers["2"]["name"]) == (None, "Bob")
    # importing an email later settles it
    write(tmp_path / "more.csv", "Record ID,Email\n2,bob@example.com\n")
    again = run("import", "more.csv", "--key", "external_id", "--format", "json")
    assert json.loads(again.stdout)["without_email"] == 0
    assert book(run)["bob@example.com"]["external_id"] == "2"


# -- "Last, First" names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Smith, John", "John"),
        ("Smith,John", "John"),
        ("van der Berg, Anna Maria", "Anna"),
        ("John Smith, Jr.", "John"),
        ("John Smith, PhD", "John"),
        ("Ann Lee", "Ann"),
        ("Ann", "Ann"),
        ("Lee, Ann; Dr", "Ann"),
        (", John", "John"),
        ("", ""),
    ],
)
def test_first_name_understands_last_name_first(name, first):
    from funnelctl.customers import first_name

    assert first_name(name) == first


def test_a_salesforce_style_name_is_greeted_by_first_name(run, workspace, tmp_path):
    write(tmp_path / "people.csv", 'Full Name,Email\n"Smith, John",john@example.com\n')
    assert imported(run, "people.csv")["inserted"] == 1
    result = run("template", "render", "onboarding-welcome", "--customer", "john@example.com")
    assert result.exit_code == 0, result.stderr
    assert "Hi John," in result.stdout
    assert "Smith," not in result.stdout.split("Hi ", 1)[1].splitlines()[0]


# -- Markdown emails keep the line breaks people type -------------------------------------------


def test_markdown_email_keeps_hard_line_breaks(run, workspace, tmp_path):
    (workspace / "templates" / "signoff.txt").write_text(
        "Subject: Hello\nContent-Type: text/markdown\n\n"
        "Hi {{ customer.first_name }},\n\nThanks for the call.\n\nBest regards,\nAna\n"
    )
    write(tmp_path / "people.csv", 'name,email\n"Smith, John",john@example.com\n')
    assert imported(run, "people.csv")["inserted"] == 1
    result = run("template", "render", "signoff", "--customer", "john@example.com")
    assert result.exit_code == 0, result.stderr
    assert "<p>Best regards,<br>\nAna</p>" in result.stdout
    assert "<p>Hi John,</p>" in result.stdout
    assert "Best regards,\nAna\n" in result.stdout  # the text part as written


# -- workbooks and files that are not CSV -------------------------------------------------------


def _workbook(path, sheets):
    import datetime

    import openpyxl

    book_ = openpyxl.Workbook()
    book_.remove(book_.active)
    for title, rows in sheets.items():
        sheet = book_.create_sheet(title)
        for row in rows:
            sheet.append([datetime.datetime(*v) if isinstance(v, tuple) else v for v in row])
    book_.save(path)
    return path


XLSX_ROWS = [
    ["Email Address", "First Name", "Last Name", "MRR", "Seats", "Signed On", "Phone", None],
    ["ann@example.com", "Ann", "Lee", 1250.5, 3, (2026, 1, 31), "+351 910", None],
    ["bob@example.com", "Bob", "Ray", 99, 1.0, (2026, 2, 1), None, None],
]


def test_xlsx_is_read_directly_from_its_first_sheet(run, workspace, tmp_path):
    _workbook(tmp_path / "people.xlsx", {"Customers": XLSX_ROWS, "Other": [["email"], ["x@y.z"]]})
    assert imported(run, "people.xlsx")["inserted"] == 2
    customers = book(run)
    assert sorted(customers) == ["ann@example.com", "bob@example.com"]
    ann, bob = customers["ann@example.com"], customers["bob@example.com"]
    assert (ann["name"], ann["mrr"], ann["seats"], ann["signed_on"], ann["phone"]) == (
        "Ann Lee",
        1250.5,
        3,
        "2026-01-31",
        "+351 910",
    )
    assert (bob["mrr"], bob["seats"], bob["fields"]) == (99.0, 1, {})


def test_sheet_option_picks_a_sheet_and_names_missing_ones(run, workspace, dump, tmp_path):
    _workbook(
        tmp_path / "people.xlsx", {"Customers": XLSX_ROWS, "Churned": [["email"], ["c@x.io"]]}
    )
    assert imported(run, "people.xlsx", "--sheet", "Churned")["inserted"] == 1
    assert sorted(book(run)) == ["c@x.io"]
    result = run("import", "people.xlsx", "--sheet", "Nope")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: people.xlsx has no sheet 'Nope' (its sheets: Customers, Churned)\n",
    )


def test_bad_rows_of_a_workbook_name_their_row(run, workspace, dump, tmp_path):
    rows = [*XLSX_ROWS, ["not-an-email", "Cy", "", "lots", 2, None, None, None]]
    _workbook(tmp_path / "people.xlsx", {"Sheet1": rows})
    result = rejected(run, dump, workspace, "people.xlsx")
    assert result.stderr == (
        "Error: people.xlsx: 1 bad row(s); nothing was imported "
        "(fix them, or pass --skip-bad FILE to import the good rows)\n"
        "  people.xlsx:4: 'not-an-email' is not a valid email address\n"
    )


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "people.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100,
            "is an Excel 97-2003 workbook (.xls), not CSV: open it in Excel and save it "
            "as .xlsx or as 'CSV UTF-8 (Comma delimited)'",
        ),
        (
            "people.pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            "is a PDF, not CSV: export the data as CSV from the program that made it "
            "(a PDF's tables cannot be read reliably)",
        ),
        ("people.zip", None, "is a ZIP archive, not CSV: unzip it and import the CSV file inside"),
        (
            "people.numbers",
            None,
            "is a Numbers document: in Numbers choose File > Export To > CSV… and import that",
        ),
    ],
)
def test_files_that_are_not_csv_say_how_to_export_them(
    run, workspace, dump, tmp_path, name, content, problem
):
    import zipfile

    if content is None:
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            inner = "Index/Document.iwa" if name.endswith(".numbers") else "people.csv"
            archive.writestr(inner, "email\nann@example.com\n")
    else:
        (tmp_path / name).write_bytes(content)
    result = rejected(run, dump, workspace, name)
    assert result.stderr == f"Error: {name} {problem}\n"


def test_sheet_option_on_a_csv_is_a_usage_error(run, workspace, tmp_path):
    write(tmp_path / "people.csv", "email\nann@example.com\n")
    result = run("import", "people.csv", "--sheet", "Sheet1")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --sheet is for .xlsx workbooks; people.csv is not one\n",
    )


@pytest.mark.parametrize("args", [[], ["--decimal", ","], ["--decimal", "."]])
def test_number_cells_of_a_workbook_are_never_ambiguous(run, workspace, tmp_path, args):
    rows = [
        ["email", "mrr"],
        ["a@example.com", 1.125],
        ["b@example.com", 1250],
        ["c@example.com", 0.5],
    ]
    _workbook(tmp_path / "people.xlsx", {"Sheet1": rows})
    assert imported(run, "people.xlsx", *args)["inserted"] == 3
    assert {k: c["mrr"] for k, c in book(run).items()} == {
        "a@example.com": 1.125,
        "b@example.com": 1250.0,
        "c@example.com": 0.5,
    }


def test_amounts_typed_as_text_in_a_workbook_follow_decimal(run, workspace, dump, tmp_path):
    rows = [["email", "mrr"], ["a@example.com", "1.250,50 €"]]
    _workbook(tmp_path / "people.xlsx", {"Sheet1": rows})
    assert imported(run, "people.xlsx", "--decimal", ",")["inserted"] == 1
    assert book(run)["a@example.com"]["mrr"] == 1250.5
